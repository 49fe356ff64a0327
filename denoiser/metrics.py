"""Image quality figures against a clean reference: PSNR and SSIM (Wang et al., 2004).

SSIM follows the reference implementation: Gaussian window 11 x 11 with sigma 1.5, K1 = 0.01, K2 = 0.03,
computed per channel on the valid region and averaged, on images in the same 0-``peak`` range.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def psnr(reference: np.ndarray, estimate: np.ndarray, peak: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shaped arrays on the same scale."""
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {estimate.shape}")
    mse = np.mean((reference.astype(np.float64) - estimate.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * math.log10(peak**2 / mse))


def ssim(reference: np.ndarray, estimate: np.ndarray, peak: float = 255.0) -> float:
    """Mean structural similarity of two same-shaped H x W or H x W x C images on the same scale."""
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: {reference.shape} vs {estimate.shape}")
    a = reference.astype(np.float64)
    b = estimate.astype(np.float64)
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    window = cv2.getGaussianKernel(11, 1.5)
    kernel = window @ window.T
    scores = []
    for channel in range(a.shape[2]):
        x, y = a[:, :, channel], b[:, :, channel]

        def blur(image: np.ndarray) -> np.ndarray:
            return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)[5:-5, 5:-5]

        mu_x, mu_y = blur(x), blur(y)
        sigma_x = blur(x * x) - mu_x**2
        sigma_y = blur(y * y) - mu_y**2
        sigma_xy = blur(x * y) - mu_x * mu_y
        numerator = (2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)
        denominator = (mu_x**2 + mu_y**2 + c1) * (sigma_x + sigma_y + c2)
        scores.append(float(np.mean(numerator / denominator)))
    return float(np.mean(scores))
