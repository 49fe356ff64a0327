"""The base every autoencoder family derives from, and the base of their configs."""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import torch
from torch import nn

from denoiser.config import VersionedConfig, is_whole, require, short
from denoiser.models.blocks import encoder_radius

MAX_WIDTH = 4096
"""Most channels a level (or a latent) may have: far beyond any model worth running here (a 3x3 convolution of
this width holds 600 MB of weights), and small enough that a model file cannot ask for absurd sizes."""


@dataclasses.dataclass
class ModelConfig(VersionedConfig):
    """Fields every family shares: the image channels and the encoder/decoder trunk."""

    channels: int = 3
    """Image channels: 3 for colour, 1 for grey."""
    widths: tuple[int, ...] = (32, 64, 96)
    """Channels at each scale; len - 1 halvings (the last width is the deepest level)."""
    blocks: int = 1
    """Residual blocks per level, on each side."""
    noise_channels: int = 1
    """Noise-map input channels: 1 (one sigma for every channel) or 2 (luminance and colour noise apart, so the
    two can be set separately, as camera noise needs)."""

    def validate(self) -> None:
        require(is_whole(self.channels) and self.channels in (1, 3),
                f"channels must be 1 or 3, not {short(self.channels)}")
        require(isinstance(self.widths, (tuple, list)),
                f"widths must be a list of whole numbers, not {short(self.widths)}")
        require(2 <= len(self.widths) <= 6, "widths must list 2 to 6 levels")
        odd = [w for w in self.widths if not is_whole(w) or not 1 <= w <= MAX_WIDTH]
        require(not odd,
                f"every width must be a whole number from 1 to {MAX_WIDTH}, not {short(odd[0]) if odd else ''}")
        require(is_whole(self.blocks) and 0 <= self.blocks <= 8, f"blocks must be 0 to 8, not {short(self.blocks)}")
        require(is_whole(self.noise_channels) and self.noise_channels in (1, 2),
                f"noise_channels must be 1 or 2, not {short(self.noise_channels)}")


class Autoencoder(nn.Module):
    """Encoder -> bottleneck -> decoder, denoising an N x C x H x W batch in the 0-1 range.

    ``forward(x, noise_level)`` returns the cleaned batch; ``encode(x, noise_level)`` the bottleneck
    (used for the latent-space thumbnails); ``forward_train`` also returns the family's regularisation
    penalty (0 for families that have none). ``noise_level`` is sigma in 0-1 units (sigma_255 / 255).
    """

    family: ClassVar[str] = ""
    config: ModelConfig

    @property
    def size_multiple(self) -> int:
        """Height and width of an input must be a multiple of this (inference pads to it)."""
        return 2 ** (len(self.config.widths) - 1)

    @property
    def receptive_radius(self) -> int:
        """How far, in pixels, an output pixel can see (each residual block is two convolutions)."""
        return encoder_radius(len(self.config.widths) - 1, 2 * self.config.blocks)

    @property
    def receptive_margin(self) -> int:
        """Tile overlap, in pixels, at which tiled inference reproduces whole-image inference.

        The tiler blends neighbours over the middle quarter of their shared band, so every pixel it keeps
        lies at least 3/8 of the overlap away from the tile edge: the overlap must be 8/3 of the radius.
        """
        margin = math.ceil(self.receptive_radius * 8 / 3)
        step = self.size_multiple
        return -(-margin // step) * step

    def encode(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        """The bottleneck activations for ``x`` (N x latent_channels x h x w)."""
        raise NotImplementedError

    def forward_train(
        self, x: torch.Tensor, noise_level: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Output and regularisation penalty (a scalar tensor) for one training batch."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        """The cleaned batch."""
        return self.forward_train(x, noise_level)[0]

    def parameter_count(self) -> int:
        """Number of trainable values."""
        return sum(p.numel() for p in self.parameters())


def zero_penalty(like: torch.Tensor) -> torch.Tensor:
    """A scalar zero on the same device and dtype as ``like``."""
    return like.new_zeros(())
