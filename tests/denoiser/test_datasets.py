"""Training data: pair matching and its report, per-step batches, and the Neighbor2Neighbor sampler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.datasets import (
    PairSource,
    StepBatches,
    SyntheticSource,
    draw_neighbours,
    match_pairs,
    subsample_with,
)
from denoiser.errors import DenoiserError
from denoiser.noise import NoiseMix


def write(path: Path, size: tuple[int, int] = (40, 32), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(path)
    return path


def test_pair_report_lists_every_problem_by_file(tmp_path: Path) -> None:
    noisy, clean = tmp_path / "noisy", tmp_path / "clean"
    for name in ("a", "b"):
        write(noisy / f"{name}.png"), write(clean / f"{name}.png")
    write(noisy / "c.jpg")  # partner has another extension: still a pair
    write(clean / "c.png")
    write(noisy / "lonely.png")
    write(clean / "orphan.png")
    write(noisy / "big.png", size=(48, 32)), write(clean / "big.png")
    write(noisy / "bad.png")
    (clean / "bad.png").write_bytes(b"not an image")
    report = match_pairs(noisy, clean)
    assert [n.name for n, _ in report.pairs] == ["a.png", "b.png", "c.jpg"]
    assert not report.ok
    problems = "\n".join(report.problems())
    assert "lonely.png: no clean partner" in problems
    assert "orphan.png: no noisy partner" in problems
    assert "big.png" in problems and "48x32x3 vs 40x32x3" in problems
    assert "bad.png" in problems
    assert report.summary() == "3 usable pairs, 4 problems"


def test_one_folder_with_noisy_and_clean_inside(tmp_path: Path) -> None:
    write(tmp_path / "noisy" / "x.png"), write(tmp_path / "clean" / "x.png")
    report = match_pairs(tmp_path)
    assert report.ok and len(report.pairs) == 1
    with pytest.raises(DenoiserError, match="noisy/ and clean/"):
        match_pairs(tmp_path / "noisy")


def test_a_step_always_gives_the_same_batch() -> None:
    images = [np.random.default_rng(i).integers(0, 256, (50, 60, 3), dtype=np.uint8) for i in range(3)]
    batches = StepBatches(SyntheticSource(images, NoiseMix()), [0, 1, 2], batch_size=4, patch=32, seed=5)
    first, again, other = batches[7], batches[7], batches[8]
    assert torch.equal(first["input"], again["input"]) and torch.equal(first["target"], again["target"])
    assert not torch.equal(first["input"], other["input"])
    assert first["input"].shape == (4, 3, 32, 32) and first["noise_map"].shape == (4, 1, 32, 32)


def test_pairs_get_the_same_crop_and_turn() -> None:
    clean = [np.random.default_rng(1).integers(0, 256, (48, 48, 3), dtype=np.uint8)]
    noisy = [np.clip(clean[0].astype(int) + 3, 0, 255).astype(np.uint8)]
    batch = PairSource(noisy, clean).batch([0], 6, 32, np.random.default_rng(0))
    difference = (batch["input"] - batch["target"]) * 255
    assert torch.all((difference > 2.5) | (batch["target"] * 255 > 251))  # aligned: the +3 offset everywhere


def test_neighbour_sampler_takes_two_adjacent_pixels_per_cell() -> None:
    images = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).view(2, 1, 6, 8)
    choice = draw_neighbours(2, 6, 8, np.random.default_rng(0))
    first, second = subsample_with(images, choice)
    assert first.shape == second.shape == (2, 1, 3, 4)
    # In a cell numbered 0 1 / 2 3 of an 8-wide image, adjacent pixels differ by 1 (across) or 8 (down).
    assert set(torch.abs(first - second).unique().tolist()) <= {1.0, 8.0}
    assert torch.all(first != second)
