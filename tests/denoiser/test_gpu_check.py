"""benchmarks/gpu_check.py: the device check compares tiles on the device with one pass on the CPU, catches a
device that computes something else, times, and refuses without CUDA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import benchmarks.gpu_check
from benchmarks.gpu_check import check, main
from denoiser.modelfile import save_model
from denoiser.models import create_model


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("unet", {"widths": [4, 8], "blocks": 1}), tmp_path / "tiny.safetensors")


def test_tiles_on_the_cpu_match_one_whole_pass_and_speed_is_printed(model_file: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(model_file), device="cpu", size=96, tile=32)  # 32-pixel tiles: a 96x96 crop is cut up
    out = capsys.readouterr().out
    assert "largest difference between 32-pixel tiles on cpu and one pass on the CPU on a 96x96 crop 0.000" in out
    assert "1 pass(es):" in out and "4 pass(es):" in out and "s/MP on cpu" in out


def test_a_device_that_computes_something_else_fails_the_check(model_file: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    honest = benchmarks.gpu_check.denoise_array

    def off_by_one_level(image: np.ndarray, *args: object, **kwargs: object) -> np.ndarray:
        return honest(image, *args, **kwargs) + np.float32(1 / 255)  # what a broken kernel might return

    monkeypatch.setattr(benchmarks.gpu_check, "denoise_array", off_by_one_level)
    assert not check(str(model_file), device="cpu", size=96, tile=32)
    assert "on a 96x96 crop 1.000" in capsys.readouterr().out


def test_without_cuda_it_says_so_and_fails(model_file: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([str(model_file)]) == 1
    assert "no CUDA device here" in capsys.readouterr().err
