"""The tile grid, the padding around an image, and the blending window: no model, no I/O.

Tiles start on multiples of the model's size multiple, so the strided layers see the same pixel grid in a
tile as in the whole image. On the sides that face a neighbour a tile's weight is zero for the outer 3/8 of
the overlap, then rises along a raised cosine over the middle quarter: every pixel kept lies far enough
from a tile edge that zero padding inside the network cannot reach it, and the seams are invisible anyway.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

PASS_COUNTS = (1, 2, 4, 8)
"""How many orientations a denoise may average (``TileSettings.passes``): the dihedral group's first 1, 2, 4, 8."""


def round_up(value: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` that is >= ``value``."""
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Padding:
    """Pixels added on each side of an image to make the canvas the model runs on."""

    top: int
    bottom: int
    left: int
    right: int


def canvas_padding(height: int, width: int, context: int, multiple: int) -> Padding:
    """Reflection padding: ``context`` pixels all round, plus what brings each side to ``multiple``."""
    extra_h = round_up(height + 2 * context, multiple) - (height + 2 * context)
    extra_w = round_up(width + 2 * context, multiple) - (width + 2 * context)
    return Padding(context, context + extra_h, context, context + extra_w)


def pad_image(image: np.ndarray, padding: Padding) -> np.ndarray:
    """Pad an H x W x C array by reflection (repeated reflection when the image is smaller than the pad)."""
    spec = ((padding.top, padding.bottom), (padding.left, padding.right), (0, 0))
    return np.pad(image, spec, mode="reflect" if min(image.shape[:2]) > 1 else "edge")


def tile_starts(length: int, tile: int, overlap: int, multiple: int) -> list[int]:
    """Start offsets along one axis of a canvas ``length`` long (all multiples of ``multiple``).

    ``length`` and ``tile`` must be multiples of ``multiple``. Consecutive tiles share at least
    ``overlap`` pixels; the last tile ends on the canvas edge.
    """
    if tile >= length:
        return [0]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def edge_ramp(size: int, overlap: int, ramp_at_start: bool, ramp_at_end: bool) -> np.ndarray:
    """1-D weights for a tile ``size`` long: zero then raised cosine then one, on the sides that ramp."""
    weights = np.ones(size, dtype=np.float64)
    if overlap <= 0:
        return weights.astype(np.float32)
    dead = (3 * overlap) // 8  # pixels next to the edge that get no weight at all
    rise = max(1, overlap - 2 * dead)  # the middle quarter (at least one pixel)
    position = np.arange(size, dtype=np.float64)
    ramp = np.clip((position - dead + 0.5) / rise, 0.0, 1.0)
    ramp = np.sin(ramp * math.pi / 2) ** 2
    if ramp_at_start:
        weights *= ramp
    if ramp_at_end:
        weights *= ramp[::-1]
    return weights.astype(np.float32)


@dataclass(frozen=True)
class Tile:
    """One tile of the canvas: its top-left corner, its size, and its blending weights (h x w)."""

    top: int
    left: int
    height: int
    width: int
    weights: np.ndarray

    @property
    def rows(self) -> slice:
        """Rows of the canvas the tile covers."""
        return slice(self.top, self.top + self.height)

    @property
    def cols(self) -> slice:
        """Columns of the canvas the tile covers."""
        return slice(self.left, self.left + self.width)


TileShape = tuple[int, int]
"""A tile's rows and columns."""


def balanced_tile(height: int, width: int, overlap: int, multiple: int, max_pixels: int) -> TileShape:
    """The tile (rows, columns) of at most ``max_pixels`` that covers a ``height`` x ``width`` canvas with the
    least work: the grid whose tiles, all the same size, add up to the fewest pixels run through the model.

    Square tiles of a fixed edge waste much of their work: on a 12-megapixel photo, 512-pixel tiles with a
    160-pixel overlap run 28 megapixels through the network. Tiles cut to share the canvas evenly, as large as
    ``max_pixels`` allows, run about 17. Ties go to the fewer, larger tiles.
    """
    def edges(length: int) -> list[int]:
        found: dict[int, int] = {}
        for count in range(1, length // max(multiple, 1) + 1):
            edge = min(length, round_up(-(-(length - overlap) // count) + overlap, multiple))  # count 1: length
            found[len(tile_starts(length, edge, overlap, multiple))] = edge  # the smallest edge for that count
            if edge <= max(multiple, 2 * overlap):
                break
        return list(found.values())

    best: tuple[int, int, int, int] | None = None  # (work, tiles, rows, columns)
    row_edges, col_edges = edges(height), edges(width)
    smallest = (min(row_edges), min(col_edges))  # the fallback when no tile fits the budget
    for rows in row_edges:
        for cols in col_edges:
            if rows * cols > max_pixels and (rows, cols) != smallest:
                continue
            count = len(tile_starts(height, rows, overlap, multiple)) * len(tile_starts(width, cols, overlap, multiple))
            candidate = (count * rows * cols, count, rows, cols)
            if best is None or candidate[:2] < best[:2]:
                best = candidate
    assert best is not None
    return best[2], best[3]


class TileGrid:
    """Overlapping tiles covering a canvas of ``height`` x ``width`` (both multiples of ``multiple``); ``tile`` is
    an edge (square tiles) or a (rows, columns) pair such as :func:`balanced_tile` gives."""

    def __init__(self, height: int, width: int, tile: int | TileShape, overlap: int, multiple: int = 1) -> None:
        if height % multiple or width % multiple:
            raise ValueError(f"canvas {height}x{width} is not a multiple of {multiple}")
        self.height, self.width = height, width
        tile_rows, tile_cols = (tile, tile) if isinstance(tile, int) else tile
        self.tile_height = min(round_up(tile_rows, multiple), height)
        self.tile_width = min(round_up(tile_cols, multiple), width)
        # An overlap of half a tile or more would leave no step; cap it so the grid always advances.
        # Only axes cut into several tiles count: a thin strip's short side must not shrink the long side's.
        cut = [t for t, length in ((self.tile_height, height), (self.tile_width, width)) if t < length]
        self.overlap = max(0, min([overlap] + [t // 2 for t in cut]))
        self.rows = tile_starts(height, self.tile_height, self.overlap, multiple)
        self.cols = tile_starts(width, self.tile_width, self.overlap, multiple)

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self) -> Iterator[Tile]:
        for i, top in enumerate(self.rows):
            wy = edge_ramp(self.tile_height, self.overlap, i > 0, i < len(self.rows) - 1)
            for j, left in enumerate(self.cols):
                wx = edge_ramp(self.tile_width, self.overlap, j > 0, j < len(self.cols) - 1)
                yield Tile(top, left, self.tile_height, self.tile_width, np.outer(wy, wx))


def sample_map(level: np.ndarray, height: int, width: int, top: int, left: int, rows: int,
               cols: int) -> np.ndarray:
    """A noise map's values at ``rows`` x ``cols`` pixels of an ``height`` x ``width`` image, from (``top``,
    ``left``) in image coordinates; pixels outside the image take the nearest edge's value.

    ``level`` (h x w x K) covers the whole image at any resolution: a map of the image's own size is read as it is,
    a 1 x 1 map holds everywhere, and a smaller one (the noise-map estimator's quarter resolution) is interpolated
    bilinearly between its pixel centres. The value at a pixel depends on that pixel alone, never on the window
    asked for, so tiles read exactly what the whole image would.
    """
    h, w, _ = level.shape
    ys = np.clip(np.arange(top, top + rows), 0, height - 1)
    xs = np.clip(np.arange(left, left + cols), 0, width - 1)
    if (h, w) == (height, width):
        return level[ys][:, xs]
    y0, y1, wy = _bilinear_axis(ys, h, height)
    x0, x1, wx = _bilinear_axis(xs, w, width)
    band = level[y0] * (1 - wy)[:, None, None] + level[y1] * wy[:, None, None]
    return (band[:, x0] * (1 - wx)[None, :, None] + band[:, x1] * wx[None, :, None]).astype(level.dtype)


def _bilinear_axis(positions: np.ndarray, size: int, full: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pixel ``positions`` of an axis ``full`` long: the two map indices (of ``size``) and the weight of the
    second, aligning pixel centres."""
    where = np.clip((positions + 0.5) * size / full - 0.5, 0, size - 1)
    first = np.floor(where).astype(np.int64)
    second = np.minimum(first + 1, size - 1)
    return first, second, (where - first).astype(np.float32)

