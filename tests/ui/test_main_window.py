"""The main window end to end, headless: open, denoise, view modes (the noise map too), latents, cancel, close,
bad input, settings, the strength controls and the warnings about a result."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

import ui.main_window as main_window_module
import ui.photo_jobs as photo_jobs_module
import ui.saving as saving_module
from denoiser.display import noise_map_image
from denoiser.errors import Cancelled
from denoiser.findings import Finding
from denoiser.models import create_model
from denoiser.modelstore import save_to_library
from denoiser.progress import Progress
from denoiser.strength import NoiseEstimate, Strength
from ui.main_window import MainWindow
from ui.qimage import qimage_to_array

TINY = {
    "unet": {"widths": [4, 8], "blocks": 1},
    "undercomplete": {"widths": [4, 8], "blocks": 0, "latent_channels": 6},
    "sparse": {"widths": [4, 8], "blocks": 0, "latent_channels": 24},
    "variational": {"widths": [4, 8], "blocks": 0, "latent_channels": 5},
}


@pytest.fixture
def library() -> dict[str, str]:
    """One tiny model per family in the (test-private) model library."""
    torch.manual_seed(0)
    names = {}
    for family, config in TINY.items():
        names[family] = f"tiny-{family}"
        save_to_library(create_model(family, config), names[family])
    return names


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store.setValue("model", "tiny-unet")
    return store


def noisy_photo(path: Path, seed: int = 0, size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    clean = np.stack([x * 3, y * 4, (x + y) * 2], axis=2).clip(20, 230)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(noisy).save(path)
    return path


@pytest.fixture
def window(qtbot: QtBot, settings: QSettings, library: dict[str, str]) -> Iterator[MainWindow]:
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    qtbot.waitUntil(lambda: win.model is not None, timeout=10000)
    yield win
    win.close()


def open_and_denoise(qtbot: QtBot, win: MainWindow, path: Path) -> None:
    win.open_photo(path)
    qtbot.waitUntil(lambda: win.outcome is not None and win.outcome.path == path and win.viewer.has_result(),
                    timeout=15000)


def test_open_denoise_and_every_view_mode(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    photo = noisy_photo(tmp_path / "photo.png")
    open_and_denoise(qtbot, window, photo)
    assert window.model_name == "tiny-unet"
    assert window.panel.save_button.isEnabled()
    assert "photo.png" in window.windowTitle()
    for mode in ("side", "split", "toggle", "residual", "noise"):
        window.viewer.set_mode(mode)
        assert window.viewer.mode() == mode
        assert window.mode_actions[mode].isChecked()
        assert not window.viewer.grab().toImage().isNull()
    window.viewer.set_mode("side")
    left, right = window.viewer.canvases()
    window.viewer.set_zoom(2.0)
    assert window.viewer.zoom() == pytest.approx(2.0)
    probe = window.viewer.image_to_widget(left, window.viewer.widget_to_image(right, right.rect().center()))
    assert probe == right.rect().center()  # both panes map the same image point to the same place


def test_split_divider_follows_the_setting(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    window.viewer.set_mode("split")
    window.viewer.set_split_position(0.3)
    assert window.viewer.split_position() == pytest.approx(0.3)


@pytest.mark.parametrize("family", list(TINY))
def test_latent_thumbnails_for_each_family(qtbot: QtBot, window: MainWindow, library: dict[str, str],
                                           family: str, tmp_path: Path) -> None:
    index = window.panel.model_box.findData(library[family])
    assert index >= 0
    window.panel.model_box.setCurrentIndex(index)
    qtbot.waitUntil(lambda: window.model_name == library[family], timeout=10000)
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / f"{family}.png"))
    channels = create_model(family, TINY[family]).encode(torch.zeros(1, 3, 8, 8)).shape[1]
    assert window.panel.latents.count() == 1 + min(16, channels)  # PCA colour + the channels
    if family == "variational":
        assert "mean" in window.panel.latents.caption.text()


def slow_denoise_patch(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Make the window's denoise job loop until it is told to stop (a stand-in for a 12 MP photo)."""
    started = threading.Event()

    def endless(pixels, model, sigma, visible, *, zoom=1.0, device="auto", on_progress=None, should_stop=None,
                tiles=None):
        started.set()
        while True:
            if should_stop():
                raise Cancelled()
            time.sleep(0.005)

    monkeypatch.setattr(photo_jobs_module, "denoise_visible_first", endless)
    return started


def test_cancel_keeps_the_previous_result(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    photo = noisy_photo(tmp_path / "p.png")
    open_and_denoise(qtbot, window, photo)
    previous = window.outcome
    started = slow_denoise_patch(monkeypatch)
    window.panel.auto_box.setChecked(False)
    window.panel.strength_slider.setValue(40)
    window.denoise()
    qtbot.waitUntil(started.is_set, timeout=10000)
    qtbot.waitUntil(lambda: window.cancel_button.isVisible(), timeout=5000)
    window.cancel_button.click()
    qtbot.waitUntil(lambda: not window.bridge.is_busy(), timeout=5000)
    assert window.outcome is previous
    assert "cancelled" in window.status_label.text()
    assert not window.cancel_button.isVisible()
    monkeypatch.undo()
    window.denoise()  # the window still works
    qtbot.waitUntil(lambda: window.outcome is not previous, timeout=15000)


def test_closing_during_a_job_is_clean(qtbot: QtBot, settings: QSettings, library: dict[str, str],
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.model is not None, timeout=10000)
    started = slow_denoise_patch(monkeypatch)
    win.open_photo(noisy_photo(tmp_path / "p.png"))
    qtbot.waitUntil(started.is_set, timeout=10000)  # the GUI thread must keep running to start the job
    win.close()
    assert all(not lane.isRunning() for lane in win.bridge._lanes.values())


def test_bad_file_shows_a_message_and_keeps_the_photo(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    good = noisy_photo(tmp_path / "good.png")
    open_and_denoise(qtbot, window, good)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    window.open_photo(bad)
    qtbot.waitUntil(lambda: "broken.png" in window.last_error, timeout=10000)
    assert "broken.png" in window.status_label.text()
    assert window.photo is not None and window.photo.path == good
    assert window.viewer.has_result()


def test_bad_model_keeps_the_loaded_one(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    from denoiser.modelstore import user_models_dir

    (user_models_dir() / "corrupt.safetensors").write_bytes(b"garbage")
    window.choose_model("corrupt")
    qtbot.waitUntil(lambda: "corrupt" in window.last_error, timeout=10000)
    assert window.model_name == "tiny-unet" and window.model is not None
    assert "Still using tiny-unet" in window.status_label.text()


def test_save_writes_a_new_file_and_never_the_original(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    photo = noisy_photo(tmp_path / "keep.png")
    original = photo.read_bytes()
    open_and_denoise(qtbot, window, photo)
    window.save()
    qtbot.waitUntil(lambda: (tmp_path / "keep_denoised.png").is_file(), timeout=10000)
    window.save()
    qtbot.waitUntil(lambda: (tmp_path / "keep_denoised-2.png").is_file(), timeout=10000)
    assert photo.read_bytes() == original
    saved = np.asarray(PILImage.open(tmp_path / "keep_denoised.png"))
    assert saved.shape == (48, 64, 3) and not np.array_equal(saved, np.asarray(PILImage.open(photo)))


def test_settings_are_remembered(qtbot: QtBot, settings: QSettings, library: dict[str, str], tmp_path: Path) -> None:
    first = MainWindow(settings=settings)
    qtbot.addWidget(first)
    qtbot.waitUntil(lambda: first.model is not None, timeout=10000)
    first.viewer.set_mode("split")
    first.panel.set_strength(False, 33)
    first.panel.luminance_slider.setValue(60)
    first.panel.color_slider.setValue(180)
    first.open_folder(tmp_path)
    first.close()
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    assert second.viewer.mode() == "split"
    restored = second.panel.settings()
    assert restored.strength == 33 and not restored.auto_strength
    assert (restored.luminance, restored.color, restored.amount) == (0.6, 1.8, 1.0)
    assert second.panel.strength_slider.value() == 33 and second.panel.strength_name.text() == "Sigma"
    second.panel.auto_box.setChecked(True)  # the amount has its own remembered value
    second.panel.strength_slider.setValue(140)
    assert second.settings.value("last_folder") == str(tmp_path)
    assert second.recent_menu.actions()[0].text() == str(tmp_path)
    second.close()
    third = MainWindow(settings=settings)
    qtbot.addWidget(third)
    assert third.panel.settings().strength_setting() == Strength(None, 1.4, 0.6, 1.8)
    assert third.panel.strength_slider.value() == 140 and third.panel.strength_label.text() == "140 %"
    third.close()


def test_dropping_a_folder_lists_its_photos(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    folder = tmp_path / "shoot"
    for i in range(3):
        noisy_photo(folder / f"{i}.png", seed=i)
    window.open_paths([folder])
    assert len(window.folder_pane.paths()) == 3


def test_clicking_the_open_photo_again_keeps_its_result(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    photo = noisy_photo(tmp_path / "shoot" / "a.png")
    noisy_photo(tmp_path / "shoot" / "b.png", seed=1)
    window.open_folder(photo.parent)
    window.folder_pane.select(photo)
    qtbot.waitUntil(lambda: window.outcome is not None and window.viewer.has_result(), timeout=15000)
    outcome = window.outcome
    window.folder_pane.select(photo)
    qtbot.wait(200)
    assert window.outcome is outcome and not window.bridge.is_busy()
    window.folder_pane.select(tmp_path / "shoot" / "b.png")
    qtbot.waitUntil(lambda: window.photo.path.name == "b.png", timeout=10000)


def test_clicking_a_latent_thumbnail_enlarges_it(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    grid = window.panel.latents
    item = grid.list.item(1)  # the first channel thumbnail (0 is the PCA colour image)
    grid.list.itemClicked.emit(item)
    assert grid.enlarged is not None and grid.enlarged.isVisible()
    assert item.text() in grid.enlarged.windowTitle()
    grid.enlarged.close()


def test_a_clean_reference_beside_the_photo_is_compared(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    noisy = noisy_photo(tmp_path / "shoot" / "noisy" / "a.png", seed=3)
    y, x = np.mgrid[0:48, 0:64]
    clean = np.stack([x * 3, y * 4, (x + y) * 2], axis=2).clip(20, 230).astype(np.uint8)
    (tmp_path / "shoot" / "clean").mkdir()
    PILImage.fromarray(clean).save(tmp_path / "shoot" / "clean" / "a.png")
    open_and_denoise(qtbot, window, noisy)
    label = window.panel.reference_label
    qtbot.waitUntil(lambda: "result   PSNR" in label.text(), timeout=10000)
    assert "Against a.png" in label.text() and "noisy    PSNR" in label.text() and label.isVisible()


def test_a_batch_result_opens_beside_its_input(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    source = noisy_photo(tmp_path / "in.png", seed=4)
    output = tmp_path / "out.png"
    PILImage.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(output)
    window.open_pair(source, output)
    qtbot.waitUntil(lambda: window.outcome is not None and window.viewer.has_result(), timeout=10000)
    assert window.photo.path == source
    assert np.allclose(window.outcome.denoised, 128 / 255, atol=1e-6)
    assert not window.bridge.is_busy()  # showing a saved pair does not start a denoise


def test_a_batch_result_is_shown_and_saved_as_the_batch_wrote_it(qtbot: QtBot, window: MainWindow,
                                                                 tmp_path: Path) -> None:
    """With Detail at 30 %, an opened batch result was shown (and saved again) blended with its input: up to 19
    levels from the file the status bar said was beside it."""
    window.panel.detail_slider.setValue(30)
    source = noisy_photo(tmp_path / "in.png", seed=4)
    output = tmp_path / "out.png"
    PILImage.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(output)
    window.open_pair(source, output)
    qtbot.waitUntil(lambda: window.outcome is not None and window.viewer.has_result(), timeout=10000)
    np.testing.assert_array_equal(window._result_image().pixels, np.full((48, 64, 3), 128, np.uint8))
    assert "shown as saved" in window.status_label.text()


def test_an_opened_batch_result_is_the_photo_the_pane_selects(qtbot: QtBot, window: MainWindow,
                                                              tmp_path: Path) -> None:
    """The pane kept listing the folder open before, its photo highlighted, while the title named the batch's
    photo; a click on the highlighted photo then did nothing."""
    before = noisy_photo(tmp_path / "before" / "big.png", seed=2)
    window.open_folder(before.parent)
    qtbot.waitUntil(lambda: window.outcome is not None and window.photo.path == before, timeout=10000)
    source = noisy_photo(tmp_path / "batch_in" / "in.png", seed=4)
    output = tmp_path / "batch_out" / "in_denoised.png"
    output.parent.mkdir()
    PILImage.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(output)
    window.open_pair(source, output)
    qtbot.waitUntil(lambda: window.outcome is not None and window.outcome.path == source, timeout=10000)
    assert window.folder_pane.folder() == source.parent
    assert window.folder_pane.view.currentIndex().row() == window.folder_pane.paths().index(source)
    assert window.windowTitle().startswith("in.png")
    assert window.outcome.strength is None  # still the saved result: selecting it opened nothing again
    window.folder_pane.select(before)  # the folder now listed does not hold it: nothing happens ...
    window.show_photo(before)  # ... and the photo from before opens as any photo does
    qtbot.waitUntil(lambda: window.photo.path == before, timeout=10000)


def test_a_photo_that_fails_to_open_does_not_leave_the_last_one_on_screen(qtbot: QtBot, window: MainWindow,
                                                                         tmp_path: Path) -> None:
    """Opening a folder whose first file was broken left the other folder's photo shown, titled and savable
    while the pane selected the broken file."""
    good = noisy_photo(tmp_path / "here" / "a.png", seed=1)
    open_and_denoise(qtbot, window, good)
    broken = tmp_path / "there" / "a_broken.png"
    broken.parent.mkdir()
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    window.open_folder(broken.parent)
    qtbot.waitUntil(lambda: "Could not open the photo" in window.status_label.text(), timeout=10000)
    assert window.photo is None and window.outcome is None
    assert not window.panel.save_button.isEnabled()
    assert not window.viewer.has_result()
    assert window.windowTitle() == "there \u2014 Denoiser"
    window.save()  # nothing to write, and nothing written
    assert sorted(p.name for p in good.parent.iterdir()) == ["a.png"]


def test_a_grey_photo_disables_colour_and_says_its_one_level(qtbot: QtBot, window: MainWindow,
                                                               tmp_path: Path) -> None:
    """On a grey photo the panel showed "grey 2.9: luminance 5.7, colour 3.6" and a Colour slider that changed
    the grey result."""
    grey = tmp_path / "grey.png"
    rng = np.random.default_rng(3)
    PILImage.fromarray(np.clip(120 + rng.normal(0, 15, (48, 64)), 0, 255).astype(np.uint8)).save(grey)
    open_and_denoise(qtbot, window, grey)
    assert window.panel.noise_label.text().startswith("grey ")
    assert "the model is given" in window.panel.noise_label.text()
    assert not window.panel.color_slider.isEnabled()
    colour = noisy_photo(tmp_path / "colour.png")
    open_and_denoise(qtbot, window, colour)
    assert window.panel.color_slider.isEnabled()


def test_tools_open_the_dialogs_and_new_models_reach_the_chooser(qtbot: QtBot, window: MainWindow) -> None:
    window.panel.set_strength(True, 30, amount=1.2, luminance=0.9, color=1.7)
    batch = window.open_batch_dialog()
    assert batch.isVisible()
    assert batch.auto_box.isChecked() and batch.strength_spin.value() == 30
    assert (batch.amount_spin.value(), batch.luminance_spin.value(), batch.color_spin.value()) == (120, 90, 170)
    batch.close()
    manager = window.open_model_manager()
    save_to_library(create_model("unet", TINY["unet"]), "brand-new")
    manager.models_changed.emit()
    assert window.panel.model_box.findData("brand-new") >= 0
    manager.close()
    trainer = window.open_train_dialog()
    save_to_library(create_model("unet", TINY["unet"]), "trained-here")
    trainer.model_saved.emit("trained-here")
    assert window.panel.model_box.findData("trained-here") >= 0
    trainer.close()


def test_the_noise_label_shows_what_auto_found(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    estimate = window.photo.estimate
    label = window.panel.noise_label.text()
    assert label.startswith(estimate.summary()) and label.startswith("luminance ") and ", colour " in label
    assert label.endswith(" (PCA)") == (estimate.method == "pca")
    window.panel.set_noise_estimate(NoiseEstimate(np.array([[[3.2, 7.5]]], np.float32), "pca"))
    assert window.panel.noise_label.text() == "luminance 3.2, colour 7.5 (PCA)"
    window.panel.set_noise_estimate(NoiseEstimate(np.array([[[3.2, 7.5]]], np.float32), "network"))
    assert window.panel.noise_label.text() == "luminance 3.2, colour 7.5"
    window.panel.set_noise_estimate(None)
    assert window.panel.noise_label.text() == "-"


def test_strength_controls_reach_the_settings(qtbot: QtBot, window: MainWindow) -> None:
    panel = window.panel
    assert panel.settings().strength_setting() == Strength()  # auto at 100 %, both amounts 100 %
    assert (panel.strength_name.text(), panel.strength_slider.maximum(), panel.strength_label.text()) == (
        "Amount", 200, "100 %")
    panel.strength_slider.setValue(150)
    panel.luminance_slider.setValue(50)
    panel.color_slider.setValue(200)
    settings = panel.settings()
    assert (settings.auto_strength, settings.amount, settings.luminance, settings.color) == (True, 1.5, 0.5, 2.0)
    assert settings.strength_setting() == Strength(None, 1.5, 0.5, 2.0)
    panel.auto_box.setChecked(False)  # the slider becomes the fixed sigma, its own value kept apart
    assert (panel.strength_name.text(), panel.strength_slider.maximum(), panel.strength_slider.value()) == (
        "Sigma", 75, 25)
    panel.strength_slider.setValue(40)
    assert panel.settings().strength_setting() == Strength(40.0, 1.0, 0.5, 2.0)
    assert panel.settings().amount == 1.5
    panel.auto_box.setChecked(True)
    assert panel.strength_slider.value() == 150 and panel.settings().strength == 40


def test_changing_the_colour_amount_redenoises(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    first = window.outcome
    assert first.strength == Strength() and first.levels is not None
    window.panel.color_slider.setFocus()
    qtbot.keyClick(window.panel.color_slider, Qt.Key.Key_PageUp)  # +10 %, as a user would; re-denoises once still
    assert window.panel.color_label.text() == "110 %"
    qtbot.waitUntil(lambda: window.outcome is not first, timeout=15000)
    assert window.outcome.strength == Strength(None, 1.0, 1.0, 1.1)
    np.testing.assert_allclose(window.outcome.levels[..., 1], first.levels[..., 1] * 1.1, rtol=1e-5)
    assert not np.array_equal(window.outcome.denoised, first.denoised)
    assert "colour 110 %" in window.status_label.text()
    # A drag re-denoises on release, not on every step.
    second = window.outcome
    slider = window.panel.color_slider
    slider.setSliderDown(True)  # pressed on the handle
    slider.setSliderPosition(150)  # dragged (tracking: the value follows)
    assert window.panel.settings().color == 1.5
    qtbot.wait(400)
    assert window.outcome is second and not window.bridge.is_busy()
    slider.setSliderDown(False)  # released
    qtbot.waitUntil(lambda: window.outcome is not second, timeout=15000)
    assert window.outcome.strength.color == 1.5


def test_the_noise_map_mode_shows_what_auto_found(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    window.mode_actions["noise"].trigger()
    assert window.viewer.mode() == "noise" and window.mode_actions["noise"].isChecked()
    qtbot.waitUntil(lambda: window.viewer.noise_map() is not None, timeout=10000)
    (canvas,) = window.viewer.canvases()
    shown = canvas.image()
    assert shown is window.viewer.noise_map() and (shown.width(), shown.height()) == (64, 48)
    expected = noise_map_image(window.photo.estimate.levels, (48, 64))
    assert np.array_equal(qimage_to_array(shown), expected)
    assert "Noise map" in canvas.labels()[0]
    assert any(line.startswith("luminance sigma") for line in canvas.legend())
    assert "colour sigma" in canvas.toolTip()
    assert not window.viewer.grab().toImage().isNull()
    # A new photo opened in noise map mode gets its own map.
    other = noisy_photo(tmp_path / "wide.png", seed=2, size=(80, 40))
    window.open_photo(other)
    qtbot.waitUntil(lambda: window.viewer.noise_map() is not None and window.viewer.noise_map().width() == 80,
                    timeout=15000)
    assert window.viewer.noise_map().height() == 40


def test_warnings_show_in_the_panel_and_go_with_a_clean_result(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    finding = Finding("detail_removed", "Some of what was removed is picture detail.", "Lower the strength.")
    calls = []

    def fake_assess(original, denoised, estimate):
        calls.append((original.shape, denoised.shape, estimate))
        return [finding]

    monkeypatch.setattr(photo_jobs_module, "assess", fake_assess)
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    assert calls and calls[-1][0] == calls[-1][1] == (48, 64, 3) and calls[-1][2] is window.photo.estimate
    warnings = window.panel.warnings_label
    assert window.outcome.findings == [finding]
    assert warnings.isVisibleTo(window.panel)
    assert finding.message in warnings.text() and finding.advice in warnings.text()
    assert "1 warning: see the side panel" in window.status_label.text()
    monkeypatch.setattr(photo_jobs_module, "assess", lambda original, denoised, estimate: [])
    previous = window.outcome
    window.denoise()
    qtbot.waitUntil(lambda: window.outcome is not previous, timeout=15000)
    assert not warnings.isVisibleTo(window.panel) and window.outcome.findings == []
    assert "warning" not in window.status_label.text()


def test_the_real_assessment_runs_in_the_denoise_job(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "p.png"))
    assert isinstance(window.outcome.findings, list)
    assert all(isinstance(f, Finding) for f in window.outcome.findings)
    assert window.panel.warnings_label.isVisibleTo(window.panel) == bool(window.outcome.findings)


def test_quality_passes_redenoise_and_are_remembered(qtbot: QtBot, window: MainWindow, settings: QSettings,
                                                     tmp_path: Path) -> None:
    from denoiser.inference import TileSettings, denoise_array

    photo = noisy_photo(tmp_path / "p.png")
    open_and_denoise(qtbot, window, photo)
    single = window.outcome.denoised
    window.panel.quality_box.setCurrentIndex(window.panel.quality_box.findData(8))  # re-denoises on its own
    qtbot.waitUntil(lambda: window.outcome is not None and not np.array_equal(window.outcome.denoised, single),
                    timeout=15000)
    pixels = window.photo.image.color_pixels()
    expected = denoise_array(pixels, window.model, window.outcome.levels, tiles=TileSettings(passes=8),
                             device="cpu")
    np.testing.assert_allclose(window.outcome.denoised, np.clip(expected, 0, 1), atol=1e-5)
    window.save_settings()
    assert int(settings.value("passes")) == 8


# --- issue 14: the app as a new user meets it ------------------------------------------------------------------


def shown_result(win: MainWindow) -> np.ndarray | None:
    """The denoised image the viewer shows in side-by-side mode (None: only the original is shown)."""
    win.viewer.set_mode("side")
    canvas = win.viewer.canvases()[-1]
    return qimage_to_array(canvas.image()) if win.viewer.has_result() else None


def previewing_denoise_patch(monkeypatch: pytest.MonkeyPatch, value: float = 0.5) -> threading.Event:
    """A denoise job that shows a preview (a flat grey image, unlike any real result) and then runs until it is
    cancelled: a large photo's full pass, stopped by Esc."""
    started = threading.Event()

    def previewing(pixels, model, sigma, visible, *, zoom=1.0, device="auto", on_progress=None, should_stop=None,
                   tiles=None):
        on_progress(Progress("preview", 0, 0, extra={"preview": np.full(pixels.shape, value, np.float32)}))
        started.set()
        while True:
            if should_stop():
                raise Cancelled()
            time.sleep(0.005)

    monkeypatch.setattr(photo_jobs_module, "denoise_visible_first", previewing)
    return started


def wait_idle(qtbot: QtBot, win: MainWindow) -> None:
    qtbot.waitUntil(lambda: not any(win.bridge.is_busy(lane) for lane in ("model", "display", "io")), timeout=10000)


def test_after_a_cancel_the_viewer_shows_what_save_writes(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    photo = noisy_photo(tmp_path / "p.png")
    open_and_denoise(qtbot, window, photo)
    previous = window.outcome
    started = previewing_denoise_patch(monkeypatch)
    window.panel.auto_box.setChecked(False)  # a new strength: a new denoise, which shows its preview first
    qtbot.waitUntil(started.is_set, timeout=10000)
    qtbot.waitUntil(lambda: shown_result(window) is not None and np.ptp(shown_result(window)) == 0, timeout=10000)
    window.cancel_action.trigger()  # Esc
    wait_idle(qtbot, window)
    assert window.outcome is previous
    said = window.status_label.text()
    window.save()
    saved_path = tmp_path / "p_denoised.png"
    qtbot.waitUntil(saved_path.is_file, timeout=10000)
    saved = np.asarray(PILImage.open(saved_path))
    np.testing.assert_array_equal(shown_result(window), saved)  # on screen is exactly what Save wrote
    assert "cancelled" in said and "Save writes it" in said


def test_a_cancelled_first_denoise_leaves_no_preview_on_screen(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    started = previewing_denoise_patch(monkeypatch)
    window.open_photo(noisy_photo(tmp_path / "p.png"))
    qtbot.waitUntil(started.is_set, timeout=10000)
    qtbot.waitUntil(window.viewer.has_result, timeout=10000)  # the preview
    window.cancel_action.trigger()
    wait_idle(qtbot, window)
    assert window.outcome is None and not window.panel.save_button.isEnabled()
    assert not window.viewer.has_result()  # nothing shown that Save could not write
    assert "no result to save" in window.status_label.text()


def test_renaming_the_model_in_use_keeps_it_chosen_under_its_new_name(qtbot: QtBot, window: MainWindow,
                                                                      settings: QSettings) -> None:
    assert window.model_name == "tiny-unet" and window.panel.model_name() == "tiny-unet"
    manager = window.open_model_manager()
    assert manager.rename("tiny-unet", "my-unet")
    assert window.panel.model_name() == "my-unet"  # the chooser follows the rename
    assert window.model_name == "my-unet"
    assert settings.value("model") == "my-unet"
    window.save_settings()
    assert settings.value("model") == "my-unet"
    assert not window.bridge.is_busy("model", "model")  # the same weights: nothing to load again
    manager.close()


def test_deleting_the_model_in_use_loads_the_one_the_chooser_shows(qtbot: QtBot, window: MainWindow) -> None:
    manager = window.open_model_manager()
    manager.confirm = lambda *_args: True  # type: ignore[method-assign]
    assert manager.delete("tiny-unet")
    chosen = window.panel.model_name()
    assert chosen != "tiny-unet"
    qtbot.waitUntil(lambda: window.model_name == chosen, timeout=10000)
    # said, and not hidden by "Model ... ready": the model deleted was the one in use
    assert window.status_label.text().startswith("The model 'tiny-unet' is no longer in your library")
    manager.close()


def test_a_batch_result_shows_no_empty_latent_tile(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    source = noisy_photo(tmp_path / "in.png", seed=4)
    output = tmp_path / "out.png"
    PILImage.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(output)
    window.open_pair(source, output)
    qtbot.waitUntil(lambda: window.outcome is not None and window.viewer.has_result(), timeout=10000)
    assert window.panel.latents.count() == 0  # no black "PCA" tile of latents nobody computed
    assert "not shown" in window.panel.latents.caption.text()


def test_open_photo_from_another_folder_lists_that_folder(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    here = [noisy_photo(tmp_path / "here" / f"{name}.png", seed=i) for i, name in enumerate("ab")]
    there = noisy_photo(tmp_path / "there" / "c.png", seed=5)
    window.open_folder(here[0].parent)
    window.folder_pane.select(here[0])
    qtbot.waitUntil(lambda: window.photo is not None and window.photo.path == here[0], timeout=10000)
    monkeypatch.setattr(main_window_module.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *args, **kwargs: (str(there), "")))
    window.open_photo_dialog()
    qtbot.waitUntil(lambda: window.photo.path == there, timeout=10000)
    assert window.folder_pane.folder() == there.parent  # the pane follows the photo ...
    assert window.folder_pane.paths() == [there]  # ... and the first folder's list was not added to
    assert window.windowTitle() == "c.png \u2014 there \u2014 Denoiser"
    window.open_folder(here[0].parent)
    assert window.folder_pane.paths() == here


def test_save_as_proposes_the_photos_format_and_asks_its_quality(qtbot: QtBot, window: MainWindow,
                                                                 settings: QSettings, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    photo = noisy_photo(tmp_path / "shot.jpg")
    open_and_denoise(qtbot, window, photo)
    asked: dict[str, object] = {}

    def fake_save_dialog(parent, caption, start, filters, selected="", *rest):
        asked.update(start=start, filters=filters.split(";;"), selected=selected)
        return str(tmp_path / "out.jpg"), selected

    written: list[int] = []
    real_write = saving_module.write_image

    def recording_write(target, image, **kwargs):
        written.append(kwargs.get("quality", 95))
        return real_write(target, image, **kwargs)

    monkeypatch.setattr(main_window_module.QFileDialog, "getSaveFileName", staticmethod(fake_save_dialog))
    monkeypatch.setattr(saving_module, "write_image", recording_write)
    window.ask_quality = lambda fmt, current: 70  # type: ignore[method-assign]
    window.save_as()
    assert Path(str(asked["start"])).suffix == ".jpg"
    assert asked["selected"] == "JPEG (*.jpg *.JPG *.jpeg *.JPEG)" and asked["selected"] in asked["filters"]
    qtbot.waitUntil((tmp_path / "out.jpg").is_file, timeout=10000)
    assert written == [70] and int(settings.value("save_quality")) == 70
    assert PILImage.open(tmp_path / "out.jpg").format == "JPEG"
    window.save()  # Save writes JPEGs at the remembered quality too
    qtbot.waitUntil((tmp_path / "shot_denoised.jpg").is_file, timeout=10000)
    assert written == [70, 70]
    # A PNG photo proposes the PNG filter; PNG asks no quality.
    window.ask_quality = lambda fmt, current: pytest.fail("PNG has no quality")  # type: ignore[method-assign]
    open_and_denoise(qtbot, window, noisy_photo(tmp_path / "flat.png"))
    monkeypatch.setattr(main_window_module.QFileDialog, "getSaveFileName",
                        staticmethod(lambda parent, caption, start, filters, selected="", *rest:
                                     (asked.update(selected=selected) or "", "")))
    window.save_as()
    assert asked["selected"] == "PNG (*.png *.PNG)"


def test_side_panel_texts_wrap_unclipped_with_the_full_text_in_a_tooltip(qtbot: QtBot, window: MainWindow) -> None:
    from PySide6.QtWidgets import QLabel

    note = ("unet; 432 clean photos (CBSD432) with synthetic noise, and 61 real camera noisy/clean pairs (PolyU); "
            "13 photos and 7 pairs held out")
    findings = [Finding("beyond_range", "The noise here (sigma up to 80) is beyond what the model was trained on "
                        "(sigma up to 75): some noise will stay and artefacts are likely.",
                        "Try a model trained on noise this strong, or denoise a downscaled copy."),
                Finding("detail_removed", "Some of what was removed is picture detail, not noise (the residual "
                        "follows the edges: correlation 0.31).",
                        "Lower the strength or the luminance amount, and check the residual view.")]
    window.panel.set_model_note(note)
    window.panel.set_findings(findings)
    for size in ((1280, 800), (1024, 600)):
        window.resize(*size)
        qtbot.wait(50)
        for label in window.panel.findChildren(QLabel):
            if not label.isVisibleTo(window.panel) or not label.text():
                continue
            needed = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
            assert label.height() >= needed, (size, label.text()[:40], label.height(), needed)
            assert label.width() >= label.minimumSizeHint().width(), (size, label.text()[:40])
    assert window.panel.model_note.toolTip() == note  # shortened on the panel, whole in the tooltip
    assert all(finding.text() in window.panel.warnings_label.toolTip() for finding in findings)


def test_a_photo_too_small_to_measure_says_its_strength_was_assumed(qtbot: QtBot, window: MainWindow,
                                                                    tmp_path: Path) -> None:
    tiny = tmp_path / "icon.png"
    PILImage.fromarray(np.full((3, 5, 3), 128, np.uint8)).save(tiny)
    open_and_denoise(qtbot, window, tiny)
    assert "strength_assumed" in [f.code for f in window.outcome.findings]
    assert window.panel.warnings_label.isVisibleTo(window.panel)


def test_a_file_given_that_cannot_open_is_named_and_the_last_folder_stays_shut(
        qtbot: QtBot, settings: QSettings, library: dict[str, str], tmp_path: Path) -> None:
    """`denoiser-gui nope.jpg`: "Nothing to open in what was dropped", then the last folder reopened and its first
    photo denoised over the message within seconds; beside a good photo, the missing one went unsaid."""
    last = noisy_photo(tmp_path / "last" / "old.png")
    settings.setValue("last_folder", str(last.parent))
    win = MainWindow(settings=settings)
    qtbot.addWidget(win)
    win.show()
    win.open_paths([tmp_path / "nope.jpg"])  # as ui.app does before the event loop runs
    qtbot.wait(300)  # the remembered folder would reopen on the loop's first turn
    qtbot.waitUntil(lambda: win.model is not None, timeout=10000)
    assert win.folder_pane.folder() is None and win.photo is None
    assert win.status_label.text() == "Could not open nope.jpg (not found)."  # "Model ready" did not replace it
    good = noisy_photo(tmp_path / "here" / "good.png")
    (tmp_path / "here" / "notes.txt").write_text("not a photo")
    win.open_paths([tmp_path / "gone.png", good, tmp_path / "here" / "notes.txt"])
    assert "gone.png (not found); notes.txt (not a supported photo)" in win.status_label.text()
    qtbot.waitUntil(lambda: win.photo is not None and win.photo.path == good, timeout=10000)
    win.close()


def test_a_note_in_passing_never_hides_an_error(window: MainWindow) -> None:
    window.say("Could not open the photo: broken.jpg: not an image file", error=True)
    window.status.note("Model default ready.")
    assert window.status_label.text().startswith("Could not open the photo")
    window.say("Denoised a.png.")
    window.status.note("Model default ready.")
    assert window.status_label.text() == "Model default ready."
