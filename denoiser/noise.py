"""Synthetic noise: the benchmark protocol's Gaussian noise and the training noise models (reading a photo's noise
level is :mod:`denoiser.noise_estimation`).

:func:`synthesize` makes training pairs from a :class:`NoiseMix` of noise models (white Gaussian, camera-like
Poisson-Gaussian, spatially and cross-channel correlated, optionally followed by JPEG), together with the
per-pixel noise-level map the models take as input.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    import cv2  # here, not at the top: OpenCV is slow to load, and the CLI's help imports this module

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
