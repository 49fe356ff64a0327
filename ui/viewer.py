"""The before/after photo viewer: original and denoised side by side, as a wipe, as a toggle, the residual, or
the noise map (what auto found in the photo, with a legend).

:class:`ImageViewer` places the canvases (:mod:`ui.canvas`) of the current mode and tells each what to show; zoom
and pan live in one :class:`~ui.view_state.ViewState` that every canvas draws with, so two panes can never drift
apart: a wheel, drag or key in either moves both. The images' display levels are cached once for all canvases
(:mod:`ui.level_cache`).

Numbers stay in the engine: images arrive here as QImages (``ui.qimage`` converts arrays).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPoint, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QFocusEvent, QImage, QKeyEvent, QPalette, QResizeEvent
from PySide6.QtWidgets import QWidget

from ui.canvas import ImageCanvas
from ui.level_cache import LevelCache
from ui.state import ZOOM_STEP, stepped_zoom
from ui.view_state import ViewState

MODES = ("side", "split", "toggle", "residual", "noise")
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

SEAM = QColor("#0c0c0c")
NOT_DENOISED_HINT = "not denoised yet"
RESIDUAL_HINT = "denoise to see what was removed"
NOISE_MAP_HINT = "reading the noise map..."
NOISE_MAP_LABEL = "Noise map (what auto found)"


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
        self._cache = LevelCache()
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
