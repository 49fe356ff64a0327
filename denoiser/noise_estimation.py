"""Reading a photo's noise level with PCA.

``estimate_noise`` implements the PCA method of Chen, Zhu and Heng, "An Efficient Statistical Method for
Image Noise Level Estimation" (ICCV 2015): the eigenvalues of the covariance of image patches that belong
only to noise all equal sigma^2; the method finds the largest tail of eigenvalues whose mean equals its
median and takes that mean. Unlike Immerkaer's filter it is not fooled by texture, which is what a photo's
"auto" strength needs. A photo too small for enough 7 x 7 patches (a thumbnail, a strip a few pixels thin) is read
in smaller ones, :func:`workable_patch`; one too small for any (1 x 1) has no reading. :func:`weak_texture_noise`
reads the level on low-texture patches only (Liu et al. 2013).
"""

from __future__ import annotations

import math

import numpy as np

from denoiser.errors import DenoiserError


def to_255(image: np.ndarray) -> np.ndarray:
    """Pixels (uint8, uint16, or float in 0-1) as float64 in 0-255 units."""
    if image.dtype == np.uint8:
        return image.astype(np.float64)
    if image.dtype == np.uint16:
        return image.astype(np.float64) * (255.0 / 65535.0)
    return image.astype(np.float64) * 255.0


def patch_matrix(image: np.ndarray, patch: tuple[int, int], max_patches: int, seed: int) -> np.ndarray:
    """Rows are flattened rows x columns x C patches taken on a grid (a seeded subset when there are many)."""
    height, width, channels = image.shape
    patch_rows, patch_cols = patch
    ys = np.arange(0, height - patch_rows + 1)
    xs = np.arange(0, width - patch_cols + 1)
    count = len(ys) * len(xs)
    if count > max_patches:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(count, size=max_patches, replace=False)
        top, left = ys[chosen // len(xs)], xs[chosen % len(xs)]
    else:
        grid_y, grid_x = np.meshgrid(ys, xs, indexing="ij")
        top, left = grid_y.ravel(), grid_x.ravel()
    offsets_y, offsets_x = np.meshgrid(np.arange(patch_rows), np.arange(patch_cols), indexing="ij")
    rows = top[:, None] + offsets_y.ravel()[None, :]
    cols = left[:, None] + offsets_x.ravel()[None, :]
    return image[rows, cols, :].reshape(len(top), patch_rows * patch_cols * channels)


PATCH = 7
"""The side of the square patches :func:`estimate_noise` reads a photo in (Chen et al.'s choice)."""

MIN_PATCH_VALUES = 12
"""The fewest values (rows x columns x channels) a patch may hold when a photo is too small for 7 x 7 patches: in
fewer, picture detail cannot be told from noise. Measured on noisy crops of 12 Kodak24 photos (seeded Gaussian
noise of sigma 5, 15 and 30, clipped 8-bit; error of the reading, 10th to 90th percentile): a grey line read in
1 x 7 patches (7 values) over-read by up to 164 %, grey 2 x 7 patches (14) by up to 81 %, colour 2 x 2 patches (12)
on 6 x 6 crops read -36 to 0 %."""

MIN_PATCHES_PER_VALUE = 2
"""The fewest patches per patch value a reading needs. With fewer, the patches' covariance has too few samples for
its smallest eigenvalues and the reading collapses towards 0 (same crops as :data:`MIN_PATCH_VALUES`): colour 7 x 7
patches (147 values) read 100 % low on 10 x 10 to 16 x 16 crops (16 to 100 patches), 67 % low on 20 x 20 (196),
38 % low on 24 x 24 (324, 2.2 per value); at the limit, grey 7 x 7 patches on 16 x 16 crops (2.04 per value)
read 21 % low."""

AMPLE_PATCHES_PER_VALUE = 8
"""Patches per value at which a smaller patch reads about as well as 7 x 7 ones on a big photo. On the crops of
:data:`MIN_PATCH_VALUES`, colour photos of 10 x 10 to 23 x 23 pixels and colour strips 1 to 6 pixels thin read 0 to
6 % low (10th to 90th percentile -15 to +7 %) in the largest patch they hold this many of, and 10 to 34 % low in
the largest they hold 2 of per value; grey ones read within +8 % at the median, but up to 81 % high at the 90th
percentile on a 2-pixel grey strip (a grey patch has a third of a colour one's values to tell texture by)."""


def workable_patch(height: int, width: int, channels: int) -> tuple[int, int] | None:
    """The patch (rows, columns) :func:`estimate_noise` can read an H x W x C photo in; None when there is none.

    The usual 7 x 7 whenever the photo holds at least :data:`MIN_PATCHES_PER_VALUE` patches per value of one
    (colour photos from 24 x 24 pixels, grey ones from 16 x 16, strips 8 pixels thin and a few hundred long):
    those are read as they always were. For a smaller photo, a patch of at most 7 x 7 pixels and at least
    :data:`MIN_PATCH_VALUES` values that the photo holds :data:`MIN_PATCHES_PER_VALUE` of per value: the one with
    the most values among those it holds :data:`AMPLE_PATCHES_PER_VALUE` of per value, else the one it holds the
    most of per value. A 2 x 2000 colour strip is read in 2 x 7 patches, a 6 x 6 colour photo in 2 x 2 ones.
    None when no patch qualifies (1 x 1, a 6 x 6 grey photo, a one-pixel grey line): nothing in such a photo
    tells its noise from its picture.
    """
    def per_value(rows: int, cols: int) -> float:
        return (height - rows + 1) * (width - cols + 1) / (rows * cols * channels)

    if height >= PATCH and width >= PATCH and per_value(PATCH, PATCH) >= MIN_PATCHES_PER_VALUE:
        return (PATCH, PATCH)
    candidates = [(rows, cols) for rows in range(1, min(PATCH, height) + 1) for cols in range(1, min(PATCH, width) + 1)
                  if rows * cols * channels >= MIN_PATCH_VALUES and per_value(rows, cols) >= MIN_PATCHES_PER_VALUE]
    ample = [patch for patch in candidates if per_value(*patch) >= AMPLE_PATCHES_PER_VALUE]
    if ample:
        return max(ample, key=lambda patch: (patch[0] * patch[1], min(patch), patch[1]))
    if candidates:
        return max(candidates, key=lambda patch: (per_value(*patch), min(patch), patch[1]))
    return None


def estimate_noise(image: np.ndarray, *, patch: int | tuple[int, int] = PATCH, max_patches: int = 60000,
                   seed: int = 0) -> float:
    """Estimated standard deviation of additive white noise, in 0-255 units.

    ``image`` is H x W or H x W x C (uint8, uint16, or float in 0-1); alpha should be dropped first. ``patch`` is
    the side of the square patches read, or their (rows, columns): :func:`workable_patch` picks one for a photo
    too small for the usual 7 x 7. :class:`DenoiserError` when the image is smaller than the patch.
    Deterministic: when there are more than ``max_patches`` patches a seeded subset is used.
    """
    patch_rows, patch_cols = (patch, patch) if isinstance(patch, int) else patch
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[0] < patch_rows or image.shape[1] < patch_cols:
        needs = f"{patch_rows}x{patch_cols}"
        raise DenoiserError(f"image of shape {image.shape} is too small to estimate noise (needs {needs})")
    pixels = to_255(image)
    data = patch_matrix(pixels, (patch_rows, patch_cols), max_patches, seed)
    measured = pca_noise(data)
    if pixels.min() < 0 or pixels.max() > 255:
        return measured  # float data beyond 0-1: not clipped, nothing to undo
    channel_means = data.reshape(len(data), patch_rows * patch_cols, -1).mean(axis=1)
    return unclipped_sigma(measured, channel_means.ravel())


def _censored_variance(mean: np.ndarray, sigma: float, low: float = 0.0, high: float = 255.0) -> np.ndarray:
    """Variance of ``clip(N(mean, sigma^2), low, high)`` for each mean (the censored normal's closed form)."""
    alpha, beta = (low - mean) / sigma, (high - mean) / sigma
    cdf_a, cdf_b = _normal_cdf(alpha), _normal_cdf(beta)
    pdf_a, pdf_b = np.exp(-alpha**2 / 2) / math.sqrt(2 * math.pi), np.exp(-beta**2 / 2) / math.sqrt(2 * math.pi)
    inside = cdf_b - cdf_a
    first = low * cdf_a + high * (1 - cdf_b) + mean * inside + sigma * (pdf_a - pdf_b)
    second = (low**2 * cdf_a + high**2 * (1 - cdf_b) + mean**2 * inside + 2 * mean * sigma * (pdf_a - pdf_b)
              + sigma**2 * (inside + alpha * pdf_a - beta * pdf_b))
    return np.maximum(second - first**2, 0.0)


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(z / math.sqrt(2.0)))


_erf = np.vectorize(math.erf, otypes=[float])


def unclipped_sigma(measured: float, means: np.ndarray, iterations: int = 8) -> float:
    """The sigma of the noise before 0-255 clipping that reads as ``measured`` after it.

    Clipping takes noise away near black and white: with sigma 50, a saved photo reads about 46. The measured
    variance is about the mean, over the patches (their channel means ``means``), of the clipped variance; this
    solves that for sigma by fixed-point iteration, at most 1.5 times the measured value.
    """
    if measured < 1.0:
        return measured  # practically no noise: nothing clipped that matters
    levels, counts = np.unique(np.clip(np.round(means), 0, 255), return_counts=True)
    weights = counts / counts.sum()
    sigma = measured
    for _ in range(iterations):
        kept = float(np.sum(weights * _censored_variance(levels, sigma))) / sigma**2
        sigma = min(1.5 * measured, measured / math.sqrt(max(kept, 1e-6)))
    return float(sigma)


def pca_noise(data: np.ndarray) -> float:
    """Chen et al.'s estimate from a patch matrix: the mean of the trailing eigenvalues that look like noise."""
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


WEAK_TEXTURE_QUANTILE_Z = 2.3263
"""The standard normal's 99 % quantile: :func:`weak_texture_noise` keeps a patch of pure noise 99 times in 100
(Liu et al.'s level)."""


def weak_texture_noise(patches: np.ndarray, iterations: int = 5) -> float:
    """The PCA estimate (:func:`pca_noise`) read in the weak-textured patches only: the white noise's standard deviation
    in the units of ``patches`` (N x rows x columns grey patches, N x rows x columns x C colour ones).

    Liu, Tanaka and Okutomi, "Single-image noise level estimation for blind denoising" (IEEE TIP 2013): a patch
    whose gradient energy (the sum of its squared differences between neighbours) is more than pure noise of the
    current estimate would give 99 times in 100 holds picture detail, and is left out; the estimate is read again
    in the rest, until it settles. A grey channel's fine texture (grass, fur) reads as noise to the plain PCA
    estimate, which has no colour channels to tell them apart by: on 13 clean photos held out of CBSD432, read in
    their luminance alone, the plain estimate found sigma 2.6-13 (mean 6.8), this one 0.0-3.5 (mean 0.5); with white
    noise added both read it (this one about 6 % low). When too few patches pass (under two per patch value), the
    last estimate stands (at first, that of all patches).
    """
    count = len(patches)
    values = patches[0].size
    energy = (np.diff(patches, axis=1) ** 2).reshape(count, -1).sum(axis=1) \
        + (np.diff(patches, axis=2) ** 2).reshape(count, -1).sum(axis=1)
    rows, cols = patches.shape[1:3]
    channels = values // (rows * cols)
    # Pure noise of sigma s gives energy s^2 times a weighted chi-square, which Liu et al. take as Gamma with shape
    # N/2 and mean s^2 * (number of differences * 2); Wilson and Hilferty's cube-root normal gives its quantile.
    differences = channels * (rows * (cols - 1) + (rows - 1) * cols)
    dof = float(values)
    quantile = (1 - 2 / (9 * dof) + WEAK_TEXTURE_QUANTILE_Z * math.sqrt(2 / (9 * dof))) ** 3
    threshold = 2.0 * differences * quantile
    data = patches.reshape(count, -1)
    sigma = pca_noise(data)
    for _ in range(iterations):
        chosen = energy < threshold * sigma**2
        if np.count_nonzero(chosen) < MIN_PATCHES_PER_VALUE * values:
            break
        previous, sigma = sigma, pca_noise(data[chosen])
        if abs(sigma - previous) < 0.01:
            break
    return sigma
