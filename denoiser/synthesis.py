"""Training noise made on the training device: the noise photos really carry, synthesised in PyTorch.

:func:`synthesize_batch` turns a batch of clean patches (a torch tensor on the CPU or the GPU) into noisy
patches, the target the denoiser should output, and per-pixel maps of the noise it should remove. Every patch
draws one of :data:`NOISE_KINDS` by the weights of a :class:`SynthesisMix` and its own parameters; everything is
vectorised over the batch (parameters are N-length tensors) and all randomness comes from one
:class:`torch.Generator` on the data's device, so a seed gives the same batch.

The ``camera`` kind follows the unprocessing pipeline of Brooks, Mildenhall, Xue, Chen, Sharlet and Barron,
"Unprocessing Images for Learned Raw Denoising" (CVPR 2019): the clean sRGB patch is taken back to a raw Bayer
mosaic (inverse tone curve, inverse gamma, inverse colour correction, inverse white balance and digital gain),
shot and read noise are added there with the paper's parameter distribution (log shot noise uniform in
[log 1e-4, log 1.2e-2], log read = 2.18 log shot + 1.2 + N(0, 0.26^2); the default range here starts lower, at
1e-5, to cover the cleanest photos too), and the mosaic is developed again (white balance, bilinear
demosaicing, colour correction, gamma, tone curve). Like CBDNet (Guo, Yan, Zhang, Zuo
and Zhang, "Toward Convolutional Blind Denoising of Real Photographs", CVPR 2019) it then optionally applies mild
in-camera noise reduction or sharpening and JPEG compression. The clean patch goes through the same
development without noise and without JPEG, and that processed clean patch is the training target.

The maps describe noise in an orthonormal opponent colour space (:func:`to_opponent`): one channel for the
luminance noise and one for the colour noise, each a standard deviation in 0-1 units. White noise of std ``s``
per RGB channel has std ``s`` in both.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import Tensor

from denoiser.config import VersionedConfig, require
from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.noise import MAX_SIGMA

NOISE_KINDS: tuple[str, ...] = ("gaussian_clipped", "gaussian_float", "gaussian_16bit", "gaussian_varying", "camera")

_DEFAULT_WEIGHTS = {
    "gaussian_clipped": 1.0,
    "gaussian_float": 1.0,
    "gaussian_16bit": 0.25,
    "gaussian_varying": 0.5,
    "camera": 2.0,
}

# Brooks et al.'s read noise: log read variance = slope * log shot + offset + N(0, spread^2).
_READ_SLOPE = 2.18
_READ_OFFSET = 1.2
_READ_SPREAD = 0.26
_RED_GAIN = (1.9, 2.4)
_BLUE_GAIN = (1.5, 1.9)
_DIGITAL_GAIN_MEAN, _DIGITAL_GAIN_STD = 0.8, 0.1  # brightness multiplier of the inverse digital gain
_DIGITAL_GAIN_RANGE = (0.5, 1.0)
_HIGHLIGHT_START = 0.9  # above this grey level, inverse gains fade out so highlights stay saturated
_IDENTITY_CCM_PROBABILITY = 0.2  # share of patches with a random near-identity camera matrix
_IDENTITY_CCM_OFF_DIAGONAL = (-0.1, 0.3)
_SHARPEN_RADIUS = 1.0  # Gaussian std (pixels) of the unsharp mask's blur
_VARYING_GRID = 3  # coarse grid (per side) whose bilinear upsampling is gaussian_varying's smooth sigma field

# XYZ -> camera matrices of four cameras, as in Brooks et al.'s unprocessing code, and linear sRGB -> XYZ (D65).
_XYZ_TO_CAMS = (
    ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    ((0.4913, -0.0541, -0.0202), (-0.613, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    ((0.838, -0.263, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.097, 0.1581, 0.5181)),
)
_RGB_TO_XYZ = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)

_S3, _S2, _S6 = math.sqrt(3.0), math.sqrt(2.0), math.sqrt(6.0)
_OPPONENT = (
    (1 / _S3, 1 / _S3, 1 / _S3),
    (1 / _S2, 0.0, -1 / _S2),
    (1 / _S6, -2 / _S6, 1 / _S6),
)


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
# Colour space and noise maps
# ---------------------------------------------------------------------------------------------------------------


def _opponent_matrix(like: Tensor) -> Tensor:
    return torch.tensor(_OPPONENT, dtype=like.dtype, device=like.device)


def to_opponent(rgb: Tensor) -> Tensor:
    """N x 3 x H x W RGB -> orthonormal opponent channels Y = (R+G+B)/sqrt3, C1 = (R-B)/sqrt2, C2 = (R-2G+B)/sqrt6."""
    _check_colour(rgb, "to_opponent")
    return torch.einsum("ij,njhw->nihw", _opponent_matrix(rgb), rgb)


def from_opponent(opp: Tensor) -> Tensor:
    """The exact inverse of :func:`to_opponent` (the transpose of its orthonormal matrix)."""
    _check_colour(opp, "from_opponent")
    return torch.einsum("ji,njhw->nihw", _opponent_matrix(opp), opp)


def _check_colour(image: Tensor, name: str) -> None:
    if not isinstance(image, Tensor) or image.ndim != 4 or image.shape[1] != 3:
        raise DenoiserError(f"{name} expects an N x 3 x H x W tensor, got shape {tuple(getattr(image, 'shape', ()))}")


def local_noise_maps(noise: Tensor, radius: float = 4.0) -> Tensor:
    """Per-pixel local std of the luminance and of the colour noise: N x C x H x W (C = 3 or 1) -> N x 2 x H x W.

    The local std is the root of the Gaussian-weighted (std ``radius`` pixels, reflect padding) mean square of
    the noise, which is its std for zero-mean noise and also counts any bias the denoiser must remove. Channel 0
    is the opponent Y noise, channel 1 the root mean of the C1 and C2 variances; for grey noise (C = 1) both are
    the grey noise's. White noise of std ``s`` per RGB channel gives ``(s, s)`` in expectation.
    """
    if not isinstance(noise, Tensor) or noise.ndim != 4 or noise.shape[1] not in (1, 3):
        raise DenoiserError(f"local_noise_maps expects N x C x H x W noise with C = 1 or 3, got {tuple(noise.shape)}")
    if not radius > 0:
        raise DenoiserError(f"local_noise_maps needs a radius above 0, got {radius}")
    noise = noise.float()
    if noise.shape[1] == 3:
        opp = to_opponent(noise) ** 2
        power = torch.cat([opp[:, :1], 0.5 * (opp[:, 1:2] + opp[:, 2:3])], dim=1)
    else:
        power = noise**2
    taps = _gaussian_taps(torch.tensor([float(radius)], device=noise.device), math.ceil(3.0 * radius))
    smoothed = _blur(power, taps).clamp_min(0.0).sqrt()
    return smoothed.expand(-1, 2, -1, -1).contiguous() if noise.shape[1] == 1 else smoothed


def _gaussian_taps(sigma: Tensor, pad: int) -> Tensor:
    """M x (2 pad + 1) sampled Gaussians of std ``sigma`` (M values), each summing to 1; std 0 gives a delta."""
    offsets = torch.arange(-pad, pad + 1, device=sigma.device, dtype=torch.float32)
    taps = torch.exp(-0.5 * (offsets / sigma.float().clamp_min(1e-3)[:, None]) ** 2)
    return taps / taps.sum(dim=1, keepdim=True)


def _blur_matrices(taps: Tensor, size: int) -> Tensor:
    """M x size x size matrices B with ``signal @ B`` the reflect-padded 1-D convolution by each row of ``taps``.

    Kernels wider than reflect padding can serve (half-width ``size - 1``) are cut and renormalised. Blurring
    by a matrix product is several times faster on the CPU than a convolution and exact at the borders.
    """
    pad = (taps.shape[1] - 1) // 2
    fitted = min(pad, size - 1)
    if fitted < pad:
        taps = taps[:, pad - fitted : pad + fitted + 1]
        taps = taps / taps.sum(dim=1, keepdim=True)
    source = torch.arange(size, device=taps.device)[:, None] + torch.arange(-fitted, fitted + 1, device=taps.device)
    source = source.abs()
    source = torch.where(source > size - 1, 2 * (size - 1) - source, source)  # output i, tap t -> input pixel
    one_hot = (source[:, :, None] == torch.arange(size, device=taps.device)).float()  # out x tap x in
    return torch.einsum("mt,otj->mjo", taps, one_hot)


def _blur(image: Tensor, taps: Tensor) -> Tensor:
    """Separable blur of N x C x H x W by 1-D kernels: ``taps`` 1 x K (all channels) or N*C x K (one each)."""
    count, channels, height, width = image.shape
    across = _blur_matrices(taps, width)
    down = _blur_matrices(taps, height).transpose(1, 2)
    if taps.shape[0] == 1:
        return down[0] @ (image @ across[0])
    flat = image.reshape(count * channels, height, width)
    return (down @ (flat @ across)).view(count, channels, height, width)


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
            noisy_part, target_part = _camera(part, mix, generator)
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


def _uniform(count: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def _per_patch(values: Tensor) -> Tensor:
    """N values shaped to broadcast against N x C x H x W."""
    return values.view(-1, 1, 1, 1)


def _white(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Clean plus white Gaussian noise of sigma ~ U[sigma_min, sigma_max] (0-1 units); the N x 1 x 1 x 1 sigmas."""
    sigma = _per_patch(_uniform(clean.shape[0], mix.sigma_min, mix.sigma_max, generator, clean.device) / 255.0)
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
    first = _per_patch(_uniform(count, mix.sigma_min, mix.sigma_max, generator, device) / 255.0)
    second = _per_patch(_uniform(count, mix.sigma_min, mix.sigma_max, generator, device) / 255.0)
    grid = torch.rand((count, 1, _VARYING_GRID, _VARYING_GRID), generator=generator, device=device)
    smooth = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=True)
    share = _per_patch(torch.rand(count, generator=generator, device=device))
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


# ---------------------------------------------------------------------------------------------------------------
# Camera pipeline (Brooks et al. 2019)
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class _Camera:
    """One random camera per patch: its matrices, gains and noise levels (N-length tensors)."""

    shot: Tensor
    read: Tensor
    rgb_to_cam: Tensor  # N x 3 x 3, rows sum to 1
    red_gain: Tensor
    blue_gain: Tensor
    brightness: Tensor  # the inverse digital gain's multiplier (< 1 darkens the raw)

    @property
    def white_balance(self) -> Tensor:
        """N x 3 forward gains for R, G, B (white balance and digital gain)."""
        gains = torch.stack([self.red_gain, torch.ones_like(self.red_gain), self.blue_gain], dim=1)
        return gains / self.brightness[:, None]


def _noise_levels(
    count: int, mix: SynthesisMix, generator: torch.Generator, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Shot and read noise variances (raw 0-1 units) from Brooks et al.'s joint distribution."""
    u = torch.rand(count, generator=generator, device=device)
    spread = torch.randn(count, generator=generator, device=device)
    if mix.shot_noise_max == 0:
        zero = torch.zeros(count, device=device)
        return zero, zero.clone()
    low, high = math.log(mix.shot_noise_min), math.log(mix.shot_noise_max)
    log_shot = low + (high - low) * u
    log_read = _READ_SLOPE * log_shot + _READ_OFFSET + _READ_SPREAD * spread
    return torch.exp(log_shot), torch.exp(log_read)


def _random_rgb_to_cam(count: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """N x 3 x 3 linear sRGB -> camera matrices with rows summing to 1 (white stays white).

    Mostly a random convex mix of four real cameras' matrices; otherwise a random near-identity matrix.
    """
    xyz_to_cams = torch.tensor(_XYZ_TO_CAMS, device=device)
    rgb_to_xyz = torch.tensor(_RGB_TO_XYZ, device=device)
    mixing = torch.rand((count, len(_XYZ_TO_CAMS)), generator=generator, device=device) + 1e-6
    mixing = mixing / mixing.sum(dim=1, keepdim=True)
    real = torch.einsum("nk,kij->nij", mixing, xyz_to_cams) @ rgb_to_xyz
    low, high = _IDENTITY_CCM_OFF_DIAGONAL
    near = low + (high - low) * torch.rand((count, 3, 3), generator=generator, device=device)
    eye = torch.eye(3, device=device)
    near = eye + near * (1.0 - eye)
    use_near = torch.rand(count, generator=generator, device=device) < _IDENTITY_CCM_PROBABILITY
    matrix = torch.where(use_near[:, None, None], near, real)
    return matrix / matrix.sum(dim=2, keepdim=True)


def _random_camera(count: int, mix: SynthesisMix, generator: torch.Generator, device: torch.device) -> _Camera:
    shot, read = _noise_levels(count, mix, generator, device)
    rgb_to_cam = _random_rgb_to_cam(count, generator, device)
    red = _uniform(count, *_RED_GAIN, generator, device)
    blue = _uniform(count, *_BLUE_GAIN, generator, device)
    brightness = _DIGITAL_GAIN_MEAN + _DIGITAL_GAIN_STD * torch.randn(count, generator=generator, device=device)
    return _Camera(shot, read, rgb_to_cam, red, blue, brightness.clamp(*_DIGITAL_GAIN_RANGE))


def _apply_matrix(matrix: Tensor, image: Tensor) -> Tensor:
    return torch.einsum("nij,njhw->nihw", matrix, image)


def _cfa_masks(height: int, width: int, device: torch.device) -> Tensor:
    """1 x 3 x H x W one-hot masks of an RGGB Bayer pattern (R at even rows and columns)."""
    row = (torch.arange(height, device=device) % 2)[:, None]
    col = (torch.arange(width, device=device) % 2)[None, :]
    red = (row == 0) & (col == 0)
    blue = (row == 1) & (col == 1)
    return torch.stack([red, ~(red | blue), blue]).float()[None]


def _demosaic(raw: Tensor, masks: Tensor) -> Tensor:
    """Bilinear demosaicing of an RGGB mosaic N x 1 x H x W -> N x 3 x H x W.

    Each colour keeps its samples and fills the gaps with the mean of its nearest samples: green from the 4 edge
    neighbours; red and blue from the 2 horizontal or 2 vertical neighbours at green sites, from the 4 corners at
    blue or red sites. Reflect padding keeps the Bayer phase at the borders (pixel -1 mirrors pixel 1, of the
    same colour). Sums of shifted copies of the one mosaic plane: far faster on the CPU than a convolution.
    """
    height, width = raw.shape[2:]
    padded = F.pad(raw, (1, 1, 1, 1), mode="reflect")
    across = 0.5 * (padded[:, :, 1:-1, :width] + padded[:, :, 1:-1, 2:])
    down = 0.5 * (padded[:, :, :height, 1:-1] + padded[:, :, 2:, 1:-1])
    corners = 0.25 * (
        padded[:, :, :height, :width] + padded[:, :, :height, 2:] + padded[:, :, 2:, :width] + padded[:, :, 2:, 2:]
    )
    red_site, green_site, blue_site = masks[:, 0:1], masks[:, 1:2], masks[:, 2:3]
    red_row = (torch.arange(height, device=raw.device) % 2 == 0).float()[:, None]  # green sites in red rows
    green_in_red_row, green_in_blue_row = green_site * red_row, green_site * (1.0 - red_row)
    red = red_site * raw + green_in_red_row * across + green_in_blue_row * down + blue_site * corners
    green = green_site * raw + (1.0 - green_site) * 0.5 * (across + down)
    blue = blue_site * raw + green_in_blue_row * across + green_in_red_row * down + red_site * corners
    return torch.cat([red, green, blue], dim=1)


def _unprocess(clean: Tensor, camera: _Camera, masks: Tensor) -> Tensor:
    """sRGB N x 3 x H x W -> raw RGGB mosaic N x 1 x H x W in [0, 1]."""
    linear = (0.5 - torch.sin(torch.asin(1.0 - 2.0 * clean.clamp(0.0, 1.0)) / 3.0)).clamp_min(1e-8) ** 2.2
    cam = _apply_matrix(camera.rgb_to_cam, linear)
    inverse = (1.0 / camera.white_balance)[:, :, None, None]
    # Fade the inverse gains out in highlights so that saturated whites stay saturated (Brooks et al.).
    fade = ((cam.mean(dim=1, keepdim=True) - _HIGHLIGHT_START).clamp_min(0.0) / (1.0 - _HIGHLIGHT_START)) ** 2
    safe = torch.maximum(fade + (1.0 - fade) * inverse, inverse)
    return (cam * safe).clamp(0.0, 1.0).mul(masks).sum(dim=1, keepdim=True)


def _process(raw: Tensor, camera: _Camera, masks: Tensor) -> Tensor:
    """Raw RGGB mosaic N x 1 x H x W -> sRGB N x 3 x H x W: white balance, demosaic, colour, gamma, tone curve."""
    gains = (masks * camera.white_balance[:, :, None, None]).sum(dim=1, keepdim=True)
    rgb = _demosaic((raw * gains).clamp(0.0, 1.0), masks)
    rgb = _apply_matrix(torch.linalg.inv(camera.rgb_to_cam), rgb).clamp(0.0, 1.0)
    rgb = rgb.clamp_min(1e-8) ** (1.0 / 2.2)
    return rgb * rgb * (3.0 - 2.0 * rgb)


def _camera(clean: Tensor, mix: SynthesisMix, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Camera noise: returns (noisy, target), both N x C x H x W like ``clean``."""
    count, channels, height, width = clean.shape
    device = clean.device
    camera = _random_camera(count, mix, generator, device)
    masks = _cfa_masks(height, width, device)
    raw = _unprocess(clean.expand(-1, 3, -1, -1), camera, masks)
    std = torch.sqrt(_per_patch(camera.shot) * raw + _per_patch(camera.read))
    noisy_raw = raw + std * torch.randn(raw.shape, generator=generator, device=device)
    # Develop the noisy and the clean mosaic together, through the very same camera.
    both = _Camera(**{f.name: torch.cat([getattr(camera, f.name)] * 2) for f in fields(camera)})
    developed = _process(torch.cat([noisy_raw, raw]), both, masks)
    developed = _in_camera_filters(developed, mix, generator).clamp(0.0, 1.0)
    if channels == 1:
        developed = developed.mean(dim=1, keepdim=True)
    noisy, target = developed[:count], developed[count:]
    apply = torch.rand(count, generator=generator, device=device) < mix.jpeg_probability
    top = mix.jpeg_quality_max + 1
    quality = torch.randint(mix.jpeg_quality_min, top, (count,), generator=generator, device=device)
    picked = torch.nonzero(apply).flatten()
    if picked.numel():
        noisy = noisy.clone()
        noisy[picked] = _jpeg_roundtrip(noisy[picked], quality[picked].tolist())
    return noisy, target


def _in_camera_filters(both: Tensor, mix: SynthesisMix, generator: torch.Generator) -> Tensor:
    """Mild noise reduction (chroma blur, weaker luma blur) and unsharp-mask sharpening of the luminance.

    ``both`` holds the noisy then the clean patches (2N x 3 x H x W); each pair gets the same filters.
    """
    count = both.shape[0] // 2
    device = both.device
    smooth = torch.rand(count, generator=generator, device=device) < mix.smoothing_probability
    chroma = _uniform(count, 0.5 * mix.smoothing_sigma_max, mix.smoothing_sigma_max, generator, device)
    luma = _uniform(count, 0.0, 0.5 * mix.smoothing_sigma_max, generator, device)
    sharpen = torch.rand(count, generator=generator, device=device) < mix.sharpening_probability
    amount = _uniform(count, 0.0, mix.sharpening_amount_max, generator, device)
    if not bool(smooth.any()) and not bool(sharpen.any()):
        return both
    opp = to_opponent(both)
    if bool(smooth.any()):
        sigma = torch.stack([luma, chroma, chroma], dim=1) * smooth[:, None]
        opp = _blur(opp, _gaussian_taps(torch.cat([sigma, sigma]).flatten(), math.ceil(3.0 * mix.smoothing_sigma_max)))
    if bool(sharpen.any()):
        luminance = opp[:, :1]
        soft = _blur(luminance, _gaussian_taps(torch.tensor([_SHARPEN_RADIUS], device=device), 3))
        gain = _per_patch(torch.cat([amount, amount]) * torch.cat([sharpen, sharpen]))
        opp = torch.cat([luminance + gain * (luminance - soft), opp[:, 1:]], dim=1)
    return from_opponent(opp)


# ---------------------------------------------------------------------------------------------------------------
# JPEG
# ---------------------------------------------------------------------------------------------------------------

_DEVICE_JPEG: dict[tuple[str, int], bool] = {}
"""Whether torchvision's JPEG codec worked on a device type for 1 or 3 channels (CUDA needs a CUDA build)."""


def _jpeg_roundtrip(images: Tensor, qualities: list[int]) -> Tensor:
    """N x C x H x W images in [0, 1] (C = 1 or 3) through 8-bit JPEG, one quality each; float32 on 8-bit levels.

    Runs torchvision's codec on the images' device when it supports it, else on the CPU, and returns the result
    on the images' device.
    """
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    device = images.device
    mode = ImageReadMode.GRAY if images.shape[1] == 1 else ImageReadMode.RGB
    pixels = torch.round(images * 255.0).clamp(0.0, 255.0).to(torch.uint8)
    key = (device.type, images.shape[1])
    with warnings.catch_warnings():
        # torchvision 0.29 announces that TorchCodec will take over its JPEG codec, on every call; the codec
        # still works, and the message is no news to whoever trains.
        warnings.filterwarnings("ignore", message=".*decoding and encoding capabilities", category=DeprecationWarning)
        if device.type != "cpu" and _DEVICE_JPEG.get(key, True):
            try:
                out = [
                    decode_jpeg(encode_jpeg(p, quality=q).cpu(), mode=mode, device=device)
                    for p, q in zip(pixels, qualities, strict=True)
                ]
                if all(o.shape == p.shape for o, p in zip(out, pixels, strict=True)):
                    _DEVICE_JPEG[key] = True
                    return torch.stack(out).float() / 255.0
            except (RuntimeError, NotImplementedError, TypeError, ValueError):
                pass
            _DEVICE_JPEG[key] = False
        cpu = pixels.cpu()
        out = [decode_jpeg(encode_jpeg(p, quality=q), mode=mode) for p, q in zip(cpu, qualities, strict=True)]
    return (torch.stack(out).float() / 255.0).to(device)
