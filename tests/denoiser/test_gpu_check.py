"""benchmarks/gpu_check.py: the device check compares against the CPU, times, and refuses without CUDA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks.gpu_check import check, main
from denoiser.models import create_model
from denoiser.modelstore import save_model


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_model(create_model("unet", {"widths": [4, 8], "blocks": 1}), tmp_path / "tiny.safetensors")


def test_check_on_the_cpu_agrees_with_itself_and_prints_speed(model_file: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert check(str(model_file), device="cpu", size=96)
    out = capsys.readouterr().out
    assert "largest CPU/GPU difference on a 96x96 crop 0.000" in out
    assert "1 pass(es):" in out and "4 pass(es):" in out and "s/MP on cpu" in out


def test_without_cuda_it_says_so_and_fails(model_file: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([str(model_file)]) == 1
    assert "no CUDA device here" in capsys.readouterr().err
