"""Variational autoencoder: the bottleneck is a mean and a log-variance.

Training samples the latent with the reparameterisation trick and adds ``kl_weight`` times the KL
divergence to a unit Gaussian; inference decodes the mean, so results are repeatable. ``sample`` decodes
draws from the prior (what the model thinks images look like).
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from denoiser.config import is_finite_number, is_whole, require
from denoiser.models.base import MAX_WIDTH, Autoencoder, ModelConfig
from denoiser.models.blocks import PlainDecoder, PlainEncoder, noise_map
from denoiser.models.registry import register


@dataclasses.dataclass
class VariationalConfig(ModelConfig):
    """Trunk, latent size, and the KL weight."""

    latent_channels: int = 32
    """Channels of the mean (and of the log-variance)."""
    kl_weight: float = 1e-4
    """Weight of the KL term: small, since denoising wants fidelity more than a smooth prior."""

    def validate(self) -> None:
        super().validate()
        require(is_whole(self.latent_channels) and 1 <= self.latent_channels <= MAX_WIDTH,
                f"latent_channels must be a whole number from 1 to {MAX_WIDTH}")
        require(is_finite_number(self.kl_weight) and self.kl_weight >= 0, "kl_weight must be a finite number >= 0")


@register("variational", VariationalConfig)
class Variational(Autoencoder):
    """Encoder -> (mean, log-variance) -> sample or mean -> decoder, no skips."""

    family = "variational"

    def __init__(self, config: VariationalConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = PlainEncoder(config.channels + config.noise_channels, config.widths, config.blocks)
        self.to_mean = nn.Conv2d(config.widths[-1], config.latent_channels, kernel_size=1)
        self.to_logvar = nn.Conv2d(config.widths[-1], config.latent_channels, kernel_size=1)
        self.from_latent = nn.Conv2d(config.latent_channels, config.widths[-1], kernel_size=1)
        self.decoder = PlainDecoder(config.channels, config.widths, config.blocks)

    def _moments(self, x: torch.Tensor, noise_level: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(torch.cat([x, noise_map(noise_level, x, self.config.noise_channels)], dim=1))
        return self.to_mean(h), self.to_logvar(h).clamp(-20.0, 20.0)

    def encode(self, x: torch.Tensor, noise_level: torch.Tensor | float = 0.0) -> torch.Tensor:
        """The latent mean (what inference decodes)."""
        return self._moments(x, noise_level)[0]

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """Image from a latent (a mean, or a draw from the prior)."""
        return self.decoder(self.from_latent(latent))

    def forward_train(
        self, x: torch.Tensor, noise_level: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self._moments(x, noise_level)
        if self.training:
            latent = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
            kl = -0.5 * torch.mean(1 + logvar - mean.pow(2) - logvar.exp())
            return self.decode(latent), self.config.kl_weight * kl
        return self.decode(mean), self.config.kl_weight * x.new_zeros(())

    def sample(self, count: int, height: int, width: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode ``count`` draws from the unit-Gaussian prior into images of height x width."""
        step = self.size_multiple
        device = next(self.parameters()).device
        shape = (count, self.config.latent_channels, -(-height // step), -(-width // step))
        latent = torch.randn(shape, generator=generator, device=device)
        return self.decode(latent)[:, :, :height, :width]
