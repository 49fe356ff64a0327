"""The batch dialog, headless: run a folder with a bad file in it, cancel and resume, open a result, confirm."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

import denoiser.batch.single as batch_single
from denoiser.batch.manifest import LOCK_NAME
from denoiser.errors import Cancelled
from denoiser.models import create_model
from denoiser.modelstore import save_to_library
from ui.batch_dialog import BatchDialog, cancelled_text, eta_text
from ui.worker import WorkerBridge

TIMEOUT_MS = 20000


@pytest.fixture
def model_name() -> str:
    torch.manual_seed(0)
    save_to_library(create_model("unet", {"widths": [4, 8], "blocks": 1}), "tiny")
    return "tiny"


@pytest.fixture
def dialog(qtbot: QtBot, bridge: WorkerBridge, model_name: str) -> Iterator[BatchDialog]:
    dlg = BatchDialog(bridge, [model_name, "other"], model_name, devices=["auto", "cpu"])
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    if dlg.is_running():  # never leave a job behind for the next test
        dlg.cancel()
        qtbot.waitUntil(lambda: not dlg.is_running(), timeout=TIMEOUT_MS)


def photos(folder: Path, count: int = 3) -> list[Path]:
    """``count`` small noisy photos and one corrupt file (``broken.png``, first by name)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        rng = np.random.default_rng(i)
        PILImage.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
        made.append(folder / f"p{i}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing after")
    return made


def fill(dlg: BatchDialog, source: Path, target: Path) -> None:
    dlg.input_edit.setText(str(source))
    dlg.output_edit.setText(str(target))
    dlg.auto_box.setChecked(False)
    dlg.strength_spin.setValue(20)
    dlg.device_box.setCurrentIndex(dlg.device_box.findData("cpu"))


def column(dlg: BatchDialog, index: int) -> list[str]:
    table = dlg.results_table
    return [table.item(row, index).text() for row in range(table.rowCount())]


def run_to_the_end(qtbot: QtBot, dlg: BatchDialog) -> None:
    assert dlg.start()
    assert dlg.is_running()
    qtbot.waitUntil(lambda: not dlg.is_running(), timeout=TIMEOUT_MS)


def test_a_folder_with_a_bad_file_gives_done_and_failed_rows(qtbot: QtBot, dialog: BatchDialog,
                                                             tmp_path: Path) -> None:
    photos(tmp_path / "in")
    out = tmp_path / "out"
    fill(dialog, tmp_path / "in", out)
    with qtbot.waitSignal(dialog.batch_finished, timeout=TIMEOUT_MS) as finished:
        assert dialog.start()
        assert not dialog.form.isEnabled() and dialog.cancel_button.isEnabled()
    report = finished.args[0]
    assert not dialog.is_running() and dialog.form.isEnabled()
    assert column(dialog, 0) == ["broken.png", "p0.png", "p1.png", "p2.png"]
    assert column(dialog, 1) == ["failed", "done", "done", "done"]
    assert "broken.png" in column(dialog, 4)[0]
    assert column(dialog, 2)[1:] == ["20.0"] * 3
    assert (report.done, report.failed) == (3, 1)
    assert sorted(p.name for p in out.glob("*.png")) == ["p0_denoised.png", "p1_denoised.png", "p2_denoised.png"]
    assert (out / "denoiser-manifest.json").is_file()
    assert dialog.overall_bar.value() == dialog.overall_bar.maximum() == 4
    assert "3 denoised, 1 failed" in dialog.last_message


def test_cancel_mid_run_then_start_again_completes(qtbot: QtBot, dialog: BatchDialog, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    photos(tmp_path / "in")
    out = tmp_path / "out"
    fill(dialog, tmp_path / "in", out)
    real, calls, stuck = batch_single.denoise_array, {"n": 0}, threading.Event()

    def stuck_on_the_second_photo(pixels, model, sigma, *, should_stop=None, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            return real(pixels, model, sigma, should_stop=should_stop, **kwargs)
        stuck.set()  # a stand-in for a 40-megapixel photo: runs until told to stop
        while True:
            if should_stop():
                raise Cancelled()
            time.sleep(0.005)

    monkeypatch.setattr(batch_single, "denoise_array", stuck_on_the_second_photo)
    assert dialog.start()
    qtbot.waitUntil(stuck.is_set, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: dialog.results_table.rowCount() == 2 and dialog.file_label.text() == "p1.png",
                    timeout=TIMEOUT_MS)
    assert dialog.overall_bar.value() == 2
    assert "left" in dialog.eta_label.text()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=TIMEOUT_MS)
    assert dialog.last_message.startswith("Cancelled: 1 photo denoised, its file is complete; the photo in "
                                          "progress was not written.")
    assert dialog.file_bar.value() == -1  # reset, not left at the abandoned photo's last percentage
    assert column(dialog, 1) == ["failed", "done"]
    assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME, "denoiser-manifest.json", "p0_denoised.png"]

    monkeypatch.setattr(batch_single, "denoise_array", real)
    run_to_the_end(qtbot, dialog)
    assert column(dialog, 1) == ["failed", "done (before)", "done", "done"]
    assert sorted(p.name for p in out.glob("*.png")) == ["p0_denoised.png", "p1_denoised.png", "p2_denoised.png"]


def test_double_clicking_a_done_row_opens_the_pair(qtbot: QtBot, dialog: BatchDialog, tmp_path: Path) -> None:
    made = photos(tmp_path / "in", count=1)
    out = tmp_path / "out"
    fill(dialog, tmp_path / "in", out)
    run_to_the_end(qtbot, dialog)
    table = dialog.results_table
    opened: list[tuple[Path, Path]] = []
    dialog.open_pair.connect(lambda source, result: opened.append((source, result)))

    def double_click(row: int) -> None:
        rect = table.visualItemRect(table.item(row, 0))
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    double_click(0)  # the failed row: nothing to open
    assert opened == []
    with qtbot.waitSignal(dialog.open_pair, timeout=2000) as signal:
        double_click(1)
    assert signal.args == [made[0], out / "p0_denoised.png"]


def test_overwrite_asks_once_before_starting(qtbot: QtBot, dialog: BatchDialog, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    photos(tmp_path / "in", count=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p0_denoised.png").write_bytes(b"old")
    fill(dialog, tmp_path / "in", out)
    dialog.collision_box.setCurrentIndex(dialog.collision_box.findData("overwrite"))
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    asked: list[str] = []

    def question(parent, title, text, *args):
        asked.append(title)
        return answers[len(asked) - 1]

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    assert not dialog.start() and not dialog.is_running()
    assert (out / "p0_denoised.png").read_bytes() == b"old"
    run_to_the_end(qtbot, dialog)
    assert len(asked) == 2  # once per Start, never per file
    assert (out / "p0_denoised.png").read_bytes() != b"old"
    assert column(dialog, 1) == ["failed", "done"]


def test_start_refuses_incomplete_fields(dialog: BatchDialog, tmp_path: Path) -> None:
    assert not dialog.start() and "folder of photos" in dialog.last_message
    dialog.input_edit.setText(str(tmp_path / "missing"))
    assert not dialog.start() and "not a folder" in dialog.last_message
    dialog.input_edit.setText(str(tmp_path))
    assert not dialog.start() and "results" in dialog.last_message
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.pattern_edit.setText("{name}")
    assert not dialog.start() and "pattern" in dialog.last_message
    assert not dialog.is_running()


def test_fields_reach_the_engine_settings(dialog: BatchDialog, tmp_path: Path) -> None:
    fill(dialog, tmp_path, tmp_path / "out")
    dialog.recursive_box.setChecked(False)
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("tiff16"))
    assert not dialog.quality_spin.isEnabled()
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("jpeg"))
    assert dialog.quality_spin.isEnabled()
    dialog.quality_spin.setValue(80)
    dialog.metadata_box.setChecked(False)
    dialog.collision_box.setCurrentIndex(dialog.collision_box.findData("skip"))
    dialog.pattern_edit.setText("{stem}-clean")
    settings = dialog.settings()
    assert (settings.recursive, settings.format, settings.quality, settings.keep_metadata) == (False, "jpeg", 80, False)
    assert (settings.collision, settings.pattern, settings.strength, settings.device) == ("skip", "{stem}-clean", 20.0,
                                                                                         "cpu")
    assert settings.inputs == [tmp_path] and settings.output == tmp_path / "out"
    assert (settings.amount, settings.luminance, settings.color) == (1.0, 1.0, 1.0)
    assert not dialog.amount_spin.isEnabled() and dialog.strength_spin.isEnabled()
    dialog.auto_box.setChecked(True)
    assert dialog.settings().strength is None and not dialog.strength_spin.isEnabled()
    assert dialog.amount_spin.isEnabled()
    assert dialog.model_name() == "tiny"


def test_strength_amounts_reach_the_batch_settings(dialog: BatchDialog, tmp_path: Path) -> None:
    fill(dialog, tmp_path, tmp_path / "out")
    dialog.luminance_spin.setValue(70)
    dialog.color_spin.setValue(160)
    settings = dialog.settings()
    assert (settings.strength, settings.amount, settings.luminance, settings.color) == (20.0, 1.0, 0.7, 1.6)
    dialog.auto_box.setChecked(True)
    dialog.amount_spin.setValue(130)
    settings = dialog.settings()
    assert (settings.strength, settings.amount, settings.luminance, settings.color) == (None, 1.3, 0.7, 1.6)
    assert settings.strength_setting().describe() == "auto 130 % (luminance 70 %, colour 160 %)"
    assert dialog.amount_spin.maximum() == dialog.luminance_spin.maximum() == dialog.color_spin.maximum() == 200


def test_the_batch_starts_from_the_windows_strength(qtbot: QtBot, bridge: WorkerBridge, model_name: str,
                                                    tmp_path: Path) -> None:
    dlg = BatchDialog(bridge, [model_name], model_name, devices=["cpu"])
    qtbot.addWidget(dlg)
    dlg.set_strength(False, 12.0, amount=1.5, luminance=0.8, color=1.2)
    dlg.input_edit.setText(str(tmp_path))
    dlg.output_edit.setText(str(tmp_path / "out"))
    settings = dlg.settings()
    assert (settings.strength, settings.amount, settings.luminance, settings.color) == (12.0, 1.0, 0.8, 1.2)
    assert dlg.amount_spin.value() == 150 and not dlg.amount_spin.isEnabled()
    dlg.auto_box.setChecked(True)
    assert (dlg.settings().strength, dlg.settings().amount) == (None, 1.5)


def test_a_batch_with_colour_amounts_runs(qtbot: QtBot, dialog: BatchDialog, tmp_path: Path) -> None:
    made = photos(tmp_path / "in", count=1)
    fill(dialog, tmp_path / "in", tmp_path / "out")
    dialog.auto_box.setChecked(True)
    dialog.color_spin.setValue(150)
    run_to_the_end(qtbot, dialog)
    done = [r for r in dialog.results() if r.status == "done"]
    assert [r.source for r in done] == made and done[0].output.is_file()


def test_eta_text() -> None:
    assert eta_text(None).startswith("estimating")
    assert eta_text(12.4) == "about 12 s left"
    assert eta_text(75) == "about 1 min 15 s left"
    assert eta_text(3 * 3600 + 120) == "about 3 h 02 min left"


def test_passes_start_from_the_window_and_reach_the_batch(qtbot: QtBot, bridge: WorkerBridge, model_name: str,
                                                          tmp_path: Path) -> None:
    dlg = BatchDialog(bridge, [model_name], model_name, devices=["cpu"], passes=2)
    qtbot.addWidget(dlg)
    fill(dlg, tmp_path / "in", tmp_path / "out")
    (tmp_path / "in").mkdir()
    assert dlg.passes_box.currentData() == 2 and dlg.settings().tiles.passes == 2
    dlg.passes_box.setCurrentIndex(dlg.passes_box.findData(8))
    assert dlg.settings().tiles.passes == 8


@pytest.mark.parametrize("yes", [True, False])
def test_a_rerun_with_other_settings_asks_before_denoising_again(qtbot: QtBot, dialog: BatchDialog, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, yes: bool) -> None:
    """Issue 13, finding 2: the dialog redid every photo done before with other settings without a word."""
    photos(tmp_path / "in", count=2)
    out = tmp_path / "out"
    fill(dialog, tmp_path / "in", out)
    run_to_the_end(qtbot, dialog)
    asked: list[list[str]] = []

    def answer(changed: object) -> bool:
        asked.append(list(changed.differences))  # type: ignore[attr-defined]
        return yes

    monkeypatch.setattr(dialog, "_confirm_redo", answer)
    dialog.strength_spin.setValue(30)
    assert dialog.start()
    qtbot.waitUntil(lambda: bool(asked) and not dialog.is_running(), timeout=TIMEOUT_MS)
    assert asked == [["strength 20.0 (now 30.0)"]]
    expected = 4 if yes else 2
    qtbot.waitUntil(lambda: len(list(out.glob("*.png"))) == expected and not dialog.is_running(), timeout=TIMEOUT_MS)
    if not yes:
        assert "Not started" in dialog.last_message


def test_browsing_for_the_input_offers_a_sibling_output_folder(dialog: BatchDialog, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Browse... for the input fills an empty output with a sibling folder (results never mix with the photos);
    an output already typed stays. Browse... for the output fills the output alone."""
    from PySide6.QtWidgets import QFileDialog, QPushButton

    chosen = {"folder": str(tmp_path / "shoot")}
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: chosen["folder"])
    input_browse, output_browse = (row.findChild(QPushButton) for row in
                                   (dialog.input_edit.parentWidget(), dialog.output_edit.parentWidget()))
    input_browse.click()
    assert dialog.input_edit.text() == str(tmp_path / "shoot")
    assert dialog.output_edit.text() == str(tmp_path / "shoot_denoised")
    dialog.output_edit.setText(str(tmp_path / "mine"))
    chosen["folder"] = str(tmp_path / "other")
    input_browse.click()
    assert (dialog.input_edit.text(), dialog.output_edit.text()) == (str(tmp_path / "other"), str(tmp_path / "mine"))
    chosen["folder"] = str(tmp_path / "results")
    output_browse.click()
    assert (dialog.input_edit.text(), dialog.output_edit.text()) == (str(tmp_path / "other"), str(tmp_path / "results"))


def test_a_cancel_before_any_photo_was_done_says_so() -> None:
    """It once read "Cancelled after 0 denoised; their files are complete"."""
    assert cancelled_text(0).startswith("Cancelled: nothing was denoised in this run;")
    assert "3 photos denoised, their files are complete" in cancelled_text(3)
