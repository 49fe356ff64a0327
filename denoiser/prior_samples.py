"""Images drawn from a variational model's prior (a unit Gaussian over its latents), laid out in one grid: what the
model takes images to look like. ``denoiser models sample`` and the app's model manager both write them through
:func:`write_samples`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from denoiser.errors import DenoiserError
from denoiser.io import Image, from_float, write_image
from denoiser.modelfile import ModelInfo
from denoiser.models.variational import Variational
from denoiser.modelstore import load_model

__all__ = ["can_sample", "sample_grid", "write_samples"]


def can_sample(family: str) -> bool:
    """Whether models of ``family`` have a prior to draw images from: only the variational family has one."""
    return family == Variational.family


def sample_grid(model: Variational, count: int, size: int, seed: int) -> np.ndarray:
    """``count`` draws from ``model``'s prior (random latents seeded by ``seed``), decoded at ``size`` x ``size``
    and clipped to 0-1, laid out row by row in a grid as square as can be (cells left over stay black): float32
    H x W x C, C the model's channels."""
    with torch.inference_mode():
        images = model.sample(count, size, size, generator=torch.Generator().manual_seed(seed))
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    grid = np.zeros((rows * size, columns * size, images.shape[1]), np.float32)
    for index, image in enumerate(images.clamp(0, 1).permute(0, 2, 3, 1).numpy()):
        row, column = divmod(index, columns)
        grid[row * size : (row + 1) * size, column * size : (column + 1) * size] = image
    return grid


def write_samples(spec: str | Path, output: str | Path, *, count: int = 1, size: int = 64,
                  seed: int = 0) -> tuple[Path, ModelInfo]:
    """Load model ``spec`` (a library name or a ``.safetensors`` path), draw ``count`` images of ``size`` x ``size``
    from its prior with ``seed``, and write them in one 8-bit grid (:func:`sample_grid`) to ``output``, never over an
    existing file. Returns the path written and the model's description.

    Raises :class:`~denoiser.errors.DenoiserError` for a model with no prior (every family but the variational)
    and, naming the file, for what :func:`~denoiser.io.write_image` refuses.
    """
    model, info = load_model(spec)
    if not isinstance(model, Variational):
        raise DenoiserError(f"{info.name} is a {info.family} model, which has no prior to draw images from; "
                            "only variational models can be sampled")
    path = write_image(output, Image(from_float(sample_grid(model, count, size, seed), 8)))
    return path, info
