"""Synthetic noise (the benchmark protocol's Gaussian noise) and noise-level estimation.

``estimate_noise`` implements the PCA method of Chen, Zhu and Heng, "An Efficient Statistical Method for
Image Noise Level Estimation" (ICCV 2015): the eigenvalues of the covariance of image patches that belong
only to noise all equal sigma^2; the method finds the largest tail of eigenvalues whose mean equals its
median and takes that mean. Unlike Immerkaer's filter it is not fooled by texture, which is what a photo's
"auto" strength needs.
"""

from __future__ import annotations

import numpy as np

from denoiser.errors import DenoiserError


def add_gaussian_noise(clean: np.ndarray, sigma: float, seed: int | None = None) -> np.ndarray:
    """The benchmark protocol: ``clip(round(clean + N(0, sigma^2)), 0, 255)`` as uint8.

    ``clean`` is uint8; the noise is drawn with ``numpy.random.default_rng(seed)``.
    """
    if clean.dtype != np.uint8:
        raise DenoiserError(f"add_gaussian_noise expects uint8 pixels, got {clean.dtype}")
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _to_255(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if image.dtype == np.uint16:
        return image.astype(np.float64) * (255.0 / 65535.0)
    return image.astype(np.float64) * 255.0


def _patch_matrix(image: np.ndarray, patch: int, max_patches: int, seed: int) -> np.ndarray:
    """Rows are flattened patch x patch x C patches taken on a grid (a seeded subset when there are many)."""
    height, width, channels = image.shape
    ys = np.arange(0, height - patch + 1)
    xs = np.arange(0, width - patch + 1)
    count = len(ys) * len(xs)
    if count > max_patches:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(count, size=max_patches, replace=False)
        top, left = ys[chosen // len(xs)], xs[chosen % len(xs)]
    else:
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        top, left = grid_y.ravel(), grid_x.ravel()
    offsets_y, offsets_x = np.meshgrid(np.arange(patch), np.arange(patch), indexing="ij")
    rows = top[:, None] + offsets_y.ravel()[None, :]
    cols = left[:, None] + offsets_x.ravel()[None, :]
    return image[rows, cols, :].reshape(len(top), patch * patch * channels)


def estimate_noise(image: np.ndarray, *, patch: int = 7, max_patches: int = 60000, seed: int = 0) -> float:
    """Estimated standard deviation of additive white noise, in 0-255 units.

    ``image`` is H x W or H x W x C (uint8, uint16, or float in 0-1); alpha should be dropped first.
    Deterministic: when there are more than ``max_patches`` patches a seeded subset is used.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or min(image.shape[:2]) < patch:
        raise DenoiserError(f"image of shape {image.shape} is too small to estimate noise (needs {patch}x{patch})")
    data = _patch_matrix(_to_255(image), patch, max_patches, seed)
    data = data - data.mean(axis=0, keepdims=True)
    covariance = data.T @ data / len(data)
    eigenvalues = np.sort(np.linalg.eigvalsh(covariance))[::-1]  # descending
    eigenvalues = np.clip(eigenvalues, 0.0, None)
    for start in range(len(eigenvalues)):
        tail = eigenvalues[start:]
        mean = tail.mean()
        if np.sum(tail > mean) >= np.sum(tail < mean):
            return float(np.sqrt(mean))
    return float(np.sqrt(eigenvalues[-1]))
