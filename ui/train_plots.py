"""The training dialog's live view: the loss and validation plots and the before/after sample pictures of a run.

The figures come from the engine's progress events (:func:`~denoiser.train_run.run_training` reports them); this
module keeps them as plot points and redraws the plots at most every ``PLOT_REFRESH_MS`` while a run goes on.
"""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ui.qimage import array_to_qimage

SAMPLE_SIDE = 192
"""Edge of the before/after sample pictures on screen (the engine's crop is at most 96 pixels)."""
SMOOTHING = 0.1
"""Weight of the newest step in the smoothed loss curve (a running average, for the eye only)."""
PLOT_REFRESH_MS = 200
"""Plots are redrawn at most this often: a tiny model can report hundreds of steps a second."""


class TrainPlots(QWidget):
    """The training loss (raw and smoothed, log scale) over the validation metric, and the latest sample pictures."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty view; :meth:`label_validation` names its validation axis."""
        super().__init__(parent)
        self._loss: list[tuple[int, float]] = []
        self._smoothed: list[float] = []
        self._validation: list[tuple[int, float]] = []
        self._metric: str | None = None
        self.sample_images: dict[str, Any] = {}  # "before"/"after" -> the QImage shown

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        self.loss_plot = pg.PlotWidget(title="Training loss")
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLogMode(y=True)  # losses fall over decades; a linear axis flattens the late part
        self.loss_plot.showGrid(x=True, y=True, alpha=0.2)
        self.loss_curve = self.loss_plot.plot(pen=pg.mkPen((120, 150, 200, 110)), name="loss")
        self.smooth_curve = self.loss_plot.plot(pen=pg.mkPen((90, 170, 255), width=2), name="smoothed")
        self.val_plot = pg.PlotWidget(title="Validation")
        self.val_plot.setLabel("bottom", "step")
        self.val_plot.showGrid(x=True, y=True, alpha=0.2)
        self.val_plot.setXLink(self.loss_plot)
        self.val_curve = self.val_plot.plot(pen=pg.mkPen((255, 170, 60), width=2), symbol="o", symbolSize=6,
                                            symbolBrush=(255, 170, 60), connect="finite")
        column.addWidget(self.loss_plot, 1)
        column.addWidget(self.val_plot, 1)

        samples = QHBoxLayout()
        self.sample_labels: dict[str, QLabel] = {}
        for key, title in (("before", "Noisy (held out)"), ("after", "Denoised now")):
            box = QVBoxLayout()
            caption = QLabel(title)
            caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture = QLabel()
            picture.setFixedSize(SAMPLE_SIDE, SAMPLE_SIDE)
            picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
            picture.setStyleSheet("background: #1e1e1e;")
            self.sample_labels[key] = picture
            box.addWidget(caption)
            box.addWidget(picture)
            samples.addLayout(box)
        samples.addStretch(1)
        column.addLayout(samples)
        self.before_label, self.after_label = self.sample_labels["before"], self.sample_labels["after"]

        self._timer = QTimer(self)
        self._timer.setInterval(PLOT_REFRESH_MS)
        self._timer.timeout.connect(self.refresh)

    def label_validation(self, self_supervised: bool) -> None:
        """Name the validation axis: a loss (lower is better) for a self-supervised run, else PSNR."""
        self.val_plot.setLabel("left", "loss (lower is better)" if self_supervised else "PSNR (dB)")

    def clear(self) -> None:
        """Forget the last run's points and pictures: a new run starts a new plot."""
        self._loss.clear()
        self._smoothed.clear()
        self._validation.clear()
        self._metric = None
        self.sample_images.clear()
        for label in self.sample_labels.values():
            label.clear()
        self.refresh()

    def set_live(self, live: bool) -> None:
        """Redraw the plots every ``PLOT_REFRESH_MS`` while a run goes on; once more, and no longer, after it."""
        if live:
            self._timer.start()
        else:
            self._timer.stop()
            self.refresh()

    def record(self, figures: dict[str, Any]) -> None:
        """Take one train or validate event's figures: its step's loss, a validation metric, sample pictures."""
        if "loss" in figures:
            loss = float(figures["loss"])
            self._loss.append((int(figures["step"]), loss))
            previous = self._smoothed[-1] if self._smoothed else loss
            self._smoothed.append(previous + SMOOTHING * (loss - previous))
        metric = next((key for key in ("val_psnr", "val_loss") if key in figures), None)
        if metric is not None:
            self._metric = metric
            self._validation.append((int(figures.get("step", 0)), float(figures[metric])))
            self.label_validation(metric != "val_psnr")
        if "sample" in figures:
            self._show_sample(figures["sample"])

    def loss_points(self) -> list[tuple[int, float]]:
        """(step, training loss) of every step so far, as plotted."""
        return list(self._loss)

    def validation_points(self) -> list[tuple[int, float]]:
        """(step, validation metric) of the starting model (step 0) and every epoch so far, as plotted."""
        return list(self._validation)

    def validation_metric(self) -> str | None:
        """"val_psnr" or "val_loss" once the run has reported one."""
        return self._metric

    def _show_sample(self, sample: dict[str, Any]) -> None:
        for key, label in self.sample_labels.items():
            if key not in sample:
                continue
            image = array_to_qimage(sample[key])
            self.sample_images[key] = image
            # Nearest-neighbour enlargement: the point is to see the noise and the detail, not to smooth them.
            label.setPixmap(QPixmap.fromImage(image).scaled(
                SAMPLE_SIDE, SAMPLE_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))

    def refresh(self) -> None:
        """Redraw the curves from the points so far."""
        steps = [step for step, _ in self._loss]
        self.loss_curve.setData(steps, [loss for _, loss in self._loss])
        self.smooth_curve.setData(steps, self._smoothed)
        self.val_curve.setData([step for step, _ in self._validation], [value for _, value in self._validation])
