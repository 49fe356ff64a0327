"""Drives the app in an interpreter where PyTorch cannot be imported, as in the desktop bundle; run by
``test_app_without_torch.py`` as ``python without_torch_driver.py RESOURCES PHOTO BATCH_IN BATCH_OUT SETTINGS``.

Torch is blocked before anything is imported, the bundled resources are the folder given (with the exported
graphs in it), and the app starts through :func:`ui.app.main` on the photo. A scenario then walks the core
loop step by step: each step does something and yields a condition the driver's timer waits for. What it saw
is printed as one JSON line after :data:`REPORT_MARK`; a step that never comes true reports where it stopped.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Only the standard library above: torch is blocked in ``__main__`` before anything else is imported (the test
# imports this module for REPORT_MARK, and must keep its torch).

REPORT_MARK = "WITHOUT-TORCH-REPORT "
DEADLINE_S = 60.0
"""The whole scenario's limit: well past what it takes, only so a hang ends with a report."""
POLL_MS = 20

Step = Callable[[], bool]


def scenario(window: Any, report: dict[str, Any], batch_in: Path, batch_out: Path) -> Iterator[Step]:
    """The core loop without torch: auto denoise on open, what the torch-only parts say, every view mode, a
    strength change, Save, and a batch with the bundled model. Fills ``report``; yields what to wait for."""
    from ui.viewer import MODES

    report["stage"] = "denoise on open"
    yield lambda: window.outcome is not None and window.viewer.has_result() and not window.bridge.is_busy("model")
    first = window.outcome
    panel = window.panel
    report.update(
        model_type=type(window.model).__name__,
        model_name=window.model_name,
        chooser=[panel.model_box.itemData(i) for i in range(panel.model_box.count())],
        devices=[panel.device_box.itemText(i) for i in range(panel.device_box.count())],
        model_note=panel.model_note.text(),
        latents_caption=panel.latents.caption.text(),
        latent_thumbnails=panel.latents.count(),
        first_strength=first.strength.describe(),
        estimate_method=window.photo.estimate.method,
        actions={name: {"enabled": act.isEnabled(), "text": act.text(), "tooltip": act.toolTip()}
                 for name, act in (("train", window.train_action), ("manage", window.manage_models_action))},
    )
    report["train_dialog"] = repr(window.open_train_dialog())
    report["train_status"] = window.status_label.text()
    report["manager_dialog"] = repr(window.open_model_manager())
    report["manager_status"] = window.status_label.text()

    report["stage"] = "view modes"
    report["modes"] = {}
    for mode in MODES:
        window.viewer.set_mode(mode)
        if mode == "noise":
            yield lambda: window.viewer.noise_map() is not None
        report["modes"][mode] = window.viewer.mode() == mode and not window.viewer.grab().toImage().isNull()

    report["stage"] = "strength change"
    window.viewer.set_mode("side")
    panel.auto_box.setChecked(False)  # a fixed sigma: the photo is denoised again
    yield lambda: (window.outcome is not None and window.outcome is not first
                   and not window.bridge.is_busy("model") and window.viewer.has_result())
    report["second_strength"] = window.outcome.strength.describe()

    report["stage"] = "save"
    target = window.suggested_path()
    window.save()
    yield lambda: window.status_label.text().startswith("Saved") and not window.bridge.is_busy("io")
    report["saved"] = str(target)

    report["stage"] = "batch"
    dialog = window.open_batch_dialog()
    report["batch_models"] = [dialog.model_box.itemData(i) for i in range(dialog.model_box.count())]
    dialog.input_edit.setText(str(batch_in))
    dialog.output_edit.setText(str(batch_out))
    report["batch_started"] = dialog.start()
    yield lambda: not dialog.is_running()
    batch = dialog.report
    report["batch"] = None if batch is None else {
        "done": batch.done, "failed": batch.failed,
        "outputs": [str(r.output) for r in batch.results if r.output is not None]}
    report["batch_message"] = dialog.last_message

    report["last_error"] = window.last_error
    report["stage"] = "done"


def run(resources: Path, photo: Path, batch_in: Path, batch_out: Path, settings_file: Path) -> int:
    """Start the app on ``photo`` with ``resources`` as the bundled resources, walk :func:`scenario`, print the
    report; the exit status is the app's."""
    import denoiser.resources

    denoiser.resources.resources_dir = lambda: resources  # bundled_models_dir() and the rest look here

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    import ui.main_window
    from ui.app import main

    ui.main_window.default_settings = lambda: QSettings(str(settings_file), QSettings.Format.IniFormat)
    app = QApplication(sys.argv[:1])  # main() takes this one
    report: dict[str, Any] = {"stage": "start"}
    started = time.monotonic()
    state: dict[str, Any] = {"steps": None, "waiting": None}

    def finish(window: Any) -> None:
        timer.stop()
        report["seconds"] = round(time.monotonic() - started, 2)
        report["torch_module"] = repr(sys.modules.get("torch"))
        report["torch_modules"] = sorted(m for m in sys.modules if m.startswith("torch.") or m.endswith(".torch"))
        report["torch_engine_modules"] = sorted(m for m in sys.modules if m in (
            "denoiser.models", "denoiser.modelstore", "denoiser.modelfile", "denoiser.latents", "denoiser.training",
            "ui.train_dialog", "ui.model_manager"))
        print(REPORT_MARK + json.dumps(report), flush=True)
        if window is not None:
            window.close()  # its worker lanes stop; a batch dialog is closed with it
        app.quit()

    def tick() -> None:
        windows = [w for w in app.topLevelWidgets() if isinstance(w, ui.main_window.MainWindow)]
        if not windows:
            return
        window = windows[0]
        if time.monotonic() - started > DEADLINE_S:
            report["timed_out"] = True
            finish(window)
            return
        if state["steps"] is None:
            state["steps"] = scenario(window, report, batch_in, batch_out)
        try:
            if state["waiting"] is None or state["waiting"]():
                state["waiting"] = next(state["steps"])
        except StopIteration:
            finish(window)

    timer = QTimer()
    timer.setInterval(POLL_MS)
    timer.timeout.connect(tick)
    timer.start()
    return main([str(photo)])


if __name__ == "__main__":
    sys.modules["torch"] = None  # type: ignore[assignment] # from here on ``import torch`` raises ImportError
    sys.exit(run(*(Path(arg) for arg in sys.argv[1:6])))
