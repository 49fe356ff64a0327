"""Give a trained one-noise-channel model a second noise input (luminance and colour noise apart).

The first convolution's weights on the single noise channel are shared between the two new ones, in the
proportions of the per-RGB-channel sigma (one luminance axis, two colour axes of the orthonormal opponent
transform): with equal luminance and colour levels the widened model computes exactly what the original did,
so fine-tuning starts from the trained model rather than from scratch.
"""

from __future__ import annotations

import dataclasses

import torch

from denoiser.errors import DenoiserError
from denoiser.models.base import Autoencoder
from denoiser.models.registry import create_model

LUMINANCE_SHARE = 1.0 / 3.0
"""Share of the old noise weights the luminance input takes (the two colour axes take the rest)."""


def with_colour_noise_input(model: Autoencoder) -> Autoencoder:
    """A copy of ``model`` (which takes one noise level) that takes luminance and colour noise levels apart."""
    if model.config.noise_channels == 2:
        raise DenoiserError("the model already takes luminance and colour noise apart")
    config = dataclasses.replace(model.config, noise_channels=2)
    widened = create_model(model.family, config)
    image_channels = model.config.channels
    state = {}
    targets = widened.state_dict()
    for name, value in model.state_dict().items():
        if targets[name].shape != value.shape:  # the convolution that reads image + noise map
            noise = value[:, image_channels : image_channels + 1]
            value = torch.cat([value[:, :image_channels], LUMINANCE_SHARE * noise, (1 - LUMINANCE_SHARE) * noise],
                              dim=1)
        state[name] = value
    widened.load_state_dict(state)
    return widened.eval()
