"""The GUI entry point starts headless and shows the bundled models and samples."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from denoiser.models import create_model
from denoiser.modelstore import save_to_library
from ui.app import PlaceholderWindow


def test_window_lists_models_and_samples(qtbot: QtBot) -> None:
    save_to_library(create_model("unet", {"widths": [4, 8], "blocks": 0}), "my-model")
    window = PlaceholderWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    text = window.text.text()
    assert window.windowTitle() == "Denoiser"
    assert "my-model" in text
    assert "parrots_sigma25.png" in text
