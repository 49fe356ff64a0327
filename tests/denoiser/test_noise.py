"""Tests of the benchmark noise protocol and of the PCA noise-level estimator."""

from __future__ import annotations

import numpy as np
import pytest

from denoiser.errors import DenoiserError
from denoiser.noise import add_gaussian_noise
from denoiser.noise_estimation import _censored_variance, estimate_noise

SIGMAS = [5, 10, 15, 25, 35, 50]


def clean_scene(size: int = 128) -> np.ndarray:
    """Smooth but structured colour scene in 0-255 (float64): gradients, a wave, flat shapes with edges."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    image = np.stack([60 + 120 * x, 50 + 100 * y + 20 * np.sin(3 * x), 90 + 60 * x * y], axis=2)
    image[20:60, 30:80] = (200, 80, 40)
    rows, cols = np.mgrid[0:size, 0:size]
    image[(rows - 90) ** 2 + (cols - 85) ** 2 < 22**2] = (40, 160, 210)
    image[100:120, 10:40] = (230, 230, 230)
    return image


@pytest.fixture(scope="module")
def scene() -> np.ndarray:
    return clean_scene()


@pytest.mark.parametrize("sigma", SIGMAS)
def test_estimate_colour_noise_within_ten_percent(scene, sigma):
    noise = np.random.default_rng(sigma).normal(0.0, sigma, scene.shape)
    noisy = ((scene + noise) / 255).astype(np.float32)  # float in 0-1, not clipped
    assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_estimate_grey_noise_within_ten_percent(scene, sigma):
    grey = scene.mean(axis=2)
    noise = np.random.default_rng(100 + sigma).normal(0.0, sigma, grey.shape)
    noisy = (grey + noise) / 255  # float64, H x W
    assert estimate_noise(noisy) == pytest.approx(sigma, rel=0.10)


@pytest.mark.parametrize(("sigma", "tolerance"), [(25, 0.06), (50, 0.06), (75, 0.10)])
def test_estimate_undoes_the_clipping_of_saved_photos(scene, sigma, tolerance):
    # A saved photo's noise is clipped at black and white, which takes noise away in dark and bright areas:
    # the plain PCA estimate read sigma 50 as about 46 on training photos. The estimate solves for the sigma
    # before clipping (on this scene the plain estimate reads 22.7 / 41.1 / 57.5).
    dark_and_bright = scene.copy()
    dark_and_bright[:, :40] *= 0.2
    dark_and_bright[:, -40:] = 255 - (255 - dark_and_bright[:, -40:]) * 0.2
    noisy = add_gaussian_noise(dark_and_bright.astype(np.uint8), sigma, seed=sigma)
    assert np.mean((noisy == 0) | (noisy == 255)) > 0.05  # the test needs real clipping
    assert estimate_noise(noisy) == pytest.approx(sigma, rel=tolerance)


def test_censored_variance_matches_sampling():
    rng = np.random.default_rng(0)
    means = np.array([-20.0, 0.0, 30.0, 128.0, 240.0, 255.0, 300.0])
    for sigma in (10.0, 50.0):
        samples = np.clip(means[:, None] + rng.normal(0.0, sigma, (len(means), 200_000)), 0, 255)
        np.testing.assert_allclose(_censored_variance(means, sigma), samples.var(axis=1), rtol=0.03, atol=0.5)


def test_estimate_same_for_uint8_uint16_and_float(scene):
    """The 0-255 scale does not depend on the dtype the pixels come in."""
    noisy = add_gaussian_noise(np.round(scene).astype(np.uint8), 20, seed=3)
    as_uint8 = estimate_noise(noisy)
    assert as_uint8 == pytest.approx(20, rel=0.15)
    assert estimate_noise(noisy.astype(np.uint16) * 257) == pytest.approx(as_uint8, rel=1e-6)
    assert estimate_noise(noisy / 255.0) == pytest.approx(as_uint8, rel=1e-6)


def test_clean_image_estimates_near_zero(scene):
    assert estimate_noise(scene / 255) < 2
    assert estimate_noise(scene.mean(axis=2) / 255) < 2


def test_estimate_is_deterministic_with_patch_subset(scene):
    noisy = (scene + np.random.default_rng(7).normal(0, 15, scene.shape)) / 255
    first = estimate_noise(noisy, max_patches=3000)
    assert estimate_noise(noisy, max_patches=3000) == first
    assert first == pytest.approx(15, rel=0.10)


def test_estimate_refuses_too_small_images():
    with pytest.raises(DenoiserError, match="too small"):
        estimate_noise(np.zeros((6, 40, 3)))
    with pytest.raises(DenoiserError):
        estimate_noise(np.zeros((5, 5)), patch=7)
    with pytest.raises(DenoiserError):
        estimate_noise(np.zeros(50))


def test_add_gaussian_noise_follows_the_protocol():
    clean = np.random.default_rng(0).integers(0, 256, (33, 47, 3), dtype=np.uint8)
    for sigma, seed in [(25, 0), (5, 123), (50, 9)]:
        noisy = add_gaussian_noise(clean, sigma, seed=seed)
        rng = np.random.default_rng(seed)
        expected = np.clip(np.round(clean + rng.normal(0, sigma, clean.shape)), 0, 255).astype(np.uint8)
        assert noisy.dtype == np.uint8 and noisy.shape == clean.shape
        np.testing.assert_array_equal(noisy, expected)
    assert not np.array_equal(add_gaussian_noise(clean, 25, seed=1), add_gaussian_noise(clean, 25, seed=2))


def test_add_gaussian_noise_clips_to_the_uint8_range():
    black, white = np.zeros((40, 40), np.uint8), np.full((40, 40), 255, np.uint8)
    assert add_gaussian_noise(black, 30, seed=0).min() == 0
    assert add_gaussian_noise(white, 30, seed=0).max() == 255
    noisy = add_gaussian_noise(np.full((64, 64), 128, np.uint8), 10, seed=0).astype(float)
    assert noisy.std() == pytest.approx(10, rel=0.1)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64, np.int32])
def test_add_gaussian_noise_rejects_other_dtypes(dtype):
    with pytest.raises(DenoiserError, match="uint8"):
        add_gaussian_noise(np.zeros((8, 8, 3), dtype=dtype), 10, seed=0)
