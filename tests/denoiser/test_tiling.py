"""Tests of the tile grid, canvas padding and blending weights (pure NumPy, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from denoiser.tiling import (
    Padding,
    TileGrid,
    balanced_tile,
    canvas_padding,
    edge_ramp,
    pad_image,
    round_up,
    tile_starts,
)

STARTS_CASES = [
    # length, tile, overlap, multiple
    (256, 64, 16, 1),
    (256, 64, 16, 8),
    (200, 64, 24, 4),
    (208, 64, 30, 4),
    (100, 40, 0, 2),
    (1000, 128, 76, 4),
    (64, 64, 16, 4),
    (48, 64, 16, 4),
    (72, 64, 32, 8),
]


@pytest.mark.parametrize(("length", "tile", "overlap", "multiple"), STARTS_CASES)
def test_tile_starts_cover_align_and_overlap(length, tile, overlap, multiple):
    starts = tile_starts(length, tile, overlap, multiple)
    assert starts[0] == 0
    assert all(start % multiple == 0 for start in starts)
    assert starts == sorted(set(starts))
    if tile >= length:
        assert starts == [0]
        return
    assert starts[-1] + tile == length  # the last tile ends on the canvas edge
    for before, after in zip(starts[:-1], starts[1:], strict=True):
        assert before + tile - after >= overlap  # consecutive tiles share at least the overlap
    covered = np.zeros(length, dtype=bool)
    for start in starts:
        covered[start : start + tile] = True
    assert covered.all()


def test_round_up():
    assert [round_up(v, 4) for v in (0, 1, 4, 5, 8)] == [0, 4, 4, 8, 8]


def grid_weight_sum(grid: TileGrid, multiple: int) -> np.ndarray:
    """Sum of every tile's weights over the canvas, checking each tile lies inside it on the grid."""
    total = np.zeros((grid.height, grid.width))
    for tile in grid:
        assert tile.weights.shape == (tile.height, tile.width)
        assert 0 <= tile.top and tile.top + tile.height <= grid.height
        assert 0 <= tile.left and tile.left + tile.width <= grid.width
        assert tile.top % multiple == 0 and tile.left % multiple == 0
        total[tile.rows, tile.cols] += tile.weights
    return total


GRID_CASES = [
    # height, width, tile, overlap, multiple
    (208, 248, 64, 24, 4),
    (208, 248, 64, 32, 4),
    (256, 256, 96, 40, 8),
    (130, 96, 40, 12, 2),
    (96, 96, 128, 30, 4),
    (40, 456, 64, 28, 4),
    (128, 128, 32, 100, 4),  # overlap beyond half a tile is capped so the grid still advances
]


@pytest.mark.parametrize(("height", "width", "tile", "overlap", "multiple"), GRID_CASES)
def test_grid_tiles_cover_every_pixel_with_positive_weight(height, width, tile, overlap, multiple):
    grid = TileGrid(height, width, tile, overlap, multiple)
    tiles = list(grid)
    assert len(tiles) == len(grid)
    total = grid_weight_sum(grid, multiple)
    assert (total > 0).all()
    assert all(t.weights.min() >= 0 and t.weights.max() <= 1 for t in tiles)


def test_grid_weights_are_one_on_canvas_sides_and_zero_at_interior_edges():
    height, width, tile, overlap, multiple = 208, 248, 64, 24, 4
    grid = TileGrid(height, width, tile, overlap, multiple)
    dead = 3 * overlap // 8
    assert len(grid.rows) > 2 and len(grid.cols) > 2
    for t in grid:
        w = t.weights
        middle_row, middle_col = w[t.height // 2], w[:, t.width // 2]
        # Canvas side: the outermost line weighs the same as the tile's middle line (no ramp there).
        # Interior side: the outer 3/8 of the overlap weighs nothing.
        if t.top == 0:
            np.testing.assert_array_equal(w[0], middle_row)
        else:
            assert (w[:dead] == 0).all() and (w[dead] > 0).any()
        if t.top + t.height == height:
            np.testing.assert_array_equal(w[-1], middle_row)
        else:
            assert (w[-dead:] == 0).all() and (w[-dead - 1] > 0).any()
        if t.left == 0:
            np.testing.assert_array_equal(w[:, 0], middle_col)
        else:
            assert (w[:, :dead] == 0).all()
        if t.left + t.width == width:
            np.testing.assert_array_equal(w[:, -1], middle_col)
        else:
            assert (w[:, -dead:] == 0).all()
        assert w[t.height // 2, t.width // 2] == 1.0
    corners = [t for t in grid if t.top == 0 and t.left == 0]
    assert corners[0].weights[0, 0] == 1.0


def test_single_tile_grid_has_unit_weights():
    grid = TileGrid(96, 120, 512, 76, 4)
    tiles = list(grid)
    assert len(tiles) == 1
    assert (tiles[0].weights == 1).all()
    assert (tiles[0].height, tiles[0].width) == (96, 120)


def kept_distance_from_interior_edges(grid: TileGrid) -> int:
    """Smallest distance from a positive-weight pixel to a tile edge that faces a neighbour."""
    nearest = 10**9
    for t in grid:
        rows, cols = np.nonzero(t.weights > 0)
        if t.top > 0:
            nearest = min(nearest, rows.min())
        if t.top + t.height < grid.height:
            nearest = min(nearest, t.height - 1 - rows.max())
        if t.left > 0:
            nearest = min(nearest, cols.min())
        if t.left + t.width < grid.width:
            nearest = min(nearest, t.width - 1 - cols.max())
    return int(nearest)


@pytest.mark.parametrize(("height", "width"), [(256, 256), (96, 600), (600, 96)], ids=["square", "wide", "tall"])
def test_kept_pixels_lie_beyond_three_eighths_of_the_overlap(height, width):
    """What makes tiles reproduce the whole image: a receptive radius of 3/8 overlap never sees a tile edge.

    The thin strips check that the short side (a single tile) does not shrink the long side's overlap.
    """
    overlap, radius = 76, 28  # a receptive margin and the radius it was made for
    grid = TileGrid(height, width, 160, overlap, 4)
    assert len(grid) > 1
    assert kept_distance_from_interior_edges(grid) >= radius


def test_grid_refuses_canvas_not_a_multiple():
    with pytest.raises(ValueError):
        TileGrid(101, 96, 64, 16, 4)


def test_edge_ramp_shape():
    overlap = 32
    dead, rise = 3 * overlap // 8, overlap - 2 * (3 * overlap // 8)
    ramp = edge_ramp(64, overlap, True, False)
    assert ramp.dtype == np.float32
    assert (ramp[:dead] == 0).all()
    assert (np.diff(ramp) >= 0).all()
    assert 0 < ramp[dead] < 1 and (ramp[dead + rise :] == 1).all()
    both = edge_ramp(64, overlap, True, True)
    np.testing.assert_allclose(both, both[::-1])
    assert (edge_ramp(64, 0, True, True) == 1).all()
    assert (edge_ramp(64, overlap, False, False) == 1).all()


@pytest.mark.parametrize(
    ("height", "width", "context", "multiple"),
    [(150, 190, 28, 4), (17, 23, 0, 8), (64, 64, 0, 16), (1, 1, 12, 4), (100, 130, 8, 1)],
)
def test_canvas_padding_makes_multiples(height, width, context, multiple):
    pad = canvas_padding(height, width, context, multiple)
    assert (pad.top, pad.left) == (context, context)
    assert context <= pad.bottom < context + multiple
    assert context <= pad.right < context + multiple
    assert (height + pad.top + pad.bottom) % multiple == 0
    assert (width + pad.left + pad.right) % multiple == 0


def test_pad_image_reflects():
    image = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    padded = pad_image(image, Padding(2, 1, 3, 2))
    assert padded.shape == (7, 10, 3)
    np.testing.assert_array_equal(padded[2:6, 3:8], image)
    np.testing.assert_array_equal(padded[1, 3:8], image[1])  # reflection, without repeating the edge row
    np.testing.assert_array_equal(padded[:, 2], padded[:, 4])


def test_pad_image_smaller_than_the_pad():
    """Repeated reflection when the pad is wider than the image; edge repeat for a single row."""
    image = np.random.default_rng(0).integers(0, 255, (3, 5, 1), dtype=np.uint8)
    padded = pad_image(image, Padding(10, 11, 12, 13))
    assert padded.shape == (24, 30, 1)
    assert padded.dtype == np.uint8
    np.testing.assert_array_equal(padded[10:13, 12:17], image)
    assert set(np.unique(padded)) <= set(np.unique(image))

    row = np.arange(6, dtype=np.uint8).reshape(1, 6, 1)
    padded_row = pad_image(row, Padding(4, 4, 2, 2))
    assert padded_row.shape == (9, 10, 1)
    for line in padded_row:
        np.testing.assert_array_equal(line[2:8], row[0])


def test_sample_map_reads_full_size_maps_as_they_are_and_interpolates_smaller_ones() -> None:
    from denoiser.tiling import sample_map

    full = np.arange(6 * 8 * 2, dtype=np.float32).reshape(6, 8, 2)
    np.testing.assert_array_equal(sample_map(full, 6, 8, 1, 2, 3, 4), full[1:4, 2:6])
    edge = sample_map(full, 6, 8, -2, -1, 3, 3)  # outside the image: the nearest edge's values
    np.testing.assert_array_equal(edge[0, 0], full[0, 0])
    np.testing.assert_array_equal(edge[2, 1], full[0, 0])
    assert np.all(sample_map(np.full((1, 1, 2), 7.0, np.float32), 50, 60, 0, 0, 4, 5) == 7.0)
    ramp = np.linspace(0, 30, 4, dtype=np.float32)[None, :, None].repeat(2, axis=0).repeat(2, axis=2)  # 2 x 4
    row = sample_map(ramp, 8, 16, 0, 0, 1, 16)[0, :, 0]
    assert row[0] == 0 and row[-1] == 30 and np.all(np.diff(row) >= 0)  # a smooth, monotone ramp across
    # A window reads what the whole image reads at the same pixels.
    whole = sample_map(ramp, 8, 16, 0, 0, 8, 16)
    np.testing.assert_allclose(sample_map(ramp, 8, 16, 3, 5, 4, 7), whole[3:7, 5:12])


def grid_work(grid: TileGrid) -> int:
    """Pixels all the grid's tiles run through the model together."""
    return len(grid) * grid.tile_height * grid.tile_width


@pytest.mark.parametrize(("height", "width"), [(3120, 4120), (4120, 6120), (1144, 1144), (2120, 712), (712, 5000)])
def test_balanced_tile_fits_the_budget_and_beats_square_tiles(height, width):
    budget = 1_100_000
    rows, cols = balanced_tile(height, width, 160, 8, budget)
    grid = TileGrid(height, width, (rows, cols), 160, 8)
    assert rows * cols <= budget
    assert rows % 8 == 0 and cols % 8 == 0
    assert (grid_weight_sum(grid, 8) > 0).all()
    assert grid_work(grid) < 0.8 * grid_work(TileGrid(height, width, 512, 160, 8))
    # No other grid of tiles within the budget does less work.
    for other_rows in range(168, height + 1, 8):
        for other_cols in range(168, min(width, budget // other_rows) + 1, 8):
            assert grid_work(grid) <= grid_work(TileGrid(height, width, (other_rows, other_cols), 160, 8))


def test_balanced_tile_is_the_whole_canvas_when_it_fits():
    assert balanced_tile(1000, 1096, 160, 8, 1_100_000) == (1000, 1096)
    assert len(TileGrid(1000, 1096, balanced_tile(1000, 1096, 160, 8, 1_100_000), 160, 8)) == 1


def test_rectangular_tiles_keep_their_pixels_beyond_three_eighths_of_the_overlap():
    overlap, radius = 76, 28
    grid = TileGrid(600, 904, (232, 344), overlap, 4)
    assert len(grid.rows) > 1 and len(grid.cols) > 1
    assert (grid.tile_height, grid.tile_width) == (232, 344)
    assert kept_distance_from_interior_edges(grid) >= radius
