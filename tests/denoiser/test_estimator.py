"""Tests of the noise-map estimator's plumbing: shapes, tiles, files (its training is tested separately)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.errors import ModelLoadError
from denoiser.estimator import EstimatorConfig, NoiseMapEstimator, estimate_map, load_estimator, save_estimator


def tiny(seed: int = 0) -> NoiseMapEstimator:
    torch.manual_seed(seed)
    return NoiseMapEstimator(EstimatorConfig(width=8, blocks=1))


def photo(height: int, width: int, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, channels), dtype=np.uint8)


@pytest.mark.parametrize(("height", "width", "channels"), [(37, 53, 3), (64, 64, 3), (30, 90, 1)])
def test_map_has_the_photo_size_and_two_non_negative_channels(height: int, width: int, channels: int) -> None:
    levels = estimate_map(tiny(), photo(height, width, channels))
    assert levels.shape == (-(-height // 4), -(-width // 4), 2) and levels.dtype == np.float32  # a quarter
    assert np.all(np.isfinite(levels)) and levels.min() >= 0


def test_tiles_with_margins_agree_with_one_pass() -> None:
    image = photo(200, 260)
    whole = estimate_map(tiny(), image, tile=512, margin=64)
    tiled = estimate_map(tiny(), image, tile=64, margin=64)
    # The receptive field fits in the margin except for the reflected border: the maps agree closely.
    assert np.abs(whole - tiled).mean() < 0.02 * (whole.mean() + 1e-6) + 1e-4


def test_uint8_uint16_and_float_inputs_read_the_same() -> None:
    image = photo(48, 48)
    as8 = estimate_map(tiny(), image)
    as16 = estimate_map(tiny(), image.astype(np.uint16) * 257)
    as_float = estimate_map(tiny(), image.astype(np.float32) / 255)
    np.testing.assert_allclose(as8, as16, atol=1e-4)
    np.testing.assert_allclose(as8, as_float, atol=1e-4)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    original = tiny(3)
    path = save_estimator(original, tmp_path / "e.safetensors", {"steps": 5})
    loaded, info = load_estimator(path)
    assert info == {"steps": 5} and loaded.config == original.config
    image = photo(40, 40)
    np.testing.assert_array_equal(estimate_map(loaded, image), estimate_map(original, image))


def test_an_estimator_trained_with_grey_patches_says_it_reads_grey(tmp_path: Path) -> None:
    grey = load_estimator(save_estimator(tiny(), tmp_path / "g.safetensors", {"training": {"grey_share": 0.2}}))[0]
    colour = load_estimator(save_estimator(tiny(), tmp_path / "c.safetensors", {"training": {"steps": 3}}))[0]
    assert grey.reads_grey and not colour.reads_grey


def test_a_file_that_is_not_an_estimator_names_itself(tmp_path: Path) -> None:
    bad = tmp_path / "nope.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ModelLoadError, match="nope.safetensors"):
        load_estimator(bad)


def test_the_bundled_estimator_reads_white_noise_and_a_clean_photo() -> None:
    from denoiser.estimator import bundled_estimator_path

    if not bundled_estimator_path().is_file():
        pytest.skip("this installation has no bundled estimator")
    estimator, info = load_estimator(bundled_estimator_path())
    y, x = np.mgrid[0:128, 0:160] / 160
    clean = np.stack([0.3 + 0.4 * x, 0.5 - 0.2 * y, 0.4 + 0.2 * np.sin(8 * x)], axis=2)
    clean8 = np.round(clean * 255).astype(np.uint8)
    noisy = np.clip(np.round(clean8 + np.random.default_rng(0).normal(0, 20, clean8.shape)), 0, 255).astype(np.uint8)
    levels = estimate_map(estimator, noisy)
    assert 17 < np.median(levels[:, :, 0]) < 23 and 17 < np.median(levels[:, :, 1]) < 23
    assert np.median(estimate_map(estimator, clean8)) < 1.5
    assert info["training"]["steps"] == 4000 and info["validation"]["error"] < 2
    assert not estimator.reads_grey  # it learnt colour photos only: auto leaves grey ones to the PCA estimate
