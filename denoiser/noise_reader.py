"""Reading a photo's noise map with the noise-map estimator: the tiling of the photo, written once for the torch
network and its exported graph (:mod:`denoiser.bundled_noise_reader` picks which one auto uses).

The estimator (:mod:`denoiser.estimator`) works at a quarter of the resolution; the photo is read in tiles with a
margin of context on every side, so a photo of any size fits in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from denoiser.io import to_float

__all__ = ["SCALE", "NoiseReader", "read_noise_map"]

SCALE = 4
"""The estimate is made at 1/SCALE of the resolution, then interpolated."""

EstimatorRun = Callable[[np.ndarray], np.ndarray]
"""One tile through the network: 1 x 3 x H x W float32 RGB in 0-1 -> 1 x 2 x H/4 x W/4 levels (0-1 units)."""


@dataclass(frozen=True)
class NoiseReader:
    """What auto reads a photo's noise with: ``read(pixels)`` gives the (luminance, colour) map in 0-255 units at
    a quarter of the resolution (see :func:`read_noise_map`)."""

    read: Callable[[np.ndarray], np.ndarray]
    reads_grey: bool = False
    """Whether it learnt to read grey photos (else auto reads those with the PCA estimate)."""
    smallest_side: int = 16
    """Photos smaller than this on a side are left to the PCA estimate."""


def _float_rgb(pixels: np.ndarray) -> np.ndarray:
    scaled = to_float(pixels)
    return np.repeat(scaled, 3, axis=2) if scaled.shape[2] == 1 else scaled[:, :, :3]


def read_noise_map(run: EstimatorRun, pixels: np.ndarray, *, tile: int = 1024, margin: int = 64) -> np.ndarray:
    """The (luminance, colour) noise levels of ``pixels`` (H x W x C; uint8, uint16 or float in 0-1), sigma in
    0-255 units, float32, as a map of ceil(H/4) x ceil(W/4) x 2 that covers the photo.

    The photo is read in ``tile``-pixel squares, each with ``margin`` pixels of context on every side (cut away
    after), at 1/4 resolution. The pixels keep their own type until a tile is read: a float copy of a 24-megapixel
    photo would cost 288 MB.
    """
    rgb = pixels[:, :, None] if pixels.ndim == 2 else pixels
    height, width = rgb.shape[:2]
    step = 2 * SCALE
    tile, margin = max(step, tile // step * step), max(step, margin // step * step)
    padded_h, padded_w = -(-height // step) * step, -(-width // step) * step
    spec = ((margin, padded_h - height + margin), (margin, padded_w - width + margin), (0, 0))
    # Reflection (repeated for a photo smaller than the margin) keeps the noise in the context; an edge copy
    # would show the network a clean band and read tiny photos low.
    canvas = np.pad(rgb, spec, mode="reflect" if min(height, width) > 1 else "edge")
    low = np.zeros((2, padded_h // SCALE, padded_w // SCALE), dtype=np.float32)
    for top in range(0, padded_h, tile):
        for left in range(0, padded_w, tile):
            bottom, right = min(top + tile, padded_h), min(left + tile, padded_w)
            window = canvas[top : bottom + 2 * margin, left : right + 2 * margin]
            out = run(np.ascontiguousarray(_float_rgb(window).transpose(2, 0, 1))[None])[0]
            cut = margin // SCALE
            low[:, top // SCALE : bottom // SCALE, left // SCALE : right // SCALE] = \
                out[:, cut : cut + (bottom - top) // SCALE, cut : cut + (right - left) // SCALE]
    # The map stays at a quarter of the resolution: it covers the photo, and the denoiser reads it interpolated
    # (denoiser.tiling.sample_map), so a 24-megapixel photo's map is 12 MB instead of 192.
    quarter = low[:, : -(-height // SCALE), : -(-width // SCALE)]
    return np.ascontiguousarray(quarter.transpose(1, 2, 0) * np.float32(255.0))
