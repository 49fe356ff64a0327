"""The training dialog, headless: train from clean photos, pairs and noisy photos, check pairs, cancel, save."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from pytestqt.qtbot import QtBot

from denoiser.cli import build_parser
from denoiser.modelfile import save_model
from denoiser.models import create_model
from denoiser.modelstore import list_models, load_model, save_to_library, user_models_dir
from denoiser.train_cli import request_from_args
from denoiser.train_request import MINUTES_STEP_CAP, OutputSpec
from denoiser.train_run import build_source
from ui.train_dialog import TrainDialog
from ui.train_form import SCRATCH, name_problem
from ui.worker import WorkerBridge

TINY_UNET = {"widths": [4, 8], "blocks": 1}
RUN_TIMEOUT_MS = 120_000  # generous: the machine is shared with a training job


def photo(seed: int, noise: float = 0.0, size: int = 64) -> np.ndarray:
    """A small smooth colour picture with some edges, plus Gaussian noise of sigma ``noise``."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    clean = np.stack([x * 3 + seed * 10, y * 3, 120 + 60 * np.sin((x + y + seed) / 6)], axis=2)
    clean[size // 3 : size // 2, size // 4 : size // 2] = 200  # an edge to keep
    noisy = clean + rng.normal(0, noise, clean.shape) if noise else clean
    return np.clip(noisy, 0, 255).astype(np.uint8)


def write_photos(folder: Path, names: list[str], noise: float = 0.0, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(names):
        PILImage.fromarray(photo(seed + index, noise)).save(folder / f"{name}.png")
    return folder


@pytest.fixture
def dialog(qtbot: QtBot, bridge: WorkerBridge) -> Iterator[TrainDialog]:
    window = TrainDialog(bridge, workers=0, model_config=TINY_UNET)
    qtbot.addWidget(window)
    yield window
    if window.is_running():
        window.cancel()
        qtbot.waitUntil(lambda: not window.is_running(), timeout=RUN_TIMEOUT_MS)


def tiny_run(dialog: TrainDialog, steps: int, validate_every: int) -> None:
    """Settings for a run that takes a second or two on one CPU thread."""
    dialog.form.steps_radio.setChecked(True)
    dialog.form.steps_spin.setValue(steps)
    dialog.form.batch_spin.setValue(4)
    dialog.form.patch_spin.setValue(32)
    dialog.form.validate_spin.setValue(validate_every)


def wait_for_result(qtbot: QtBot, dialog: TrainDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=RUN_TIMEOUT_MS)
    assert dialog.result is not None, dialog.note_label.text() or dialog.eta_label.text()


def test_clean_photos_train_plot_show_samples_and_save(qtbot: QtBot, dialog: TrainDialog, tmp_path: Path) -> None:
    folder = write_photos(tmp_path / "clean", [f"p{i}" for i in range(6)])
    dialog.form.set_mode("clean")
    assert not dialog.start_button.isEnabled()  # no folder yet
    assert "folder" in dialog.note_label.text()
    dialog.form.clean_folder_edit.setText(str(folder))
    assert dialog.form.start_model() == ""  # clean photos start from scratch by default
    assert dialog.form.family_box.isEnabled() and dialog.form.family_box.currentText() == "unet"
    tiny_run(dialog, steps=8, validate_every=4)
    assert dialog.start_button.isEnabled()
    assert dialog.save("early") is False  # nothing to save before a run
    assert "Nothing to save" in dialog.save_note.text()

    assert dialog.start()
    assert dialog.is_running() and not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    wait_for_result(qtbot, dialog)

    assert [step for step, _ in dialog.plots.loss_points()] == list(range(1, 9))
    assert all(np.isfinite(loss) and loss > 0 for _, loss in dialog.plots.loss_points())
    assert dialog.plots.validation_metric() == "val_psnr"
    assert [step for step, _ in dialog.plots.validation_points()] == [0, 4, 8]  # starting model, then each epoch
    assert all(5 < value < 80 for _, value in dialog.plots.validation_points())
    steps_plotted, losses_plotted = dialog.plots.loss_curve.getData()
    assert list(steps_plotted) == list(range(1, 9)) and len(losses_plotted) == 8
    assert len(dialog.plots.val_curve.getData()[0]) == 3
    for key, label in (("before", dialog.plots.before_label), ("after", dialog.plots.after_label)):
        assert not dialog.plots.sample_images[key].isNull()
        assert label.pixmap() is not None and not label.pixmap().isNull()
    result = dialog.result
    assert result is not None and result.steps == 8 and result.metric == "val_psnr"
    figures = dialog.figures_label.text()
    assert "Validation PSNR" in figures and f"{result.best:.2f} dB" in figures and f"{result.start:.2f}" in figures
    assert f"gain {result.gain:+.2f} dB" in figures
    assert dialog.save_button.isEnabled() and dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert dialog.progress_bar.value() == dialog.progress_bar.maximum()

    # The name is checked inline before any job runs.
    save_to_library(result.model, "taken")
    everything = user_models_dir().parent.parent  # the library, its parent and the folder above
    before = sorted(everything.rglob("*"))
    for bad, why in (("", "name"), ("default", "bundled"), ("taken", "already exists"), ("a/b", "cannot contain"),
                     ("../../x", "path separator"), ("sub/x", "path separator"), ("..", "'..'"),
                     ("x" * 65, "at most 64")):
        assert dialog.save(bad) is False
        assert why in dialog.save_note.text()
    assert sorted(everything.rglob("*")) == before  # nothing saved, in the library or out of it
    assert not any(info.name == "a" for info in list_models())

    with qtbot.waitSignal(dialog.model_saved, timeout=RUN_TIMEOUT_MS) as saved:
        assert dialog.save("tiny-trained")
    assert saved.args == ["tiny-trained"]
    assert "tiny-trained" in [info.name for info in list_models()]
    model, info = load_model("tiny-trained")
    assert model.family == "unet" and info.training["steps_done"] == 8
    assert info.validation["metric"] == "val_psnr" and info.validation["best"] == pytest.approx(result.best, abs=1e-4)
    assert "6 clean photos" in info.trained_on and "gaussian" in info.trained_on
    sidecar = json.loads((user_models_dir() / "tiny-trained.json").read_text())
    assert sidecar["name"] == "tiny-trained"
    assert dialog.form.start_box.findText("tiny-trained") >= 0  # can be fine-tuned next
    assert not dialog.save_button.isEnabled()  # saved once; the same result is not saved twice by accident


def test_pairs_are_checked_and_problems_must_be_skipped(qtbot: QtBot, dialog: TrainDialog, tmp_path: Path) -> None:
    noisy = write_photos(tmp_path / "set" / "noisy", ["a", "b", "c", "lonely"], noise=20)
    write_photos(tmp_path / "set" / "clean", ["a", "b", "c"])
    dialog.form.set_mode("pairs")
    assert dialog.form.start_model() == "default"  # pairs fine-tune the bundled model unless told otherwise
    assert not dialog.form.family_box.isEnabled()
    dialog.form.pairs.pairs_noisy_edit.setText(str(tmp_path / "set"))  # one folder holding noisy/ and clean/
    assert not dialog.start_button.isEnabled()
    assert "Check the pairs" in dialog.note_label.text()
    assert dialog.start() is False and not dialog.is_running()

    dialog.form.pairs.check_pairs()
    qtbot.waitUntil(lambda: dialog.form.pairs.report is not None, timeout=RUN_TIMEOUT_MS)
    assert dialog.form.pairs.pair_summary.text().startswith("3 usable pairs, 1 problem")
    lines = [dialog.form.pairs.pair_problems.item(i).text() for i in range(dialog.form.pairs.pair_problems.count())]
    assert lines == [f"{noisy / 'lonely.png'}: no clean partner (no file with the same name in the clean folder)"]
    assert not dialog.start_button.isEnabled()
    assert "Skip the problem pairs" in dialog.note_label.text()
    dialog.form.pairs.skip_box.setChecked(True)
    assert dialog.start_button.isEnabled() and dialog.note_label.text() == ""
    dialog.form.pairs.skip_box.setChecked(False)
    assert not dialog.start_button.isEnabled()

    # Other folders need another check.
    dialog.form.pairs.pairs_clean_edit.setText(str(tmp_path / "set" / "clean"))
    assert dialog.form.pairs.report is None and dialog.form.pairs.pair_problems.count() == 0
    dialog.form.pairs.pairs_noisy_edit.setText(str(noisy))
    dialog.form.pairs.check_pairs()
    qtbot.waitUntil(lambda: dialog.form.pairs.report is not None, timeout=RUN_TIMEOUT_MS)
    dialog.form.pairs.skip_box.setChecked(True)

    # A short run on the usable pairs, from scratch to stay tiny.
    dialog.form.start_box.setCurrentIndex(dialog.form.start_box.findText(SCRATCH))
    assert dialog.form.family_box.isEnabled()
    tiny_run(dialog, steps=2, validate_every=2)
    assert dialog.start()
    wait_for_result(qtbot, dialog)
    assert dialog.result is not None and dialog.result.metric == "val_psnr"
    assert dialog.outcome is not None and dialog.outcome.trained_on.startswith("3 noisy/clean pairs")
    assert dialog.outcome.config.mode == "pairs"


def test_a_missing_pair_folder_is_reported(qtbot: QtBot, dialog: TrainDialog, tmp_path: Path) -> None:
    dialog.form.set_mode("pairs")
    dialog.form.pairs.pairs_noisy_edit.setText(str(tmp_path / "nowhere"))
    dialog.form.pairs.check_pairs()
    qtbot.waitUntil(lambda: "Cannot check" in dialog.form.pairs.pair_summary.text(), timeout=RUN_TIMEOUT_MS)
    assert "nowhere" in dialog.form.pairs.pair_summary.text()
    assert dialog.form.pairs.check_button.isEnabled() and not dialog.start_button.isEnabled()


def test_cancel_stops_the_run_and_the_dialog_stays_usable(qtbot: QtBot, dialog: TrainDialog, bridge: WorkerBridge,
                                                          tmp_path: Path) -> None:
    dialog.form.clean_folder_edit.setText(str(write_photos(tmp_path / "clean", ["a", "b", "c"])))
    tiny_run(dialog, steps=100_000, validate_every=100_000)
    assert dialog.start()
    qtbot.waitUntil(lambda: len(dialog.plots.loss_points()) >= 2, timeout=RUN_TIMEOUT_MS)
    run = dialog.train_job()
    assert run is not None
    with qtbot.waitSignal(run.cancelled, timeout=RUN_TIMEOUT_MS):
        dialog.cancel()
    assert not dialog.is_running()
    assert dialog.result is None and not dialog.save_button.isEnabled()
    assert "cancelled" in dialog.eta_label.text()
    assert len(dialog.plots.loss_points()) < 100_000
    assert dialog.start_button.isEnabled() and not dialog.cancel_button.isEnabled()
    assert dialog.form.clean_folder_edit.isEnabled()

    tiny_run(dialog, steps=3, validate_every=3)
    assert dialog.start()
    assert dialog.plots.loss_points() == []  # a new run starts a new plot
    wait_for_result(qtbot, dialog)
    assert dialog.result is not None and dialog.result.steps == 3


def test_closing_the_dialog_cancels_its_run(qtbot: QtBot, dialog: TrainDialog, bridge: WorkerBridge,
                                           tmp_path: Path) -> None:
    dialog.form.clean_folder_edit.setText(str(write_photos(tmp_path / "clean", ["a", "b"])))
    tiny_run(dialog, steps=100_000, validate_every=100_000)
    dialog.show()
    assert dialog.start()
    qtbot.waitUntil(lambda: len(dialog.plots.loss_points()) >= 1, timeout=RUN_TIMEOUT_MS)
    run = dialog.train_job()
    assert run is not None
    with qtbot.waitSignal(run.cancelled, timeout=RUN_TIMEOUT_MS):
        dialog.reject()  # what Close, Escape and the window's close button do
    assert not dialog.is_running() and not bridge.is_busy("train")


def test_noisy_photos_alone_train_self_supervised(qtbot: QtBot, dialog: TrainDialog, tmp_path: Path) -> None:
    folder = write_photos(tmp_path / "noisy", [f"n{i}" for i in range(4)], noise=25)
    dialog.form.set_mode("noisy")
    dialog.form.noisy_folder_edit.setText(str(folder))
    tiny_run(dialog, steps=4, validate_every=2)
    dialog.form.patch_spin.setValue(16)  # self-supervised patches are twice this
    assert dialog.start()
    wait_for_result(qtbot, dialog)
    assert dialog.plots.validation_metric() == "val_loss"
    assert [step for step, _ in dialog.plots.validation_points()] == [0, 2, 4]
    assert all(value > 0 for _, value in dialog.plots.validation_points())
    assert len(dialog.plots.loss_points()) == 4
    assert "loss" in dialog.plots.val_plot.getPlotItem().getAxis("left").labelText
    assert "Validation loss" in dialog.figures_label.text()
    assert not dialog.plots.sample_images["after"].isNull()
    assert dialog.outcome is not None and dialog.outcome.config.mode == "noisy"


def test_the_request_follows_the_controls(dialog: TrainDialog, tmp_path: Path) -> None:
    dialog.form.clean_folder_edit.setText(str(tmp_path))
    dialog.form.minutes_radio.setChecked(True)
    dialog.form.minutes_spin.setValue(2.5)
    dialog.form.noise_boxes["poisson_gaussian"].setChecked(True)
    request = dialog.form.request()
    assert (request.data.mode, request.data.folders) == ("clean", (str(tmp_path),))
    assert (request.schedule.minutes, request.schedule.steps, request.schedule.workers) == (2.5, None, 0)
    assert request.steps() == MINUTES_STEP_CAP and request.learning_rate() == pytest.approx(1e-3)
    assert request.noise.kinds == ("gaussian", "poisson_gaussian") and request.model.fresh_config() == TINY_UNET
    assert request.noise.quantize  # as the bundled default was trained, unless unticked
    dialog.form.quantize_box.setChecked(False)
    assert not dialog.form.request().noise.quantize
    # jpeg only post-processes noise: alone it is refused before anything starts.
    for name, box in dialog.form.noise_boxes.items():
        box.setChecked(name == "jpeg")
    assert not dialog.start_button.isEnabled() and "jpeg" in dialog.note_label.text()

    dialog.form.start_box.setCurrentIndex(dialog.form.start_box.findText("default"))
    assert dialog.form.request().model.start_from == "default" and not dialog.form.family_box.isEnabled()
    assert dialog.form.request().learning_rate() == pytest.approx(2e-4)  # the engine's rule for fine-tuning
    dialog.form.set_mode("pairs")
    dialog.form.set_mode("clean")
    assert dialog.form.start_model() == ""  # the mode's default, until the user picks a starting model by hand
    index = dialog.form.start_box.findText("default")
    dialog.form.start_box.setCurrentIndex(index)
    dialog.form.start_box.activated.emit(index)  # what a click in the list sends
    dialog.form.set_mode("noisy")
    assert dialog.form.start_model() == "default"
    with pytest.raises(ValueError):
        dialog.form.set_mode("other")


def test_name_rules(tmp_path: Path) -> None:
    assert name_problem("fresh") == ""
    assert "name" in name_problem("")
    assert "bundled" in name_problem("default")
    assert "dot" in name_problem(".hidden")
    assert "path separator" in name_problem("../../x") and "path separator" in name_problem("sub/x")
    assert "'..'" in name_problem("..") and "at most 64" in name_problem("x" * 65)
    assert "control characters" in name_problem("new\nline") and "space" in name_problem("trailing ")
    user_models_dir().mkdir(parents=True)
    (user_models_dir() / "mine.safetensors").write_bytes(b"")
    assert "already exists" in name_problem("mine")


def test_the_offered_name_is_the_first_one_no_model_has(qtbot: QtBot, bridge: WorkerBridge, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.modelstore as modelstore

    def offered() -> str:
        window = TrainDialog(bridge, workers=0, model_config=TINY_UNET)
        qtbot.addWidget(window)
        return window.form.name_edit.text()

    assert offered() == "my-model"
    save_to_library(create_model("unet", TINY_UNET), "my-model")
    assert offered() == "my-model-2"
    # A model bundled with the app takes its name too, though no library file has it.
    bundled = tmp_path / "bundled"
    save_model(create_model("unet", TINY_UNET), bundled / "my-model-2.safetensors")
    monkeypatch.setattr(modelstore, "bundled_models_dir", lambda: bundled)
    assert "already exists" in name_problem("my-model-2")
    assert offered() == "my-model-3" and name_problem("my-model-3") == ""


def test_the_request_reaches_the_engine_noise(dialog: TrainDialog, tmp_path: Path) -> None:
    dialog.form.clean_folder_edit.setText(str(write_photos(tmp_path / "clean", ["a", "b"])))
    for ticked in (True, False):
        dialog.form.quantize_box.setChecked(ticked)
        source, trained_on, _ = build_source(dialog.form.request(), 3)
        assert source.mix.quantize is ticked
        assert ("clipped to 8 bits" in trained_on) is ticked


@pytest.mark.parametrize("budget", [["--steps", "8"], ["--minutes", "2.5"]])
@pytest.mark.parametrize("start", ["", "default"])
def test_the_dialog_and_the_command_line_make_the_same_request(
        qtbot: QtBot, bridge: WorkerBridge, tmp_path: Path, budget: list[str], start: str) -> None:
    window = TrainDialog(bridge, workers=0, model_config={"widths": [4, 8]})
    qtbot.addWidget(window)
    window.form.clean_folder_edit.setText(str(tmp_path))
    window.form.noise_boxes["poisson_gaussian"].setChecked(True)
    window.form.quantize_box.setChecked(True)
    if budget[0] == "--steps":
        tiny_run(window, steps=8, validate_every=4)
    else:
        window.form.minutes_radio.setChecked(True)
        window.form.minutes_spin.setValue(2.5)
        window.form.batch_spin.setValue(4)
        window.form.patch_spin.setValue(32)
        window.form.validate_spin.setValue(4)
    window.form.start_box.setCurrentIndex(window.form.start_box.findText(start or SCRATCH))
    args = build_parser().parse_args([
        "train", "--clean", str(tmp_path), "--noise", "gaussian,poisson_gaussian", "--quantize", *budget,
        "--batch-size", "4", "--patch", "32", "--validation-every", "4", "--workers", "0", "--name", "mine",
        *(["--from", start] if start else ["--widths", "4,8"])])
    from_cli = request_from_args(args)
    assert from_cli.output == OutputSpec(name="mine")  # the dialog saves afterwards, under the name then chosen
    from_cli.output = OutputSpec()
    assert window.form.request() == from_cli
    # The rules that fill in what both leave open are the engine's, applied once for both.
    assert from_cli.learning_rate() == pytest.approx(2e-4 if start else 1e-3)
    assert from_cli.steps() == (8 if budget[0] == "--steps" else MINUTES_STEP_CAP)


def test_a_split_warning_stays_in_sight_during_the_run(dialog: TrainDialog) -> None:
    """The engine's warning that the starting model held out another split is shown in the note line, which later
    progress does not replace (the ETA line below it does change)."""
    from denoiser.progress import Progress

    warning = "default held out the validation split of seed 0, this run holds out seed 1's"
    dialog._on_progress(Progress("load", 0, 0, f"warning: {warning}", extra={"warning": warning}))
    dialog._on_progress(Progress("load", 0, 0, "Reading the photos..."))
    assert warning in dialog.note_label.text()
    assert dialog.eta_label.text() == "Reading the photos..."


def test_a_run_that_kept_its_starting_model_says_so_and_saves_a_copy(qtbot: QtBot, dialog: TrainDialog) -> None:
    """Walk 2, item 1: no step beat the starting model, yet the figures and "Save to library" read as a tuned model."""
    from denoiser.train_request import TrainConfig
    from denoiser.train_run import TrainOutcome
    from denoiser.training import TrainingResult

    model = create_model("unet", TINY_UNET)
    result = TrainingResult(model, "val_psnr", best=30.0, start=30.0, steps=10, seconds=5.0, history=[],
                            stopped_early=False, start_kept=True)
    dialog._on_train_succeeded(TrainOutcome(result, TrainConfig(start_from="mine"), "6 clean photos"))
    figures = dialog.figures_label.text()
    assert "No step beat the starting model: saving gives its weights unchanged, under a new name." in figures
    assert dialog.save_button.isEnabled() and "unchanged" in dialog.save_button.text()
    with qtbot.waitSignal(dialog.model_saved, timeout=RUN_TIMEOUT_MS):
        assert dialog.save("kept-copy")
    assert "The starting model (mine), unchanged" in load_model("kept-copy")[1].description


def test_a_minutes_budget_counts_the_time_left_from_the_budget(dialog: TrainDialog) -> None:
    """Walk 2, item 5: at 40 s of a 1-minute run the dialog said "about 6 s left" (the engine's early schedule fit)."""
    from denoiser.progress import Progress
    from denoiser.train_request import ScheduleSpec, TrainRequest

    dialog._running_request = TrainRequest(schedule=ScheduleSpec(minutes=1.0))
    dialog.progress_bar.setRange(0, 1000)
    dialog._show_progress(Progress("train", 70, 80, extra={"seconds": 40.0, "eta_s": 6.0, "loss": 0.1}))
    assert "40 s spent, about 20 s left" in dialog.eta_label.text()
    dialog._running_request = TrainRequest(schedule=ScheduleSpec(minutes=1.0, steps=75))  # the steps end it first
    dialog._show_progress(Progress("train", 70, 75, extra={"seconds": 40.0, "eta_s": 3.0, "loss": 0.1}))
    assert "about 3 s left" in dialog.eta_label.text()


def test_the_start_from_list_follows_the_library(qtbot: QtBot, bridge: WorkerBridge, tmp_path: Path) -> None:
    """Walk 2, item 8: a model deleted in the model manager stayed in "Start from", and Start said "unknown model"."""
    from denoiser.modelstore import remove_model, rename_model

    model = create_model("unet", TINY_UNET)
    for name in ("walk-clean", "other", "old-name"):
        save_to_library(model, name)
    window = TrainDialog(bridge, workers=0, model_config=TINY_UNET)
    qtbot.addWidget(window)
    form = window.form
    form.clean_folder_edit.setText(str(write_photos(tmp_path / "clean", ["a", "b"])))
    choices = lambda: [form.start_box.itemText(i) for i in range(form.start_box.count())]  # noqa: E731

    form.start_box.setCurrentText("walk-clean")
    remove_model("walk-clean")
    window.refresh_models()  # what the model manager's models_changed calls
    assert "walk-clean" not in choices() and form.start_model() == ""
    assert not window.start_button.isEnabled()
    assert "'walk-clean' is no longer in your library" in window.note_label.text()
    form.start_box.activated.emit(form.start_box.currentIndex())  # the user picks again (here: from scratch)
    assert window.start_button.isEnabled()

    form.start_box.setCurrentText("old-name")
    rename_model("old-name", "new-name")
    window.refresh_models(("old-name", "new-name"))
    assert form.start_model() == "new-name" and "old-name" not in choices()

    form.start_box.setCurrentText("other")
    remove_model("other")  # elsewhere (the command line): no refresh comes
    assert window.start() is False and not window.is_running()
    assert "'other' is no longer in your library" in window.note_label.text()
