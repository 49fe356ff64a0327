"""Synthetic noise (the benchmark protocol's Gaussian noise, training noise models) and noise-level estimation.

``estimate_noise`` implements the PCA method of Chen, Zhu and Heng, "An Efficient Statistical Method for
Image Noise Level Estimation" (ICCV 2015): the eigenvalues of the covariance of image patches that belong
only to noise all equal sigma^2; the method finds the largest tail of eigenvalues whose mean equals its
median and takes that mean. Unlike Immerkaer's filter it is not fooled by texture, which is what a photo's
"auto" strength needs. A photo too small for enough 7 x 7 patches (a thumbnail, a strip a few pixels thin) is read
in smaller ones, :func:`workable_patch`; one too small for any (1 x 1) has no reading.

:func:`synthesize` makes training pairs from a :class:`NoiseMix` of noise models (white Gaussian, camera-like
Poisson-Gaussian, spatially and cross-channel correlated, optionally followed by JPEG), together with the
per-pixel noise-level map the models take as input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from denoiser.config import VersionedConfig, require
from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.io import from_float, to_float

MAX_SIGMA = 75.0
"""The top of the noise range (sigma in 8-bit units) the models are trained on and the strength control covers."""



def add_gaussian_noise(clean: np.ndarray, sigma: float, seed: int | None = None) -> np.ndarray:
    """The benchmark protocol: ``clip(round(clean + N(0, sigma^2)), 0, 255)`` as uint8.

    ``clean`` is uint8; the noise is drawn with ``numpy.random.default_rng(seed)``.
    """
    if clean.dtype != np.uint8:
        raise DenoiserError(f"add_gaussian_noise expects uint8 pixels, got {clean.dtype}")
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def float_noisy(clean: np.ndarray, sigma: float, seed: int | None = None) -> np.ndarray:
    """The float protocol's input: ``clean/255 + N(0, sigma^2)/255`` as float32 in 0-1 units, unrounded, unclipped.

    The noise is :func:`add_gaussian_noise`'s very draws (``numpy.random.default_rng(seed)``, one normal per pixel,
    in the same order), so rounding and clipping ``255 * float_noisy(...)`` gives the clipped protocol's input (up to
    float32 precision at exact .5 boundaries). Sigma 0 gives ``clean/255``.
    """
    if clean.dtype != np.uint8:
        raise DenoiserError(f"float_noisy expects uint8 pixels, got {clean.dtype}")
    rng = np.random.default_rng(seed)
    noisy = clean.astype(np.float64) + rng.normal(0.0, sigma, clean.shape)
    return (noisy / 255.0).astype(np.float32)


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


# ---------------------------------------------------------------------------------------------------------------
# Training noise models
# ---------------------------------------------------------------------------------------------------------------

NOISE_MODELS: tuple[str, ...] = ("gaussian", "poisson_gaussian", "correlated", "jpeg")

# "jpeg" is not a noise of its own but a post-process on top of a base model's noise.
_POST_PROCESSES = ("jpeg",)
_DEFAULT_JPEG_PROBABILITY = 0.3  # used when "jpeg" is listed but jpeg_probability is left at 0
_BLUR_MIN = 0.3  # smallest blur sigma (pixels) of correlated noise; below it the kernel is practically a delta
_RHO_MAX = 0.8  # largest cross-channel correlation of correlated noise


@dataclass
class NoiseMix(VersionedConfig):
    """Which noise models a training batch draws from, with their ranges (sigmas in 0-255 units).

    Each patch of a batch draws one base model uniformly among the non-jpeg ``models``; when ``"jpeg"`` is
    listed, JPEG compression then follows the noise with probability ``jpeg_probability`` (0.3 when that is
    left at 0). ``jpeg_probability`` is ignored when ``"jpeg"`` is not listed.

    * gaussian: white noise, sigma ~ U[sigma_min, sigma_max] per patch.
    * poisson_gaussian: photon noise with peak (photons at white) ~ logU[poisson_peak_min, poisson_peak_max]
      plus read noise of sigma ~ U[0, read_sigma_max].
    * correlated: Gaussian noise of sigma ~ U[sigma_min, sigma_max] blurred by a Gaussian of sigma
      ~ U[0.3, correlation_max] pixels, with cross-channel correlation ~ U[0, 0.8] (colour only).
    * jpeg: quality ~ U{jpeg_quality_min..jpeg_quality_max}.

    With ``quantize``, every noisy patch (or a ``quantize_probability`` share of them) is then rounded to 8-bit
    levels and clipped to [0, 1], as a saved photo is and as the benchmark protocol's noisy input is: the model
    sees the clipped noise of dark and bright areas that it meets in use (the noise map keeps the sigma of the
    noise before clipping). The rest keep float noise, as 16-bit and float images do.
    """

    models: tuple[str, ...] = ("gaussian",)
    sigma_min: float = 0.0
    sigma_max: float = MAX_SIGMA
    poisson_peak_min: float = 5.0
    poisson_peak_max: float = 200.0
    read_sigma_max: float = 15.0
    correlation_max: float = 1.5
    jpeg_probability: float = 0.0
    jpeg_quality_min: int = 60
    jpeg_quality_max: int = 95
    quantize: bool = False
    quantize_probability: float = 1.0
    """With ``quantize``, the share of patches rounded and clipped; the rest keep float noise, as 16-bit scans,
    float images and RAW developments do (the published benchmarks' "float" protocol)."""

    def validate(self) -> None:
        """Raise :class:`UnknownNameError` for an unknown model, :class:`ConfigError` for a bad range."""
        require(isinstance(self.models, (tuple, list)) and len(self.models) > 0, "models must list noise models")
        for name in self.models:
            if name not in NOISE_MODELS:
                raise UnknownNameError("noise model", str(name), NOISE_MODELS)
        require(len(set(self.models)) == len(self.models), "models must not repeat a name")
        require(
            any(name not in _POST_PROCESSES for name in self.models),
            "models must list at least one noise model besides jpeg (jpeg only post-processes noise)",
        )
        require(0 <= self.sigma_min <= self.sigma_max <= 255, "need 0 <= sigma_min <= sigma_max <= 255")
        require(
            0 < self.poisson_peak_min <= self.poisson_peak_max <= 1e6,
            "need 0 < poisson_peak_min <= poisson_peak_max <= 1e6",
        )
        require(0 <= self.read_sigma_max <= 255, "read_sigma_max must be in [0, 255]")
        # Above ~10 pixels the kernel outgrows training patches and the noise is no longer "demosaicing-like".
        require(_BLUR_MIN <= self.correlation_max <= 10, f"correlation_max must be in [{_BLUR_MIN}, 10]")
        require(0 <= self.jpeg_probability <= 1, "jpeg_probability must be in [0, 1]")
        require(isinstance(self.quantize, bool), "quantize must be true or false")
        require(0 <= self.quantize_probability <= 1, "quantize_probability must be in [0, 1]")
        require(
            all(isinstance(q, (int, np.integer)) for q in (self.jpeg_quality_min, self.jpeg_quality_max)),
            "jpeg qualities must be integers",
        )
        require(
            1 <= self.jpeg_quality_min <= self.jpeg_quality_max <= 100,
            "need 1 <= jpeg_quality_min <= jpeg_quality_max <= 100",
        )

    def base_models(self) -> list[str]:
        """The listed models that add noise (everything but ``"jpeg"``), in listed order."""
        return [name for name in self.models if name not in _POST_PROCESSES]


def synthesize(clean: np.ndarray, mix: NoiseMix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noisy copies of a batch of clean patches and the per-pixel noise level of what was added.

    ``clean`` is float N x C x H x W in [0, 1] with C = 1 or 3. Returns ``(noisy, noise_map)``:

    * ``noisy``: float32, same shape, NOT clipped unless ``mix.quantize`` (then rounded to 8-bit levels and
      clipped to [0, 1]); patches that went through JPEG are quantised and clipped by construction;
    * ``noise_map``: float32 N x 1 x H x W, the per-pixel standard deviation of the added noise in 0-1
      units, averaged over channels as the root mean variance. After JPEG the map stays that of the base
      noise: JPEG removes part of the noise and adds artefacts that have no meaningful per-pixel sigma, and
      the user-facing strength of a JPEG photo is the noise the camera put in before compressing it.

    All randomness comes from ``rng``, in a fixed order (base-model choice, then each base model's draws,
    then JPEG's), so a seed gives the same batch, and two mixes that differ only in their JPEG settings give
    the same base noise.
    """
    mix.validate()
    clean = _check_batch(clean)
    count = clean.shape[0]
    base = mix.base_models()
    choice = rng.integers(len(base), size=count)
    noisy = np.empty_like(clean)
    noise_map = np.empty((count, 1, *clean.shape[2:]), dtype=np.float32)
    for index, name in enumerate(base):
        picked = np.flatnonzero(choice == index)
        if picked.size:
            noisy[picked], noise_map[picked] = _BASE_MODELS[name](clean[picked], mix, rng)
    if mix.quantize:
        # Draw only for a partial share, so a mix that quantises every patch keeps its seeds' batches.
        rounded = slice(None) if mix.quantize_probability >= 1 else rng.random(count) < mix.quantize_probability
        noisy[rounded] = np.clip(np.round(noisy[rounded] * 255.0), 0.0, 255.0) / np.float32(255.0)
    if "jpeg" in mix.models:
        probability = mix.jpeg_probability or _DEFAULT_JPEG_PROBABILITY
        apply = rng.random(count) < probability
        quality = rng.integers(mix.jpeg_quality_min, mix.jpeg_quality_max + 1, size=count)
        for i in np.flatnonzero(apply):
            noisy[i] = _jpeg_roundtrip(noisy[i], int(quality[i]))
    return noisy, noise_map


def _check_batch(clean: np.ndarray) -> np.ndarray:
    if not isinstance(clean, np.ndarray) or clean.ndim != 4 or clean.shape[1] not in (1, 3):
        shape = getattr(clean, "shape", None)
        raise DenoiserError(f"synthesize expects an N x C x H x W batch with C = 1 or 3, got shape {shape}")
    if not np.issubdtype(clean.dtype, np.floating):
        raise DenoiserError(f"synthesize expects float pixels in [0, 1], got {clean.dtype}")
    return np.ascontiguousarray(clean, dtype=np.float32)


def _per_patch(values: np.ndarray) -> np.ndarray:
    """N values shaped to broadcast against N x C x H x W."""
    return values.reshape(-1, 1, 1, 1)


def _constant_map(sigma: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    count, _, height, width = shape
    return np.broadcast_to(_per_patch(sigma).astype(np.float32), (count, 1, height, width)).copy()


def _gaussian(clean: np.ndarray, mix: NoiseMix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    sigma = rng.uniform(mix.sigma_min, mix.sigma_max, size=clean.shape[0]) / 255.0
    noise = rng.standard_normal(clean.shape, dtype=np.float32) * _per_patch(sigma).astype(np.float32)
    return clean + noise, _constant_map(sigma, clean.shape)


def _poisson_gaussian(clean: np.ndarray, mix: NoiseMix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    count = clean.shape[0]
    # Log-uniform: photon counts span orders of magnitude, and a uniform draw would almost never be dark.
    peak = _per_patch(np.exp(rng.uniform(np.log(mix.poisson_peak_min), np.log(mix.poisson_peak_max), size=count)))
    read = _per_patch(rng.uniform(0.0, mix.read_sigma_max, size=count) / 255.0)
    signal = np.clip(clean, 0.0, None).astype(np.float64)  # Poisson needs a non-negative rate
    shot = rng.poisson(signal * peak) / peak
    noisy = shot + rng.standard_normal(clean.shape) * read
    variance = signal.mean(axis=1, keepdims=True) / peak + read**2
    return noisy.astype(np.float32), np.sqrt(variance).astype(np.float32)


def _correlated(clean: np.ndarray, mix: NoiseMix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    count, channels, height, width = clean.shape
    sigma = rng.uniform(mix.sigma_min, mix.sigma_max, size=count) / 255.0
    blur = rng.uniform(_BLUR_MIN, mix.correlation_max, size=count)
    rho = rng.uniform(0.0, _RHO_MAX, size=count)
    # Draw the noise with a margin and keep only the centre after a "valid" convolution, so every output pixel
    # sees a full kernel: no border handling changes the noise's variance or correlation near the edges.
    pad = int(np.ceil(3 * mix.correlation_max))
    white = rng.standard_normal((count, channels, height + 2 * pad, width + 2 * pad), dtype=np.float32)
    if channels == 3:
        white = np.einsum("nij,njhw->nihw", _channel_mixing(rho), white, optimize=True)
    kernels = _unit_gaussian_kernels(blur, pad)  # N x (2 pad + 1), unit L2 norm
    # Separable blur as a sum of shifted copies: vectorised over the batch though each patch has its own kernel.
    rows = np.zeros((count, channels, height + 2 * pad, width), dtype=np.float32)
    for offset in range(2 * pad + 1):
        rows += kernels[:, offset, None, None, None] * white[..., offset : offset + width]
    noise = np.zeros((count, channels, height, width), dtype=np.float32)
    for offset in range(2 * pad + 1):
        noise += kernels[:, offset, None, None, None] * rows[:, :, offset : offset + height, :]
    # The 2-D kernel (outer product of unit-norm 1-D kernels) has unit L2 norm, so the blurred white noise keeps
    # unit marginal std exactly: scaling by sigma makes the map sigma / 255 true without any empirical rescaling.
    return clean + noise * _per_patch(sigma).astype(np.float32), _constant_map(sigma, clean.shape)


def _channel_mixing(rho: np.ndarray) -> np.ndarray:
    """N x 3 x 3 symmetric square roots of the covariances with unit diagonal and correlation ``rho``.

    The target covariance (1 - rho) I + rho J (J all ones) has eigenvalue 1 + 2 rho along (1, 1, 1) and 1 - rho
    across it, so its root is sqrt(1 - rho) I + (sqrt(1 + 2 rho) - sqrt(1 - rho)) / 3 J: mixing independent
    channel noises with it keeps each channel's std at 1 and correlates every pair by rho, like demosaicing
    spreading one photosite's noise over three colours.
    """
    across = np.sqrt(1.0 - rho)
    along = np.sqrt(1.0 + 2.0 * rho)
    mixing = ((along - across) / 3.0)[:, None, None] * np.ones((3, 3)) + across[:, None, None] * np.eye(3)
    return mixing.astype(np.float32)


def _unit_gaussian_kernels(blur: np.ndarray, pad: int) -> np.ndarray:
    """N sampled 1-D Gaussians of std ``blur`` on [-pad, pad], each scaled to unit L2 norm."""
    taps = np.arange(-pad, pad + 1, dtype=np.float64)
    kernels = np.exp(-(taps[None, :] ** 2) / (2.0 * blur[:, None] ** 2))
    kernels /= np.sqrt(np.sum(kernels**2, axis=1, keepdims=True))
    return kernels.astype(np.float32)


def _jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """C x H x W float image through an 8-bit JPEG at ``quality``, back as float32 on uint8 levels."""
    pixels = from_float(image, 8)
    if pixels.shape[0] == 3:
        planar, flag = np.ascontiguousarray(pixels.transpose(1, 2, 0)[:, :, ::-1]), cv2.IMREAD_COLOR  # RGB -> BGR
    else:
        planar, flag = np.ascontiguousarray(pixels[0]), cv2.IMREAD_GRAYSCALE
    ok, encoded = cv2.imencode(".jpg", planar, [cv2.IMWRITE_JPEG_QUALITY, quality])
    decoded = cv2.imdecode(encoded, flag) if ok else None
    if decoded is None:
        raise DenoiserError(f"JPEG round trip failed for a patch of shape {image.shape}")
    chw = decoded[None] if decoded.ndim == 2 else decoded[:, :, ::-1].transpose(2, 0, 1)  # BGR -> RGB
    return to_float(chw)


_BASE_MODELS = {"gaussian": _gaussian, "poisson_gaussian": _poisson_gaussian, "correlated": _correlated}
