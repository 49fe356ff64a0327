"""The photo info panel: file, size, bit depth, the camera's EXIF facts, and histograms of the photo and of the
result on screen. The numbers (EXIF decoding, histogram counts) come from the engine, computed in the jobs that
read the photo and draw the result; this module only shows them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPolygonF
from PySide6.QtWidgets import QFormLayout, QLabel, QVBoxLayout, QWidget

from denoiser.io.formats import format_info

__all__ = ["HistogramView", "InfoPanel", "depth_text", "format_text"]

CHANNEL_COLOURS = (QColor(230, 60, 60, 150), QColor(60, 200, 60, 150), QColor(70, 110, 240, 150))
GREY = QColor(200, 200, 200, 170)
HISTOGRAM_HEIGHT = 70


def depth_text(bit_depth: int, channels: int) -> str:
    """``16-bit RGB``, ``8-bit grey``, ``8-bit RGBA``, ``32-bit float RGB``."""
    kind = {1: "grey", 3: "RGB", 4: "RGBA"}.get(channels, f"{channels} channels")
    return f"{bit_depth}-bit {'float ' if bit_depth == 32 else ''}{kind}"


def format_text(name: str) -> str:
    """A format as people write it (``camera RAW``, ``HEIC/HEIF``, ``WebP``), from the engine's formats table;
    a name the table does not know as it is."""
    try:
        return format_info(name).label
    except KeyError:
        return name


class HistogramView(QWidget):
    """Draws a C x bins histogram (tallest bin = 1) as overlapping filled curves, red, green and blue (grey for
    one channel); empty with a note when there is none."""

    def __init__(self, empty_note: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: np.ndarray | None = None
        self._note = empty_note
        self.setMinimumHeight(HISTOGRAM_HEIGHT)
        self.setMaximumHeight(HISTOGRAM_HEIGHT)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(240, HISTOGRAM_HEIGHT)

    def set_histogram(self, counts: np.ndarray | None) -> None:
        """Show ``counts`` (C x bins, 0-1), or nothing with None."""
        self._counts = None if counts is None else np.asarray(counts, dtype=np.float32)
        self.update()

    def histogram(self) -> np.ndarray | None:
        """The counts shown (None: none)."""
        return self._counts

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        try:
            painter.fillRect(self.rect(), QColor(24, 24, 24))
            counts = self._counts
            if counts is None or counts.size == 0:
                painter.setPen(QColor(130, 130, 130))
                painter.drawText(self.rect(), int(Qt.AlignmentFlag.AlignCenter), self._note)
                return
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Plus)
            width, height = self.width(), self.height() - 1
            bins = counts.shape[1]
            colours = CHANNEL_COLOURS if counts.shape[0] == 3 else (GREY,)
            for channel, colour in zip(counts, colours, strict=False):
                points = [QPointF(0, height)]
                for index, value in enumerate(channel):
                    x0, x1 = width * index / bins, width * (index + 1) / bins
                    y = height - float(value) * (height - 2)
                    points += [QPointF(x0, y), QPointF(x1, y)]
                points.append(QPointF(width, height))
                painter.setBrush(colour)
                painter.drawPolygon(QPolygonF(points))
        finally:
            painter.end()


class InfoPanel(QWidget):
    """What the open photo is: name, size, depth, format, camera facts; histograms of the photo and the result."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.photo_histogram = HistogramView("no photo")
        self.photo_histogram.setToolTip("Histogram of the photo (red, green, blue)")
        self.result_histogram = HistogramView("not denoised yet")
        self.result_histogram.setToolTip("Histogram of the result on screen (with the detail setting)")
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        layout.addWidget(QLabel("Photo"))
        layout.addWidget(self.photo_histogram)
        layout.addWidget(QLabel("Result"))
        layout.addWidget(self.result_histogram)
        layout.addStretch(1)
        self._rows: list[tuple[str, str]] = []
        self.clear()

    def clear(self) -> None:
        """No photo: no facts, no histograms."""
        self._set_rows([("File", "no photo open")])
        self.photo_histogram.set_histogram(None)
        self.result_histogram.set_histogram(None)

    def set_photo(self, path: Path, width: int, height: int, bit_depth: int, channels: int, fmt: str,
                  facts: Sequence[tuple[str, str]], histogram: np.ndarray | None) -> None:
        """Describe a newly opened photo (``facts`` from :func:`denoiser.io.metadata.exif_facts`); the result's
        histogram is emptied until a result is shown."""
        megapixels = width * height / 1e6
        rows = [("File", path.name), ("Size", f"{width} x {height} ({megapixels:.1f} MP)"),
                ("Depth", depth_text(bit_depth, channels)), ("Format", format_text(fmt)), *facts]
        if not facts:
            rows.append(("Camera", "no EXIF"))
        self._set_rows(rows)
        self.form.itemAt(0, QFormLayout.ItemRole.FieldRole).widget().setToolTip(str(path))
        self.photo_histogram.set_histogram(histogram)
        self.result_histogram.set_histogram(None)

    def set_result_histogram(self, histogram: np.ndarray | None) -> None:
        """The histogram of the result on screen (None: no result)."""
        self.result_histogram.set_histogram(histogram)

    def rows(self) -> list[tuple[str, str]]:
        """The (label, text) lines shown."""
        return list(self._rows)

    def _set_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        for label, text in rows:
            value = QLabel(text)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            value.setWordWrap(True)
            self.form.addRow(label, value)
        self._rows = list(rows)
