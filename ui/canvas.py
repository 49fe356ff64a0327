"""One pane of the viewer: :class:`ImageCanvas` paints one image, or two with a wipe divider, with its labels,
hint and legend, and turns the mouse (wheel, drag, double click) into zoom, pan and divider moves.

It draws through the shared :class:`~ui.view_state.ViewState`. At 100 % and above images are drawn with nearest
neighbour and the drawing offset is snapped to whole device pixels, so 100 % is pixel-exact; below 100 % they are
drawn smoothly from the halved copies of a :class:`~ui.level_cache.LevelCache`. Only the visible part of an image
is ever drawn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

from ui.level_cache import LevelCache
from ui.state import ZOOM_STEP, image_offset, image_to_widget, stepped_zoom, widget_to_image
from ui.view_state import ViewState

SPLIT_GRAB_PX = 6  # how close (screen px) to the divider a press grabs it instead of panning
BACKGROUND = QColor("#202020")
EMPTY_HINT = "No photo open"


class ImageCanvas(QWidget):
    """Paints one image, or two with a vertical divider (a wipe), through a shared :class:`ViewState`.

    Handles the mouse itself: the wheel zooms about the cursor, a left drag pans (or moves the divider when it
    starts within a few pixels of it), a double click toggles between fit and 100 % at the clicked point.
    Keys are the viewer's business: a canvas takes no focus, so a click focuses the viewer around it.
    """

    split_dragged = Signal(float)  # the user dragged the divider to this fraction of the image width
    resized = Signal()

    def __init__(self, state: ViewState, parent: QWidget | None = None, *, cache: LevelCache | None = None) -> None:
        super().__init__(parent)
        self._state = state
        self._own_cache = cache is None
        self._cache = cache if cache is not None else LevelCache()
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
