"""The toolbar's zoom readout: the viewer's current zoom as a percentage, kept true as the view changes
(fit, wheel, keys, double-click, the Fit and 100 % actions)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from ui.viewer import ImageViewer

__all__ = ["ZoomReadout", "zoom_text"]

NO_PHOTO_TEXT = "\u2013 %"
"""What the readout shows while no photo is open."""


def zoom_text(zoom: float, fitting: bool = False) -> str:
    """``zoom`` (1.0 = 100 %) as the readout writes it: whole percents from 10 % up, one decimal below (a fitted
    40-megapixel photo is a few percent); `` (fit)`` while the view follows zoom to fit."""
    percent = zoom * 100
    shown = f"{percent:.0f}" if percent >= 10 or percent == round(percent) else f"{percent:.1f}"
    return f"{shown} %{' (fit)' if fitting else ''}"


class ZoomReadout(QLabel):
    """A label that follows ``viewer``'s zoom: ``34 % (fit)``, ``100 %``, ``250 %``."""

    def __init__(self, viewer: ImageViewer, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._viewer = viewer
        self.setObjectName("zoom-readout")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumWidth(self.fontMetrics().horizontalAdvance("3200 % (fit)") + 12)
        self.setToolTip("Zoom (100 %: one photo pixel per screen pixel). Wheel or +/- to zoom, Ctrl+0 to fit, "
                        "Ctrl+1 for 100 %, double-click to switch between them.")
        viewer.view_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Show the viewer's zoom now (called on every view change)."""
        state = self._viewer.view_state()
        if state.image_size.isEmpty():
            self.setText(NO_PHOTO_TEXT)
        else:
            self.setText(zoom_text(state.zoom, state.fitting))
