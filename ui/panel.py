"""The side panel: model, strength, detail, device, noise estimate, Denoise / Save, and latent thumbnails."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from denoiser.noise import LOW_ESTIMATE, MAX_SIGMA

LOW_ESTIMATE_HINT = ("Very low estimate. Camera noise in JPEG photos reads low: if the photo still looks noisy, "
                     "untick Auto and raise the strength (6 to 20 suits most camera photos).")

NOISE_TOOLTIP = "Estimated noise level (sigma, 0-255) of the open photo"

MAX_STRENGTH = int(MAX_SIGMA)
"""The strength slider's top (whole sigmas)."""


@dataclass
class PanelSettings:
    """What the panel's controls say."""

    model: str
    auto_strength: bool
    strength: float
    detail: float
    device: str
    passes: int = 1
    """Orientations averaged (self-ensemble): 1 fast, 2 better, 8 best."""


QUALITY_CHOICES = ((1, "Fast (1 pass)"), (2, "Better (2 passes, 2x time)"), (8, "Best (8 passes, 8x time)"))
"""The quality menu: passes and what they are called."""


class LatentGrid(QWidget):
    """A grid of latent-channel thumbnails (most active first) plus one PCA colour thumbnail.

    Clicking a thumbnail opens it enlarged, pixel by pixel.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = QLabel("Denoise a photo to see what the model's bottleneck holds.")
        self.caption.setWordWrap(True)
        self.list = QListWidget()
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setIconSize(QSize(56, 56))
        self.list.setGridSize(QSize(64, 76))
        self.list.setResizeMode(QListWidget.ResizeMode.Adjust)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setMinimumHeight(180)
        self.list.itemClicked.connect(self._enlarge)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.list)
        self._images: dict[int, tuple[str, QImage]] = {}
        self.enlarged: QDialog | None = None

    def clear(self) -> None:
        """Remove every thumbnail."""
        self.list.clear()
        self._images.clear()

    def set_thumbnails(self, caption: str, colour: QImage, channels: list[tuple[str, QImage]]) -> None:
        """Show the PCA colour thumbnail first, then the channel thumbnails in the order given."""
        self.clear()
        self.caption.setText(caption)
        for index, (label, image) in enumerate([("PCA", colour), *channels]):
            item = QListWidgetItem(QPixmap.fromImage(image).scaled(56, 56, Qt.AspectRatioMode.KeepAspectRatio), label)
            item.setData(Qt.ItemDataRole.UserRole, index)
            item.setToolTip(f"{label}: click to enlarge")
            self.list.addItem(item)
            self._images[index] = (label, image)

    def count(self) -> int:
        """Thumbnails shown."""
        return self.list.count()

    def _enlarge(self, item: QListWidgetItem) -> None:
        label, image = self._images[int(item.data(Qt.ItemDataRole.UserRole))]
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Latent {label}")
        view = QLabel()
        scale = max(1, 384 // max(image.width(), image.height()))
        view.setPixmap(QPixmap.fromImage(image).scaled(image.width() * scale, image.height() * scale,
                                                       Qt.AspectRatioMode.KeepAspectRatio,
                                                       Qt.TransformationMode.FastTransformation))
        layout = QVBoxLayout(dialog)
        layout.addWidget(view)
        layout.addWidget(QLabel(f"{image.width()} x {image.height()} latent positions, enlarged {scale}x"))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.enlarged = dialog
        dialog.show()


class SidePanel(QWidget):
    """Controls for one photo. Emits requests; the main window does the work through the worker bridge."""

    denoise_requested = Signal()
    save_requested = Signal()
    save_as_requested = Signal()
    model_changed = Signal(str)
    device_changed = Signal(str)
    detail_changed = Signal(float)
    strength_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_box = QComboBox()
        self.model_box.setToolTip("Bundled and saved models")
        self.model_box.currentIndexChanged.connect(lambda _: self.model_changed.emit(self.model_name()))
        self.auto_box = QCheckBox("Auto (from the noise estimate)")
        self.auto_box.setChecked(True)
        self.strength_slider = QSlider(Qt.Orientation.Horizontal)
        self.strength_slider.setRange(0, MAX_STRENGTH)
        self.strength_slider.setValue(25)
        self.strength_label = QLabel()
        self.auto_box.toggled.connect(self._strength_ui)
        self.strength_slider.valueChanged.connect(self._strength_ui)
        self.strength_slider.sliderReleased.connect(self.strength_changed)
        self.auto_box.toggled.connect(lambda _: self.strength_changed.emit())
        self.detail_slider = QSlider(Qt.Orientation.Horizontal)
        self.detail_slider.setRange(0, 100)
        self.detail_slider.setToolTip("Mix some of the original back in to keep texture (0 % = fully denoised)")
        self.detail_label = QLabel("0 %")
        self.detail_slider.valueChanged.connect(self._detail_moved)
        self.device_box = QComboBox()
        self.quality_box = QComboBox()
        for passes, label in QUALITY_CHOICES:
            self.quality_box.addItem(label, passes)
        self.quality_box.setToolTip("Denoise the photo in several orientations (flips, turns) and average them: "
                                    "slightly cleaner, that many times slower")
        self.quality_box.currentIndexChanged.connect(lambda _: self.strength_changed.emit())
        self.noise_label = QLabel("-")
        self.noise_label.setToolTip(NOISE_TOOLTIP)
        self.device_label = QLabel("-")
        self.noise_hint = QLabel(LOW_ESTIMATE_HINT)
        self.noise_hint.setWordWrap(True)
        self.noise_hint.setStyleSheet("color: #d9a441; font-size: 11px;")
        self.noise_hint.setVisible(False)
        self.denoise_button = QPushButton("Denoise")
        self.denoise_button.setDefault(True)
        self.denoise_button.clicked.connect(self.denoise_requested)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save_requested)
        self.save_as_button = QPushButton("Save As...")
        self.save_as_button.clicked.connect(self.save_as_requested)
        self.save_button.setEnabled(False)
        self.save_as_button.setEnabled(False)
        self.model_note = QLabel()
        self.model_note.setWordWrap(True)
        self.model_note.setStyleSheet("color: #888;")
        self.latents = LatentGrid()
        self.reference_label = QLabel()
        self.reference_label.setWordWrap(True)
        self.reference_label.setStyleSheet("font-family: monospace;")
        self.reference_label.setVisible(False)

        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength_slider)
        strength_row.addWidget(self.strength_label)
        detail_row = QHBoxLayout()
        detail_row.addWidget(self.detail_slider)
        detail_row.addWidget(self.detail_label)
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("", self.model_note)
        form.addRow("Strength", self.auto_box)
        form.addRow("", strength_row)
        form.addRow("Detail", detail_row)
        form.addRow("Quality", self.quality_box)
        form.addRow("Device", self.device_box)
        form.addRow("In use", self.device_label)
        form.addRow("Noise estimate", self.noise_label)
        form.addRow("", self.noise_hint)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.save_as_button)
        latent_box = QGroupBox("What the model sees (bottleneck)")
        latent_layout = QVBoxLayout(latent_box)
        latent_layout.addWidget(self.latents)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.denoise_button)
        layout.addLayout(buttons)
        layout.addWidget(self.reference_label)
        layout.addWidget(latent_box, 1)
        honesty = QLabel("Autoencoders are lossy and data-specific: fine detail that looks like noise can go "
                         "with it. Compare with the original (split view, residual) before you keep a result.")
        honesty.setWordWrap(True)
        honesty.setStyleSheet("color: #888; font-size: 11px;")
        layout.addWidget(honesty)
        self._strength_ui()
        self.setMinimumWidth(280)

    def set_models(self, entries: list[tuple[str, str]], current: str | None = None) -> None:
        """Fill the chooser with (name, description) pairs, keeping ``current`` selected when present."""
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for name, description in entries:
            self.model_box.addItem(name, name)
            self.model_box.setItemData(self.model_box.count() - 1, description, Qt.ItemDataRole.ToolTipRole)
        index = self.model_box.findData(current) if current else 0
        self.model_box.setCurrentIndex(max(0, index))
        self.model_box.blockSignals(False)

    def model_name(self) -> str:
        """The chosen model's name."""
        return str(self.model_box.currentData() or "default")

    def set_devices(self, devices: list[str], current: str) -> None:
        """Fill the device chooser."""
        self.device_box.blockSignals(True)
        self.device_box.clear()
        self.device_box.addItems(devices)
        self.device_box.setCurrentIndex(max(0, self.device_box.findText(current)))
        self.device_box.blockSignals(False)
        self.device_box.currentTextChanged.connect(self.device_changed)

    def settings(self) -> PanelSettings:
        """The controls' values."""
        return PanelSettings(
            model=self.model_name(),
            auto_strength=self.auto_box.isChecked(),
            strength=float(self.strength_slider.value()),
            detail=self.detail_slider.value() / 100.0,
            device=self.device_box.currentText() or "auto",
            passes=int(self.quality_box.currentData() or 1),
        )

    def set_passes(self, passes: int) -> None:
        """Choose the quality entry with ``passes`` (used when restoring settings; unknown counts leave it)."""
        found = self.quality_box.findData(passes)
        if found >= 0:
            self.quality_box.blockSignals(True)
            self.quality_box.setCurrentIndex(found)
            self.quality_box.blockSignals(False)

    def set_strength(self, auto: bool, value: float) -> None:
        """Set the strength controls (used when restoring settings)."""
        self.auto_box.setChecked(auto)
        self.strength_slider.setValue(int(round(value)))

    def set_noise_estimate(self, sigma: float | None, auto: float | None = None) -> None:
        """Show the estimated noise and the strength "auto" chose from it (``auto``: when it differs, the model's
        camera strength applied); with Auto on, the slider follows that strength."""
        auto = sigma if auto is None else auto
        camera = sigma is not None and auto is not None and auto > sigma + 0.05
        if sigma is None:
            self.noise_label.setText("-")
        elif camera:
            self.noise_label.setText(f"sigma {sigma:.1f}, camera noise: auto {auto:.1f}")
            self.noise_label.setToolTip("The white-noise estimate reads camera-processed noise (and clean photos) "
                                        "low; Auto uses the model's camera strength, measured on real noisy/clean "
                                        "pairs. Untick Auto to choose your own.")
        else:
            self.noise_label.setText(f"sigma {sigma:.1f}")
            self.noise_label.setToolTip(NOISE_TOOLTIP)
        self.noise_hint.setVisible(sigma is not None and sigma < LOW_ESTIMATE and not camera)
        if auto is not None and self.auto_box.isChecked():
            self.strength_slider.blockSignals(True)
            self.strength_slider.setValue(int(round(min(MAX_STRENGTH, auto))))
            self.strength_slider.blockSignals(False)
            self._strength_ui()

    def set_reference_text(self, text: str) -> None:
        """Show (or hide, with "") the comparison with a clean reference."""
        self.reference_label.setText(text)
        self.reference_label.setVisible(bool(text))

    def set_has_result(self, has_result: bool) -> None:
        """Enable saving once there is something to save."""
        self.save_button.setEnabled(has_result)
        self.save_as_button.setEnabled(has_result)

    def set_busy(self, busy: bool) -> None:
        """While a denoise runs the button reads Cancel-free: the status bar has Cancel."""
        self.denoise_button.setText("Denoising..." if busy else "Denoise")

    def _strength_ui(self) -> None:
        self.strength_slider.setEnabled(not self.auto_box.isChecked())
        self.strength_label.setText(f"{self.strength_slider.value()}")

    def _detail_moved(self, value: int) -> None:
        self.detail_label.setText(f"{value} %")
        self.detail_changed.emit(value / 100.0)
