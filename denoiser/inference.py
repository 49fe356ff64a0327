"""Denoise an image of any size by running a model over overlapping, blended tiles.

Memory grows with the tile, not with the image: the canvas keeps the input's own dtype (uint8 stays uint8)
and only one batch of tiles is ever converted to float and sent to the device. CUDA out-of-memory retries
with smaller tiles, then on the CPU. Progress is reported per tile batch and ``should_stop`` is polled
before each one, so a cancel takes effect within one batch. What runs the model over a batch of tiles (torch or
ONNX Runtime) is :mod:`denoiser.tile_runners`'.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from denoiser.devices import available_devices, resolve_device
from denoiser.errors import DenoiserError
from denoiser.exported import ExportedModel
from denoiser.io import to_float
from denoiser.io.orientation import ENSEMBLE_ORDER, UPRIGHT, Turn, inverse_of
from denoiser.progress import Progress, ProgressFn, StopFn, check_stop, ignore_progress
from denoiser.tile_runners import TileRunner, is_out_of_memory, resolve_engine, tile_runner
from denoiser.tiling import (
    PASS_COUNTS,
    TileGrid,
    TileShape,
    balanced_tile,
    canvas_padding,
    pad_image,
    round_up,
    sample_map,
)

if TYPE_CHECKING:
    from denoiser.models.base import Autoencoder

__all__ = [
    "NonFiniteOutputError",
    "TileSettings",
    "available_devices",
    "default_overlap",
    "default_tile_size",
    "denoise_array",
    "match_channels",
    "resolve_device",
]

MIN_TILE = 64
"""Smallest tile the out-of-memory fallback tries before moving to the CPU."""


def activation_bytes_per_pixel(model: Autoencoder | ExportedModel) -> int:
    """Rough peak bytes of activations per input pixel during inference (float32)."""
    widths = getattr(model.config, "widths", (64,))
    channels = sum(w / 4**level for level, w in enumerate(widths))
    # About six live tensors of the widest kind at once (input, residual, conv output, skip, ...).
    return int(4 * 6 * channels) + 64


SINGLE_TILE_PIXELS_CPU = 1_100_000
"""On the CPU no tile is larger than this: a canvas up to this size runs as one tile, a larger one in tiles cut to
share it evenly (see :func:`~denoiser.tiling.balanced_tile`)."""

def default_tile_size(model: Autoencoder | ExportedModel, device: Any, canvas: tuple[int, int] | None = None,
                      overlap: int | None = None) -> TileShape:
    """A tile (rows, columns) that fits the device: on a GPU a square share of free CUDA memory; on the CPU the
    tile of at most about a megapixel that covers ``canvas`` with the least work (512 x 512 without a canvas).

    On the CPU the network runs about as fast per pixel on a 512 tile as on a megapixel one, so what counts is how
    many pixels all the tiles add up to: overlapping square 512 tiles ran about 2.3 times the photo's pixels
    through it, tiles cut to the canvas about 1.4 times. A megapixel tile needs 0.6-0.8 GB of activations.
    """
    if device.type != "cuda":
        if canvas is None:
            return 512, 512
        margin = default_overlap(model) if overlap is None else overlap
        return balanced_tile(canvas[0], canvas[1], margin, model.size_multiple, SINGLE_TILE_PIXELS_CPU)
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    budget = 0.4 * free
    edge = int((budget / activation_bytes_per_pixel(model)) ** 0.5)
    step = max(model.size_multiple, 64)
    edge = int(max(MIN_TILE, min(4096, edge // step * step)))
    return edge, edge


def default_overlap(model: Autoencoder | ExportedModel) -> int:
    """The overlap at which tiles reproduce whole-image inference."""
    return model.receptive_margin


@dataclass
class TileSettings:
    """How an image is run: tile edge, overlap and tiles per batch (None: chosen for the device), passes, engine."""

    tile: int | None = None
    overlap: int | None = None
    batch_size: int | None = None
    passes: int = 1
    """Geometric self-ensemble: denoise the image in 1, 2, 4 or 8 orientations (flips, then quarter turns) and
    average the results. More passes cost that many times the time and gain a little PSNR (on 4 Kodak24 photos
    at sigma 25 with the bundled model: +0.05 dB for 2, +0.08 for 4)."""
    engine: str = "auto"
    """What runs the model: ``torch``, ``onnx`` (ONNX Runtime, CPU, about 1.4 times as fast there) or ``auto`` (ONNX
    Runtime on the CPU when installed, torch on GPUs; ``DENOISER_ENGINE`` overrides). The results agree to about
    1e-6: the engine, like the device, is not part of a batch's settings."""


# Each orientation as (forward, inverse) on H x W x C arrays; the first k are used for k passes.
_ORIENTATIONS: tuple[tuple[Turn, Turn], ...] = tuple((UPRIGHT[k], UPRIGHT[inverse_of(k)]) for k in ENSEMBLE_ORDER)


class NonFiniteOutputError(DenoiserError):
    """The model gave NaN or infinite values instead of pixels (damaged weights, or a model that diverged)."""

    def __init__(self) -> None:
        super().__init__("the model produced non-finite values (NaN/Inf) instead of pixels, so nothing was saved; "
                         "the model is damaged or its training diverged: use another model")


NoiseLevel = float | np.ndarray
"""Sigma in 0-255 units: one number for the whole image, or an h x w x K map (K = 1, or 2 for luminance and
colour noise) that covers the image: its own size, a lower resolution (interpolated, see
:func:`~denoiser.tiling.sample_map`), or 1 x 1 (the same levels everywhere)."""


def _check_level(level: NoiseLevel, height: int, width: int) -> NoiseLevel:
    if isinstance(level, np.ndarray) and level.ndim > 0:
        if level.ndim == 2:
            level = level[:, :, None]
        if level.ndim != 3 or level.shape[2] not in (1, 2) or not _covers(level.shape[:2], height, width):
            raise DenoiserError(f"a noise map must cover the {height} x {width} image (its size, a lower "
                                f"resolution of the same shape, or 1 x 1) with 1 or 2 channels, got {level.shape}")
        level = level.astype(np.float32, copy=False)
        if not np.isfinite(level).all():
            raise DenoiserError("the noise map holds non-finite values (NaN/Inf); give noise levels in 0-255 units")
        return level
    value = float(level)
    if not np.isfinite(value):
        raise DenoiserError(f"the noise level must be a finite number (0-255 units), not {value}")
    return value


def _covers(shape: tuple[int, ...], height: int, width: int) -> bool:
    """Whether a map of ``shape`` can cover an image: 1 x 1, or at most its size with about its proportions."""
    h, w = shape
    if (h, w) == (1, 1) or (h, w) == (height, width):
        return True
    return 1 <= h <= height and 1 <= w <= width and abs(h / height - w / width) <= 0.1 * max(h / height, w / width)


@dataclass(frozen=True)
class _LevelMap:
    """A noise map (0-1 units) over an image, read in canvas coordinates (the image placed at ``top``, ``left``)."""

    level: np.ndarray
    height: int
    width: int
    top: int
    left: int

    def window(self, top: int, left: int, rows: int, cols: int) -> np.ndarray:
        return sample_map(self.level, self.height, self.width, top - self.top, left - self.left, rows, cols)


def _tile_levels(level01: float | _LevelMap, tiles: list) -> float | np.ndarray:
    """The noise input for a batch of tiles: the number itself, one level per tile (N x K x 1 x 1) for a map of
    one value, or the tiles' windows of the map (N x K x h x w)."""
    if not isinstance(level01, _LevelMap):
        return level01
    if level01.level.shape[:2] == (1, 1):
        return np.broadcast_to(level01.level.reshape(1, -1, 1, 1), (len(tiles), level01.level.shape[2], 1, 1))
    stack = np.stack([level01.window(t.top, t.left, t.height, t.width) for t in tiles])
    return stack.transpose(0, 3, 1, 2)


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _run_grid(
    run: TileRunner,
    size_multiple: int,
    canvas: np.ndarray,
    sigma01: float | _LevelMap,
    tile: TileShape,
    overlap: int,
    batch_size: int,
    on_progress: ProgressFn,
    should_stop: StopFn | None,
    check_finite: bool = True,
) -> np.ndarray:
    """Blend the model's output over the tiles of ``canvas`` (H x W x C, any dtype); float32 result.

    ``sigma01`` is the noise level in 0-1 units, or a map over the image read in canvas coordinates. Raises
    :class:`NonFiniteOutputError` when a batch's output holds NaN or infinity (unless ``check_finite`` is off)."""
    height, width, channels = canvas.shape
    grid = TileGrid(height, width, tile, overlap, size_multiple)
    tiles = list(grid)
    output = np.zeros((height, width, channels), dtype=np.float32)
    weight = np.zeros((height, width, 1), dtype=np.float32)
    on_progress(Progress("denoise", 0, len(tiles), f"{len(tiles)} tiles of {grid.tile_height}x{grid.tile_width}"))
    done = 0
    for batch in _batches(tiles, batch_size):
        check_stop(should_stop)
        stack = np.stack([to_float(canvas[t.rows, t.cols]) for t in batch])
        result = run(stack, _tile_levels(sigma01, batch), should_stop)
        if check_finite and not np.isfinite(result).all():  # one pass over a tile batch: cheap next to the model
            raise NonFiniteOutputError()
        for t, tile_out in zip(batch, result, strict=True):
            w = t.weights[:, :, None]
            output[t.rows, t.cols] += tile_out * w
            weight[t.rows, t.cols] += w
        done += len(batch)
        on_progress(Progress("denoise", done, len(tiles)))
    np.divide(output, weight, out=output, where=weight > 0)
    return output


def match_channels(model: Autoencoder | ExportedModel, image: np.ndarray) -> tuple[np.ndarray, str]:
    """``image`` made fit for ``model`` and how: ``same``, ``grey-through-colour`` (a grey photo repeated to three
    channels) or ``colour-through-grey`` (each colour channel is then denoised apart)."""
    channels = image.shape[2]
    if channels == model.config.channels:
        return image, "same"
    if channels == 1 and model.config.channels == 3:
        return np.repeat(image, 3, axis=2), "grey-through-colour"
    if channels == 3 and model.config.channels == 1:
        return image, "colour-through-grey"
    raise DenoiserError(f"cannot run a {model.config.channels}-channel model on a {channels}-channel image")


def _no_noise(level: float | np.ndarray) -> bool:
    """Whether the noise level is zero everywhere: nothing to remove."""
    return not np.any(level)


def denoise_array(
    image: np.ndarray,
    model: Autoencoder | ExportedModel,
    sigma: NoiseLevel,
    *,
    tiles: TileSettings | None = None,
    device: Any = "auto",
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    check_finite: bool = True,
) -> np.ndarray:
    """Denoise an H x W x C image (C = 1 or 3; uint8, uint16 or float in 0-1) at noise level ``sigma``.

    ``sigma`` is in 0-255 units whatever the bit depth: one number, or a per-pixel H x W x K map (K = 1, or 2 for
    luminance and colour noise; see :mod:`denoiser.strength`). Returns float32 H x W x C in 0-1 (not clipped); at
    level 0 everywhere, the image itself (the model is not run: at level 0 it would still alter pixels).
    Raises :class:`~denoiser.errors.Cancelled` when ``should_stop()`` turns True, a
    :class:`~denoiser.errors.DenoiserError` when the image or ``sigma`` holds NaN or infinity, and
    :class:`NonFiniteOutputError` (a DenoiserError) when the model's output does, rather than return values that
    would be saved as black pixels. ``check_finite=False`` lets the output through as it is (training's
    validation scores a diverged model as NaN).
    """
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise DenoiserError(f"expected an H x W x 1 or H x W x 3 image, got shape {image.shape}")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise DenoiserError("the image holds non-finite values (NaN/Inf); give pixels in the 0-1 range")
    tiles = tiles or TileSettings()
    on_progress = on_progress or ignore_progress
    sigma = _check_level(sigma, *image.shape[:2])
    if tiles.passes not in PASS_COUNTS:
        raise DenoiserError(f"passes must be one of {', '.join(map(str, PASS_COUNTS))}, not {tiles.passes}")
    if _no_noise(sigma):  # strength 0: the photo as it is (the model at level 0 still alters pixels)
        on_progress(Progress("denoise", 1, 1, "strength 0: the photo is left as it is"))
        return to_float(image, copy=True)
    if tiles.passes > 1:
        return _denoise_passes(image, model, sigma, tiles, device, on_progress, should_stop, check_finite)
    target = resolve_device(device)
    model.eval()
    image, mode = match_channels(model, image)
    if mode == "colour-through-grey":
        planes = [
            denoise_array(image[:, :, c : c + 1], model, sigma, tiles=tiles, device=target,
                          on_progress=on_progress, should_stop=should_stop, check_finite=check_finite)
            for c in range(3)
        ]
        return np.concatenate(planes, axis=2)
    height, width = image.shape[:2]
    padding = canvas_padding(height, width, model.receptive_radius, model.size_multiple)
    canvas = pad_image(image, padding)
    level01: float | _LevelMap = sigma / 255.0 if not isinstance(sigma, np.ndarray) else _LevelMap(
        sigma / np.float32(255.0), height, width, padding.top, padding.left)
    overlap = default_overlap(model) if tiles.overlap is None else tiles.overlap
    # A tile must hold its overlap on both sides plus a step, or the overlap could not be honoured.
    smallest_tile = round_up(2 * overlap + model.size_multiple, model.size_multiple)
    chosen = (tiles.tile, tiles.tile) if tiles.tile else default_tile_size(model, target, canvas.shape[:2], overlap)
    tile = (max(chosen[0], smallest_tile), max(chosen[1], smallest_tile))
    batch_size = tiles.batch_size or (4 if target.type == "cuda" else 1)
    engine = resolve_engine(tiles.engine, target, model)
    while True:
        try:
            run = tile_runner(engine, model, target)
            out = _run_grid(run, model.size_multiple, canvas, level01, tile, overlap, batch_size, on_progress,
                            should_stop, check_finite)
            break
        except Exception as err:  # torch's OutOfMemoryError, ONNX Runtime's allocation failures; others go on
            if not is_out_of_memory(err):
                raise
            if target.type == "cuda":
                import torch

                torch.cuda.empty_cache()
            if batch_size > 1:
                batch_size = max(1, batch_size // 2)
            elif min(tile) // 2 >= max(MIN_TILE, smallest_tile):
                tile = (tile[0] // 2, tile[1] // 2)
            elif target.type != "cpu":
                target = resolve_device("cpu")
                on_progress(Progress("denoise", 0, 0, "out of device memory: continuing on the CPU"))
            else:
                raise DenoiserError("out of memory even with the smallest tiles on the CPU") from err
            on_progress(Progress("denoise", 0, 0,
                                 f"out of memory: retrying with tiles of {tile[0]}x{tile[1]}, batch {batch_size}"))
    out = out[padding.top : padding.top + height, padding.left : padding.left + width]
    if mode == "grey-through-colour":
        out = out.mean(axis=2, keepdims=True)
    return out


def _denoise_passes(image: np.ndarray, model: Autoencoder | ExportedModel, sigma: NoiseLevel, tiles: TileSettings,
                    device: Any, on_progress: ProgressFn, should_stop: StopFn | None,
                    check_finite: bool = True) -> np.ndarray:
    """Average of the model's results over ``tiles.passes`` orientations; progress runs once across all."""
    single = dataclasses.replace(tiles, passes=1)
    total: np.ndarray | None = None
    for index, (forward, inverse) in enumerate(_ORIENTATIONS[: tiles.passes]):

        def report(event: Progress, index: int = index) -> None:
            if event.total:
                event = dataclasses.replace(event, done=index * event.total + event.done,
                                            total=tiles.passes * event.total)
            on_progress(event)

        level = np.ascontiguousarray(forward(sigma)) if isinstance(sigma, np.ndarray) else sigma
        out = inverse(denoise_array(np.ascontiguousarray(forward(image)), model, level, tiles=single, device=device,
                                    on_progress=report, should_stop=should_stop, check_finite=check_finite))
        total = out.copy() if total is None else np.add(total, out, out=total)
    assert total is not None
    return total / np.float32(tiles.passes)
