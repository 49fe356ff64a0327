"""Sparse autoencoder: a wide (overcomplete) bottleneck kept sparse by a penalty or by k-winners.

With ``sparsity="l1"`` training adds ``weight * mean(|latent|)`` to the loss; with ``"topk"`` only the
``k_fraction`` largest channels at each latent position survive (in training and at inference alike).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from denoiser.config import is_finite_number, is_whole, require
from denoiser.models.base import MAX_WIDTH, Autoencoder, ModelConfig, zero_penalty
from denoiser.models.blocks import PlainDecoder, PlainEncoder, noise_map
from denoiser.models.registry import register

SPARSITY_KINDS = ("l1", "topk")


@dataclasses.dataclass
class SparseConfig(ModelConfig):
    """Trunk, wide latent, and how sparsity is imposed."""

    latent_channels: int = 256
    """Bottleneck channels: wide on purpose, sparsity (not size) limits what passes."""
    sparsity: str = "l1"
    """"l1": penalise mean |latent|; "topk": keep the k_fraction largest channels at each position."""
    sparsity_weight: float = 1e-3
    """Weight of the L1 penalty in the training loss."""
    k_fraction: float = 0.05
    """Share of latent channels kept at each position with "topk"."""

    def validate(self) -> None:
        super().validate()
        require(is_whole(self.latent_channels) and 1 <= self.latent_channels <= MAX_WIDTH,
                f"latent_channels must be a whole number from 1 to {MAX_WIDTH}")
        require(self.sparsity in SPARSITY_KINDS, f"sparsity must be one of {', '.join(SPARSITY_KINDS)}")
        require(is_finite_number(self.sparsity_weight) and self.sparsity_weight >= 0,
                "sparsity_weight must be a finite number >= 0")
        require(is_finite_number(self.k_fraction) and 0 < self.k_fraction <= 1, "k_fraction must be in (0, 1]")


@register("sparse", SparseConfig)
class Sparse(Autoencoder):
    """Encoder -> ReLU latent (sparse) -> decoder, no skips."""

    family = "sparse"

    def __init__(self, config: SparseConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = PlainEncoder(config.channels + config.noise_channels, config.widths, config.blocks)
        self.to_latent = nn.Conv2d(config.widths[-1], config.latent_channels, kernel_size=1)
        self.from_latent = nn.Conv2d(config.latent_channels, config.widths[-1], kernel_size=1)
        self.decoder = PlainDecoder(config.channels, config.widths, config.blocks)

    def _keep_top_k(self, latent: torch.Tensor) -> torch.Tensor:
        # k winners per latent position (across channels), not per image: the choice stays local, so a
        # tile's latent equals the same region of the whole image's, and tiled inference stays exact.
        k = max(1, int(round(self.config.k_fraction * latent.shape[1])))
        threshold = latent.topk(k, dim=1).values[:, -1:]
        return latent * (latent >= threshold)

    def encode(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        levels = noise_map(noise_level, x, self.config.noise_channels)
        latent = torch.relu(self.to_latent(self.encoder(torch.cat([x, levels], dim=1))))
        return self._keep_top_k(latent) if self.config.sparsity == "topk" else latent

    def forward_train(
        self, x: torch.Tensor, noise_level: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.encode(x, noise_level)
        output = self.decoder(self.from_latent(latent))
        if self.config.sparsity == "l1":
            return output, self.config.sparsity_weight * latent.abs().mean()
        return output, zero_penalty(x)
