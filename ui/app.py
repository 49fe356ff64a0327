"""The ``denoiser-gui`` entry point: ``denoiser-gui [PHOTO_OR_FOLDER ...]``.

A folder opens with its first photo; a photo opens with its folder listed. With no argument the window reopens
the last folder, or the bundled sample photos on a first run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from denoiser import __version__
from denoiser.io.formats import unavailable_formats
from denoiser.resources import user_samples_dir
from ui.icon import app_icon
from ui.logging_setup import setup_logging
from ui.main_window import MainWindow
from ui.preflight import missing_xcb_libraries, xcb_advice
from ui.style import apply_dark_style

STARTED = time.perf_counter()
SMOKE_QUIT = "DENOISER_SMOKE_QUIT_AFTER_SHOW"
"""Set, the app quits once its window shows the first photo, saying after how many seconds (the bundle's smoke
test)."""
DESKTOP_ID = "io.github.denoiser.Denoiser"
"""The desktop entry's name (packaging/linux/io.github.denoiser.Denoiser.desktop) without its extension."""


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window and run the event loop; returns the exit status."""
    parser = argparse.ArgumentParser(prog="denoiser-gui", description="Denoiser's desktop app")
    parser.add_argument("paths", nargs="*", type=Path, help="photos or a folder to open")
    parser.add_argument("--samples", action="store_true", help="open the bundled sample photos")
    parser.add_argument("--version", action="version", version=f"denoiser-gui {__version__}")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    setup_logging()  # tracebacks of failed jobs go to a file: a desktop start has no terminal
    for info in unavailable_formats():  # Help > About says so too
        logging.getLogger(__name__).warning("%s files cannot be opened: %s", info.label, info.missing())
    if not QApplication.instance():
        missing = missing_xcb_libraries()
        if missing:  # Qt would abort with a cryptic message: say which packages to install instead
            print(xcb_advice(missing), file=sys.stderr)
            return 1
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Denoiser")
    app.setOrganizationName("Denoiser")
    app.setDesktopFileName(DESKTOP_ID)  # Wayland docks match the window to the desktop entry and its icon by this
    app.setWindowIcon(app_icon())
    apply_dark_style(app)
    window = MainWindow()
    window.show()
    if os.environ.get(SMOKE_QUIT):
        _quit_once_shown(app, window, bool(args.paths or args.samples or not window.settings.value("last_folder")))
    # What is asked for here wins over the last folder, which the window reopens only when nothing else was.
    if args.paths:
        window.open_paths(args.paths)
    elif args.samples or not window.settings.value("last_folder"):
        window.open_folder(user_samples_dir())  # and its first photo; a copy: saving never writes into the install
    status = app.exec()
    window.bridge.wait_until_stopped()  # a job that outlasted the close (a model still loading) ends first
    return status


def _quit_once_shown(app: QApplication, window: MainWindow, a_photo_is_coming: bool) -> None:
    """Poll until the window shows a photo (or, with none to open, is shown), say when, and close it."""
    timer = QTimer(window)

    def check() -> None:
        if window.isVisible() and (window.photo is not None or not a_photo_is_coming):
            timer.stop()
            print(f"window shown after {time.perf_counter() - STARTED:.2f} s", flush=True)
            window.close()
            app.quit()

    timer.timeout.connect(check)
    timer.start(20)


if __name__ == "__main__":
    sys.exit(main())
