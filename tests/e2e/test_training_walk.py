"""``denoiser train`` and ``denoiser models info`` say what a run really left: a fine-tune that no step beat (the
starting model, unchanged), a run stopped with Ctrl+C, and a time-budgeted run's steps (walk 2, items 1, 6, 7)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

from denoiser.cli import main
from denoiser.modelfile import ModelInfo
from denoiser.models import create_model
from denoiser.modelstore import load_model, save_to_library, user_models_dir
from denoiser.train_cli import _Terminal
from tests.e2e.test_cli_train import photo_folder

SMALL = ["--batch-size", "4", "--patch", "32", "--validation-every", "2", "--workers", "0", "--threads", "1"]


def tiny_start_model(name: str = "start") -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [8, 16], "blocks": 1})
    save_to_library(model, name)
    return model


def test_a_fine_tune_no_step_beat_says_it_saved_the_start_unchanged(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    start = tiny_start_model()
    clean = photo_folder(tmp_path / "clean", count=6)
    # A learning rate of 1 wrecks the weights at every step: the best held-out score stays the starting model's.
    assert main(["train", "--clean", str(clean), "--from", "start", "--lr", "1", "--steps", "4", "--name", "copy",
                 *SMALL]) == 0
    captured = capsys.readouterr()
    assert "no step beat the starting model" in captured.out
    assert "what was saved is start's weights, unchanged" in captured.err
    copy = load_model("copy")[0]
    assert all(torch.equal(value, start.state_dict()[key]) for key, value in copy.state_dict().items())
    assert main(["models", "info", "copy"]) == 0
    info = capsys.readouterr().out
    assert "The starting model (start), unchanged" in info and "start_kept: true" in info


def press_ctrl_c_during_the_run(monkeypatch: pytest.MonkeyPatch, at_poll: int = 3) -> None:
    """SIGINT this process when the run polls for a stop the ``at_poll``-th time (the terminal's handler is in)."""
    polls = {"count": 0}
    original = _Terminal.should_stop

    def should_stop(self: _Terminal) -> bool:
        polls["count"] += 1
        if polls["count"] == at_poll:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self)

    monkeypatch.setattr(_Terminal, "should_stop", should_stop)


def test_ctrl_c_says_nothing_was_saved(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    clean = photo_folder(tmp_path / "clean")
    press_ctrl_c_during_the_run(monkeypatch)
    assert main(["train", "--clean", str(clean), "--widths", "8,16", "--steps", "50", "--name", "stopped",
                 *SMALL]) == 130
    err = capsys.readouterr().err
    assert "stopped at your request; nothing saved" in err
    assert not (user_models_dir() / "stopped.safetensors").exists()


def test_ctrl_c_with_a_checkpoint_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    clean = photo_folder(tmp_path / "clean")
    folder = tmp_path / "ckpt"
    press_ctrl_c_during_the_run(monkeypatch)
    assert main(["train", "--clean", str(clean), "--widths", "8,16", "--steps", "50", "--name", "stopped",
                 "--checkpoint", str(folder), *SMALL]) == 130
    err = capsys.readouterr().err
    assert f"no model saved; the checkpoint in {folder} holds the run" in err and "resume" in err
    assert any(folder.iterdir())


def test_models_info_shows_planned_steps_only_when_the_user_set_them(capsys: pytest.CaptureFixture[str]) -> None:
    model = create_model("unet", {"widths": [8, 16], "blocks": 1})
    timed = {"steps": 1_000_000, "steps_done": 106, "seconds": 62.4, "minutes": 1.0}
    counted = {"steps": 300, "steps_done": 120, "seconds": 9.0, "minutes": 0.0, "stopped_early": True}
    for name, training in (("timed", timed), ("counted", counted)):
        save_to_library(model, name, ModelInfo(name=name, family="unet", config={}, training=training))
    assert main(["models", "info", "timed"]) == 0
    out = capsys.readouterr().out
    assert "training:    106 steps, 62.4 s, in a budget of 1 min" in out and "1000000" not in out
    assert main(["models", "info", "counted"]) == 0
    assert "training:    120 steps, 9.0 s, of at most 300" in capsys.readouterr().out
