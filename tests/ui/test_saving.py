"""What Save and Save As decide before anything is written: the proposed name, the dialog's filter and the
extension it may leave off, the quality of a lossy format, and writing over the original only when confirmed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox

import ui.saving as saving_module
from denoiser.errors import ImageWriteError
from denoiser.io import read_image
from ui.saving import SavePlan, plan_save, plan_save_as, suggested_path, write_job


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def photo(path: Path) -> Path:
    PILImage.fromarray(np.random.default_rng(0).integers(0, 256, (8, 10, 3), dtype=np.uint8)).save(path)
    return path


def dialog_answers(monkeypatch: pytest.MonkeyPatch, path: str, chosen_filter: str = "") -> dict[str, object]:
    """Replace the Save As dialog by one that answers ``path`` and ``chosen_filter``; returns what it was shown."""
    shown: dict[str, object] = {}

    def fake(parent, caption, start, filters, selected="", *rest):
        shown.update(start=start, filters=filters.split(";;"), selected=selected)
        return path, chosen_filter or selected

    monkeypatch.setattr(saving_module.QFileDialog, "getSaveFileName", staticmethod(fake))
    return shown


def never_asked(fmt: str, current: int) -> int | None:
    raise AssertionError(f"{fmt} has no quality to ask")


def test_the_proposed_name_is_new_and_beside_the_photo(tmp_path: Path) -> None:
    source = photo(tmp_path / "shot.png")
    assert suggested_path(source) == tmp_path / "shot_denoised.png"
    photo(tmp_path / "shot_denoised.png")
    assert suggested_path(source) == tmp_path / "shot_denoised-2.png"
    assert suggested_path(tmp_path / "raw.NEF").suffix == ".tif"  # never written in a camera's RAW format


def test_save_writes_beside_the_photo_at_the_remembered_quality(tmp_path: Path, settings: QSettings) -> None:
    settings.setValue("save_quality", 70)
    assert plan_save(photo(tmp_path / "a.png"), settings) == SavePlan(tmp_path / "a_denoised.png", 70)
    settings.setValue("save_quality", "hand-edited")
    assert plan_save(tmp_path / "a.png", settings).quality == saving_module.DEFAULT_SAVE_QUALITY


def test_save_as_adds_the_chosen_filters_extension_when_the_dialog_leaves_it_off(
        tmp_path: Path, settings: QSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    source = photo(tmp_path / "a.png")
    tiff = saving_module.save_filters()["TIFF"]
    shown = dialog_answers(monkeypatch, str(tmp_path / "out"), tiff)
    plan = plan_save_as(None, source, settings, never_asked)
    assert plan is not None and plan.target.name == "out.tif" and not plan.replace_original
    assert shown["selected"] == saving_module.save_filters()["PNG"]  # the proposed name's format


def test_save_as_asks_a_lossy_formats_quality_and_remembers_it(tmp_path: Path, settings: QSettings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = photo(tmp_path / "a.png")
    dialog_answers(monkeypatch, str(tmp_path / "out.webp"))
    asked: list[tuple[str, int]] = []
    plan = plan_save_as(None, source, settings, lambda fmt, current: asked.append((fmt, current)) or 60)
    assert asked == [("WEBP", saving_module.DEFAULT_SAVE_QUALITY)] and plan is not None and plan.quality == 60
    assert int(settings.value("save_quality")) == 60
    assert plan_save_as(None, source, settings, lambda fmt, current: None) is None  # cancelled: nothing written


def test_writing_over_the_original_needs_a_yes(tmp_path: Path, settings: QSettings,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    source = photo(tmp_path / "a.png")
    dialog_answers(monkeypatch, str(source))
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Yes]
    monkeypatch.setattr(saving_module.QMessageBox, "warning", staticmethod(lambda *args: answers.pop(0)))
    assert plan_save_as(None, source, settings, never_asked) is None
    plan = plan_save_as(None, source, settings, never_asked)
    assert plan == SavePlan(source, saving_module.DEFAULT_SAVE_QUALITY, replace_original=True)
    image = read_image(source)
    flat = np.full((image.height, image.width, 3), 0.5, np.float32)
    result = saving_module.result_image(image, flat, 0.0)
    assert write_job(plan, result, source)(None, None) == source
    assert np.ptp(np.asarray(PILImage.open(source))) == 0  # replaced by the (flat) result


def test_without_a_yes_the_original_is_protected(tmp_path: Path) -> None:
    source = photo(tmp_path / "a.png")
    before = source.read_bytes()
    image = read_image(source)
    result = saving_module.result_image(image, np.zeros((image.height, image.width, 3), np.float32), 0.0)
    result = dataclasses.replace(result, source=None)  # only the plan's protection is left to stop it
    with pytest.raises(ImageWriteError, match="would overwrite the input"):
        write_job(SavePlan(source, overwrite=True), result, source)(None, None)
    assert source.read_bytes() == before
