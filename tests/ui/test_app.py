"""``denoiser-gui`` starts headless, opens what it is given (or the bundled samples) and exits cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

import ui.app as app_module
import ui.main_window as main_window_module
from denoiser.resources import sample_images_dir
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
    assert window.photo.path.parent == sample_images_dir()
    assert not any(lane.isRunning() for lane in window.bridge._lanes.values())


def test_a_path_on_the_command_line_is_opened(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot,
                                              private_settings: QSettings) -> None:
    photo = sorted(sample_images_dir().glob("*.png"))[-1]
    window = run_main_and_capture(monkeypatch, qtbot, [str(photo)])
    assert window.photo.path == photo
