"""The reference tiled inference must match: the model over the whole padded image in one pass, on the CPU.

Built from the tiling module's public pieces (padding, reading a noise map) and a plain forward pass, none of
:mod:`denoiser.inference`'s own code, so a bug in the tiles, their blending or the level map shows as a difference.
"""

from __future__ import annotations

import numpy as np
import torch

from denoiser.io import to_float
from denoiser.models import Autoencoder
from denoiser.tiling import canvas_padding, pad_image, sample_map


def denoise_whole(image: np.ndarray, model: Autoencoder, sigma: float | np.ndarray) -> np.ndarray:
    """``image`` (H x W or H x W x C, uint8/uint16/float) denoised in one pass; float32 H x W x C in 0-1.

    ``sigma`` is in 0-255 units: one number, or an h x w (x K) map covering the image at any resolution. A grey
    image given to a colour model goes through it as three equal channels and comes back as their mean.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    grey_through_colour = image.shape[2] == 1 and model.config.channels == 3
    if grey_through_colour:
        image = np.repeat(image, 3, axis=2)
    height, width = image.shape[:2]
    padding = canvas_padding(height, width, model.receptive_radius, model.size_multiple)
    canvas = to_float(pad_image(image, padding))
    level: float | torch.Tensor
    if isinstance(sigma, np.ndarray):
        levels = (sigma if sigma.ndim == 3 else sigma[:, :, None]).astype(np.float32) / np.float32(255.0)
        window = sample_map(levels, height, width, -padding.top, -padding.left, *canvas.shape[:2])
        level = torch.from_numpy(np.ascontiguousarray(window)).permute(2, 0, 1)[None]
    else:
        level = float(sigma) / 255.0
    model.eval().to("cpu")
    with torch.inference_mode():
        out = model(torch.from_numpy(canvas).permute(2, 0, 1)[None], level)[0].permute(1, 2, 0).numpy()
    out = out[padding.top : padding.top + height, padding.left : padding.left + width]
    return out.mean(axis=2, keepdims=True) if grey_through_colour else out
