"""The before/after photo viewer: original and denoised side by side, as a wipe, as a toggle, the residual, or
the noise map (what auto found in the photo, with a legend).

Zoom and pan live in one :class:`ViewState` that every canvas draws with, so two panes can never drift apart:
a wheel, drag or key in either moves both. Zoom is counted in *device* pixels (1.0 = one image pixel per
physical screen pixel, also on high-DPI screens) because judging noise means seeing real pixels. At 100 % and
above images are drawn with nearest neighbour and the drawing offset is snapped to whole device pixels, so
100 % is pixel-exact; below 100 % they are drawn smoothly from a cached pyramid of halved copies, so a fitted
12-megapixel photo neither shimmers with aliasing nor costs a full-size rescale on every paint. Only the
visible part of an image is ever drawn.

Numbers stay in the engine: images arrive here as QImages (``ui.qimage`` converts arrays).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QObject, QPoint, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from ui.state import ZOOM_STEP, View, image_offset, image_to_widget, stepped_zoom, widget_to_image

MODES = ("side", "split", "toggle", "residual", "noise")
SPLIT_GRAB_PX = 6  # how close (screen px) to the divider a press grabs it instead of panning
SIDE_GAP_PX = 2  # the dark seam between the two panes of side mode
KEY_PAN_FRACTION = 0.1  # an arrow key pans a tenth of the view (Shift: half)

VIEWER_KEYS = (
    ("Wheel, + / -", "Zoom in and out (about the cursor, or the centre)"),
    ("Double-click", "Switch between fit and 100 % at the clicked point"),
    ("Drag", "Pan (or move the split divider)"),
    ("Arrow keys", "Pan (Shift: faster)"),
    ("Left / Right", "Previous / next photo when the photo fits the view's width (nothing to pan)"),
    ("Hold O", "Show the original (toggle mode)"),
)
"""The keys and mouse gestures the viewer handles itself (its keyPressEvent and the canvases' mouse events),
for the Help menu's shortcut list."""

BACKGROUND = QColor("#202020")
SEAM = QColor("#0c0c0c")
NOT_DENOISED_HINT = "not denoised yet"
RESIDUAL_HINT = "denoise to see what was removed"
NOISE_MAP_HINT = "reading the noise map..."
NOISE_MAP_LABEL = "Noise map (what auto found)"
EMPTY_HINT = "No photo open"


class ViewState(QObject):
    """The viewer's :class:`~ui.state.View` (zoom and pan shared by the canvases, so that they stay locked
    together) in Qt types, with a ``changed`` signal. The maths lives in :mod:`ui.state`.

    ``zoom`` is device pixels per image pixel (1.0 = 100 %); ``center`` is the image point at the middle of the
    view. While ``fitting`` (after :meth:`fit`, until the user zooms or pans) a new viewport size re-fits.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = View(on_change=self.changed.emit)
        """The Qt-free state this object shows."""

    @property
    def zoom(self) -> float:
        """Device pixels per image pixel (1.0 = 100 %)."""
        return self.view.zoom

    @zoom.setter
    def zoom(self, value: float) -> None:
        self.set_view(zoom=value)

    @property
    def center(self) -> QPointF:
        """Image coordinates of the view centre."""
        return QPointF(*self.view.center)

    @center.setter
    def center(self, value: QPointF) -> None:
        self.set_view(center=value)

    @property
    def image_size(self) -> QSize:
        """Size of the image being viewed (empty when there is none)."""
        width, height = self.view.image_size
        return QSize(round(width), round(height))

    @property
    def viewport(self) -> QSizeF:
        """Size of the view in device pixels."""
        return QSizeF(*self.view.viewport)

    @property
    def fitting(self) -> bool:
        """True while the view follows "zoom to fit" (until the user zooms or pans)."""
        return self.view.fitting

    def set_view(self, zoom: float | None = None, center: QPointF | None = None) -> None:
        """Zoom and/or pan as the user asked (leaves fit mode); zoom is clamped and the view kept on the image."""
        self.view.set_view(zoom, None if center is None else (center.x(), center.y()))

    def fit(self) -> None:
        """Show the whole image, centred, and keep doing so when the viewport changes size."""
        self.view.fit()

    def can_pan_horizontally(self) -> bool:
        """Whether the image is wider than the view at the current zoom (Left/Right then pan)."""
        return self.view.can_pan_horizontally()

    def fit_zoom(self) -> float:
        """The zoom at which the whole image just fits the viewport (1.0 when either is empty)."""
        return self.view.fit_zoom()

    def set_image_size(self, size: QSize) -> None:
        """A new image: fit it (which always emits ``changed``)."""
        self.view.set_image_size((max(size.width(), 0), max(size.height(), 0)))

    def set_viewport(self, size: QSizeF) -> None:
        """The view's size in device pixels changed: re-fit or re-clamp, and emit ``changed``."""
        self.view.set_viewport((max(size.width(), 0.0), max(size.height(), 0.0)))


def _display_copy(image: QImage) -> QImage:
    """``image`` in the format the raster engine draws fastest (no-op when it already is)."""
    fmt = QImage.Format.Format_ARGB32_Premultiplied if image.hasAlphaChannel() else QImage.Format.Format_RGB32
    return image if image.format() == fmt else image.convertToFormat(fmt)


class _LevelCache:
    """Per shown image: a display-format copy and, made on first need, smoothly halved copies of it.

    Drawing below 100 % starts from the smallest level that still has at least one pixel per device pixel, so
    the smooth (bilinear) draw never skips source pixels (no aliasing) and never reads a 12-megapixel original
    to paint a thumbnail-sized view. Entries are keyed by ``QImage.cacheKey`` and pruned with :meth:`keep`.
    """

    def __init__(self) -> None:
        self._levels: dict[int, list[QImage]] = {}

    def put(self, image: QImage, levels: list[QImage]) -> None:
        """Use ``levels`` (from :func:`ui.qimage.display_levels_of`) for ``image``."""
        self._levels[image.cacheKey()] = list(levels)

    def keep(self, images: Iterable[QImage | None]) -> None:
        """Forget every image but these."""
        keys = {image.cacheKey() for image in images if image is not None}
        self._levels = {key: levels for key, levels in self._levels.items() if key in keys}

    def levels_of(self, image: QImage) -> list[QImage]:
        """A copy of the list of the levels made so far for ``image`` (at least its display-format copy)."""
        return list(self._levels.get(image.cacheKey(), [_display_copy(image)]))

    def level(self, image: QImage, zoom: float) -> tuple[QImage, float, float]:
        """The image to draw at ``zoom`` and its x and y scale relative to ``image``."""
        levels = self._levels.get(image.cacheKey())
        if levels is None:
            levels = self._levels[image.cacheKey()] = [_display_copy(image)]
        wanted = max(0, math.floor(-math.log2(zoom) + 1e-9)) if zoom < 1.0 else 0
        while len(levels) <= wanted and min(levels[-1].width(), levels[-1].height()) > 1:
            last = levels[-1]
            levels.append(last.scaled((last.width() + 1) // 2, (last.height() + 1) // 2,
                                      Qt.AspectRatioMode.IgnoreAspectRatio,
                                      Qt.TransformationMode.SmoothTransformation))
        chosen = levels[min(wanted, len(levels) - 1)]
        return chosen, chosen.width() / image.width(), chosen.height() / image.height()


class ImageCanvas(QWidget):
    """Paints one image, or two with a vertical divider (a wipe), through a shared :class:`ViewState`.

    Handles the mouse itself: the wheel zooms about the cursor, a left drag pans (or moves the divider when it
    starts within a few pixels of it), a double click toggles between fit and 100 % at the clicked point.
    Keys are the viewer's business: a canvas takes no focus, so a click focuses the viewer around it.
    """

    split_dragged = Signal(float)  # the user dragged the divider to this fraction of the image width
    resized = Signal()

    def __init__(self, state: ViewState, parent: QWidget | None = None, *, cache: _LevelCache | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._own_cache = cache is None
        self._cache = cache if cache is not None else _LevelCache()
        self._image: QImage | None = None
        self._under: QImage | None = None
        self._split: float | None = None
        self._labels = ("", "")
        self._hint = ""
        self._legend: list[str] = []
        self._key: list[tuple[str, QColor]] = []
        self._drag: str | None = None  # "pan" or "split" while the left button is held
        self._press_pos = QPointF()
        self._press_center = QPointF()
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setMouseTracking(True)  # the cursor shows what a press would do (divider or pan)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # every paint fills the whole widget
        state.changed.connect(self.update)

    # -- content --------------------------------------------------------------------------------------------

    def set_content(self, image: QImage | None, *, under: QImage | None = None, split: float | None = None,
                    labels: tuple[str, str] = ("", ""), hint: str = "", legend: Sequence[str] = (),
                    key: Sequence[tuple[str, QColor]] = ()) -> None:
        """What to show: ``image``; with ``under`` and ``split``, ``under`` left of a divider at ``split``
        (fraction of the image width) and ``image`` right of it; ``labels`` for the top-left and top-right
        corners; ``hint`` as a note at the bottom (in the middle when there is no image); ``legend`` lines
        and a colour ``key`` (swatch, name) in a box at the bottom left, also the canvas's tooltip."""
        self._image = image
        self._under = under if split is not None else None
        self._split = split if under is not None else None
        self._labels = labels
        self._hint = hint
        self._legend = list(legend)
        self._key = list(key)
        self.setToolTip("\n".join(self._legend))
        if self._own_cache:
            self._cache.keep((image, under))
        self.update()

    def image(self) -> QImage | None:
        """The main image shown (right of the divider in a wipe)."""
        return self._image

    def split(self) -> float | None:
        """The divider's position as a fraction of the image width, or None without a divider."""
        return self._split

    def labels(self) -> tuple[str, str]:
        """The top-left and top-right labels."""
        return self._labels

    def hint(self) -> str:
        """The note shown at the bottom ("" for none)."""
        return self._hint

    def legend(self) -> list[str]:
        """The legend's lines (empty for none)."""
        return list(self._legend)

    # -- mapping --------------------------------------------------------------------------------------------

    def scale(self) -> float:
        """Widget (logical) pixels per image pixel."""
        return self._state.zoom / self.devicePixelRatioF()

    def _frame(self) -> tuple[tuple[float, float], float, tuple[float, float], float]:
        """(view centre, zoom, widget size, device pixel ratio): what the mappings of :mod:`ui.state` take."""
        return self._state.view.center, self._state.zoom, (self.width(), self.height()), self.devicePixelRatioF()

    def _offset(self) -> QPointF:
        """Where image point (0, 0) lands, snapped to a whole device pixel so 100 % is pixel-exact."""
        return QPointF(*image_offset(*self._frame()))

    def image_to_widget(self, point: QPointF | QPoint) -> QPointF:
        """Widget coordinates of an image point."""
        return QPointF(*image_to_widget((point.x(), point.y()), *self._frame()))

    def widget_to_image(self, point: QPointF | QPoint) -> QPointF:
        """Image coordinates of a widget point (may lie outside the image)."""
        return QPointF(*widget_to_image((point.x(), point.y()), *self._frame()))

    def image_rect_on_screen(self) -> QRectF:
        """The whole image's rectangle in widget coordinates (empty without an image)."""
        if self._image is None:
            return QRectF()
        size = self._state.image_size
        return QRectF(self.image_to_widget(QPointF(0, 0)), self.image_to_widget(QPointF(size.width(), size.height())))

    def visible_image_rect(self) -> QRectF:
        """The part of the image inside this widget, in image coordinates (empty without an image)."""
        size = self._state.image_size
        if self._image is None or size.isEmpty():
            return QRectF()
        shown = QRectF(self.widget_to_image(QPointF(0, 0)), self.widget_to_image(QPointF(self.width(), self.height())))
        return shown.intersected(QRectF(0, 0, size.width(), size.height()))

    def zoom_about(self, zoom: float, anchor: QPointF) -> None:
        """Zoom so that the image point under ``anchor`` (widget coordinates) stays under it."""
        self._state.view.zoom_about(zoom, (anchor.x(), anchor.y()), (self.width(), self.height()),
                                    self.devicePixelRatioF())

    def split_x(self) -> float | None:
        """The divider's x in widget coordinates, on a whole pixel, or None without a divider."""
        if self._split is None:
            return None
        x = self.image_to_widget(QPointF(self._split * self._state.image_size.width(), 0)).x()
        return float(math.floor(x + 0.5))

    # -- painting -------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), BACKGROUND)
            if self._image is None or self._state.image_size.isEmpty():
                self._draw_hint(painter, self._hint or EMPTY_HINT, centred=True)
                return
            whole = QRectF(self.rect())
            divider = self.split_x()
            if divider is not None and self._under is not None:
                self._draw_image(painter, self._under, whole.intersected(QRectF(0, 0, divider, self.height())))
                self._draw_image(painter, self._image,
                                 whole.intersected(QRectF(divider, 0, self.width() - divider, self.height())))
                self._draw_divider(painter, divider)
            else:
                self._draw_image(painter, self._image, whole)
            left, right = self._labels
            if left:
                self._draw_label(painter, left, right_corner=False)
            if right:
                self._draw_label(painter, right, right_corner=True)
            if self._hint:
                self._draw_hint(painter, self._hint, centred=False)
            if self._legend or self._key:
                self._draw_legend(painter)
        finally:
            painter.end()

    def _draw_image(self, painter: QPainter, image: QImage, region: QRectF) -> None:
        """Draw the part of ``image`` that falls in ``region`` (widget coordinates), and only that part."""
        if region.isEmpty():
            return
        size = self._state.image_size
        wanted = QRectF(self.widget_to_image(region.topLeft()), self.widget_to_image(region.bottomRight()))
        wanted = wanted.intersected(QRectF(0, 0, size.width(), size.height()))
        if wanted.isEmpty():
            return
        # Whole source pixels, so the target's edges fall on image pixel boundaries (exact nearest neighbour).
        left, top = math.floor(wanted.left()), math.floor(wanted.top())
        right = min(math.ceil(wanted.right()), size.width())
        bottom = min(math.ceil(wanted.bottom()), size.height())
        target = QRectF(self.image_to_widget(QPointF(left, top)), self.image_to_widget(QPointF(right, bottom)))
        zoom = self._state.zoom
        level, fx, fy = self._cache.level(image, zoom)
        source = QRectF(left * fx, top * fy, (right - left) * fx, (bottom - top) * fy)
        painter.save()
        painter.setClipRect(region)
        # At 100 % and above, show real pixels as crisp squares; below, average them smoothly.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, zoom < 1.0)
        painter.drawImage(target, level, source)
        painter.restore()

    def _draw_divider(self, painter: QPainter, x: float) -> None:
        shown = self.image_rect_on_screen().intersected(QRectF(self.rect()))
        if shown.isEmpty():
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        # A light line with dark edges stays visible on both bright skies and dark shadows.
        painter.fillRect(QRectF(x - 1, shown.top(), 3, shown.height()), QColor(0, 0, 0, 110))
        painter.fillRect(QRectF(x, shown.top(), 1, shown.height()), QColor(240, 240, 240))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        centre = QPointF(x + 0.5, shown.center().y())
        radius = 11.0
        painter.setPen(QPen(QColor(240, 240, 240), 1.5))
        painter.setBrush(QColor(20, 20, 20, 190))
        painter.drawEllipse(centre, radius, radius)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(240, 240, 240))
        for direction in (-1, 1):
            tip = centre.x() + direction * 7
            painter.drawPolygon(QPolygonF([QPointF(tip, centre.y()), QPointF(tip - direction * 4, centre.y() - 4),
                                           QPointF(tip - direction * 4, centre.y() + 4)]))
        painter.restore()

    def _pill(self, painter: QPainter, text: str) -> QRectF:
        metrics = painter.fontMetrics()
        return QRectF(0, 0, metrics.horizontalAdvance(text) + 14, metrics.height() + 6)

    def _draw_text_pill(self, painter: QPainter, text: str, rect: QRectF) -> None:
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
        painter.restore()

    def _draw_label(self, painter: QPainter, text: str, right_corner: bool) -> None:
        # In the canvas's corner, not the image's: a fixed place to look, off the photo when it is fitted.
        rect = self._pill(painter, text)
        margin = 8
        rect.moveTop(margin)
        rect.moveLeft(self.width() - rect.width() - margin if right_corner else margin)
        self._draw_text_pill(painter, text, rect)

    def _draw_legend(self, painter: QPainter) -> None:
        """The colour key (swatches and names) over the legend's lines, in a box at the bottom left."""
        metrics = painter.fontMetrics()
        line, pad, swatch = metrics.height(), 7, metrics.height() - 4
        key_width = sum(swatch + 4 + metrics.horizontalAdvance(name) + 12 for name, _ in self._key)
        width = max([key_width, *(metrics.horizontalAdvance(text) for text in self._legend)]) + 2 * pad
        rows = len(self._legend) + (1 if self._key else 0)
        box = QRectF(8, self.height() - 8 - rows * line - 2 * pad, width, rows * line + 2 * pad)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(box, 4, 4)
        x, y = box.left() + pad, box.top() + pad
        for name, colour in self._key:
            painter.setPen(QColor(235, 235, 235, 120))
            painter.setBrush(colour)
            painter.drawRect(QRectF(x, y + (line - swatch) / 2, swatch, swatch))
            x += swatch + 4
            painter.setPen(QColor(235, 235, 235))
            painter.drawText(QRectF(x, y, metrics.horizontalAdvance(name) + 2, line),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), name)
            x += metrics.horizontalAdvance(name) + 12
        if self._key:
            y += line
        painter.setPen(QColor(235, 235, 235))
        for text in self._legend:
            painter.drawText(QRectF(box.left() + pad, y, width, line),
                             int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)
            y += line
        painter.restore()

    def _draw_hint(self, painter: QPainter, text: str, centred: bool) -> None:
        rect = self._pill(painter, text)
        y = self.height() / 2 if centred else self.height() - 14 - rect.height() / 2
        rect.moveCenter(QPointF(self.width() / 2, y))
        self._draw_text_pill(painter, text, rect)

    # -- mouse ----------------------------------------------------------------------------------------------

    def _near_divider(self, pos: QPointF) -> bool:
        x = self.split_x()
        if x is None:
            return False
        if abs(pos.x() - x) <= SPLIT_GRAB_PX:
            return True
        shown = self.image_rect_on_screen().intersected(QRectF(self.rect()))
        handle = QPointF(x, shown.center().y())
        return (pos - handle).manhattanLength() <= 16  # the round handle is a wider target than the line

    def _pannable(self) -> bool:
        shown = self.image_rect_on_screen()
        return shown.width() > self.width() + 0.5 or shown.height() > self.height() + 0.5

    def _hover_cursor(self, pos: QPointF) -> None:
        if self._near_divider(pos):
            self.setCursor(Qt.CursorShape.SplitHCursor)
        elif self._image is not None and self._pannable():
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            self.unsetCursor()

    def _fraction_at(self, x: float) -> float:
        width = self._state.image_size.width()
        if width <= 0:
            return 0.5
        return min(max(self.widget_to_image(QPointF(x, 0)).x() / width, 0.0), 1.0)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() != Qt.MouseButton.LeftButton or self._image is None:
            super().mousePressEvent(event)
            return
        pos = event.position()
        if self._near_divider(pos):
            self._drag = "split"
            self.setCursor(Qt.CursorShape.SplitHCursor)
            self.split_dragged.emit(self._fraction_at(pos.x()))
        else:
            self._drag = "pan"
            self._press_pos, self._press_center = QPointF(pos), self._state.center
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        pos = event.position()
        if self._drag == "split":
            self.split_dragged.emit(self._fraction_at(pos.x()))
        elif self._drag == "pan":
            # Measured from the press, not the last move: no drift from accumulated rounding.
            scale = self.scale()
            delta = pos - self._press_pos
            self._state.set_view(center=QPointF(self._press_center.x() - delta.x() / scale,
                                                self._press_center.y() - delta.y() / scale))
        else:
            self._hover_cursor(pos)
            super().mouseMoveEvent(event)
            return
        event.accept()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() == Qt.MouseButton.LeftButton and self._drag is not None:
            self._drag = None
            self._hover_cursor(event.position())
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        if event.button() != Qt.MouseButton.LeftButton or self._image is None or self._near_divider(event.position()):
            super().mouseDoubleClickEvent(event)
            return
        # The quick look every photo editor offers: fit <-> 100 % at the clicked point.
        if self._state.fitting or abs(self._state.zoom - 1.0) > 1e-9:
            self.zoom_about(1.0, event.position())
        else:
            self._state.fit()
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt's name
        notches = event.angleDelta().y() / 120  # fractional on smooth-scrolling mice and touchpads
        if notches == 0 or self._image is None:
            event.ignore()
            return
        self.zoom_about(stepped_zoom(self._state.zoom, ZOOM_STEP**notches), event.position())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.resized.emit()


class ImageViewer(QWidget):
    """The before/after viewer: one of :data:`MODES` over an original, a result, its residual and the photo's
    noise map (shown with its legend).

    Side mode shows two panes of exactly equal size (placed by hand rather than by a layout, which would make
    them differ by a pixel on odd widths and so lock them a pixel apart). The other modes show one canvas.
    Keys while the viewer has focus: Ctrl+0 fit, Ctrl+1 100 %, +/- zoom about the centre, arrows pan
    (Shift: faster), Left/Right ask for the previous/next photo (:attr:`step_requested`) when there is nothing to
    pan sideways, and holding O shows the original in toggle mode (:data:`VIEWER_KEYS` lists them for Help).
    """

    mode_changed = Signal(str)
    zoom_changed = Signal(float)
    split_changed = Signal(float)
    view_changed = Signal()  # zoom, pan or the visible region changed
    step_requested = Signal(int)
    """Left/Right with nothing to pan sideways: -1 for the previous photo, +1 for the next."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAutoFillBackground(True)  # the seam between the side panes
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Window, SEAM)
        self.setPalette(palette)
        self._state = ViewState(self)
        self._cache = _LevelCache()
        self._primed: list[tuple[QImage, list[QImage]]] = []
        self._left = ImageCanvas(self._state, self, cache=self._cache)
        self._right = ImageCanvas(self._state, self, cache=self._cache)
        for canvas in (self._left, self._right):
            canvas.split_dragged.connect(self.set_split_position)
            canvas.resized.connect(self._sync_viewport)
        self._original: QImage | None = None
        self._result: QImage | None = None
        self._residual: QImage | None = None
        self._noise_map: QImage | None = None
        self._noise_legend: list[str] = []
        self._noise_key: list[tuple[str, QColor]] = []
        self._mode = "side"
        self._split = 0.5
        self._showing_original = False
        self._o_held = False  # the O key (not the main window's key) is holding the original
        self._working = ""  # what the result pane says while a result is being made
        self._last_zoom = self._state.zoom
        self._state.changed.connect(self._on_state_changed)
        self._apply_mode()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(960, 640)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(200, 150)

    # -- images ---------------------------------------------------------------------------------------------

    def prime(self, image: QImage, levels: list[QImage]) -> None:
        """Hand over ready-made display levels for ``image`` (:func:`ui.qimage.display_levels_of`) before showing it."""
        self._primed.append((image, levels))

    def _take_primed(self) -> None:
        for image, levels in self._primed:
            self._cache.put(image, levels)
        self._primed.clear()

    def set_original(self, image: QImage | None) -> None:
        """Show a new photo: clears the result and residual and zooms to fit (None or a null image: no photo)."""
        self._original = image if image is not None and not image.isNull() else None
        self._result = self._residual = self._noise_map = None
        self._noise_legend, self._noise_key = [], []
        self._cache.keep((self._original,))
        self._take_primed()
        self._state.set_image_size(self._original.size() if self._original is not None else QSize())
        self._refresh()

    def set_result(self, result: QImage | None, residual: QImage | None = None) -> None:
        """Show the denoised ``result`` (and the ``residual``) of the current photo, keeping zoom and pan.

        Raises ValueError when there is no photo or an image's size differs from the photo's.
        """
        result = result if result is not None and not result.isNull() else None
        residual = residual if residual is not None and not residual.isNull() and result is not None else None
        if result is not None:
            if self._original is None:
                raise ValueError("set_original must come before set_result")
            for name, image in (("result", result), ("residual", residual)):
                if image is not None and image.size() != self._original.size():
                    raise ValueError(f"{name} is {image.width()}x{image.height()}, the photo is "
                                     f"{self._original.width()}x{self._original.height()}")
        self._result, self._residual = result, residual
        self._cache.keep((self._original, self._result, self._residual, self._noise_map))
        self._take_primed()
        self._refresh()

    def has_result(self) -> bool:
        """True once a result is shown for the current photo."""
        return self._result is not None

    def result_images(self) -> tuple[QImage, QImage] | None:
        """The result and residual shown now (None until both are)."""
        if self._result is None or self._residual is None:
            return None
        return self._result, self._residual

    def result_levels(self) -> tuple[list[QImage], list[QImage]] | None:
        """The display levels of the result and residual shown now (each at least the image itself; see
        :func:`ui.qimage.display_levels_of`), to draw a patch over (None until both are shown)."""
        shown = self.result_images()
        if shown is None:
            return None
        return self._cache.levels_of(shown[0]), self._cache.levels_of(shown[1])

    def set_noise_map(self, image: QImage | None, legend: Sequence[str] = (),
                      key: Sequence[tuple[str, QColor]] = ()) -> None:
        """What auto found in the current photo, for noise map mode: ``image`` (the photo's size), the
        ``legend`` lines and the colour ``key`` (swatch colour per name) drawn over it.

        Raises ValueError when there is no photo or the image's size differs from the photo's.
        """
        image = image if image is not None and not image.isNull() else None
        if image is not None:
            if self._original is None:
                raise ValueError("set_original must come before set_noise_map")
            if image.size() != self._original.size():
                raise ValueError(f"the noise map is {image.width()}x{image.height()}, the photo is "
                                 f"{self._original.width()}x{self._original.height()}")
        self._noise_map = image
        self._noise_legend, self._noise_key = (list(legend), list(key)) if image is not None else ([], [])
        self._cache.keep((self._original, self._result, self._residual, self._noise_map))
        self._take_primed()
        self._refresh()

    def noise_map(self) -> QImage | None:
        """The noise map image of the current photo, once it is set."""
        return self._noise_map

    def set_working(self, text: str) -> None:
        """Say ``text`` (e.g. ``Denoising... 42 %``) over the result pane while a result is being made; "" to
        stop. It replaces the pane's usual note ("not denoised yet") in every mode."""
        if text == self._working:
            return
        self._working = text
        self._refresh()

    def working(self) -> str:
        """What the result pane says about the work in progress ("" when none)."""
        return self._working

    # -- mode, split, toggle --------------------------------------------------------------------------------

    def set_mode(self, mode: str) -> None:
        """Switch to one of :data:`MODES`; emits ``mode_changed`` when it changes. ValueError for others."""
        if mode not in MODES:
            raise ValueError(f"unknown view mode {mode!r}; expected one of {', '.join(MODES)}")
        if mode == self._mode:
            return
        self._mode = mode
        self._apply_mode()
        self.mode_changed.emit(mode)

    def mode(self) -> str:
        """The current mode, one of :data:`MODES`."""
        return self._mode

    def split_position(self) -> float:
        """Where the split divider sits, as a fraction (0-1) of the image width."""
        return self._split

    def set_split_position(self, fraction: float) -> None:
        """Move the split divider (clamped to 0-1); emits ``split_changed`` when it moves."""
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction == self._split:
            return
        self._split = fraction
        self._refresh()
        self.split_changed.emit(fraction)

    def set_showing_original(self, on: bool) -> None:
        """In toggle mode, show the original instead of the result while ``on`` (what holding the key does)."""
        if bool(on) == self._showing_original:
            return
        self._showing_original = bool(on)
        self._refresh()

    def showing_original(self) -> bool:
        """True while toggle mode is asked to show the original."""
        return self._showing_original

    # -- zoom and pan ---------------------------------------------------------------------------------------

    def view_state(self) -> ViewState:
        """The zoom and pan every canvas draws with."""
        return self._state

    def zoom(self) -> float:
        """Device pixels per image pixel (1.0 = 100 %)."""
        return self._state.zoom

    def set_zoom(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom to ``factor`` (clamped to 0.02-32) about the view centre, or keeping the image point under
        ``anchor`` (viewer coordinates; in side mode, the pane it falls in) where it is."""
        if anchor is None:
            self._state.set_view(zoom=factor)
            return
        anchor = QPointF(anchor)
        canvases = self.canvases()
        canvas = next((c for c in canvases if QRectF(c.geometry()).contains(anchor)), canvases[-1])
        canvas.zoom_about(factor, anchor - QPointF(canvas.pos()))

    def zoom_to_fit(self) -> None:
        """Show the whole photo, and keep it whole while the viewer is resized until the user zooms or pans."""
        self._state.fit()

    def zoom_100(self) -> None:
        """One image pixel per screen pixel, about the view centre."""
        self._state.set_view(zoom=1.0)

    def visible_image_rect(self) -> QRectF:
        """The part of the photo in view, in image coordinates, clipped to the photo (empty without one)."""
        return self._right.visible_image_rect() if self._original is not None else QRectF()

    def canvases(self) -> list[ImageCanvas]:
        """The canvases of the current mode: [left, right] in side mode, [single] otherwise."""
        return [self._left, self._right] if self._mode == "side" else [self._right]

    def widget_to_image(self, canvas: ImageCanvas, point: QPointF | QPoint) -> QPointF:
        """Image coordinates of ``point`` in ``canvas``'s coordinates."""
        return canvas.widget_to_image(point)

    def image_to_widget(self, canvas: ImageCanvas, point: QPointF | QPoint) -> QPointF:
        """``canvas`` coordinates of the image point ``point``."""
        return canvas.image_to_widget(point)

    # -- internals ------------------------------------------------------------------------------------------

    def _apply_mode(self) -> None:
        self._left.setVisible(self._mode == "side")
        self._place_canvases()
        self._refresh()

    def _place_canvases(self) -> None:
        width, height = self.width(), self.height()
        if self._mode == "side":
            pane = max(0, (width - SIDE_GAP_PX) // 2)
            self._left.setGeometry(QRect(0, 0, pane, height))
            self._right.setGeometry(QRect(width - pane, 0, pane, height))
        else:
            self._right.setGeometry(QRect(0, 0, width, height))
        self._sync_viewport()

    def _sync_viewport(self) -> None:
        canvas = self._right
        dpr = canvas.devicePixelRatioF()
        self._state.set_viewport(QSizeF(canvas.width() * dpr, canvas.height() * dpr))

    def _refresh(self) -> None:
        """Hand each canvas what the mode shows; with no result yet, every mode shows the original."""
        original, result, residual = self._original, self._result, self._residual
        if original is None:
            for canvas in (self._left, self._right):
                canvas.set_content(None)
            return
        pending = self._working or ("" if result is not None else NOT_DENOISED_HINT)
        working = self._working
        if self._mode == "side":
            self._left.set_content(original, labels=("Original", ""))
            self._right.set_content(result or original, labels=("", "Denoised" if result else "Original"), hint=pending)
        elif self._mode == "split" and result is not None:
            self._right.set_content(result, under=original, split=self._split, labels=("Original", "Denoised"),
                                    hint=working)
        elif self._mode == "toggle" and result is not None and not self._showing_original:
            self._right.set_content(result, labels=("Denoised", ""), hint=working)
        elif self._mode == "residual" and residual is not None:
            self._right.set_content(residual, labels=("Residual (what was removed)", ""), hint=working)
        elif self._mode == "noise" and self._noise_map is not None:
            self._right.set_content(self._noise_map, labels=(NOISE_MAP_LABEL, ""), legend=self._noise_legend,
                                    key=self._noise_key, hint=working)
        else:
            hint = working or {"residual": RESIDUAL_HINT, "noise": NOISE_MAP_HINT}.get(self._mode, pending)
            self._right.set_content(original, labels=("Original", ""), hint=hint)

    def _on_state_changed(self) -> None:
        zoom = self._state.zoom
        if zoom != self._last_zoom:
            self._last_zoom = zoom
            self.zoom_changed.emit(zoom)
        self.view_changed.emit()

    def _pan_by_view(self, fx: float, fy: float) -> None:
        """Pan by a fraction of the view's size."""
        viewport, zoom, center = self._state.viewport, self._state.zoom, self._state.center
        self._state.set_view(center=QPointF(center.x() + fx * viewport.width() / zoom,
                                            center.y() + fy * viewport.height() / zoom))

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._place_canvases()

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        key = event.key()
        ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)
        step = 0.5 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else KEY_PAN_FRACTION
        pans = {Qt.Key.Key_Left: (-step, 0), Qt.Key.Key_Right: (step, 0),
                Qt.Key.Key_Up: (0, -step), Qt.Key.Key_Down: (0, step)}
        if key == Qt.Key.Key_O and not ctrl:
            # Auto-repeat presses arrive while the key is held: only the first one counts.
            if not event.isAutoRepeat():
                self._o_held = True
                self.set_showing_original(True)
        elif ctrl and key == Qt.Key.Key_0:
            self.zoom_to_fit()
        elif ctrl and key == Qt.Key.Key_1:
            self.zoom_100()
        elif key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.set_zoom(stepped_zoom(self.zoom(), ZOOM_STEP))
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.set_zoom(stepped_zoom(self.zoom(), 1 / ZOOM_STEP))
        elif (key in (Qt.Key.Key_Left, Qt.Key.Key_Right) and self._original is not None
              and not event.modifiers() and not self._state.can_pan_horizontally()):
            self.step_requested.emit(-1 if key == Qt.Key.Key_Left else 1)
        elif key in pans and self._original is not None:
            self._pan_by_view(*pans[key])
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    def keyReleaseEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        # Some systems send a release before each auto-repeated press: ignore those, only the real release counts.
        if event.key() == Qt.Key.Key_O and not event.isAutoRepeat() and self._o_held:
            self._o_held = False
            self.set_showing_original(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:  # noqa: N802 - Qt's name
        # A release that happens in another window never reaches us: do not leave the original stuck on screen.
        if self._o_held:
            self._o_held = False
            self.set_showing_original(False)
        super().focusOutEvent(event)
