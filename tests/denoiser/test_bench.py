"""The benchmark harness: the protocol's noise, every method, the table, and isolation for memory figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.bench import format_table, load_set, run_bench, run_isolated, run_method
from denoiser.errors import UnknownNameError
from denoiser.models import create_model
from denoiser.modelstore import save_model


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    folder = tmp_path / "set"
    folder.mkdir()
    y, x = np.mgrid[0:40, 0:48]
    for i in range(2):
        image = np.stack([x * 4 + i * 10, y * 5, (x + y) * 2], axis=2).clip(0, 255).astype(np.uint8)
        PILImage.fromarray(image).save(folder / f"{i}.png")
    PILImage.fromarray((x * 5).astype(np.uint8)).save(tmp_path / "grey.png")
    return folder


@pytest.fixture
def tiny_model(tmp_path: Path) -> str:
    torch.manual_seed(0)
    return str(save_model(create_model("unet", {"widths": [4, 8], "blocks": 0}), tmp_path / "tiny.safetensors"))


def test_sets_load_sorted_as_uint8(tiny_set: Path) -> None:
    images = load_set(tiny_set)
    assert [name for name, _ in images] == ["0.png", "1.png"]
    assert all(image.dtype == np.uint8 and image.shape == (40, 48, 3) for _, image in images)


@pytest.mark.parametrize("method", ["ours", "ours-auto", "nlm", "cbm3d"])
def test_each_method_gives_figures(method: str, tiny_set: Path, tiny_model: str) -> None:
    if method == "cbm3d":
        pytest.importorskip("bm3d")
    result = run_method(method, str(tiny_set), 25.0, tiny_model)
    assert result.images == 2 and result.method == method
    assert 10 < result.psnr < 60 and 0 < result.ssim <= 1 and result.seconds_per_mp > 0
    assert result.peak_mb >= result.baseline_mb > 0


def test_nlm_beats_the_noisy_input(tiny_set: Path) -> None:
    from denoiser.metrics import psnr
    from denoiser.noise import add_gaussian_noise

    clean = load_set(tiny_set)[0][1]
    noisy_psnr = psnr(clean, add_gaussian_noise(clean, 25, 0))
    assert run_method("nlm", str(tiny_set), 25.0, limit=1).psnr > noisy_psnr + 3


def test_unknown_method_is_refused(tiny_set: Path) -> None:
    with pytest.raises(UnknownNameError, match="cbm3d"):
        list(run_bench([str(tiny_set)], [25.0], ["bm4d"]))


@pytest.mark.slow
def test_isolated_run_matches_in_process(tiny_set: Path, tiny_model: str) -> None:
    here = run_method("ours", str(tiny_set), 15.0, tiny_model)
    there = run_isolated("ours", str(tiny_set), 15.0, tiny_model)
    assert there.psnr == pytest.approx(here.psnr, abs=1e-6) and there.ssim == pytest.approx(here.ssim, abs=1e-6)


def test_table_has_a_row_per_result(tiny_set: Path) -> None:
    results = list(run_bench([str(tiny_set)], [15.0, 50.0], ["nlm"], isolated=False))
    table = format_table(results)
    assert table.count("\n") == 3 and "| nlm |" in table and "| 50 |" in table
