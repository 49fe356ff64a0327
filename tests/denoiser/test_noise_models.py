"""Training noise models: each model's statistics match the noise map it reports, and NoiseMix validates."""

from __future__ import annotations

import numpy as np
import pytest

from denoiser.config import ConfigError
from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.noise import NOISE_MODELS, NoiseMix, synthesize

ALONE = {
    "gaussian": NoiseMix(models=("gaussian",)),
    "poisson_gaussian": NoiseMix(models=("poisson_gaussian",)),
    "correlated": NoiseMix(models=("correlated",)),
    # jpeg only post-processes a base model's noise; probability 1 so every patch goes through it.
    "jpeg": NoiseMix(models=("gaussian", "jpeg"), jpeg_probability=1.0),
}


def gradient_batch(count: int = 4, channels: int = 3, size: int = 32) -> np.ndarray:
    """Clean float32 patches in (0, 1) with different content per patch and channel."""
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    patches = [
        [0.1 + 0.8 * (x * (c + 1) / channels + y * (n + 1) / count) / 2 for c in range(channels)]
        for n in range(count)
    ]
    return np.asarray(patches, dtype=np.float32)


def flat_batch(levels: list[float], channels: int = 3, size: int = 64) -> np.ndarray:
    shape = (len(levels), channels, size, size)
    return np.broadcast_to(np.asarray(levels, np.float32)[:, None, None, None], shape).copy()


def neighbour_correlation(noise: np.ndarray) -> np.ndarray:
    """Per patch: correlation of each pixel's noise with its right-hand neighbour's (all channels pooled)."""
    left, right = noise[..., :-1].reshape(len(noise), -1), noise[..., 1:].reshape(len(noise), -1)
    return np.array([np.corrcoef(a, b)[0, 1] for a, b in zip(left, right, strict=True)])


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", list(ALONE))
def test_each_model_shapes_dtypes_and_determinism(name: str, channels: int) -> None:
    clean = gradient_batch(channels=channels)
    noisy, noise_map = synthesize(clean, ALONE[name], np.random.default_rng(5))
    assert noisy.shape == clean.shape and noisy.dtype == np.float32
    assert noise_map.shape == (4, 1, 32, 32) and noise_map.dtype == np.float32
    assert np.all(np.isfinite(noisy)) and np.all(noise_map >= 0)
    again, again_map = synthesize(clean, ALONE[name], np.random.default_rng(5))
    np.testing.assert_array_equal(noisy, again)
    np.testing.assert_array_equal(noise_map, again_map)
    other, _ = synthesize(clean, ALONE[name], np.random.default_rng(6))
    assert not np.array_equal(noisy, other)
    assert not np.array_equal(noisy, clean)


def test_gaussian_std_matches_map_per_patch() -> None:
    clean = gradient_batch(count=4, size=64)
    mix = NoiseMix(models=("gaussian",), sigma_min=25, sigma_max=25)
    noisy, noise_map = synthesize(clean, mix, np.random.default_rng(0))
    np.testing.assert_allclose(noise_map, 25 / 255, rtol=1e-6)
    for noise, level in zip(noisy - clean, noise_map, strict=True):
        assert noise.std() == pytest.approx(level.mean(), rel=0.05)
        assert abs(noise.mean()) < 0.05 * level.mean()


def test_gaussian_sigma_varies_per_patch_within_range() -> None:
    _, noise_map = synthesize(gradient_batch(count=8), NoiseMix(sigma_min=10, sigma_max=50), np.random.default_rng(1))
    sigmas = noise_map[:, 0, 0, 0] * 255
    assert np.all((sigmas >= 10) & (sigmas <= 50)) and np.ptp(sigmas) > 5
    assert np.all(noise_map == noise_map[:, :, :1, :1])  # constant within each patch


def test_poisson_gaussian_variance_grows_with_brightness_and_matches_map() -> None:
    clean = flat_batch([0.05, 0.3, 0.8], size=96)
    mix = NoiseMix(models=("poisson_gaussian",), poisson_peak_min=30, poisson_peak_max=30, read_sigma_max=5)
    noisy, noise_map = synthesize(clean, mix, np.random.default_rng(2))
    variances = (noisy - clean).reshape(3, -1).var(axis=1)
    predicted = (noise_map**2).reshape(3, -1).mean(axis=1)
    assert variances[0] < variances[1] < variances[2]
    assert variances[2] > 5 * variances[0]
    np.testing.assert_allclose(variances, predicted, rtol=0.10)
    assert np.all(noise_map[2] > noise_map[0])
    # The shot noise is unbiased: the mean of the noisy patch is the clean level.
    np.testing.assert_allclose(noisy.reshape(3, -1).mean(axis=1), [0.05, 0.3, 0.8], atol=0.005)


def test_poisson_map_follows_the_clean_signal_per_pixel() -> None:
    clean = gradient_batch(count=2)
    mix = NoiseMix(models=("poisson_gaussian",), poisson_peak_min=50, poisson_peak_max=50, read_sigma_max=0)
    _, noise_map = synthesize(clean, mix, np.random.default_rng(3))
    np.testing.assert_allclose(noise_map, np.sqrt(clean.mean(axis=1, keepdims=True) / 50), rtol=1e-5)


def test_correlated_noise_is_spatially_and_cross_channel_correlated_with_right_std() -> None:
    clean = gradient_batch(count=8, size=64)
    mix = NoiseMix(models=("correlated",), sigma_min=25, sigma_max=25, correlation_max=1.5)
    noisy, noise_map = synthesize(clean, mix, np.random.default_rng(4))
    noise = noisy - clean
    np.testing.assert_allclose(noise_map, 25 / 255, rtol=1e-6)
    assert neighbour_correlation(noise).mean() > 0.2
    red, green = noise[:, 0].reshape(8, -1), noise[:, 1].reshape(8, -1)
    cross = np.array([np.corrcoef(r, g)[0, 1] for r, g in zip(red, green, strict=True)])
    assert cross.mean() > 0.15 and np.all(cross > -0.1)
    # The blur is compensated: the marginal std is sigma, overall and patch by patch.
    assert noise.std() == pytest.approx(25 / 255, rel=0.05)
    for patch in noise:
        assert patch.std() == pytest.approx(25 / 255, rel=0.10)

    white, _ = synthesize(clean, NoiseMix(models=("gaussian",), sigma_min=25, sigma_max=25), np.random.default_rng(4))
    assert np.all(np.abs(neighbour_correlation(white - clean)) < 0.05)


def test_correlated_grey_keeps_its_std() -> None:
    clean = gradient_batch(count=4, channels=1, size=64)
    mix = NoiseMix(models=("correlated",), sigma_min=20, sigma_max=20, correlation_max=2.0)
    noisy, _ = synthesize(clean, mix, np.random.default_rng(8))
    assert (noisy - clean).std() == pytest.approx(20 / 255, rel=0.08)
    assert neighbour_correlation(noisy - clean).mean() > 0.2


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_output_is_on_uint8_levels_and_differs_from_plain_noise(channels: int) -> None:
    clean = gradient_batch(channels=channels)
    plain_mix = NoiseMix(models=("gaussian",), sigma_min=15, sigma_max=15)
    jpeg_mix = NoiseMix(models=("gaussian", "jpeg"), sigma_min=15, sigma_max=15, jpeg_probability=1.0,
                        jpeg_quality_min=70, jpeg_quality_max=80)
    plain, plain_map = synthesize(clean, plain_mix, np.random.default_rng(9))
    compressed, jpeg_map = synthesize(clean, jpeg_mix, np.random.default_rng(9))
    levels = compressed * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-3)
    assert compressed.min() >= 0 and compressed.max() <= 1
    # Same base noise (JPEG draws come last), so the only difference is the compression itself.
    quantised = np.clip(np.round(plain * 255), 0, 255) / 255
    assert np.abs(compressed - quantised).mean() > 2 / 255
    np.testing.assert_array_equal(jpeg_map, plain_map)  # the map stays the base noise's


def test_quantize_rounds_and_clips_like_a_saved_photo_and_keeps_the_map() -> None:
    # Dark and bright patches, so that sigma 50 pushes many pixels past 0 and 1.
    clean = flat_batch([0.02, 0.5, 0.97, 0.3], size=32)
    plain_mix = NoiseMix(models=("gaussian",), sigma_min=50, sigma_max=50)
    saved_mix = NoiseMix(models=("gaussian",), sigma_min=50, sigma_max=50, quantize=True)
    plain, plain_map = synthesize(clean, plain_mix, np.random.default_rng(4))
    saved, saved_map = synthesize(clean, saved_mix, np.random.default_rng(4))
    assert plain.min() < 0 and plain.max() > 1  # the test needs noise that crosses the ends
    assert saved.dtype == np.float32 and saved.min() == 0 and saved.max() == 1
    np.testing.assert_allclose(saved * 255, np.round(saved * 255), atol=1e-4)
    np.testing.assert_allclose(saved, np.clip(np.round(plain * 255), 0, 255) / 255, atol=1e-6)
    np.testing.assert_array_equal(saved_map, plain_map)  # the map keeps the sigma before clipping
    assert NoiseMix.from_dict(saved_mix.to_dict()).quantize is True
    with pytest.raises(ConfigError):
        NoiseMix(quantize="yes").validate()  # type: ignore[arg-type]


def test_jpeg_default_probability_when_listed_with_zero() -> None:
    clean = gradient_batch(count=32, size=16)
    noisy, _ = synthesize(clean, NoiseMix(models=("gaussian", "jpeg"), sigma_min=10, sigma_max=10),
                          np.random.default_rng(10))
    levels = noisy.reshape(32, -1) * 255
    on_levels = np.all(np.abs(levels - np.round(levels)) < 1e-3, axis=1)
    assert 0 < on_levels.sum() < 32  # about 30 % of the patches


def test_mix_draws_a_base_model_per_patch() -> None:
    clean = gradient_batch(count=16)
    _, noise_map = synthesize(clean, NoiseMix(models=("gaussian", "poisson_gaussian")), np.random.default_rng(11))
    constant = np.all(noise_map == noise_map[:, :, :1, :1], axis=(1, 2, 3))  # gaussian; poisson follows the signal
    assert 0 < constant.sum() < 16


def test_unknown_model_name_lists_known_names() -> None:
    with pytest.raises(UnknownNameError) as caught:
        NoiseMix(models=("gaussian", "speckle")).validate()
    message = str(caught.value)
    assert "speckle" in message and all(name in message for name in NOISE_MODELS)
    assert caught.value.known == list(NOISE_MODELS)


@pytest.mark.parametrize(
    "changes",
    [
        {"models": ()},
        {"models": ("jpeg",)},
        {"models": ("gaussian", "gaussian")},
        {"sigma_min": 30, "sigma_max": 20},
        {"sigma_max": 300},
        {"sigma_min": -1},
        {"sigma_max": float("nan")},
        {"poisson_peak_min": 0},
        {"poisson_peak_min": 100, "poisson_peak_max": 50},
        {"read_sigma_max": -1},
        {"correlation_max": 0.1},
        {"jpeg_probability": 1.5},
        {"jpeg_quality_min": 0},
        {"jpeg_quality_min": 90, "jpeg_quality_max": 80},
        {"jpeg_quality_max": 101},
        {"jpeg_quality_min": 60.5},
    ],
)
def test_bad_ranges_raise_config_error(changes: dict[str, object]) -> None:
    mix = NoiseMix(**changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        mix.validate()
    with pytest.raises(ConfigError):
        synthesize(gradient_batch(count=1, size=8), mix, np.random.default_rng(0))


def test_defaults_are_valid_and_json_round_trips() -> None:
    NoiseMix().validate()
    mix = NoiseMix(models=("poisson_gaussian", "correlated", "jpeg"), sigma_min=5, sigma_max=40, poisson_peak_min=10,
                   read_sigma_max=3, correlation_max=2.0, jpeg_probability=0.5, jpeg_quality_min=70)
    back = NoiseMix.from_json(mix.to_json())
    assert back == mix and isinstance(back.models, tuple)
    with pytest.raises(UnknownNameError):
        NoiseMix.from_dict({**mix.to_dict(), "models": ["gaussian", "blur"]})


def test_bad_batches_are_refused() -> None:
    with pytest.raises(DenoiserError):
        synthesize((gradient_batch() * 255).astype(np.uint8), NoiseMix(), np.random.default_rng(0))
    with pytest.raises(DenoiserError):
        synthesize(gradient_batch()[:, :2], NoiseMix(), np.random.default_rng(0))
    with pytest.raises(DenoiserError):
        synthesize(gradient_batch()[0], NoiseMix(), np.random.default_rng(0))
