"""Display maths: blend, residual, latent thumbnails and the PCA colour map."""

from __future__ import annotations

import numpy as np

from denoiser.display import blend, latent_pca_rgb, latent_thumbnails, residual, to_uint8


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
