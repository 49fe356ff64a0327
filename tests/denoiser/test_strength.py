"""Tests of the strength setting: auto's noise map times amounts, a fixed sigma, and the PCA fallback."""

from __future__ import annotations

import numpy as np
import pytest

import denoiser.estimator as estimator_module
from denoiser.errors import DenoiserError
from denoiser.noise import MAX_SIGMA
from denoiser.strength import (
    GREY_MAP,
    NoiseEstimate,
    Strength,
    estimate_noise_map,
    flat_estimate,
    grey_estimate,
    levels_for,
)


def white_noise_photo(sigma: float, size: tuple[int, int] = (96, 128), seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    clean = np.stack([x * 0.8 + 40, y * 0.9 + 50, (x + y) * 0.4 + 60], axis=2)
    noisy = clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def test_amounts_multiply_luminance_and_colour_apart() -> None:
    levels = np.zeros((4, 5, 2), np.float32)
    levels[..., 0], levels[..., 1] = 10.0, 20.0
    estimate = NoiseEstimate(levels, "network")
    out = Strength(amount=1.5, luminance=0.5, color=2.0).levels(estimate)
    assert out.shape == (4, 5, 2)
    np.testing.assert_allclose(out[..., 0], 7.5)
    np.testing.assert_allclose(out[..., 1], 60.0)
    np.testing.assert_allclose(Strength(amount=2.0, color=2.0).levels(estimate)[..., 1], MAX_SIGMA)


def test_fixed_sigma_is_one_level_everywhere_times_the_amounts() -> None:
    out = Strength(sigma=20.0, luminance=0.5).levels(None)
    assert out.shape == (1, 1, 2)
    assert out[0, 0, 0] == pytest.approx(10.0) and out[0, 0, 1] == pytest.approx(20.0)
    with pytest.raises(DenoiserError, match="auto"):
        Strength().levels(None)


@pytest.mark.parametrize("bad", [{"amount": -0.1}, {"luminance": 2.5}, {"color": 3.0}, {"sigma": 300.0}])
def test_out_of_range_settings_are_refused(bad: dict) -> None:
    with pytest.raises(DenoiserError):
        Strength(**bad)


def test_describe_and_signature() -> None:
    assert Strength().describe() == "auto"
    assert Strength(amount=1.5).describe() == "auto 150 %"
    assert Strength(sigma=25, color=0.5).describe() == "sigma 25 (luminance 100 %, colour 50 %)"
    assert Strength(sigma=25).signature() == {"strength": 25.0, "amount": 1.0, "luminance": 1.0, "color": 1.0}
    assert Strength().signature()["strength"] == "auto"


def test_without_an_estimator_auto_is_the_pca_estimate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: None)
    estimate = estimate_noise_map(white_noise_photo(20.0))
    assert estimate.method == "pca" and estimate.levels.shape == (1, 1, 2)
    assert 17 < estimate.luminance < 23 and estimate.color == estimate.luminance
    levels, used = levels_for(white_noise_photo(20.0), Strength(amount=0.5))
    assert used is not None and levels[0, 0, 0] == pytest.approx(0.5 * used.luminance)


def test_with_an_estimator_auto_is_a_per_pixel_map(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    torch.manual_seed(0)
    tiny = estimator_module.NoiseMapEstimator(estimator_module.EstimatorConfig(width=8, blocks=1))
    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: tiny)
    photo = white_noise_photo(10.0, size=(50, 70))
    estimate = estimate_noise_map(photo)
    assert estimate.method == "network" and estimate.levels.shape == (13, 18, 2)  # covers it at a quarter
    assert np.all(np.isfinite(estimate.levels)) and estimate.levels.min() >= 0
    small = estimate_noise_map(photo[:10, :10])  # below the estimator's smallest side: the PCA fallback
    assert small.method == "pca"


def test_a_fixed_strength_never_estimates(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: np.ndarray) -> NoiseEstimate:
        raise AssertionError("estimated although the strength was fixed")

    monkeypatch.setattr("denoiser.strength.estimate_noise_map", refuse)
    levels, estimate = levels_for(white_noise_photo(5.0), Strength(sigma=12.0))
    assert estimate is None and levels[0, 0, 1] == pytest.approx(12.0)


def test_summary_mentions_a_level_that_varies() -> None:
    levels = np.zeros((10, 10, 2), np.float32)
    levels[:, 5:, 0] = 30.0
    assert "varies" in NoiseEstimate(levels, "network").summary()
    assert "varies" not in flat_estimate(5.0).summary()


def test_summary_says_when_the_colour_was_found_subsampled() -> None:
    estimate = NoiseEstimate(np.full((1, 1, 2), 12.0, np.float32), "network", subsampled=True)
    assert estimate.summary() == "luminance 12.0, colour 12.0 (colour subsampled: read in the luminance)"
    assert "subsampled" not in flat_estimate(12.0).summary()


def grey_noise_photo(sigma: float, size: tuple[int, int] = (96, 128), seed: int = 0) -> np.ndarray:
    """A smooth grey photo with white noise of ``sigma`` (H x W x 1 uint8)."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]]
    clean = 0.5 * x + 0.4 * y + 30 + 20 * np.sin(x / 9.0)
    noisy = clean + np.random.default_rng(seed).normal(0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)[:, :, None]


@pytest.mark.parametrize("channels", [1, 3])
def test_without_an_estimator_a_grey_photo_gets_the_grey_map_of_the_pca_estimate(
        monkeypatch: pytest.MonkeyPatch, channels: int) -> None:
    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: None)
    estimate = estimate_noise_map(np.repeat(grey_noise_photo(15.0), channels, axis=2))
    assert estimate.method == "pca" and estimate.grey is not None and 13 < estimate.grey < 17
    np.testing.assert_allclose(estimate.levels[0, 0], np.array(GREY_MAP) * estimate.grey, rtol=1e-5)


def test_the_grey_map_is_the_level_times_its_factors_and_the_model_gets_it_at_most_the_top() -> None:
    levels = np.array([[4.0, 10.0], [50.0, 70.0]], np.float32)
    estimate = grey_estimate(levels, "network")
    np.testing.assert_allclose(estimate.levels[..., 0], GREY_MAP[0] * levels)
    np.testing.assert_allclose(estimate.levels[..., 1], GREY_MAP[1] * levels)
    np.testing.assert_allclose(Strength().levels(estimate), np.minimum(estimate.levels, MAX_SIGMA))
    assert estimate.grey == pytest.approx(30.0)
    assert estimate.summary().startswith("grey 30.0 (the model is given luminance")
    assert flat_estimate(5.0).grey is None and not flat_estimate(5.0).summary().startswith("grey")


def test_the_colour_amount_leaves_a_grey_photo_alone() -> None:
    """A grey photo has no colour noise, yet the Colour amount changed its result by up to 30 levels."""
    estimate = grey_estimate(np.full((1, 1), 10.0, np.float32), "pca")
    plain = Strength().levels(estimate)
    np.testing.assert_array_equal(Strength(color=0.0).levels(estimate), plain)
    np.testing.assert_array_equal(Strength(sigma=20, color=2.0).levels(estimate), Strength(sigma=20).levels(estimate))
    np.testing.assert_allclose(Strength(luminance=0.5).levels(estimate), plain * 0.5)  # luminance sets its level
    colour = flat_estimate(10.0)
    assert Strength(color=0.0).levels(colour)[0, 0, 1] == 0  # a colour photo's colour amount still acts


class FakeEstimator:
    smallest_side = 16

    def __init__(self, reads_grey: bool) -> None:
        self.reads_grey = reads_grey


@pytest.mark.parametrize("channels", [1, 3])
def test_a_grey_photo_goes_to_a_grey_aware_network_as_one_level(monkeypatch: pytest.MonkeyPatch,
                                                                channels: int) -> None:
    seen = []

    def read(_estimator: object, pixels: np.ndarray) -> np.ndarray:
        seen.append(pixels.shape)
        levels = np.full((24, 32, 2), 10.0, np.float32)
        levels[..., 1] = 12.0  # the two channels' mean is the grey level
        return levels

    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: FakeEstimator(reads_grey=True))
    monkeypatch.setattr(estimator_module, "estimate_map", read)
    estimate = estimate_noise_map(np.repeat(grey_noise_photo(10.0), channels, axis=2))
    assert seen == [(96, 128, 1)] and estimate.method == "network"
    assert estimate.grey == pytest.approx(11.0)
    np.testing.assert_allclose(estimate.levels[0, 0], np.array(GREY_MAP) * 11.0, rtol=1e-5)


def test_a_network_that_never_saw_grey_photos_leaves_them_to_pca(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_estimator: object, _pixels: np.ndarray) -> np.ndarray:
        raise AssertionError("a grey photo went to a network that reads grey noise as nothing")

    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: FakeEstimator(reads_grey=False))
    monkeypatch.setattr(estimator_module, "estimate_map", refuse)
    estimate = estimate_noise_map(grey_noise_photo(12.0))
    assert estimate.method == "pca" and estimate.grey is not None and 10 < estimate.grey < 14


@pytest.mark.parametrize(("sigma", "low", "high"), [(5.0, 4.0, 6.0), (15.0, 14.0, 16.0), (30.0, 29.0, 31.0)])
def test_auto_reads_a_grey_photos_noise_and_gives_the_model_its_grey_map(sigma: float, low: float,
                                                                         high: float) -> None:
    """A grey photo with white noise of known sigma, as the bundled setup reads it (the PCA estimate, the bundled
    network having never seen grey photos): 5.0 / 15.0 / 30.0 when written; the bounds leave 1 either side."""
    levels, estimate = levels_for(grey_noise_photo(sigma, size=(192, 256)), Strength())
    assert estimate is not None and estimate.grey is not None and low < estimate.grey < high, estimate.summary()
    np.testing.assert_allclose(levels[0, 0], np.minimum(np.array(GREY_MAP) * estimate.grey, MAX_SIGMA), rtol=1e-5)


def test_no_region_reads_below_the_photos_median_level(monkeypatch: pytest.MonkeyPatch) -> None:
    # Clipping hides noise at black and white: a region read low there would be denoised too little.
    class Fake:
        smallest_side = 16
        reads_grey = False

    levels = np.full((8, 8, 2), 30.0, np.float32)
    levels[:2, :, 0] = 5.0  # a saturated band reads low
    levels[6:, :, 1] = 60.0  # a noisier band stays as read
    monkeypatch.setattr(estimator_module, "bundled_estimator", lambda: Fake())
    monkeypatch.setattr(estimator_module, "estimate_map", lambda _estimator, _pixels: levels.copy())
    estimate = estimate_noise_map(white_noise_photo(10.0, size=(32, 32)))
    assert estimate.levels[:2, :, 0].min() == pytest.approx(30.0)
    assert estimate.levels[6:, :, 1].max() == pytest.approx(60.0)
