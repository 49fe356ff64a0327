"""Noise maps in PyTorch: the opponent colour space they describe noise in, and the tensor tools behind them.

The maps describe noise in an orthonormal opponent colour space (:func:`to_opponent`): one channel for the
luminance noise and one for the colour noise, each a standard deviation in 0-1 units. White noise of std ``s``
per RGB channel has std ``s`` in both. :func:`local_noise_maps` measures them; the separable Gaussian blur it
uses (:func:`gaussian_taps`, :func:`separable_blur`) and the per-patch draws (:func:`draw_uniform`,
:func:`per_patch`) also serve the noise synthesis (:mod:`denoiser.synthesis`, :mod:`denoiser.camera_noise`).
Everything works on N x C x H x W tensors on any device.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from denoiser.errors import DenoiserError

_S3, _S2, _S6 = math.sqrt(3.0), math.sqrt(2.0), math.sqrt(6.0)
_OPPONENT = (
    (1 / _S3, 1 / _S3, 1 / _S3),
    (1 / _S2, 0.0, -1 / _S2),
    (1 / _S6, -2 / _S6, 1 / _S6),
)


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
    taps = gaussian_taps(torch.tensor([float(radius)], device=noise.device), math.ceil(3.0 * radius))
    smoothed = separable_blur(power, taps).clamp_min(0.0).sqrt()
    return smoothed.expand(-1, 2, -1, -1).contiguous() if noise.shape[1] == 1 else smoothed


# ---------------------------------------------------------------------------------------------------------------
# Gaussian blur
# ---------------------------------------------------------------------------------------------------------------


def gaussian_taps(sigma: Tensor, pad: int) -> Tensor:
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


def separable_blur(image: Tensor, taps: Tensor) -> Tensor:
    """Separable blur of N x C x H x W by 1-D kernels: ``taps`` 1 x K (all channels) or N*C x K (one each).

    Reflect padding; kernels wider than the image allows are cut and renormalised (see :func:`gaussian_taps`
    for the kernels).
    """
    count, channels, height, width = image.shape
    across = _blur_matrices(taps, width)
    down = _blur_matrices(taps, height).transpose(1, 2)
    if taps.shape[0] == 1:
        return down[0] @ (image @ across[0])
    flat = image.reshape(count * channels, height, width)
    return (down @ (flat @ across)).view(count, channels, height, width)


# ---------------------------------------------------------------------------------------------------------------
# Per-patch draws
# ---------------------------------------------------------------------------------------------------------------


def draw_uniform(count: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> Tensor:
    """``count`` values drawn uniformly in [low, high) from ``generator``, on ``device`` (one per patch)."""
    return low + (high - low) * torch.rand(count, generator=generator, device=device)


def per_patch(values: Tensor) -> Tensor:
    """N values shaped to broadcast against N x C x H x W."""
    return values.view(-1, 1, 1, 1)
