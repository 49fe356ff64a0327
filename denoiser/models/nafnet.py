"""A U-Net of NAFNet blocks: more quality per multiply-add than residual blocks, for training on a GPU.

Chen, Chu, Zhang and Sun, "Simple Baselines for Image Restoration" (ECCV 2022): each block normalises each pixel
over its channels, widens with a 1x1 convolution, mixes neighbours with a 3x3 depthwise convolution, and gates
(one half of the channels times the other) instead of a non-linearity, then a gated 1x1 feed-forward part; both
residual branches start at zero. A block costs about 6 c^2 multiply-adds per pixel at width c, a residual block
of two 3x3 convolutions 18 c^2. NAFNet's channel attention pools over the whole image; it is left out here, as
every family keeps each output pixel's dependence local so that tiled inference matches the whole image.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from denoiser.models.blocks import encoder_radius
from denoiser.models.registry import register
from denoiser.models.unet import UNet, UNetConfig


@dataclasses.dataclass
class NAFNetConfig(UNetConfig):
    """The U-Net's shape with NAFNet blocks (cheaper: two blocks per level cost less than one residual block)."""

    widths: tuple[int, ...] = (32, 64, 128, 256)
    """Channels at each scale; len - 1 halvings."""
    blocks: int = 2
    """NAFNet blocks per level, on each side."""


class ChannelNorm(nn.Module):
    """Layer normalisation over the channels of each pixel (nothing pooled over space)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.shape = (channels,)  # a constant, not read off x: an ONNX export then has a fixed normalised shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Channels last, the channels of a pixel lie together: layer_norm over the last axis reads memory in order.
        normed = nn.functional.layer_norm(x.permute(0, 2, 3, 1), self.shape, self.weight, self.bias, self.eps)
        return normed.permute(0, 3, 1, 2)


class NAFBlock(nn.Module):
    """Norm, 1x1 widen, 3x3 depthwise, gate, 1x1; then norm, gated 1x1 feed-forward; scaled residuals."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        wide = 2 * channels
        self.norm = ChannelNorm(channels)
        self.widen = nn.Conv2d(channels, wide, kernel_size=1)
        self.depthwise = nn.Conv2d(wide, wide, kernel_size=3, padding=1, groups=wide)
        self.project = nn.Conv2d(channels, channels, kernel_size=1)
        self.ffn_norm = ChannelNorm(channels)
        self.ffn_widen = nn.Conv2d(channels, wide, kernel_size=1)
        self.ffn_project = nn.Conv2d(channels, channels, kernel_size=1)
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    @staticmethod
    def gate(x: torch.Tensor) -> torch.Tensor:
        first, second = x.chunk(2, dim=1)
        return first * second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.beta * self.project(self.gate(self.depthwise(self.widen(self.norm(x)))))
        return x + self.gamma * self.ffn_project(self.gate(self.ffn_widen(self.ffn_norm(x))))


@register("nafnet", NAFNetConfig)
class NAFNet(UNet):
    """The flagship U-Net's layout (noise map in, additive skips, predicts the noise) with NAFNet blocks."""

    family = "nafnet"

    @staticmethod
    def stack(width: int, count: int) -> nn.Module:
        return nn.Sequential(*[NAFBlock(width) for _ in range(count)])

    @property
    def receptive_radius(self) -> int:
        """One 3x3 (depthwise) convolution per block, unlike a residual block's two."""
        return encoder_radius(len(self.config.widths) - 1, self.config.blocks)
