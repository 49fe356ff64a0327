"""Display maths: blend, residual, latent thumbnails, the PCA colour map and the noise map."""

from __future__ import annotations

import numpy as np
import pytest

from denoiser.display import (
    COLOUR_HUE,
    LUMINANCE_HUE,
    NOISE_MAP_KEY,
    blend,
    latent_pca_rgb,
    latent_thumbnails,
    noise_map_image,
    noise_map_legend,
    residual,
    to_uint8,
)


def test_blend_mixes_the_original_back() -> None:
    original, denoised = np.full((2, 2, 3), 0.8, np.float32), np.full((2, 2, 3), 0.4, np.float32)
    assert np.allclose(blend(original, denoised, 0.0), 0.4)
    assert np.allclose(blend(original, denoised, 1.0), 0.8)
    assert np.allclose(blend(original, denoised, 0.25), 0.5)
    assert np.allclose(blend(original, denoised, 7.0), 0.8)  # clamped


def test_residual_is_amplified_around_mid_grey() -> None:
    original = np.array([[[0.6]], [[0.5]]], np.float32)
    denoised = np.array([[[0.5]], [[0.5]]], np.float32)
    out = residual(original, denoised, gain=2.0)
    assert np.allclose(out[:, 0, 0], [0.7, 0.5])


def test_to_uint8_handles_each_depth() -> None:
    assert to_uint8(np.array([0.0, 0.5, 1.0], np.float32)).tolist() == [0, 128, 255]
    assert to_uint8(np.array([65535, 256], np.uint16)).tolist() == [255, 1]


def test_thumbnails_most_active_first() -> None:
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(5, 8, 8)).astype(np.float32) * np.array([1, 5, 0.1, 3, 0])[:, None, None]
    thumbs = latent_thumbnails(latent, count=3)
    assert [index for index, _, _ in thumbs] == [1, 3, 0]
    assert all(image.dtype == np.uint8 and image.shape == (8, 8) for _, _, image in thumbs)
    assert thumbs[0][2].min() == 0 and thumbs[0][2].max() == 255


def test_pca_rgb_puts_the_main_variation_in_red() -> None:
    y, x = np.mgrid[0:16, 0:16].astype(np.float32)
    # Channels are mixtures of a strong horizontal ramp and a weak vertical one.
    latent = np.stack([3 * x + 0.1 * y, 3 * x - 0.1 * y, 0.5 * y, np.zeros_like(x)])
    rgb = latent_pca_rgb(latent)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    red = rgb[:, :, 0].astype(float)
    assert abs(np.corrcoef(red.ravel(), x.ravel())[0, 1]) > 0.99
    assert abs(np.corrcoef(rgb[:, :, 1].astype(float).ravel(), y.ravel())[0, 1]) > 0.9


def test_pca_rgb_single_channel() -> None:
    rgb = latent_pca_rgb(np.arange(16, dtype=np.float32).reshape(1, 4, 4))
    assert rgb.shape == (4, 4, 3) and (rgb[:, :, 0] == rgb[:, :, 2]).all()


def test_noise_map_shows_luminance_and_colour_in_their_hues() -> None:
    levels = np.zeros((40, 60, 2), np.float32)
    levels[:, 20:40, 0] = 75.0  # luminance noise only in the middle third
    levels[:, 40:, 1] = 75.0  # colour noise only in the right third
    image = noise_map_image(levels, (40, 60))
    assert image.shape == (40, 60, 3) and image.dtype == np.uint8
    assert dict(NOISE_MAP_KEY)["clean"] == (0, 0, 0) == tuple(image[20, 5])
    assert image[20, 30].tolist() == list(LUMINANCE_HUE)
    assert image[20, 50].tolist() == list(COLOUR_HUE)
    both = noise_map_image(np.full((1, 1, 2), 75.0, np.float32), (3, 4))
    assert (both == 255).all()  # both at the top of the scale: white
    equal = noise_map_image(np.full((1, 1, 2), 20.0, np.float32), (1, 1))[0, 0]
    assert equal.max() - equal.min() <= 1  # equal levels: a neutral grey
    quarter = noise_map_image(np.array([[[75 / 4, 0]]], np.float32), (2, 2))[0, 0]
    assert np.allclose(quarter, np.array(LUMINANCE_HUE) / 2, atol=1)  # square-root brightness


def test_noise_map_fills_the_size_and_shrinks_big_maps_first() -> None:
    flat = noise_map_image(np.full((1, 1, 2), 10.0, np.float32), (30, 50))
    assert flat.shape == (30, 50, 3) and (flat == flat[0, 0]).all() and flat[0, 0].any()
    ramp = np.repeat(np.linspace(0, 75, 3000, dtype=np.float32)[None, :, None], 2000, axis=0)
    big = noise_map_image(np.repeat(ramp, 2, axis=2), (2000, 3000))
    assert big.shape == (2000, 3000, 3)
    assert big[1000, 10].sum() < big[1000, 1500].sum() < big[1000, 2990].sum()  # left to right, brighter
    one_channel = noise_map_image(np.full((4, 4), 30.0, np.float32), (4, 4))
    assert one_channel.shape == (4, 4, 3)
    with pytest.raises(ValueError):
        noise_map_image(np.zeros((4, 4, 3), np.float32), (4, 4))


def test_noise_map_legend_gives_the_levels() -> None:
    levels = np.stack([np.full((4, 4), 3.0), np.linspace(1, 9, 16).reshape(4, 4)], axis=2).astype(np.float32)
    lines = noise_map_legend(levels)
    assert "75" in lines[0]
    assert lines[1] == "luminance sigma: min 3.0, median 3.0, max 3.0"
    assert lines[2] == "colour sigma: min 1.0, median 5.0, max 9.0"
    flat = noise_map_legend(np.array([[[4.0, 6.5]]], np.float32), method="pca")
    assert flat[1:] == ["luminance sigma 4.0 everywhere", "colour sigma 6.5 everywhere",
                        "one level for the whole photo (PCA estimate)"]
