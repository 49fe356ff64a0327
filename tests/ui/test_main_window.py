"""The main window end to end, headless: open, denoise, view modes, latents, cancel, close, bad input, settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

import ui.main_window as main_window_module
from denoiser.errors import Cancelled
from denoiser.models import create_model
from denoiser.modelstore import save_to_library
from ui.main_window import MainWindow

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
    for mode in ("side", "split", "toggle", "residual"):
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

    monkeypatch.setattr(main_window_module, "denoise_visible_first", endless)
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
    first.open_folder(tmp_path)
    first.close()
    second = MainWindow(settings=settings)
    qtbot.addWidget(second)
    assert second.viewer.mode() == "split"
    assert second.panel.settings().strength == 33 and not second.panel.settings().auto_strength
    assert second.settings.value("last_folder") == str(tmp_path)
    assert second.recent_menu.actions()[0].text() == str(tmp_path)
    second.close()


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


def test_tools_open_the_dialogs_and_new_models_reach_the_chooser(qtbot: QtBot, window: MainWindow) -> None:
    batch = window.open_batch_dialog()
    assert batch.isVisible()
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


def test_a_very_low_noise_estimate_says_how_to_raise_the_strength(qtbot: QtBot, window: MainWindow) -> None:
    window.panel.set_noise_estimate(0.3)
    assert window.panel.noise_hint.isVisibleTo(window.panel) and "raise the strength" in window.panel.noise_hint.text()
    window.panel.set_noise_estimate(12.0)
    assert not window.panel.noise_hint.isVisibleTo(window.panel)


def camera_photo(path: Path, size: tuple[int, int] = (96, 80)) -> Path:
    """A smooth scene with noise correlated over a few pixels, as a camera's processing leaves it."""
    import cv2

    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    clean = np.stack([x * 2 + 30, y * 2 + 20, (x + y) + 40], axis=2).astype(np.float64)
    noise = cv2.GaussianBlur(np.random.default_rng(3).normal(0, 1, clean.shape), (0, 0), 1.2)
    PILImage.fromarray(np.clip(np.round(clean + noise * 4 / noise.std()), 0, 255).astype(np.uint8)).save(path)
    return path


def test_auto_uses_the_models_camera_strength_on_camera_noise(qtbot: QtBot, window: MainWindow,
                                                               tmp_path: Path) -> None:
    from denoiser.modelstore import ModelInfo

    info = ModelInfo("camera-aware", "unet", {}, auto={"camera_strength": 14.0})
    save_to_library(create_model("unet", TINY["unet"]), "camera-aware", info)
    photo = camera_photo(tmp_path / "iso3200.png")
    open_and_denoise(qtbot, window, photo)  # tiny-unet has no camera strength: auto is the plain estimate
    assert window.outcome.sigma == pytest.approx(window.photo.sigma) and window.photo.sigma < 3
    assert "camera" not in window.panel.noise_label.text()
    window.refresh_models()
    window.choose_model("camera-aware")
    qtbot.waitUntil(lambda: window.model_name == "camera-aware", timeout=10000)
    assert "camera noise: auto 14.0" in window.panel.noise_label.text()
    assert not window.panel.noise_hint.isVisibleTo(window.panel) and window.panel.strength_slider.value() == 14
    window.denoise()
    qtbot.waitUntil(lambda: window.outcome is not None and window.outcome.sigma == pytest.approx(14.0), timeout=15000)


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
    expected = denoise_array(pixels, window.model, window.outcome.sigma, tiles=TileSettings(passes=8), device="cpu")
    np.testing.assert_allclose(window.outcome.denoised, np.clip(expected, 0, 1), atol=1e-5)
    window.save_settings()
    assert int(settings.value("passes")) == 8
