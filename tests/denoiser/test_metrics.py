"""PSNR and SSIM against known values and against scikit-image's reference implementation when present."""

from __future__ import annotations

import numpy as np
import pytest

from denoiser.metrics import psnr, ssim


def test_psnr_known_value() -> None:
    a = np.zeros((4, 4), np.uint8)
    b = np.full((4, 4), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(a, a) == float("inf")


def test_ssim_identity_and_degradation() -> None:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:40]
    image = np.stack([x * 4, y * 4, (x + y) * 2], axis=2).clip(0, 255).astype(np.uint8)
    assert ssim(image, image) == pytest.approx(1.0)
    noisy = np.clip(image + rng.normal(0, 30, image.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(image, noisy) < 0.9


def test_ssim_matches_scikit_image() -> None:
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:64, 0:80]
    clean = np.stack([x * 3, y * 3, (x + y) * 1.5], axis=2).clip(0, 255).astype(np.uint8)
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype(np.uint8)
    reference = metrics.structural_similarity(clean, noisy, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=255)
    assert ssim(clean, noisy) == pytest.approx(reference, abs=2e-3)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError):
        ssim(np.zeros((4, 4)), np.zeros((4, 5)))
