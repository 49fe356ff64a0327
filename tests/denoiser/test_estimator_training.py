"""Tests of the noise-map estimator's training: targets, validation, a short run that learns, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.datasets import DeviceMixSource
from denoiser.estimator import load_estimator
from denoiser.estimator_training import (
    LUMA,
    EstimatorTraining,
    add_correlated_noise,
    estimator_batch,
    grey_pairs,
    grey_patches,
    quarter_targets,
    train_estimator,
    validation_errors,
)
from denoiser.noise_maps import local_noise_maps
from denoiser.synthesis import SynthesisMix


def photos(count: int, size: tuple[int, int] = (64, 64)) -> list[np.ndarray]:
    y, x = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    images = []
    for k in range(count):
        base = np.stack([0.3 + 0.4 * x, 0.4 + 0.3 * y, 0.5 + 0.2 * np.sin(6 * x + k)], axis=2)
        images.append(np.clip(np.round(base * 255), 0, 255).astype(np.uint8))
    return images


def test_quarter_targets_keep_the_root_mean_variance() -> None:
    maps = torch.zeros(1, 2, 8, 8)
    maps[:, :, :4, :4] = 0.1
    quarter = quarter_targets(maps)
    assert quarter.shape == (1, 2, 2, 2)
    assert quarter[0, 0, 0, 0] == pytest.approx(0.1) and quarter[0, 0, 1, 1] == 0
    maps[:, :, 0, 0] = 0.5  # one loud pixel raises its cell's level as variance, not as amplitude
    assert quarter_targets(maps)[0, 0, 0, 0] == pytest.approx(np.sqrt((0.25 + 15 * 0.01) / 16))


def test_validation_errors_are_per_sigma_and_overall() -> None:
    torch.manual_seed(0)
    from denoiser.estimator import EstimatorConfig, NoiseMapEstimator

    estimator = NoiseMapEstimator(EstimatorConfig(width=8, blocks=1))
    colour = {"error_sigma_0", "error_sigma_5", "error_sigma_15", "error_sigma_25", "error_sigma_50"}
    errors = validation_errors(estimator, photos(2), grey=False)
    assert set(errors) == colour | {"error"}
    assert errors["error_sigma_50"] > errors["error_sigma_5"]  # an untrained estimator reads about nothing
    with_grey = validation_errors(estimator, photos(2))
    assert set(with_grey) == (colour | {key.replace("sigma", "grey_sigma") for key in colour} | {"error"}
                              | {"error_grey_correlated_sigma_5", "error_grey_correlated_sigma_15",
                                 "error_grey_correlated_sigma_25"})
    assert with_grey["error"] == pytest.approx(np.mean([v for k, v in with_grey.items() if k != "error"]))


def colour_patches(count: int, size: int = 32) -> torch.Tensor:
    return torch.from_numpy(np.stack(photos(count, (size, size))).transpose(0, 3, 1, 2).astype(np.float32) / 255)


def is_grey(patches: torch.Tensor) -> torch.Tensor:
    """Per patch: are the three channels equal everywhere?"""
    return ((patches[:, 0] == patches[:, 1]) & (patches[:, 1] == patches[:, 2])).flatten(1).all(dim=1)


@pytest.mark.parametrize("kind", ["gaussian_clipped", "gaussian_float", "camera"])
def test_grey_patches_have_the_same_noise_in_every_channel_and_its_own_level_as_target(kind: str) -> None:
    clean = colour_patches(4)
    mix = SynthesisMix(weights={kind: 1.0}, sigma_min=10.0, sigma_max=30.0, shot_noise_min=1e-3)
    noisy, maps = grey_patches(clean, mix, 0.0, torch.Generator().manual_seed(0), correlated_share=0.0)
    assert noisy.shape == clean.shape and maps.shape == (4, 2, 32, 32)
    assert bool(is_grey(noisy).all())
    assert torch.equal(maps[:, 0], maps[:, 1])  # one level: the grey noise's, in both channels
    if kind != "camera":  # the white kinds' map is their sigma; the clean patch was made grey on 8-bit levels
        grey = torch.round((clean * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1) * 255) / 255
        measured = (noisy[:, 0] - grey).std(dim=(1, 2))
        np.testing.assert_allclose(measured.numpy(), maps[:, 0].mean(dim=(1, 2)).numpy(), rtol=0.15)
    assert float(maps.min()) > 0
    again = grey_patches(clean, mix, 0.0, torch.Generator().manual_seed(0), correlated_share=0.0)
    assert torch.equal(again[0], noisy) and torch.equal(again[1], maps)  # seeded


def neighbour_correlation(noise: torch.Tensor) -> float:
    return float(np.corrcoef(noise[..., :-1].flatten().numpy(), noise[..., 1:].flatten().numpy())[0, 1])


def test_correlated_grey_patches_carry_grain_of_their_sigma() -> None:
    clean = torch.full((6, 3, 64, 64), 0.5)
    mix = SynthesisMix(sigma_min=8.0, sigma_max=20.0)
    noisy, maps = grey_patches(clean, mix, 0.0, torch.Generator().manual_seed(3), correlated_share=1.0)
    assert bool(is_grey(noisy).all()) and torch.equal(maps[:, 0], maps[:, 1])
    sigma = maps[:, 0, 0, 0]
    assert torch.equal(maps, sigma.view(-1, 1, 1, 1).expand_as(maps))
    assert bool(((sigma >= 8 / 255) & (sigma <= 20 / 255)).all())  # the mix's range (below 40)
    noise = noisy[:, :1] - 0.5
    np.testing.assert_allclose(noise.std(dim=(1, 2, 3)).numpy(), sigma.numpy(), rtol=0.2)
    assert neighbour_correlation(noise) > 0.1  # grain, not white noise (about 0 for white)


def test_add_correlated_noise_is_seeded_grain_of_its_sigma() -> None:
    flat = np.full((96, 96, 1), 120, np.uint8)
    noisy = add_correlated_noise(flat, 15.0, seed=4)
    assert noisy.shape == flat.shape and noisy.dtype == np.uint8
    assert np.array_equal(noisy, add_correlated_noise(flat, 15.0, seed=4))
    noise = torch.from_numpy(noisy.astype(np.float32) - 120)[None, :, :, 0]
    assert 13 < float(noise.std()) < 17 and neighbour_correlation(noise) > 0.5


def test_grey_patches_left_clean_have_a_zero_map() -> None:
    clean = colour_patches(6)
    noisy, maps = grey_patches(clean, SynthesisMix(), 0.99, torch.Generator().manual_seed(1), correlated_share=0.5)
    assert bool(is_grey(noisy).all()) and float(maps.abs().max()) == 0.0
    assert float((noisy[:, 0] * 255 - torch.round(noisy[:, 0] * 255)).abs().max()) < 1e-4  # 8-bit grey levels


def test_grey_pairs_carry_the_luma_of_the_real_noise() -> None:
    clean = colour_patches(2)
    noise = torch.randn(clean.shape, generator=torch.Generator().manual_seed(2)) * (10 / 255)
    noisy, maps = grey_pairs(clean + noise, clean)
    assert bool(is_grey(noisy).all()) and torch.equal(maps[:, 0], maps[:, 1])
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    grey_noisy = torch.round(((clean + noise) * weights).sum(1, keepdim=True) * 255).clamp(0, 255) / 255
    expected = local_noise_maps(grey_noisy - (clean * weights).sum(1, keepdim=True))
    torch.testing.assert_close(maps, expected)
    torch.testing.assert_close(noisy[:, :1], grey_noisy)
    # White noise of std 10 in each channel leaves std 10 * |LUMA| (about 6.7) in the luma.
    assert float(maps.mean() * 255) == pytest.approx(10 * float(torch.tensor(LUMA).norm()), rel=0.1)


def test_a_batch_has_its_grey_share_of_synthesised_patches_and_pairs() -> None:
    images = photos(4, (80, 80))
    source = DeviceMixSource(images, SynthesisMix(), [np.clip(p.astype(int) + 12, 0, 255).astype(np.uint8)
                                                     for p in images], images, pair_share=0.25)
    batch = source.batch([0, 1, 2, 3], 16, 32, np.random.default_rng(0))
    config = EstimatorTraining(batch_size=16, patch=32, grey_share=0.25)
    inputs, maps = estimator_batch(batch, source.mix, config, torch.device("cpu"))
    assert inputs.shape == (16, 3, 32, 32) and maps.shape == (16, 2, 32, 32)
    grey = is_grey(inputs)
    # 12 synthesised patches and 4 pairs: 3 and 1 grey, in front and at the end; the colour ones are not grey.
    assert grey[:3].all() and grey[-1] and not grey[3:15].any()
    assert torch.equal(maps[:3, 0], maps[:3, 1]) and torch.equal(maps[-1, 0], maps[-1, 1])
    assert float(maps[3:5].abs().max()) == 0.0  # the batch's clean share (2 of 16) among the colour patches
    again = estimator_batch(batch, source.mix, config, torch.device("cpu"))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], maps)
    colour_only = estimator_batch(batch, source.mix, EstimatorTraining(grey_share=0.0), torch.device("cpu"))[0]
    assert not is_grey(colour_only).any()


@pytest.mark.slow
def test_a_short_run_learns_to_read_gaussian_noise() -> None:
    mix = SynthesisMix(weights={"gaussian_float": 1.0}, sigma_min=5.0, sigma_max=60.0)
    source = DeviceMixSource(photos(6), mix)
    config = EstimatorTraining(steps=60, batch_size=8, patch=32, learning_rate=3e-3, validation_every=60,
                               validation_fraction=0.34, estimator={"width": 8, "blocks": 1},
                               grey_share=0.0)  # colour only: the grey patches' noise is not this mix's alone
    events = list(train_estimator(source, config, device="cpu"))
    first = np.mean([e.extra["loss"] for e in events[:10] if e.stage == "train"])
    last = np.mean([e.extra["loss"] for e in events[-11:-1] if e.stage == "train"])
    assert last < 0.4 * first
    estimator, info = events[-1].extra["result"]
    assert info["validation"]["photos"] == 2 and "error" in info["validation"]
    assert info["training"]["steps"] == 60


def test_train_estimator_cli_writes_a_loadable_file(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from denoiser.cli import main

    folder = tmp_path / "clean"
    folder.mkdir()
    for k, photo in enumerate(photos(4)):
        PILImage.fromarray(photo).save(folder / f"p{k}.png")
    out = tmp_path / "e.safetensors"
    assert main(["train-estimator", "--clean", str(folder), "--steps", "2", "--batch-size", "2", "--patch", "32",
                 "--validation-every", "2", "--out", str(out), "--device", "cpu"]) == 0
    estimator, info = load_estimator(out)
    assert info["training"]["steps"] == 2 and "4 clean photos" in info["trained_on"]
    assert info["training"]["grey_share"] == 0.2 and "error_grey_sigma_25" in info["validation"]
    assert main(["train-estimator", "--clean", str(folder), "--steps", "2", "--out", str(out)]) == 2  # no overwrite
    tuned = tmp_path / "tuned.safetensors"
    assert main(["train-estimator", "--clean", str(folder), "--steps", "2", "--batch-size", "2", "--patch", "32",
                 "--from", str(out), "--lr", "1e-12", "--out", str(tuned), "--device", "cpu"]) == 0
    fine, fine_info = load_estimator(tuned)
    assert fine_info["training"]["start_from"] == "e.safetensors" and fine.config == estimator.config
    for key, value in estimator.state_dict().items():  # a vanishing rate: the weights it started from
        torch.testing.assert_close(fine.state_dict()[key], value, rtol=1e-4, atol=1e-6)
