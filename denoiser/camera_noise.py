"""The ``camera`` kind of training noise: real camera noise, simulated by taking a clean patch back to raw.

Follows the unprocessing pipeline of Brooks, Mildenhall, Xue, Chen, Sharlet and Barron, "Unprocessing Images for
Learned Raw Denoising" (CVPR 2019): the clean sRGB patch is taken back to a raw Bayer mosaic (inverse tone curve,
inverse gamma, inverse colour correction, inverse white balance and digital gain), shot and read noise are added
there with the paper's parameter distribution (log shot noise uniform in [log 1e-4, log 1.2e-2], log read =
2.18 log shot + 1.2 + N(0, 0.26^2); the default range of :class:`~denoiser.synthesis.SynthesisMix` starts lower,
at 1e-5, to cover the cleanest photos too), and the mosaic is developed again (white balance, bilinear
demosaicing, colour correction, gamma, tone curve). Like CBDNet (Guo, Yan, Zhang, Zuo and Zhang, "Toward
Convolutional Blind Denoising of Real Photographs", CVPR 2019) it then optionally applies mild in-camera noise
reduction or sharpening and JPEG compression. The clean patch goes through the same development without noise
and without JPEG, and that processed clean patch is the training target.

:func:`synthesize_camera` is the entry point; :func:`denoiser.synthesis.synthesize_batch` calls it for the patches
that drew the ``camera`` kind. Vectorised over the batch, all randomness from the one :class:`torch.Generator`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from denoiser.noise_maps import draw_uniform, from_opponent, gaussian_taps, per_patch, separable_blur, to_opponent

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


class CameraSettings(Protocol):
    """The ranges the camera pipeline draws from: the ``camera`` fields of :class:`~denoiser.synthesis.SynthesisMix`
    (which satisfies this protocol; see it for their meaning and bounds)."""

    shot_noise_min: float
    shot_noise_max: float
    jpeg_probability: float
    jpeg_quality_min: int
    jpeg_quality_max: int
    smoothing_probability: float
    smoothing_sigma_max: float
    sharpening_probability: float
    sharpening_amount_max: float


# ---------------------------------------------------------------------------------------------------------------
# A random camera
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
    count: int, settings: CameraSettings, generator: torch.Generator, device: torch.device
) -> tuple[Tensor, Tensor]:
    """Shot and read noise variances (raw 0-1 units) from Brooks et al.'s joint distribution."""
    u = torch.rand(count, generator=generator, device=device)
    spread = torch.randn(count, generator=generator, device=device)
    if settings.shot_noise_max == 0:
        zero = torch.zeros(count, device=device)
        return zero, zero.clone()
    low, high = math.log(settings.shot_noise_min), math.log(settings.shot_noise_max)
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


def _random_camera(
    count: int, settings: CameraSettings, generator: torch.Generator, device: torch.device
) -> _Camera:
    shot, read = _noise_levels(count, settings, generator, device)
    rgb_to_cam = _random_rgb_to_cam(count, generator, device)
    red = draw_uniform(count, *_RED_GAIN, generator, device)
    blue = draw_uniform(count, *_BLUE_GAIN, generator, device)
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


def synthesize_camera(clean: Tensor, settings: CameraSettings, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Camera noise for clean float patches N x C x H x W in [0, 1] (C = 1 or 3): returns (noisy, target).

    Both are N x C x H x W like ``clean``: the noisy patch developed from the noisy raw mosaic (then filtered and
    maybe JPEG-compressed), and the target developed from the clean mosaic through the same camera and filters.
    Parameters are drawn from ``generator`` in a fixed order, so a seed gives the same patches.
    """
    count, channels, height, width = clean.shape
    device = clean.device
    camera = _random_camera(count, settings, generator, device)
    masks = _cfa_masks(height, width, device)
    raw = _unprocess(clean.expand(-1, 3, -1, -1), camera, masks)
    std = torch.sqrt(per_patch(camera.shot) * raw + per_patch(camera.read))
    noisy_raw = raw + std * torch.randn(raw.shape, generator=generator, device=device)
    # Develop the noisy and the clean mosaic together, through the very same camera.
    both = _Camera(**{f.name: torch.cat([getattr(camera, f.name)] * 2) for f in fields(camera)})
    developed = _process(torch.cat([noisy_raw, raw]), both, masks)
    developed = _in_camera_filters(developed, settings, generator).clamp(0.0, 1.0)
    if channels == 1:
        developed = developed.mean(dim=1, keepdim=True)
    noisy, target = developed[:count], developed[count:]
    apply = torch.rand(count, generator=generator, device=device) < settings.jpeg_probability
    top = settings.jpeg_quality_max + 1
    quality = torch.randint(settings.jpeg_quality_min, top, (count,), generator=generator, device=device)
    picked = torch.nonzero(apply).flatten()
    if picked.numel():
        noisy = noisy.clone()
        noisy[picked] = _jpeg_roundtrip(noisy[picked], quality[picked].tolist())
    return noisy, target


def _in_camera_filters(both: Tensor, settings: CameraSettings, generator: torch.Generator) -> Tensor:
    """Mild noise reduction (chroma blur, weaker luma blur) and unsharp-mask sharpening of the luminance.

    ``both`` holds the noisy then the clean patches (2N x 3 x H x W); each pair gets the same filters.
    """
    count = both.shape[0] // 2
    device = both.device
    smooth = torch.rand(count, generator=generator, device=device) < settings.smoothing_probability
    sigma_max = settings.smoothing_sigma_max
    chroma = draw_uniform(count, 0.5 * sigma_max, sigma_max, generator, device)
    luma = draw_uniform(count, 0.0, 0.5 * sigma_max, generator, device)
    sharpen = torch.rand(count, generator=generator, device=device) < settings.sharpening_probability
    amount = draw_uniform(count, 0.0, settings.sharpening_amount_max, generator, device)
    if not bool(smooth.any()) and not bool(sharpen.any()):
        return both
    opp = to_opponent(both)
    if bool(smooth.any()):
        sigma = torch.stack([luma, chroma, chroma], dim=1) * smooth[:, None]
        opp = separable_blur(opp, gaussian_taps(torch.cat([sigma, sigma]).flatten(), math.ceil(3.0 * sigma_max)))
    if bool(sharpen.any()):
        luminance = opp[:, :1]
        soft = separable_blur(luminance, gaussian_taps(torch.tensor([_SHARPEN_RADIUS], device=device), 3))
        gain = per_patch(torch.cat([amount, amount]) * torch.cat([sharpen, sharpen]))
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
