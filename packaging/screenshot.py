"""Render the main window offscreen with a bundled sample denoised, for the README.

Run from the repository root: ``QT_QPA_PLATFORM=offscreen python packaging/screenshot.py [--out docs/screenshot.png]``;
``--mode noise`` shows the noise map view instead of side by side.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QApplication, QWidget

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _settle(app: QApplication, until: Callable[[], bool], seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while not until() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(50):
        app.processEvents()
        time.sleep(0.01)


def _batch(app: QApplication, window: QWidget, args: argparse.Namespace, scratch: Path) -> QWidget:
    """The batch dialog after denoising the bundled samples."""
    from denoiser.resources import sample_images_dir

    dialog = window.open_batch_dialog()
    dialog.resize(1100, 640)
    dialog.input_edit.setText(str(sample_images_dir()))
    dialog.output_edit.setText(str(scratch / "batch-out"))
    dialog.start()
    _settle(app, lambda: not dialog.is_running() and bool(dialog.results()))
    return dialog


def _train(app: QApplication, window: QWidget, args: argparse.Namespace, scratch: Path) -> QWidget:
    """The training dialog fine-tuning the default on the PolyU pairs for a short while."""
    dialog = window.open_train_dialog()
    dialog.resize(1200, 760)
    dialog.form.set_mode("pairs")
    dialog.form.pairs.pairs_noisy_edit.setText(str(args.data / "pairs" / "polyu"))
    dialog.form.pairs.check_pairs()
    _settle(app, lambda: dialog.start_problem() == "")
    dialog.form.steps_radio.setChecked(True)
    dialog.form.steps_spin.setValue(150)
    dialog.form.validate_spin.setValue(30)
    dialog.start()
    _settle(app, lambda: not dialog.is_running())
    return dialog


def _models(app: QApplication, window: QWidget, args: argparse.Namespace, scratch: Path) -> QWidget:
    """The model manager with the library's details shown."""
    dialog = window.open_model_manager()
    dialog.resize(1100, 560)
    names = dialog.names()
    dialog.select(names[-1])
    dialog.show_details(True)
    _settle(app, lambda: True)
    return dialog


DIALOGS = {"batch": _batch, "train": _train, "models": _models}


def main() -> None:
    """Open a sample, denoise it, zoom on a detail, save a PNG of the window."""
    from denoiser.resources import sample_images_dir
    from ui.main_window import MainWindow
    from ui.style import apply_dark_style
    from ui.viewer import MODES

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshot.png"))
    parser.add_argument("--photo", default="parrots_sigma25.png")
    parser.add_argument("--model", default="default")
    parser.add_argument("--mode", choices=MODES, default="side", help="the viewer's mode (noise: the noise map)")
    parser.add_argument("--zoom", type=float, default=1.0)
    parser.add_argument("--dialog", choices=["none", "batch", "train", "models"], default="none",
                        help="grab one of the Tools dialogs instead of the main window")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="for the train dialog's pairs")
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
        if args.mode == "noise":  # the noise map is drawn in the background once the mode asks for it
            _settle(app, lambda: window.viewer.noise_map() is not None, seconds=60)
        canvas = window.viewer.canvases()[0]
        window.viewer.set_zoom(args.zoom, anchor=QPointF(canvas.width() * 0.45, canvas.height() * 0.4))
        for _ in range(200):  # let thumbnails and repaints settle
            app.processEvents()
            time.sleep(0.01)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        target = window if args.dialog == "none" else DIALOGS[args.dialog](app, window, args, Path(folder))
        target.grab().save(str(args.out))
        window.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
