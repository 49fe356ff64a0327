"""Training noise made on the training device: the noise photos really carry, synthesised in PyTorch.

:func:`synthesize_batch` turns a batch of clean patches (a torch tensor on the CPU or the GPU) into noisy
patches, the target the denoiser should output, and per-pixel maps of the noise it should remove. Every patch
draws one of :data:`NOISE_KINDS` by the weights of a :class:`SynthesisMix` and its own parameters; everything is
vectorised over the batch (parameters are N-length tensors) and all randomness comes from one
:class:`torch.Generator` on the data's device, so a seed gives the same batch.

The Gaussian kinds are made here; the ``camera`` kind, Brooks et al.'s unprocessing pipeline (CVPR 2019) with
CBDNet's in-camera filters and JPEG, is :mod:`denoiser.camera_noise`. The maps describe noise in the opponent
colour space of :mod:`denoiser.noise_maps`: one channel for the luminance noise and one for the colour noise,
each a standard deviation in 0-1 units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from denoiser.camera_noise import synthesize_camera
from denoiser.config import VersionedConfig, require
from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.noise import MAX_SIGMA
from denoiser.noise_maps import draw_uniform, local_noise_maps, per_patch

NOISE_KINDS: tuple[str, ...] = ("gaussian_clipped", "gaussian_float", "gaussian_16bit", "gaussian_varying", "camera")

_DEFAULT_WEIGHTS = {
    "gaussian_clipped": 1.0,
    "gaussian_float": 1.0,
    "gaussian_16bit": 0.25,
    "gaussian_varying": 0.5,
    "camera": 2.0,
}

_VARYING_GRID = 3  # coarse grid (per side) whose bilinear upsampling is gaussian_varying's smooth sigma field

@dataclass
class SynthesisMix(VersionedConfig):
    """Which noise kinds a training batch draws from (weights), with their ranges. Sigmas in 0-255 units.

    * ``gaussian_clipped``: white Gaussian noise, sigma ~ U[sigma_min, sigma_max], rounded to 8-bit levels and
      clipped to [0, 1] (a saved 8-bit photo).
    * ``gaussian_float``: the same without rounding or clipping (float images, RAW developments).
    * ``gaussian_16bit``: the same rounded to 16-bit levels and clipped to [0, 1].
    * ``gaussian_varying``: white float noise whose sigma varies over the patch between two values drawn in
      [sigma_min, sigma_max], along a random smooth field partly following the patch's brightness.
    * ``camera``: Brooks et al.'s raw shot and read noise (shot variance ~ logU[shot_noise_min, shot_noise_max])
      developed by a random camera pipeline, then in-camera smoothing (``smoothing_probability``, chroma blur of
      std up to ``smoothing_sigma_max`` pixels), sharpening (``sharpening_probability``, unsharp mask of amount
      up to ``sharpening_amount_max``) and JPEG (``jpeg_probability``, quality U{jpeg_quality_min..max}).
    """

    weights: dict[str, float] = field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))
    sigma_min: float = 0.0
    sigma_max: float = MAX_SIGMA
    shot_noise_min: float = 1e-5
    """Smallest shot-noise variance per unit of raw signal (0-1 raw units); 0 with ``shot_noise_max`` 0: no noise.

    Brooks et al. start at 1e-4, which after development leaves about 3 levels (of 255) of noise in mid-grey;
    1e-5 reaches down to about 1 level, the cleanest photos a denoiser meets."""
    shot_noise_max: float = 1.2e-2
    """Largest shot-noise variance per unit of raw signal (about 25-45 levels in mid-grey after development);
    log-uniform in between, like an ISO range."""
    jpeg_probability: float = 0.7
    jpeg_quality_min: int = 60
    jpeg_quality_max: int = 98
    smoothing_probability: float = 0.3
    smoothing_sigma_max: float = 1.5
    """Largest chroma blur std (pixels) of in-camera noise reduction; the luminance gets at most half of it."""
    sharpening_probability: float = 0.3
    sharpening_amount_max: float = 1.0

    def validate(self) -> None:
        """Raise :class:`UnknownNameError` for an unknown kind, :class:`ConfigError` for a bad range."""
        require(isinstance(self.weights, dict) and len(self.weights) > 0, "weights must map noise kinds to weights")
        for name in self.weights:
            if name not in NOISE_KINDS:
                raise UnknownNameError("noise kind", str(name), NOISE_KINDS)
        values = list(self.weights.values())
        require(
            all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
            and all(v >= 0 for v in values),
            "noise kind weights must be finite numbers >= 0",
        )
        require(sum(values) > 0, "at least one noise kind needs a weight above 0")
        require(0 <= self.sigma_min <= self.sigma_max <= 255, "need 0 <= sigma_min <= sigma_max <= 255")
        require(0 <= self.shot_noise_min <= self.shot_noise_max <= 1, "need 0 <= shot_noise_min <= shot_noise_max <= 1")
        require(
            self.shot_noise_min > 0 or self.shot_noise_max == 0,
            "shot_noise_min must be above 0 (the draw is log-uniform) unless shot_noise_max is 0 too",
        )
        for name in ("jpeg_probability", "smoothing_probability", "sharpening_probability"):
            require(0 <= getattr(self, name) <= 1, f"{name} must be in [0, 1]")
        require(
            all(isinstance(q, int) and not isinstance(q, bool) for q in (self.jpeg_quality_min, self.jpeg_quality_max)),
            "jpeg qualities must be integers",
        )
        require(
            1 <= self.jpeg_quality_min <= self.jpeg_quality_max <= 100,
            "need 1 <= jpeg_quality_min <= jpeg_quality_max <= 100",
        )
        require(0 <= self.smoothing_sigma_max <= 3, "smoothing_sigma_max must be in [0, 3] pixels")
        require(0 <= self.sharpening_amount_max <= 3, "sharpening_amount_max must be in [0, 3]")


@dataclass
class SynthesisResult:
    """One synthesised batch: all tensors float32 on the clean batch's device."""

    noisy: Tensor
    """N x C x H x W: the denoiser's input."""
    target: Tensor
    """N x C x H x W: what the denoiser should output (the clean patch, or for ``camera`` the developed one)."""
    maps: Tensor
    """N x 2 x H x W: per-pixel std of the luminance and of the colour noise in ``noisy - target``, 0-1 units."""
    kinds: list[str]
    """The noise kind of each patch."""


# ---------------------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------------------


def synthesize_batch(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> SynthesisResult:
    """Noisy patches, targets and noise maps for a batch of clean patches.

    ``clean`` is float N x C x H x W in [0, 1] with C = 1 or 3, on any device; ``generator`` must be on the same
    device type. Each patch draws its kind by ``mix.weights`` (``torch.multinomial``), then the kinds draw their
    parameters in :data:`NOISE_KINDS` order, so a seed gives the same batch. See :class:`SynthesisResult`.
    """
    mix.validate()
    clean = _check_batch(clean, generator)
    count, _, height, width = clean.shape
    device = clean.device
    weights = torch.tensor([float(mix.weights.get(kind, 0.0)) for kind in NOISE_KINDS], device=device)
    choice = torch.multinomial(weights, count, replacement=True, generator=generator)
    noisy = torch.empty_like(clean)
    target = clean.clone()
    maps = torch.empty((count, 2, height, width), dtype=torch.float32, device=device)
    for index, kind in enumerate(NOISE_KINDS):
        picked = torch.nonzero(choice == index).flatten()
        if picked.numel() == 0:
            continue
        part = clean.index_select(0, picked)
        if kind == "camera":
            noisy_part, target_part = synthesize_camera(part, mix, generator)
            target[picked] = target_part
            maps[picked] = local_noise_maps(noisy_part - target_part)
        else:
            noisy_part, sigma = _GAUSSIAN_KINDS[kind](part, mix, generator)
            maps[picked] = sigma.expand(-1, 2, height, width)
        noisy[picked] = noisy_part
    kinds = [NOISE_KINDS[i] for i in choice.tolist()]
    return SynthesisResult(noisy=noisy, target=target, maps=maps, kinds=kinds)


def _check_batch(clean: Tensor, generator: torch.Generator) -> Tensor:
    if not isinstance(clean, Tensor) or clean.ndim != 4 or clean.shape[1] not in (1, 3):
        shape = tuple(getattr(clean, "shape", ()))
        raise DenoiserError(f"synthesize_batch expects an N x C x H x W tensor with C = 1 or 3, got shape {shape}")
    if not clean.is_floating_point():
        raise DenoiserError(f"synthesize_batch expects float pixels in [0, 1], got {clean.dtype}")
    if min(clean.shape[2:]) < 2:
        raise DenoiserError(f"synthesize_batch needs patches of at least 2 x 2 pixels, got {tuple(clean.shape)}")
    if not isinstance(generator, torch.Generator) or generator.device.type != clean.device.type:
        where = getattr(generator, "device", None)
        raise DenoiserError(f"synthesize_batch needs a torch.Generator on {clean.device.type}, got one on {where}")
    return clean.float()


def _white(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Clean plus white Gaussian noise of sigma ~ U[sigma_min, sigma_max] (0-1 units); the N x 1 x 1 x 1 sigmas."""
    sigma = per_patch(draw_uniform(clean.shape[0], mix.sigma_min, mix.sigma_max, generator, clean.device) / 255.0)
    noise = torch.randn(clean.shape, generator=generator, device=clean.device)
    return clean + noise * sigma, sigma


def _gaussian_float(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    return _white(clean, mix, generator)


def _gaussian_clipped(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    noisy, sigma = _white(clean, mix, generator)
    return _quantize(noisy, 255.0), sigma


def _gaussian_16bit(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    noisy, sigma = _white(clean, mix, generator)
    return _quantize(noisy, 65535.0), sigma


def _quantize(image: Tensor, levels: float) -> Tensor:
    return torch.round(image * levels).clamp_(0.0, levels) / levels


def _gaussian_varying(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """White float noise whose sigma (the returned N x 1 x H x W field) runs between two drawn values.

    The field mixes a bilinear upsampling of a random coarse grid (smooth: ramps, bumps) with the patch's
    brightness, by a weight drawn per patch, and is stretched to span both sigmas.
    """
    count, _, height, width = clean.shape
    device = clean.device
    first = per_patch(draw_uniform(count, mix.sigma_min, mix.sigma_max, generator, device) / 255.0)
    second = per_patch(draw_uniform(count, mix.sigma_min, mix.sigma_max, generator, device) / 255.0)
    grid = torch.rand((count, 1, _VARYING_GRID, _VARYING_GRID), generator=generator, device=device)
    smooth = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=True)
    share = per_patch(torch.rand(count, generator=generator, device=device))
    blend = share * smooth + (1.0 - share) * clean.mean(dim=1, keepdim=True)
    low = blend.amin(dim=(2, 3), keepdim=True)
    span = blend.amax(dim=(2, 3), keepdim=True) - low
    fraction = torch.where(span > 1e-6, (blend - low) / span.clamp_min(1e-6), torch.full_like(blend, 0.5))
    sigma = first + (second - first) * fraction
    noise = torch.randn(clean.shape, generator=generator, device=device)
    return clean + noise * sigma, sigma


_GAUSSIAN_KINDS = {
    "gaussian_clipped": _gaussian_clipped,
    "gaussian_float": _gaussian_float,
    "gaussian_16bit": _gaussian_16bit,
    "gaussian_varying": _gaussian_varying,
}
