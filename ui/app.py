"""The ``denoiser-gui`` entry point: ``denoiser-gui [PHOTO_OR_FOLDER ...]``.

With no argument the window reopens the last folder, or the bundled sample photos on a first run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtWidgets import QApplication

from denoiser.resources import sample_images_dir
from ui.main_window import MainWindow
from ui.style import apply_dark_style


def main(argv: Sequence[str] | None = None) -> int:
    """Open the window and run the event loop; returns the exit status."""
    parser = argparse.ArgumentParser(prog="denoiser-gui", description="Denoiser's desktop app")
    parser.add_argument("paths", nargs="*", type=Path, help="photos or a folder to open")
    parser.add_argument("--samples", action="store_true", help="open the bundled sample photos")
    args = parser.parse_args(list(argv) if argv is not None else sys.argv[1:])
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Denoiser")
    app.setOrganizationName("Denoiser")
    apply_dark_style(app)
    window = MainWindow()
    window.show()
    if args.paths:
        window.open_paths(args.paths)
    elif args.samples or not window.settings.value("last_folder"):
        window.open_folder(sample_images_dir())
        first = sorted(p for p in sample_images_dir().glob("*.png"))
        if first:
            window.open_photo(first[0])
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
