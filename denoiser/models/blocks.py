"""Building blocks shared by every autoencoder family: convolutions, residual blocks, down/up steps.

No block normalises over space (no BatchNorm/GroupNorm statistics), so a tile's output never depends on
pixels outside its receptive field: that is what lets tiled inference match whole-image inference.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A 3x3 convolution that keeps the spatial size."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class ResBlock(nn.Module):
    """conv-ReLU-conv plus the input: residual blocks train faster than plain stacks at equal cost."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), nn.ReLU(inplace=True), conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def res_stack(channels: int, count: int) -> nn.Sequential:
    """``count`` residual blocks of ``channels`` channels (an identity when count is 0)."""
    return nn.Sequential(*[ResBlock(channels) for _ in range(count)])


def downsample(in_channels: int, out_channels: int) -> nn.Conv2d:
    """Halve height and width with a 2x2 stride-2 convolution (cheaper than pooling plus a conv)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=2, stride=2)


def upsample(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """Double height and width with a 2x2 stride-2 transposed convolution (no checkerboard: no overlap)."""
    return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)


def noise_map(noise_level: torch.Tensor | float, like: torch.Tensor, channels: int = 1) -> torch.Tensor:
    """Expand a noise level (sigma in 0-1 units) to the N x ``channels`` x H x W map a model takes.

    Accepts a float, a tensor of shape (), (N,), (N, 1, 1, 1), or an N x 1 or N x 2 x H x W map (two channels:
    the luminance and the colour noise, see :mod:`denoiser.synthesis`). One level feeds both channels of a
    two-channel model; a two-channel map given to a one-channel model becomes their per-RGB-channel equivalent.
    """
    n, image_channels, h, w = like.shape
    level = torch.as_tensor(noise_level, dtype=like.dtype, device=like.device)
    if level.dim() == 0:
        level = level.expand(n)
    if level.dim() == 1:
        level = level.view(-1, 1, 1, 1)
    given = level.shape[1]
    if given == 2 and channels == 1:
        level = combined_level(level, image_channels)
    elif given == 1 and channels == 2:
        level = level.expand(-1, 2, -1, -1)
    elif given != channels:
        raise ValueError(f"a noise map of {given} channels cannot feed a model that takes {channels}")
    return level.expand(n, channels, h, w)


def combined_level(luminance_colour: torch.Tensor, image_channels: int = 3) -> torch.Tensor:
    """One sigma per pixel from an N x 2 x H x W luminance/colour map: for colour images the root mean variance
    over the three RGB channels (the opponent transform is orthonormal: one luminance, two colour axes); for grey
    images the luminance alone."""
    if image_channels == 1:
        return luminance_colour[:, :1]
    variance = (luminance_colour[:, :1] ** 2 + 2 * luminance_colour[:, 1:2] ** 2) / 3
    return torch.sqrt(variance)


def encoder_radius(levels: int, convs_per_level: int) -> int:
    """Receptive radius, in input pixels, of a U-shaped net with ``levels`` halvings.

    Each 3x3 conv at level ``l`` widens the field by ``2**l`` pixels on each side, and each 2x2 stride-2
    step (down or up) by ``2**l``; encoder and decoder both count, the bottleneck once.
    """
    radius = 2  # head and tail convolutions
    for level in range(levels):
        radius += 2 * convs_per_level * 2**level  # encoder and decoder convs at this level
        radius += 2 * 2**level  # the down step and the up step
    radius += convs_per_level * 2**levels  # bottleneck
    return radius


class PlainEncoder(nn.Module):
    """Head conv, then per level residual blocks and a halving step; ends at the deepest width."""

    def __init__(self, in_channels: int, widths: tuple[int, ...], blocks: int) -> None:
        super().__init__()
        self.head = conv3x3(in_channels, widths[0])
        self.levels = nn.ModuleList(
            nn.Sequential(res_stack(widths[i], blocks), downsample(widths[i], widths[i + 1]))
            for i in range(len(widths) - 1)
        )
        self.bottom = res_stack(widths[-1], blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        for level in self.levels:
            h = level(h)
        return self.bottom(h)


class PlainDecoder(nn.Module):
    """Mirror of :class:`PlainEncoder` without skip connections: the bottleneck is all it gets."""

    def __init__(self, out_channels: int, widths: tuple[int, ...], blocks: int) -> None:
        super().__init__()
        self.levels = nn.ModuleList(
            nn.Sequential(upsample(widths[i + 1], widths[i]), res_stack(widths[i], blocks))
            for i in reversed(range(len(widths) - 1))
        )
        self.tail = conv3x3(widths[0], out_channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        for level in self.levels:
            h = level(h)
        return self.tail(h)
