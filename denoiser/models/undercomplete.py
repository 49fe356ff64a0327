"""Undercomplete autoencoder: no skips, and a bottleneck that holds fewer values than the input.

Everything the decoder knows must pass through the narrow latent, so the model keeps the structure it has
learnt and drops what it cannot code (noise, but fine detail too): lossy by design.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from denoiser.config import is_whole, require
from denoiser.models.base import Autoencoder, ModelConfig, zero_penalty
from denoiser.models.blocks import PlainDecoder, PlainEncoder, noise_map
from denoiser.models.registry import register


@dataclasses.dataclass
class UndercompleteConfig(ModelConfig):
    """Trunk widths per level, residual blocks per level, and the latent's channel count."""

    latent_channels: int = 16
    """Bottleneck channels; must stay below channels * 4**halvings so the code is smaller than the input."""

    def validate(self) -> None:
        super().validate()
        halvings = len(self.widths) - 1
        require(
            is_whole(self.latent_channels) and 1 <= self.latent_channels < self.channels * 4**halvings,
            f"latent_channels must be 1 to {self.channels * 4**halvings - 1} to be undercomplete",
        )


@register("undercomplete", UndercompleteConfig)
class Undercomplete(Autoencoder):
    """Encoder -> 1x1 squeeze to the latent -> 1x1 expand -> decoder."""

    family = "undercomplete"

    def __init__(self, config: UndercompleteConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = PlainEncoder(config.channels + config.noise_channels, config.widths, config.blocks)
        self.squeeze = nn.Conv2d(config.widths[-1], config.latent_channels, kernel_size=1)
        self.expand = nn.Conv2d(config.latent_channels, config.widths[-1], kernel_size=1)
        self.decoder = PlainDecoder(config.channels, config.widths, config.blocks)

    def encode(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        levels = noise_map(noise_level, x, self.config.noise_channels)
        return self.squeeze(self.encoder(torch.cat([x, levels], dim=1)))

    def forward_train(
        self, x: torch.Tensor, noise_level: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(self.expand(self.encode(x, noise_level))), zero_penalty(x)
