"""The numbers behind what the app shows: blending the original back, the residual, latent thumbnails, the
noise map.

Kept in the engine so the GUI holds no numerical code; everything here takes and returns numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from denoiser.io import from_float, to_float


def blend(original: np.ndarray, denoised: np.ndarray, amount: float) -> np.ndarray:
    """Mix ``amount`` (0-1) of the original back into the result (the "detail" control); float32 0-1."""
    amount = float(np.clip(amount, 0.0, 1.0))
    out = denoised.astype(np.float32) * (1.0 - amount) + original.astype(np.float32) * amount
    return np.clip(out, 0.0, 1.0, out=out)


def residual(original: np.ndarray, denoised: np.ndarray, gain: float = 4.0) -> np.ndarray:
    """What was removed, ``original - denoised``, amplified by ``gain`` around mid-grey; float32 0-1."""
    out = (original.astype(np.float32) - denoised.astype(np.float32)) * gain + 0.5
    return np.clip(out, 0.0, 1.0, out=out)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float 0-1 (or uint16/uint8) H x W x C to uint8 for display."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)  # the top byte: what a screen shows of 16 bits
    return from_float(image, 8)


def _normalise(channel: np.ndarray) -> np.ndarray:
    low, high = np.percentile(channel, [1, 99])
    if high - low < 1e-8:
        return np.zeros(channel.shape, dtype=np.uint8)
    return np.clip(np.round((channel - low) / (high - low) * 255), 0, 255).astype(np.uint8)


def channel_activity(latent: np.ndarray) -> np.ndarray:
    """Mean absolute activation of each latent channel (C x h x w -> C)."""
    return np.abs(latent).reshape(latent.shape[0], -1).mean(axis=1)


def latent_thumbnails(latent: np.ndarray, count: int = 16) -> list[tuple[int, float, np.ndarray]]:
    """The ``count`` most active channels as (channel index, activity, uint8 h x w grey image), most active first."""
    activity = channel_activity(latent)
    order = np.argsort(-activity, kind="stable")[:count]
    return [(int(i), float(activity[i]), _normalise(latent[i])) for i in order]


def latent_pca_rgb(latent: np.ndarray) -> np.ndarray:
    """The latent's first three principal components (over channels) mapped to R, G, B: uint8 h x w x 3."""
    channels, height, width = latent.shape
    samples = latent.reshape(channels, -1).T.astype(np.float64)
    samples -= samples.mean(axis=0, keepdims=True)
    if channels == 1:
        grey = _normalise(samples[:, 0].reshape(height, width))
        return np.repeat(grey[:, :, None], 3, axis=2)
    # SVD of the samples: right singular vectors are the principal directions, largest first.
    _, _, directions = np.linalg.svd(samples, full_matrices=False)
    components = samples @ directions[:3].T
    planes = [_normalise(components[:, i].reshape(height, width)) for i in range(components.shape[1])]
    while len(planes) < 3:
        planes.append(np.zeros((height, width), dtype=np.uint8))
    return np.stack(planes, axis=2)


def compose_views(original: np.ndarray, denoised: np.ndarray, detail: float) -> tuple[np.ndarray, np.ndarray]:
    """What the viewer shows: the result with ``detail`` of the original mixed back, and the residual.

    Both uint8, H x W x 3 for colour or H x W for grey.
    """
    scaled = to_float(original)
    if scaled.ndim == 2:
        scaled = scaled[:, :, None]
    shown = blend(scaled, denoised, detail)
    removed = residual(scaled, shown)
    if shown.shape[2] == 1:
        shown, removed = shown[:, :, 0], removed[:, :, 0]
    return to_uint8(shown), to_uint8(removed)


@dataclass
class LatentView:
    """The latent thumbnails of one image: a caption, the PCA colour image and the most active channels."""

    caption: str
    colour: np.ndarray
    channels: list[tuple[str, np.ndarray]]


def latent_view(latent: np.ndarray, family: str, count: int = 16) -> LatentView:
    """Thumbnails of a C x h x w latent, described for the app (the variational family shows its mean). The caption
    says what the latent is; what the PCA tile means is the app's legend above it, said once."""
    what = "channels of the latent mean" if family == "variational" else "latent channels"
    caption = (f"{latent.shape[0]} {what} of {latent.shape[2]}x{latent.shape[1]}; the {min(count, latent.shape[0])} "
               f"most active shown first.")
    channels = [(f"#{index}", image) for index, _, image in latent_thumbnails(latent, count)]
    return LatentView(caption, latent_pca_rgb(latent), channels)


LUMINANCE_HUE = (0, 140, 255)
"""The noise map's colour for luminance noise (blue), RGB 0-255 at the top of the scale."""
COLOUR_HUE = (255, 115, 0)
"""The noise map's colour for colour noise (orange): with the luminance hue it adds up to white, so equal levels of
both read grey to white."""
NOISE_MAP_KEY = (("luminance", LUMINANCE_HUE), ("colour", COLOUR_HUE), ("both", (255, 255, 255)),
                 ("clean", (0, 0, 0)))
"""The noise map's colours by what they mean, for a legend."""
NOISE_MAP_WORKING_SIDE = 512
"""The noise map is coloured at most this many pixels on its longer side, then enlarged: noise levels vary
over regions, not pixels, and a 24 MP map would otherwise cost a second of colour maths."""


def _two_channel(levels: np.ndarray) -> np.ndarray:
    levels = np.asarray(levels, dtype=np.float32)
    if levels.ndim == 2:
        levels = levels[:, :, None]
    if levels.ndim != 3 or levels.shape[2] not in (1, 2) or 0 in levels.shape:
        raise ValueError(f"a noise map is H x W x 1 or 2, got shape {levels.shape}")
    return np.repeat(levels, 2, axis=2) if levels.shape[2] == 1 else levels


def noise_map_image(levels: np.ndarray, size: tuple[int, int], maximum: float = 75.0) -> np.ndarray:
    """A picture of a noise map (h x w x 2 luminance, colour sigma in 0-255 units, covering the photo at any
    resolution; 1 x 1 x 2 when flat) at
    ``size`` (height, width): uint8 height x width x 3.

    Luminance noise shows in :data:`LUMINANCE_HUE` (blue), colour noise in :data:`COLOUR_HUE` (orange), added
    together (both strong reads white); black is clean. Brightness follows the square root of ``level /
    maximum`` so the low levels of ordinary photos (sigma 2-10 of 75) still show. The map is shrunk to at most
    :data:`NOISE_MAP_WORKING_SIDE` pixels before it is coloured, and the colours enlarged to ``size``.
    """
    height, width = int(size[0]), int(size[1])
    if height <= 0 or width <= 0:
        raise ValueError(f"size must be positive, got {size}")
    levels = _two_channel(levels)
    rows, cols = levels.shape[:2]
    shrink = min(1.0, NOISE_MAP_WORKING_SIDE / max(rows, cols), max(height / rows, width / cols))
    if shrink < 1.0:
        small = (max(1, round(cols * shrink)), max(1, round(rows * shrink)))
        levels = cv2.resize(levels, small, interpolation=cv2.INTER_AREA).reshape(small[1], small[0], 2)
    brightness = np.sqrt(np.clip(levels / np.float32(max(maximum, 1e-6)), 0.0, 1.0))
    hues = np.array([LUMINANCE_HUE, COLOUR_HUE], dtype=np.float32)  # 2 x 3: one row per noise kind
    rgb = np.clip(np.round(brightness @ hues), 0, 255).astype(np.uint8)
    if rgb.shape[:2] == (1, 1):
        return np.ascontiguousarray(np.broadcast_to(rgb, (height, width, 3)))
    if rgb.shape[:2] == (height, width):
        return rgb
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)


def noise_map_legend(levels: np.ndarray, maximum: float = 75.0, method: str = "") -> list[str]:
    """What :func:`noise_map_image` shows beyond its colour key (:data:`NOISE_MAP_KEY`), as short lines: the
    scale, then the luminance and colour noise levels' minimum, median and maximum (sigma, 0-255 units; one level
    each for a flat map)."""
    levels = _two_channel(levels)
    lines = [f"brightness: square root of sigma, full at {maximum:g}"]
    flat = levels.shape[:2] == (1, 1)
    for index, name in ((0, "luminance"), (1, "colour")):
        low, middle, high = (float(v) for v in np.percentile(levels[:, :, index], [0, 50, 100]))
        lines.append(f"{name} sigma {middle:.1f} everywhere" if flat else
                     f"{name} sigma: min {low:.1f}, median {middle:.1f}, max {high:.1f}")
    if flat:
        lines.append("one level for the whole photo" + (f" ({method.upper()} estimate)" if method else ""))
    return lines


HISTOGRAM_BINS = 64
HISTOGRAM_SIDE = 512
"""A histogram is counted on a copy strided down to about this many pixels on its longer side."""


def histogram(pixels: np.ndarray, bins: int = HISTOGRAM_BINS, max_side: int = HISTOGRAM_SIDE) -> np.ndarray:
    """Per-channel histogram of ``pixels`` (H x W, or H x W x C with C in 1, 3, 4; uint8, uint16 or float 0-1)
    over 0-1 in ``bins`` bins, as a C x bins float32 array scaled so the tallest bin is 1 (alpha is left out).

    Counted on every n-th pixel so that the longer side is at most ``max_side``: a 24-megapixel photo costs
    milliseconds, and the shape of a histogram does not change by skipping pixels.
    """
    data = np.asarray(pixels)
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim != 3 or data.shape[2] not in (1, 3, 4):
        raise ValueError(f"pixels must be H x W or H x W x C with C in (1, 3, 4), got shape {data.shape}")
    data = data[:, :, :3] if data.shape[2] == 4 else data
    step = max(1, -(-max(data.shape[:2]) // max_side))
    sample = data[::step, ::step]
    scaled = to_float(sample)
    counts = np.stack([np.histogram(scaled[:, :, c], bins=bins, range=(0.0, 1.0))[0]
                       for c in range(scaled.shape[2])]).astype(np.float32)
    tallest = counts.max()
    return counts / tallest if tallest > 0 else counts
