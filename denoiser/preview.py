"""Fast first results: denoise the region a user is looking at before the whole photo.

``denoise_region`` runs the model on a crop grown by the model's receptive radius and aligned to its grid,
so the region's pixels equal what the full run gives them, and returns the region's result only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from denoiser.exported import ExportedModel
from denoiser.inference import NoiseLevel, TileSettings, denoise_array
from denoiser.io import to_float
from denoiser.progress import Progress, ProgressFn, StopFn, ignore_progress
from denoiser.tiling import round_up, sample_map

if TYPE_CHECKING:
    from denoiser.models import Autoencoder

PREVIEW_THRESHOLD_PIXELS = 1_500_000
"""Photos larger than this get a preview of the visible region first."""


@dataclass(frozen=True)
class Region:
    """A rectangle of an image in pixels: left, top, width, height."""

    left: int
    top: int
    width: int
    height: int

    def clipped(self, image_width: int, image_height: int) -> Region:
        """The part of the region inside an image of the given size."""
        left, top = max(0, self.left), max(0, self.top)
        right = min(image_width, self.left + self.width)
        bottom = min(image_height, self.top + self.height)
        return Region(left, top, max(0, right - left), max(0, bottom - top))

    @property
    def area(self) -> int:
        """Pixels in the region."""
        return self.width * self.height

    @property
    def slices(self) -> tuple[slice, slice]:
        """(rows, columns): the region of an H x W (x C) array, ``array[region.slices]``."""
        return slice(self.top, self.top + self.height), slice(self.left, self.left + self.width)


def wants_preview(image_shape: tuple[int, ...], visible: Region | None) -> bool:
    """Whether a preview pays: a large photo of which the user sees clearly less than all."""
    height, width = image_shape[:2]
    if visible is None or height * width <= PREVIEW_THRESHOLD_PIXELS:
        return False
    area = visible.clipped(width, height).area
    return 0 < area < 0.6 * height * width


def denoise_region(
    image: np.ndarray,
    model: Autoencoder | ExportedModel,
    sigma: NoiseLevel,
    region: Region,
    *,
    tiles: TileSettings | None = None,
    device: str = "auto",
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> np.ndarray:
    """Denoised pixels of ``region`` (float32 h x w x C), computed from the region plus its margin."""
    height, width = image.shape[:2]
    region = region.clipped(width, height)
    margin, step = crop_margin(model), model.size_multiple
    # Start the crop on the model's grid (a multiple of its size multiple) so that strided layers see the
    # same pixel phases as in the full run; the margin then keeps crop-edge effects out of the region.
    top, left = max(0, region.top - margin) // step * step, max(0, region.left - margin) // step * step
    bottom = min(height, region.top + region.height + margin)
    right = min(width, region.left + region.width + margin)
    out = denoise_array(image[top:bottom, left:right], model, crop_level(sigma, image.shape, top, bottom, left, right),
                        tiles=tiles, device=device,
                        on_progress=on_progress, should_stop=should_stop)
    rows = slice(region.top - top, region.top - top + region.height)
    cols = slice(region.left - left, region.left - left + region.width)
    return out[rows, cols]


def crop_margin(model: Autoencoder | ExportedModel) -> int:
    """Pixels a crop needs around a region for the region's result to equal the whole run's: the model's receptive
    radius on its grid. (The tiler's overlap, ``receptive_margin``, is 8/3 of that, as it blends tiles over part of
    their shared band; a crop keeps only its middle, so the radius is enough, and 2.5 times fewer pixels run.)"""
    return round_up(model.receptive_radius, model.size_multiple)


def crop_level(level: NoiseLevel, shape: tuple[int, ...], top: int, bottom: int, left: int,
               right: int) -> NoiseLevel:
    """The noise map under a crop of an image of ``shape``, at the crop's full resolution (a number or a 1 x 1
    map holds everywhere)."""
    if isinstance(level, np.ndarray) and level.ndim == 3 and level.shape[:2] != (1, 1):
        return sample_map(level, shape[0], shape[1], top, left, bottom - top, right - left)
    return level


def resize_level(level: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A noise map resized to ``size`` (height, width) by area averaging (a 1 x 1 map is left as it is)."""
    if level.shape[:2] == (1, 1):
        return level
    resized = cv2.resize(level, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return resized[:, :, None] if resized.ndim == 2 else resized


def paste_region(base: np.ndarray, patch: np.ndarray, region: Region) -> np.ndarray:
    """A float32 copy of ``base`` (uint8, uint16 or float; scaled to 0-1) with ``patch`` written into ``region``."""
    canvas = to_float(base, copy=True)
    if canvas.ndim == 2:
        canvas = canvas[:, :, None]
    canvas[region.slices] = patch
    return canvas


def denoise_at_scale(
    image: np.ndarray,
    model: Autoencoder | ExportedModel,
    sigma: NoiseLevel,
    scale: float,
    *,
    tiles: TileSettings | None = None,
    device: str = "auto",
    should_stop: StopFn | None = None,
) -> np.ndarray:
    """A quick look at the whole image as the screen shows it when zoomed out: float32 0-1, full size.

    The image is shrunk by area averaging to ``scale`` (averaging n pixels divides the noise's standard
    deviation by sqrt(n), so the model is told ``sigma * scale``, a map resized the same way), denoised, and
    enlarged back.
    """
    height, width = image.shape[:2]
    small_size = (max(8, int(round(width * scale))), max(8, int(round(height * scale))))
    small = cv2.resize(to_float(image), small_size, interpolation=cv2.INTER_AREA)
    if small.ndim == 2:
        small = small[:, :, None]
    level = resize_level(sigma, small.shape[:2]) * np.float32(scale) if isinstance(sigma, np.ndarray) else sigma * scale
    out = denoise_array(small, model, level, tiles=tiles, device=device, should_stop=should_stop)
    big = cv2.resize(np.clip(out, 0.0, 1.0), (width, height), interpolation=cv2.INTER_LINEAR)
    return big[:, :, None] if big.ndim == 2 else big


def denoise_visible_first(
    image: np.ndarray,
    model: Autoencoder | ExportedModel,
    sigma: NoiseLevel,
    visible: Region | None,
    *,
    zoom: float = 1.0,
    tiles: TileSettings | None = None,
    device: str = "auto",
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> np.ndarray:
    """Denoise the whole image, first reporting a quick preview of what the user sees when it pays.

    For a large photo viewed in part, the visible region is denoised first at full resolution; viewed whole
    at ``zoom`` below 3/4, the photo is denoised at the screen's scale first (:func:`denoise_at_scale`).
    The preview arrives as ``Progress("preview", extra={"preview": array})``: a float image, full-size for the
    screen-scale preview, the region's pixels alone for the visible region's (then ``extra["region"]`` is its
    :class:`Region`; :func:`paste_region` places it); the return value is the full result, float32 clipped to 0-1.
    """
    on_progress = on_progress or ignore_progress
    large = image.shape[0] * image.shape[1] > PREVIEW_THRESHOLD_PIXELS
    if wants_preview(image.shape, visible):
        region = visible.clipped(image.shape[1], image.shape[0])  # type: ignore[union-attr]
        patch = denoise_region(image, model, sigma, region, tiles=tiles, device=device, should_stop=should_stop)
        on_progress(Progress("preview", 0, 0, "preview of the visible region",
                             extra={"preview": np.clip(patch, 0.0, 1.0), "region": region}))
    elif large and zoom < 0.75:
        preview = denoise_at_scale(image, model, sigma, zoom, tiles=tiles, device=device, should_stop=should_stop)
        on_progress(Progress("preview", 0, 0, "preview at screen resolution", extra={"preview": preview}))
    out = denoise_array(image, model, sigma, tiles=tiles, device=device, on_progress=on_progress,
                        should_stop=should_stop)
    return np.clip(out, 0.0, 1.0, out=out)
