"""The viewer's shared zoom and pan: :class:`ViewState`, the Qt face (Qt types and a ``changed`` signal) of
:class:`ui.state.View`, which every canvas draws with so that two panes can never drift apart.

Zoom is counted in *device* pixels (1.0 = one image pixel per physical screen pixel, also on high-DPI screens)
because judging noise means seeing real pixels.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QPointF, QSize, QSizeF, Signal

from ui.state import View


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
