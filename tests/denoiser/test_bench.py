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


@pytest.fixture
def tiny_pairs(tmp_path: Path) -> Path:
    """Twelve noisy/clean pairs: the seeded 10 % validation split holds one of them."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:32, 0:40]
    for sub in ("noisy", "clean"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    for i in range(12):
        clean = np.stack([x * 5 + i, y * 6, (x + y) * 3], axis=2).clip(0, 255).astype(np.uint8)
        noisy = np.clip(clean + rng.normal(0, 12, clean.shape), 0, 255).astype(np.uint8)
        PILImage.fromarray(clean).save(tmp_path / "pairs" / "clean" / f"p{i:02d}.png")
        PILImage.fromarray(noisy).save(tmp_path / "pairs" / "noisy" / f"p{i:02d}.png")
    return tmp_path / "pairs"


def test_pair_set_is_scored_on_its_validation_split_with_estimated_noise(tiny_pairs: Path, tiny_model: str) -> None:
    from denoiser.bench import REAL_NOISE, is_pair_set, load_pairs
    from denoiser.training import split_images

    assert is_pair_set(tiny_pairs)
    held = load_pairs(tiny_pairs)
    _, expected = split_images(12, 0.1, 0)
    assert [name for name, _, _ in held] == [f"p{i:02d}.png" for i in expected]
    training = [name for name, _, _ in load_pairs(tiny_pairs, part="training")]
    assert len(training) == 11 and not set(training) & {name for name, _, _ in held}  # the rest, never the held ones
    results = list(run_bench([str(tiny_pairs)], [15.0, 50.0], ["ours", "nlm", "noisy"], tiny_model, isolated=False))
    # One row per method, not per sigma; "ours" runs blind (auto strength) since there is no true sigma.
    assert [(r.method, r.sigma, r.images) for r in results] == [
        ("ours-auto", REAL_NOISE, 1), ("nlm", REAL_NOISE, 1), ("noisy", REAL_NOISE, 1)]
    by_method = {r.method: r.psnr for r in results}
    assert by_method["nlm"] > by_method["noisy"] + 1  # NLM given the estimated sigma really denoises
    assert "| real | nlm |" in format_table(results)


def test_noisy_row_is_the_protocol_input(tiny_set: Path) -> None:
    from denoiser.metrics import psnr
    from denoiser.noise import add_gaussian_noise

    images = load_set(tiny_set)
    expected = np.mean([psnr(clean, add_gaussian_noise(clean, 25, i)) for i, (_, clean) in enumerate(images)])
    assert run_method("noisy", str(tiny_set), 25.0).psnr == pytest.approx(expected)


def test_passes_reach_our_model_only(tiny_set: Path, tiny_model: str) -> None:
    one = run_method("ours", str(tiny_set), 25.0, tiny_model)
    eight = run_method("ours", str(tiny_set), 25.0, tiny_model, passes=8)
    assert eight.passes == 8 and one.passes == 1 and eight.psnr != pytest.approx(one.psnr, abs=1e-6)
    assert run_method("nlm", str(tiny_set), 25.0, passes=8).passes == 1
