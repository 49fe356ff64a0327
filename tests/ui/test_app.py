"""``denoiser-gui`` starts headless, opens what it is given (or the bundled samples) and exits cleanly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

import ui.app as app_module
import ui.main_window as main_window_module
from denoiser.resources import sample_images_dir, user_data_dir
from ui.main_window import MainWindow


@pytest.fixture
def private_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> QSettings:
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(main_window_module, "default_settings", lambda: store)
    return store


def run_main_and_capture(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, argv: list[str]) -> MainWindow:
    """Run ``main`` with the event loop replaced by a check of the window it built."""
    seen: dict[str, MainWindow] = {}

    def fake_exec(self: QApplication) -> int:
        (window,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["window"] = window
        qtbot.waitUntil(lambda: window.photo is not None, timeout=15000)
        window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app_module.main(argv) == 0
    return seen["window"]


def test_first_run_opens_the_bundled_samples(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot,
                                             private_settings: QSettings) -> None:
    window = run_main_and_capture(monkeypatch, qtbot, [])
    assert {p.name for p in window.folder_pane.paths()} >= {"parrots_sigma25.png", "real_building.png"}
    # A copy in the user's folder (issue 16: Save beside a sample wrote into the installed package).
    assert window.photo.path.parent == user_data_dir() / "samples" != sample_images_dir()
    assert window.photo.path.read_bytes() == (sample_images_dir() / window.photo.path.name).read_bytes()
    assert not any(lane.isRunning() for lane in window.bridge._lanes.values())


def test_a_path_on_the_command_line_is_opened(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot,
                                              private_settings: QSettings) -> None:
    photo = sorted(sample_images_dir().glob("*.png"))[-1]
    window = run_main_and_capture(monkeypatch, qtbot, [str(photo)])
    assert window.photo.path == photo


# --- issue 14: what the command line names wins over the remembered folder --------------------------------------


def run_main_until_denoised(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, argv: list[str]) -> MainWindow:
    """Run ``main`` with the event loop replaced by a wait for the first photo's result (and the restore timer)."""
    seen: dict[str, MainWindow] = {}

    def fake_exec(self: QApplication) -> int:
        (window,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["window"] = window
        try:
            qtbot.waitUntil(lambda: window.outcome is not None, timeout=20000)
            qtbot.wait(100)  # anything still scheduled (the last folder's restore) has had its turn
        finally:
            window.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app_module.main(argv) == 0
    return seen["window"]


def photo_folder(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for seed, name in enumerate(names):
        pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(folder / name)
        paths.append(folder / name)
    return paths


def test_a_folder_on_the_command_line_wins_and_its_first_photo_opens(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, private_settings: QSettings, tmp_path: Path) -> None:
    photo_folder(tmp_path / "last", ["old.png"])
    private_settings.setValue("last_folder", str(tmp_path / "last"))
    wanted = photo_folder(tmp_path / "shoot", ["a.png", "b.png"])
    window = run_main_until_denoised(monkeypatch, qtbot, [str(tmp_path / "shoot")])
    assert window.folder_pane.folder() == tmp_path / "shoot"
    assert window.folder_pane.paths() == wanted
    assert window.photo.path == wanted[0] and window.outcome.path == wanted[0]  # opened and denoised
    assert window.windowTitle() == "a.png \u2014 shoot \u2014 Denoiser"


def test_a_photo_on_the_command_line_opens_with_its_folder(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, private_settings: QSettings, tmp_path: Path) -> None:
    photo_folder(tmp_path / "last", ["old.png"])
    private_settings.setValue("last_folder", str(tmp_path / "last"))
    wanted = photo_folder(tmp_path / "shoot", ["a.png", "b.png"])
    window = run_main_until_denoised(monkeypatch, qtbot, [str(wanted[1])])
    assert window.photo.path == wanted[1]
    assert window.folder_pane.folder() == tmp_path / "shoot" and window.folder_pane.paths() == wanted
    assert window.windowTitle() == "b.png \u2014 shoot \u2014 Denoiser"


def test_with_no_argument_the_last_folder_opens_with_its_first_photo(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, private_settings: QSettings, tmp_path: Path) -> None:
    last = photo_folder(tmp_path / "last", ["old.png"])
    private_settings.setValue("last_folder", str(tmp_path / "last"))
    window = run_main_until_denoised(monkeypatch, qtbot, [])
    assert window.folder_pane.folder() == tmp_path / "last" and window.photo.path == last[0]


def test_closing_while_the_model_still_loads_exits_without_a_running_thread(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, private_settings: QSettings, tmp_path: Path) -> None:
    """The first start exports the model's graph, which cannot be cancelled and can outlast the close's wait on a
    busy machine: ``main`` waits for it rather than letting the process destroy a running thread (Qt aborts)."""
    import threading

    from ui.worker import WorkerBridge

    loading, release = threading.Event(), threading.Event()
    real_load = main_window_module.load_model_for_inference

    def slow_load(name: str):
        loading.set()
        release.wait(10)
        return real_load(name)

    real_shutdown = WorkerBridge.shutdown
    monkeypatch.setattr(main_window_module, "load_model_for_inference", slow_load)
    monkeypatch.setattr(WorkerBridge, "shutdown", lambda self, timeout_ms=10000: real_shutdown(self, 50))
    seen: dict[str, MainWindow] = {}

    def fake_exec(self: QApplication) -> int:
        (window,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        seen["window"] = window
        assert loading.wait(10)
        window.close()  # the load goes on past the close's wait
        assert window.bridge._lanes["model"].isRunning()
        threading.Timer(0.3, release.set).start()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    photo_folder(tmp_path / "shoot", ["a.png"])
    assert app_module.main([str(tmp_path / "shoot")]) == 0
    assert release.is_set()  # main returned only after the load was let go ...
    assert not any(lane.isRunning() for lane in seen["window"].bridge._lanes.values())  # ... and had ended


# --- issue 16: "Open with Denoiser" (the .desktop entry's Exec=denoiser-gui %F) ------------------------------------


def test_open_with_several_photos_opens_the_first_and_lists_the_others(
        monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, private_settings: QSettings, tmp_path: Path) -> None:
    """A file manager passes every selected file, as local paths (spaces and all), in the order chosen."""
    shoot = photo_folder(tmp_path / "Holiday photos", ["a.png", "b.png"])
    elsewhere = photo_folder(tmp_path / "other", ["c.png"])
    window = run_main_until_denoised(monkeypatch, qtbot, [str(shoot[1]), str(elsewhere[0])])
    assert window.photo.path == shoot[1] and window.outcome.path == shoot[1]  # opened and denoised
    assert window.folder_pane.folder() == tmp_path / "Holiday photos"
    assert window.folder_pane.paths() == [*shoot, elsewhere[0]]  # its folder, then the photo from elsewhere


def test_the_smoke_quit_option_says_when_the_photo_is_shown_and_quits(tmp_path: Path) -> None:
    """What the desktop bundle's smoke test starts the app with (issue 16)."""
    import os
    import subprocess
    import sys

    photo = sorted(sample_images_dir().glob("*.png"))[0]
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "DENOISER_HOME": str(tmp_path / "home"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "DENOISER_SMOKE_QUIT_AFTER_SHOW": "1"}
    done = subprocess.run([sys.executable, "-m", "ui.app", str(photo)], capture_output=True, text=True, env=env,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("window shown after ") and done.stdout.strip().endswith(" s")
