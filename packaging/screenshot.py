"""Render the main window offscreen with a bundled sample denoised, for the README.

Run from the repository root: ``QT_QPA_PLATFORM=offscreen python packaging/screenshot.py [--out docs/screenshot.png]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QApplication

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> None:
    """Open a sample, denoise it, zoom on a detail, save a PNG of the window."""
    from denoiser.resources import sample_images_dir
    from ui.main_window import MainWindow
    from ui.style import apply_dark_style

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    parser.add_argument("--photo", default="parrots_sigma25.png")
    parser.add_argument("--model", default="default")
    parser.add_argument("--mode", default="side")
    parser.add_argument("--zoom", type=float, default=1.0)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    apply_dark_style(app)
    with tempfile.TemporaryDirectory() as folder:
        settings = QSettings(str(Path(folder) / "s.ini"), QSettings.Format.IniFormat)
        settings.setValue("model", args.model)
        window = MainWindow(settings=settings)
        window.resize(1600, 900)
        window.show()
        window.open_folder(sample_images_dir())
        photo = sample_images_dir() / args.photo
        window.folder_pane.select(photo)  # opens it, as a click would
        deadline = time.monotonic() + 300
        while not (window.outcome is not None and window.viewer.has_result()) and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        window.viewer.set_mode(args.mode)
        canvas = window.viewer.canvases()[0]
        window.viewer.set_zoom(args.zoom, anchor=QPointF(canvas.width() * 0.45, canvas.height() * 0.4))
        for _ in range(200):  # let thumbnails and repaints settle
            app.processEvents()
            time.sleep(0.01)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        window.grab().save(str(args.out))
        window.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
