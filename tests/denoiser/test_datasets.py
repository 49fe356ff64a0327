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


def _photos(count: int, size: tuple[int, int] = (48, 40), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(count)]


def test_device_mix_batches_hold_clean_patches_pairs_and_a_seed() -> None:
    from denoiser.datasets import DeviceMixSource, StepBatches
    from denoiser.synthesis import SynthesisMix

    clean = _photos(3)
    noisy_pairs, clean_pairs = _photos(2, seed=1), _photos(2, seed=2)
    source = DeviceMixSource(clean, SynthesisMix(), noisy_pairs, clean_pairs, pair_share=0.25)
    batches = StepBatches(source, [0, 1, 2], batch_size=8, patch=32, seed=0)
    batch = batches[5]
    assert batch["clean"].shape == (6, 3, 32, 32)
    assert batch["pair_input"].shape == batch["pair_target"].shape == (2, 3, 32, 32)
    again = batches[5]
    assert all(torch.equal(batch[k], again[k]) for k in batch)  # a batch depends on the seed and step alone
    assert int(batches[6]["seed"]) != int(batch["seed"])
    assert len(DeviceMixSource(clean, SynthesisMix())) == 3


def test_synthesize_on_device_gives_inputs_targets_and_two_channel_maps() -> None:
    from denoiser.datasets import DeviceMixSource, StepBatches, synthesize_on_device
    from denoiser.noise_maps import local_noise_maps
    from denoiser.synthesis import SynthesisMix

    source = DeviceMixSource(_photos(2), SynthesisMix(), _photos(1, seed=3), _photos(1, seed=4), pair_share=0.5)
    batch = StepBatches(source, [0, 1], batch_size=4, patch=32, seed=1)[0]
    made = synthesize_on_device(batch, SynthesisMix(), torch.device("cpu"))
    assert made["input"].shape == made["target"].shape == (4, 3, 32, 32)
    assert made["noise_map"].shape == (4, 2, 32, 32)
    np.testing.assert_allclose(made["noise_map"][2:], local_noise_maps(batch["pair_input"] - batch["pair_target"]))
    assert torch.equal(made["target"][2:], batch["pair_target"])
    repeat = synthesize_on_device(batch, SynthesisMix(), torch.device("cpu"))
    assert torch.equal(made["input"], repeat["input"])  # the batch's seed fixes the device noise


def test_device_mix_refuses_a_share_outside_zero_to_one() -> None:
    from denoiser.datasets import DeviceMixSource
    from denoiser.synthesis import SynthesisMix

    with pytest.raises(DenoiserError, match="pair_share"):
        DeviceMixSource(_photos(1), SynthesisMix(), _photos(1), _photos(1), pair_share=1.5)
