"""The before/after viewer: what each mode paints, locked zoom and pan, pixel-exact 100 %, and the array bridge."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QKeyEvent, QWheelEvent
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from ui.canvas import ImageCanvas
from ui.level_cache import LevelCache as _LevelCache
from ui.qimage import array_to_qimage, display_levels_of, enlarged_levels, pasted_levels, qimage_to_array
from ui.viewer import MODES, NOISE_MAP_HINT, NOT_DENOISED_HINT, RESIDUAL_HINT, ImageViewer

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
IMAGE_W, IMAGE_H = 160, 100  # fits a 802 x 400 single canvas at zoom 4: drawn at x 81..721, y 0..400


def solid(colour: tuple[int, int, int], width: int = IMAGE_W, height: int = IMAGE_H) -> QImage:
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[:] = colour
    return array_to_qimage(pixels)


def screenshot(widget: QWidget) -> np.ndarray:
    return qimage_to_array(widget.grab().toImage())


def colour_at(widget: QWidget, x: float, y: float) -> tuple[int, int, int]:
    return tuple(int(v) for v in screenshot(widget)[int(y), int(x)])  # type: ignore[return-value]


def near(a: QPointF, b: QPointF, tolerance: float = 1.0) -> bool:
    return abs(a.x() - b.x()) <= tolerance and abs(a.y() - b.y()) <= tolerance


def wheel(canvas: ImageCanvas, pos: QPointF, notches: float) -> None:
    event = QWheelEvent(pos, QPointF(canvas.mapToGlobal(pos)), QPoint(), QPoint(0, int(120 * notches)),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas, event)


def drag(qtbot: QtBot, widget: QWidget, start: QPoint, end: QPoint) -> None:
    qtbot.mousePress(widget, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(widget, QPoint((start.x() + end.x()) // 2, (start.y() + end.y()) // 2))
    qtbot.mouseMove(widget, end)
    qtbot.mouseRelease(widget, Qt.MouseButton.LeftButton, pos=end)


@pytest.fixture
def viewer(qtbot: QtBot) -> ImageViewer:
    view = ImageViewer()
    qtbot.addWidget(view)
    view.resize(802, 400)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def red_blue(viewer: ImageViewer) -> ImageViewer:
    """Original all red, result all blue, residual all green."""
    viewer.set_original(solid(RED))
    viewer.set_result(solid(BLUE), solid(GREEN))
    return viewer


# -- numpy <-> QImage ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3), (5, 7, 4)])
def test_array_qimage_round_trip(shape: tuple[int, ...]) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    image = array_to_qimage(pixels)
    assert (image.width(), image.height()) == (7, 5)
    if len(shape) == 3 and shape[2] == 4:
        assert np.array_equal(qimage_to_array(image, alpha=True), pixels)
    else:
        grey_or_rgb = pixels.reshape(5, 7, -1)
        assert np.array_equal(qimage_to_array(image), np.broadcast_to(grey_or_rgb, (5, 7, 3)))


@pytest.mark.parametrize("shape", [(300, 401, 3), (257, 130), (5, 7, 3)])
def test_display_levels_made_with_numpy_match_qts(shape: tuple[int, ...]) -> None:
    """The worker-made levels (numpy, written into the QImages) are what Qt's own conversion gives: the same
    display format and sizes, the same first level, and smooth halvings."""
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    image, cache = array_to_qimage(pixels), _LevelCache()
    ours = display_levels_of(pixels)
    qts = [cache.level(image, 0.5**k)[0] for k in range(len(ours))]  # the viewer's own halvings, with Qt
    assert [level.size() for level in ours] == [level.size() for level in qts]
    assert all(level.format() == QImage.Format.Format_RGB32 for level in ours)
    np.testing.assert_array_equal(qimage_to_array(ours[0]), qimage_to_array(qts[0]))
    colour = pixels if pixels.ndim == 3 else np.repeat(pixels[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(qimage_to_array(ours[0]), colour)


def test_each_display_level_is_the_rounded_mean_of_the_pixels_it_covers() -> None:
    pixels = np.zeros((258, 259, 3), np.uint8)
    pixels[0, 0], pixels[0, 1], pixels[1, 0], pixels[1, 1] = (0, 0, 0), (4, 8, 1), (4, 8, 1), (4, 8, 2)
    pixels[:, -1] = 200  # an odd width: the last column is repeated to pair with itself
    half = qimage_to_array(display_levels_of(pixels)[1])
    assert half.shape == (129, 130, 3)
    assert tuple(half[0, 0]) == (3, 6, 1)  # (0+4+4+4)/4 = 3, (0+8+8+8)/4 = 6, (0+1+1+2)/4 = 1
    assert (half[:, -1] == 200).all()
    with pytest.raises(ValueError):
        display_levels_of(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError):
        display_levels_of(np.zeros((0, 4, 3), np.uint8))


def test_pasted_and_enlarged_levels() -> None:
    base_pixels = np.random.default_rng(2).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    base = display_levels_of(base_pixels)[0]
    patch = np.full((20, 30, 3), 9, np.uint8)
    pasted = qimage_to_array(pasted_levels(base, patch, 100, 50)[0])
    expected = base_pixels.copy()
    expected[50:70, 100:130] = 9
    np.testing.assert_array_equal(pasted, expected)
    np.testing.assert_array_equal(qimage_to_array(base), base_pixels)  # the base is left as it was
    assert qimage_to_array(pasted_levels(array_to_qimage(base_pixels), patch, 0, 0)[0])[0, 0, 0] == 9  # any format
    small = base_pixels[::4, ::4]
    enlarged = qimage_to_array(enlarged_levels(small, 4, 299, 399)[0])  # cut to the photo's size
    assert enlarged.shape == (299, 399, 3)
    np.testing.assert_array_equal(enlarged[::4, ::4], small)
    corner = enlarged[3::4, 2::4]  # each pixel a 4 x 4 block
    np.testing.assert_array_equal(corner, small[: corner.shape[0], : corner.shape[1]])


def test_array_to_qimage_copies_strided_views() -> None:
    pixels = np.random.default_rng(2).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    view = pixels[:, ::2]  # every other column: not C-contiguous
    image = array_to_qimage(view)
    expected = view.copy()
    pixels[:] = 0  # the QImage owns its pixels: changing the source afterwards does not show
    assert np.array_equal(qimage_to_array(image), expected)
    channel = array_to_qimage(np.ascontiguousarray(expected[..., ::-1]))  # BGR view, reversed channel stride
    assert np.array_equal(qimage_to_array(channel), expected[..., ::-1])


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((2, 4, 4, 3), np.uint8), np.zeros((0, 4, 3), np.uint8)])
def test_array_to_qimage_rejects_other_arrays(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        array_to_qimage(bad)
    with pytest.raises(ValueError):
        qimage_to_array(QImage())


# -- what each mode paints ----------------------------------------------------------------------------------


def boundary(row: np.ndarray) -> int:
    """The first blue column of a row that is red on the left and blue on the right."""
    red = np.flatnonzero((row == RED).all(axis=1))
    blue = np.flatnonzero((row == BLUE).all(axis=1))
    assert len(red) and len(blue) and red.max() < blue.min()
    return int(blue.min())


def test_split_mode_wipes_original_into_result(qtbot: QtBot, red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("split")
    (canvas,) = viewer.canvases()
    assert viewer.zoom() == pytest.approx(4.0)
    left_edge = viewer.image_to_widget(canvas, QPointF(0, 0)).x()
    assert left_edge == 81  # centred: (802 - 640) / 2
    assert viewer.split_position() == pytest.approx(0.5)
    y = 300  # below the divider's round handle
    assert abs(boundary(screenshot(canvas)[y]) - (left_edge + 320)) <= 2
    assert colour_at(canvas, 20, y) == (0x20, 0x20, 0x20)  # dark background beside the image

    with qtbot.waitSignal(viewer.split_changed) as moved:
        viewer.set_split_position(0.25)
    assert moved.args == [0.25]
    assert abs(boundary(screenshot(canvas)[y]) - (left_edge + 160)) <= 2

    center = viewer.view_state().center
    drag(qtbot, canvas, QPoint(int(left_edge + 160), y), QPoint(int(left_edge + 480), y))
    assert viewer.split_position() == pytest.approx(0.75, abs=0.01)
    assert viewer.view_state().center == center  # dragging the divider does not pan
    assert abs(boundary(screenshot(canvas)[y]) - (left_edge + 480)) <= 2
    viewer.set_split_position(7.0)
    assert viewer.split_position() == 1.0


def test_split_divider_cursor_and_panning_elsewhere(qtbot: QtBot, red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("split")
    (canvas,) = viewer.canvases()
    divider = canvas.split_x()
    assert divider is not None
    qtbot.mouseMove(canvas, QPoint(int(divider) + 4, 300))
    assert canvas.cursor().shape() == Qt.CursorShape.SplitHCursor
    qtbot.mouseMove(canvas, QPoint(int(divider) + 60, 300))
    assert canvas.cursor().shape() != Qt.CursorShape.SplitHCursor

    viewer.set_zoom(8.0)
    split, before = viewer.split_position(), viewer.widget_to_image(canvas, QPointF(100, 100))
    drag(qtbot, canvas, QPoint(100, 100), QPoint(140, 120))
    assert viewer.split_position() == split
    assert near(viewer.image_to_widget(canvas, before), QPointF(140, 120))


def test_toggle_mode_and_the_o_key(qtbot: QtBot, red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("toggle")
    (canvas,) = viewer.canvases()
    assert colour_at(canvas, 400, 300) == BLUE
    assert canvas.labels()[0] == "Denoised"
    viewer.set_showing_original(True)
    assert colour_at(canvas, 400, 300) == RED
    assert canvas.labels()[0] == "Original"
    viewer.set_showing_original(False)
    assert colour_at(canvas, 400, 300) == BLUE

    qtbot.keyPress(viewer, Qt.Key.Key_O)
    assert colour_at(canvas, 400, 300) == RED
    # Auto-repeat sends release/press pairs while the key is held: they must not flicker back to the result.
    for kind in (QEvent.Type.KeyRelease, QEvent.Type.KeyPress):
        QApplication.sendEvent(viewer, QKeyEvent(kind, Qt.Key.Key_O, Qt.KeyboardModifier.NoModifier, "o", True))
    assert viewer.showing_original()
    qtbot.keyRelease(viewer, Qt.Key.Key_O)
    assert colour_at(canvas, 400, 300) == BLUE


def test_residual_and_side_modes(red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("residual")
    (canvas,) = viewer.canvases()
    assert colour_at(canvas, 400, 300) == GREEN
    viewer.set_mode("side")
    left, right = viewer.canvases()
    assert left.width() == right.width() == 400
    assert colour_at(left, 200, 300) == RED
    assert colour_at(right, 200, 300) == BLUE
    assert (left.labels()[0], right.labels()[1]) == ("Original", "Denoised")


def test_without_a_result_every_mode_shows_the_original(viewer: ImageViewer) -> None:
    viewer.set_original(solid(RED))
    assert not viewer.has_result()
    for mode in MODES:
        viewer.set_mode(mode)
        for canvas in viewer.canvases():
            assert colour_at(canvas, canvas.width() // 2, 300) == RED
    viewer.set_mode("side")
    assert viewer.canvases()[1].hint() == NOT_DENOISED_HINT
    viewer.set_mode("residual")
    assert viewer.canvases()[0].hint() == RESIDUAL_HINT
    viewer.set_result(solid(BLUE))  # a result without a residual: still the hint in residual mode
    assert viewer.canvases()[0].hint() == RESIDUAL_HINT


def test_noise_map_mode_shows_the_map_with_its_legend(red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("noise")
    (canvas,) = viewer.canvases()
    assert canvas.hint() == NOISE_MAP_HINT and colour_at(canvas, 400, 200) == RED  # not drawn yet: the photo
    with pytest.raises(ValueError):
        viewer.set_noise_map(solid(GREEN, IMAGE_W + 1))
    viewer.set_noise_map(solid(GREEN), ["luminance sigma: min 1.0, median 2.0, max 3.0"],
                         [("luminance", QColor(64, 153, 255)), ("colour", QColor(255, 115, 13))])
    assert viewer.noise_map() is not None and canvas.image() is viewer.noise_map()
    assert colour_at(canvas, 400, 100) == GREEN
    assert canvas.legend() == ["luminance sigma: min 1.0, median 2.0, max 3.0"] and "median 2.0" in canvas.toolTip()
    assert colour_at(canvas, 100, 400 - 14) != GREEN  # the legend box sits over the bottom-left corner
    viewer.set_mode("side")
    assert all(c.legend() == [] for c in viewer.canvases())
    viewer.set_original(solid(BLUE))  # a new photo forgets the old map
    assert viewer.noise_map() is None


def test_modes_are_validated_and_announced(qtbot: QtBot, viewer: ImageViewer) -> None:
    with qtbot.waitSignal(viewer.mode_changed) as changed:
        viewer.set_mode("toggle")
    assert changed.args == ["toggle"]
    assert len(viewer.canvases()) == 1
    with pytest.raises(ValueError):
        viewer.set_mode("bogus")
    assert viewer.mode() == "toggle"
    viewer.set_mode("side")
    assert len(viewer.canvases()) == 2


# -- zoom and pan -------------------------------------------------------------------------------------------


def mapping(canvas: ImageCanvas) -> list[tuple[float, float]]:
    points = (QPointF(0, 0), QPointF(37.5, 12.25), QPointF(IMAGE_W, IMAGE_H))
    return [(p.x(), p.y()) for p in (canvas.image_to_widget(q) for q in points)]


def test_side_panes_zoom_and_pan_together(qtbot: QtBot, red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("side")
    left, right = viewer.canvases()
    assert mapping(left) == mapping(right)

    viewer.set_zoom(3.0)
    assert viewer.zoom() == 3.0
    assert mapping(left) == mapping(right)
    assert viewer.image_to_widget(left, viewer.widget_to_image(right, right.rect().center())) == right.rect().center()

    before = mapping(right)
    with qtbot.waitSignal(viewer.zoom_changed):
        wheel(left, QPointF(120, 90), 1)
    assert viewer.zoom() == pytest.approx(3.75)
    assert mapping(right) != before
    assert mapping(left) == mapping(right)

    viewer.set_zoom(6.0)  # taller than the pane too, so it can pan both ways
    anchor = viewer.widget_to_image(right, QPointF(200, 200))
    with qtbot.waitSignal(viewer.view_changed):
        drag(qtbot, left, QPoint(200, 200), QPoint(150, 170))
    assert near(viewer.image_to_widget(right, anchor), QPointF(150, 170))
    assert mapping(left) == mapping(right)


def test_wheel_zoom_keeps_the_point_under_the_cursor(viewer: ImageViewer) -> None:
    viewer.set_original(array_to_qimage(np.zeros((300, 400, 3), np.uint8)))
    viewer.set_mode("toggle")
    (canvas,) = viewer.canvases()
    viewer.set_zoom(3.0)
    for cursor, notches, zoom in ((QPointF(100, 80), 1, 3.75), (QPointF(610, 333), 1, 4.6875),
                                  (QPointF(300, 50), -2, 3.0)):
        point = viewer.widget_to_image(canvas, cursor)
        wheel(canvas, cursor, notches)
        assert viewer.zoom() == pytest.approx(zoom)
        assert near(viewer.image_to_widget(canvas, point), cursor)
    point = viewer.widget_to_image(canvas, QPointF(500, 120))
    viewer.set_zoom(5.0, anchor=QPointF(500, 120))
    assert near(viewer.image_to_widget(canvas, point), QPointF(500, 120))
    viewer.set_zoom(1000)
    assert viewer.zoom() == 32.0
    viewer.set_zoom(0)
    assert viewer.zoom() == 0.02


@pytest.mark.parametrize("zoom", [1.0, 2.0])
@pytest.mark.parametrize("pattern", ["checkerboard", "noise"])
def test_pixel_exact_at_100_percent_and_above(viewer: ImageViewer, zoom: float, pattern: str) -> None:
    rows, cols = np.indices((48, 64))
    if pattern == "checkerboard":
        pixels = np.repeat((((rows + cols) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    else:
        pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    viewer.set_original(array_to_qimage(pixels))
    viewer.set_result(array_to_qimage(pixels))
    viewer.set_mode("toggle")
    (canvas,) = viewer.canvases()
    viewer.zoom_100() if zoom == 1.0 else viewer.set_zoom(zoom)
    origin = viewer.image_to_widget(canvas, QPointF(0, 0))
    assert origin.x() == int(origin.x()) and origin.y() == int(origin.y())  # snapped to whole pixels
    x, y = int(origin.x()), int(origin.y())
    shot = screenshot(canvas)[y : y + int(48 * zoom), x : x + int(64 * zoom)]
    expected = np.repeat(np.repeat(pixels, int(zoom), axis=0), int(zoom), axis=1)
    assert np.array_equal(shot, expected)


def test_fit_100_and_the_visible_rect(qtbot: QtBot, red_blue: ImageViewer) -> None:
    viewer = red_blue
    for mode in ("split", "side"):
        viewer.set_mode(mode)
        viewer.zoom_to_fit()
        rect = viewer.visible_image_rect()
        for got, want in zip((rect.x(), rect.y(), rect.width(), rect.height()), (0, 0, IMAGE_W, IMAGE_H), strict=True):
            assert got == pytest.approx(want, abs=1e-6)
    viewer.zoom_100()
    assert viewer.zoom() == 1.0
    viewer.set_zoom(10.0)
    zoomed = viewer.visible_image_rect()
    assert zoomed.width() < IMAGE_W and zoomed.height() < IMAGE_H
    assert QRectF(0, 0, IMAGE_W, IMAGE_H).contains(zoomed)
    assert zoomed.width() == pytest.approx(400 / 10.0)  # one side pane, 400 px wide

    qtbot.keyClick(viewer, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    fitted = viewer.zoom()
    assert viewer.visible_image_rect().width() == pytest.approx(IMAGE_W)
    qtbot.keyClick(viewer, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert viewer.zoom() == 1.0
    qtbot.keyClick(viewer, Qt.Key.Key_Plus)
    assert viewer.zoom() == pytest.approx(1.25)
    qtbot.keyClick(viewer, Qt.Key.Key_Minus)
    assert viewer.zoom() == pytest.approx(1.0)

    viewer.zoom_to_fit()
    viewer.resize(402, 400)  # while fitted, a resize re-fits
    assert viewer.zoom() != fitted
    assert viewer.visible_image_rect().width() == pytest.approx(IMAGE_W)


def test_set_result_keeps_the_view_and_set_original_resets_it(red_blue: ImageViewer) -> None:
    viewer = red_blue
    viewer.set_mode("toggle")
    (canvas,) = viewer.canvases()
    viewer.set_zoom(6.0, anchor=QPointF(150, 100))
    centre = viewer.view_state().center
    viewer.set_result(solid(GREEN))
    assert viewer.zoom() == 6.0 and viewer.view_state().center == centre
    assert viewer.has_result()
    assert colour_at(canvas, 400, 300) == GREEN
    with pytest.raises(ValueError):
        viewer.set_result(solid(BLUE, width=IMAGE_W + 1))

    viewer.set_original(solid(RED, width=80, height=50))
    assert not viewer.has_result()
    assert viewer.mode() == "toggle"
    assert viewer.zoom() == pytest.approx(8.0)  # 400 / 50: fitted again
    assert colour_at(canvas, 400, 300) == RED
    viewer.set_result(None)
    assert not viewer.has_result()



@pytest.mark.parametrize(("size", "left", "top"), [((300, 400), 100, 50), ((301, 517), 489, 273), ((260, 300), 0, 0)])
def test_a_patch_over_levels_halves_only_its_part_and_equals_the_whole_redone(size: tuple[int, int], left: int,
                                                                           top: int) -> None:
    """Given the levels shown now, a patch is drawn into copies of each, halving only the part it covers; the levels
    are those made from the whole pasted image (odd sizes and the far edges included), and the given ones stay."""
    rng = np.random.default_rng(3)
    base_pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    base_levels = display_levels_of(base_pixels, smallest=16)
    before = [qimage_to_array(level) for level in base_levels]
    patch = rng.integers(0, 256, (28, 28, 3), dtype=np.uint8)
    got = pasted_levels(base_levels, patch, left, top, smallest=16)
    pasted = base_pixels.copy()
    pasted[top : top + 28, left : left + 28] = patch
    want = display_levels_of(pasted, smallest=16)
    assert len(got) == len(want) > 3
    for mine, theirs in zip(got, want, strict=True):
        np.testing.assert_array_equal(qimage_to_array(mine), qimage_to_array(theirs))
    for level, pixels in zip(base_levels, before, strict=True):
        np.testing.assert_array_equal(qimage_to_array(level), pixels)  # what is shown now is left as it was


def test_a_patch_over_levels_that_do_not_match_halves_the_whole() -> None:
    """Levels not made by halving (another size, or missing) are not trusted: those are made from the pasted image."""
    base_pixels = np.random.default_rng(4).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    patch = np.full((10, 10, 3), 5, np.uint8)
    wrong = [display_levels_of(base_pixels)[0], array_to_qimage(np.zeros((10, 10, 3), np.uint8))]
    pasted = base_pixels.copy()
    pasted[:10, :10] = 5
    for mine, theirs in zip(pasted_levels(wrong, patch, 0, 0, smallest=32), display_levels_of(pasted, smallest=32),
                            strict=True):
        np.testing.assert_array_equal(qimage_to_array(mine), qimage_to_array(theirs))


def test_result_levels_are_the_levels_handed_over_for_what_is_shown(viewer: ImageViewer) -> None:
    """What a patch is drawn over: the primed levels of the result and residual shown now (a copy of the list)."""
    pixels = np.random.default_rng(5).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    viewer.set_original(array_to_qimage(pixels))
    assert viewer.result_levels() is None  # no result yet
    result_levels, residual_levels = display_levels_of(pixels), display_levels_of(255 - pixels)
    viewer.prime(result_levels[0], result_levels)
    viewer.prime(residual_levels[0], residual_levels)
    viewer.set_result(result_levels[0], residual_levels[0])
    shown, removed = viewer.result_levels()
    assert [level.cacheKey() for level in shown] == [level.cacheKey() for level in result_levels]
    assert [level.cacheKey() for level in removed] == [level.cacheKey() for level in residual_levels]
    shown.clear()
    assert len(viewer.result_levels()[0]) == len(result_levels)  # the viewer's own list is not handed out
