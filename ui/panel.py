"""The side panel: model, strength (auto amount or fixed sigma, luminance and colour amounts), detail, device,
the noise auto found, warnings about the result, Denoise / Save, and latent thumbnails."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap, QResizeEvent, QTextLayout
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.findings import Finding
from denoiser.noise import MAX_SIGMA
from denoiser.strength import MAX_AMOUNT, NoiseEstimate, Strength

NOISE_TOOLTIP = ("What auto found in the open photo: its typical (median) luminance and colour noise, sigma in "
                 "0-255 units. (PCA): one white-noise level for the whole photo; otherwise a level per region, "
                 "shown by View > Noise map.")
AMOUNT_TOOLTIP = "How much of the noise auto found to remove: 100 % is the estimate itself, 200 % twice it"
SIGMA_TOOLTIP = "A fixed noise level (sigma, 0-255 units) for the whole photo, whatever auto finds"
LUMINANCE_TOOLTIP = "Luminance noise (grain, speckle): 100 % removes what the strength says, 0 % leaves it"
COLOUR_TOOLTIP = "Colour noise (chroma blotches): 100 % removes what the strength says, 0 % leaves it"
GREY_COLOUR_TOOLTIP = "A grey photo has no colour noise: Luminance sets how much of its noise is removed"

MAX_STRENGTH = int(MAX_SIGMA)
"""The strength slider's top with Auto off (whole sigmas)."""
MAX_PERCENT = int(round(MAX_AMOUNT * 100))
"""The top of the amount, luminance and colour sliders (%)."""
DEFAULT_SIGMA = 25
"""The fixed strength until the user chooses one."""
MODEL_NOTE_CHARS = 64
"""The model note shows this much of the model's description (two lines); the tooltip has all of it."""
SETTLE_MS = 300
"""A key or wheel change of a strength slider re-denoises once the slider has been still this long."""
LEFTOVER_MIN_HEIGHT = 150
"""The latent thumbnails' box never gets less: its caption and about a row of thumbnails."""
LATENTS_TITLE = "What the model sees (bottleneck)"
LATENTS_LEGEND = ("PCA: the bottleneck's three main directions as colour; then single channels, most active first "
                  "(click one to enlarge).")
"""The one-line legend over the latent thumbnails."""


@dataclass
class PanelSettings:
    """What the panel's controls say."""

    model: str
    auto_strength: bool
    strength: float
    """The fixed sigma used with Auto off (0-255 units)."""
    detail: float
    device: str
    passes: int = 1
    """Orientations averaged (self-ensemble): 1 fast, 2 better, 8 best."""
    amount: float = 1.0
    """With Auto on, how much of the estimate (1.0 = 100 %, up to 2.0)."""
    luminance: float = 1.0
    """The luminance noise amount (1.0 = 100 %)."""
    color: float = 1.0
    """The colour noise amount (1.0 = 100 %)."""

    def strength_setting(self) -> Strength:
        """The engine's strength: auto times the amount, or the fixed sigma, times the luminance/colour amounts."""
        if self.auto_strength:
            return Strength(None, self.amount, self.luminance, self.color)
        return Strength(self.strength, 1.0, self.luminance, self.color)


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
        self.list.setMinimumHeight(70)  # about a row: the box gives up height first when warnings need it
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
        """Show the PCA colour thumbnail first, then the channel thumbnails in the order given; with no channels
        (a saved result, whose latents are not known) only the caption, no PCA tile of nothing."""
        self.clear()
        self.caption.setText(caption)
        if not channels:
            return
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


class TwoLineLabel(QLabel):
    """A label always exactly two lines tall, wrapped at word boundaries: a longer text ends in "..." and is
    whole in the tooltip, so a text that needs one line or three never moves the widgets below it.

    :meth:`text` is the whole text; :meth:`set_explanation` sets what the tooltip says under it."""

    LINES = 2

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full_text = ""
        self._explanation = ""
        self._cut = False
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)  # two lines tall: sizeHint
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 - Qt's name
        """Show ``text``, wrapped onto two lines and cut with "..." where it needs more."""
        self._full_text = text
        self._show_wrapped()

    def text(self) -> str:
        """The whole text, as set (the label may show it cut)."""
        return self._full_text

    def set_explanation(self, explanation: str) -> None:
        """The tooltip's text (after the whole text when the label shows it cut)."""
        self._explanation = explanation
        self._show_wrapped()

    def is_cut(self) -> bool:
        """Whether the text needs more than two lines at the label's width, so it is shown ending in "..."."""
        return self._cut

    def _two_lines_height(self) -> int:
        margins = self.contentsMargins()
        return self.LINES * self.fontMetrics().lineSpacing() + margins.top() + margins.bottom() + 2 * self.margin()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.fontMetrics().horizontalAdvance("luminance 00.0, colour 00.0"), self._two_lines_height())

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(self.fontMetrics().horizontalAdvance("luminance 00.0"), self._two_lines_height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._show_wrapped()

    def _show_wrapped(self) -> None:
        lines = self._wrapped(self.contentsRect().width() - 2 * self.margin())
        self._cut = len(lines) > self.LINES
        super().setText("\n".join(lines[: self.LINES]))
        self.setToolTip(f"{self._full_text}\n\n{self._explanation}".strip() if self._cut else self._explanation)

    def _wrapped(self, width: int) -> list[str]:
        """The text's lines at ``width`` pixels: up to two; when more would follow, the second is cut with an
        ellipsis and a third entry (the rest of the text) says so."""
        text = " ".join(self._full_text.split())
        if width <= 0 or not text:
            return [text]
        layout = QTextLayout(text, self.font())
        layout.beginLayout()
        starts: list[int] = []
        while len(starts) <= self.LINES:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            starts.append(line.textStart())
        layout.endLayout()
        if len(starts) <= self.LINES:
            return [text[start:end].strip() for start, end in zip(starts, [*starts[1:], len(text)], strict=True)]
        first = text[starts[0]:starts[1]].strip()
        rest = text[starts[1]:]
        return [first, self.fontMetrics().elidedText(rest, Qt.TextElideMode.ElideRight, width), rest]


class _LeftoverBox(QGroupBox):
    """A group box that takes the height its neighbours leave (down to :data:`LEFTOVER_MIN_HEIGHT`).

    Word-wrapped labels make a layout size everything by height-for-width, where a size policy alone cannot
    make one item give way first: without this, warnings would squeeze the labels above them into clipped lines
    on a small screen instead of shortening the thumbnail list, which scrolls. Its preferred height is its
    minimum, so the panel's height-for-width counts it: the scroll area the window puts the panel in then
    scrolls when even that does not fit, instead of the layout clipping the wrapped labels.
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(LEFTOVER_MIN_HEIGHT)

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(super().sizeHint().width(), LEFTOVER_MIN_HEIGHT)

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False


class SidePanel(QWidget):
    """Controls for one photo. Emits requests; the main window does the work through the worker bridge."""

    denoise_requested = Signal()
    save_requested = Signal()
    save_as_requested = Signal()
    model_changed = Signal(str)
    device_changed = Signal(str)
    detail_changed = Signal(float)
    strength_changed = Signal()
    latents_expanded_changed = Signal(bool)
    """The user opened (True) or closed the latent thumbnails' section."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_box = QComboBox()
        self.model_box.setToolTip("Bundled and saved models")
        self.model_box.currentIndexChanged.connect(lambda _: self.model_changed.emit(self.model_name()))
        self.auto_box = QCheckBox("Auto (from the noise estimate)")
        self.auto_box.setChecked(True)
        self.auto_box.setToolTip("On: the strength follows the noise found in each part of the photo, times the "
                                 "amount. Off: one fixed sigma for the whole photo.")
        self._amount, self._sigma = 100, DEFAULT_SIGMA  # the slider shows one; the other waits for the toggle
        self.strength_name = QLabel("Amount")
        self.strength_slider, self.strength_label = self._slider(MAX_PERCENT, 100, AMOUNT_TOOLTIP)
        self.luminance_slider, self.luminance_label = self._slider(MAX_PERCENT, 100, LUMINANCE_TOOLTIP)
        self.color_slider, self.color_label = self._slider(MAX_PERCENT, 100, COLOUR_TOOLTIP)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(self.strength_changed)
        self._pressed_at: dict[QSlider, int] = {}
        for slider in (self.strength_slider, self.luminance_slider, self.color_slider):
            slider.valueChanged.connect(self._strength_ui)
            slider.sliderPressed.connect(lambda s=slider: self._pressed_at.__setitem__(s, s.value()))
            slider.sliderReleased.connect(lambda s=slider: self._released(s))
            slider.actionTriggered.connect(lambda _action, s=slider: self._stepped(s))
        self.auto_box.toggled.connect(self._auto_toggled)
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
        # Two lines, whatever the text: a grey photo's longer readout never moves Denoise and Save.
        self.noise_label = TwoLineLabel("-")
        self.noise_label.set_explanation(NOISE_TOOLTIP)
        self.device_label = QLabel("-")
        self.warnings_label = QLabel()
        self.warnings_label.setObjectName("warnings")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setTextFormat(Qt.TextFormat.RichText)
        self.warnings_label.setStyleSheet("QLabel#warnings { color: #e3b341; border: 1px solid #7a5c12; "
                                          "border-radius: 4px; padding: 6px; font-size: 11px; }")
        self.warnings_label.setVisible(False)
        self.findings: list[Finding] = []
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

        self.detail_label.setMinimumWidth(self._value_width())
        self.detail_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form = QFormLayout()
        form.addRow("Model", self.model_box)
        form.addRow("", self.model_note)
        form.addRow("Strength", self.auto_box)
        form.addRow(self.strength_name, self._row(self.strength_slider, self.strength_label))
        form.addRow("Luminance", self._row(self.luminance_slider, self.luminance_label))
        form.addRow("Colour", self._row(self.color_slider, self.color_label))
        form.addRow("Detail", self._row(self.detail_slider, self.detail_label))
        form.addRow("Quality", self.quality_box)
        form.addRow("Device", self.device_box)
        form.addRow("In use", self.device_label)
        noise_name = QLabel("Noise found")  # as tall as its two lines and at their top, whatever the text
        noise_name.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        noise_name.setMinimumHeight(self.noise_label.sizeHint().height())
        form.addRow(noise_name, self.noise_label)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.save_as_button)
        # Collapsed by default: a header that opens the latent thumbnails (the window remembers the choice).
        self.latents_toggle = QToolButton()
        self.latents_toggle.setText(LATENTS_TITLE)
        self.latents_toggle.setCheckable(True)
        self.latents_toggle.setAutoRaise(True)
        self.latents_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.latents_toggle.setToolTip("Show or hide the latent thumbnails: what the model's bottleneck holds")
        self.latents_toggle.toggled.connect(self._latents_toggled)
        self.latents_legend = QLabel(LATENTS_LEGEND)
        self.latents_legend.setWordWrap(True)
        self.latents_legend.setStyleSheet("color: #888; font-size: 11px;")
        latent_box = _LeftoverBox("")
        latent_layout = QVBoxLayout(latent_box)
        latent_layout.addWidget(self.latents_legend)
        latent_layout.addWidget(self.latents)
        self.latent_box = latent_box
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.denoise_button)
        layout.addLayout(buttons)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.reference_label)
        layout.addWidget(self.latents_toggle)
        layout.addWidget(latent_box, 1)
        self._collapsed_space = layout.count()
        layout.addStretch(0)  # takes the box's share of the height while the box is closed
        honesty = QLabel("Autoencoders are lossy and data-specific: fine detail that looks like noise can go "
                         "with it. Compare with the original (split view, residual) before you keep a result.")
        honesty.setWordWrap(True)
        honesty.setStyleSheet("color: #888; font-size: 11px;")
        layout.addWidget(honesty)
        self._show_strength_slider()
        self.setMinimumWidth(280)
        self.set_latents_expanded(False)

    def set_latents_expanded(self, expanded: bool) -> None:
        """Open or close the latent thumbnails' section (no signal: used when restoring settings)."""
        self.latents_toggle.blockSignals(True)
        self.latents_toggle.setChecked(expanded)
        self.latents_toggle.blockSignals(False)
        self._show_latents(expanded)

    def latents_expanded(self) -> bool:
        """Whether the latent thumbnails' section is open."""
        return self.latents_toggle.isChecked()

    def _latents_toggled(self, expanded: bool) -> None:
        self._show_latents(expanded)
        self.latents_expanded_changed.emit(expanded)

    def _show_latents(self, expanded: bool) -> None:
        self.latents_toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.latent_box.setVisible(expanded)
        layout = self.layout()
        if isinstance(layout, QVBoxLayout):
            layout.setStretch(self._collapsed_space, 0 if expanded else 1)

    def set_latents_note(self, note: str) -> None:
        """Say why there are no latent thumbnails (the model in use is an exported graph, which has no bottleneck
        to show): ``note`` in place of the legend and the thumbnails."""
        self.latents.clear()
        self.latents.caption.setText(note)
        self.latents_legend.setVisible(False)
        self.latents.list.setVisible(False)

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

    def set_model_note(self, text: str) -> None:
        """Describe the loaded model under the chooser: the first :data:`MODEL_NOTE_CHARS` characters (a long
        training description would push the controls off a small screen), all of it in the tooltip."""
        shown = text if len(text) <= MODEL_NOTE_CHARS else text[:MODEL_NOTE_CHARS].rsplit(" ", 1)[0] + "..."
        self.model_note.setText(shown)
        self.model_note.setToolTip(text if shown != text else "")

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
            strength=float(self._sigma),
            detail=self.detail_slider.value() / 100.0,
            device=self.device_box.currentText() or "auto",
            passes=int(self.quality_box.currentData() or 1),
            amount=self._amount / 100.0,
            luminance=self.luminance_slider.value() / 100.0,
            color=self.color_slider.value() / 100.0,
        )

    def set_passes(self, passes: int) -> None:
        """Choose the quality entry with ``passes`` (used when restoring settings; unknown counts leave it)."""
        found = self.quality_box.findData(passes)
        if found >= 0:
            self.quality_box.blockSignals(True)
            self.quality_box.setCurrentIndex(found)
            self.quality_box.blockSignals(False)

    def set_strength(self, auto: bool, sigma: float, amount: float | None = None, luminance: float | None = None,
                     color: float | None = None) -> None:
        """Set the strength controls (used when restoring settings): Auto, the fixed sigma, and the amounts
        (1.0 = 100 %; None keeps the current one). Values out of range are clamped; nothing is re-denoised."""

        def percent(value: float) -> int:
            return min(MAX_PERCENT, max(0, int(round(value * 100))))

        self._sigma = min(MAX_STRENGTH, max(0, int(round(sigma))))
        if amount is not None:
            self._amount = percent(amount)
        for slider, value in ((self.luminance_slider, luminance), (self.color_slider, color)):
            if value is not None:
                slider.blockSignals(True)
                slider.setValue(percent(value))
                slider.blockSignals(False)
        self.auto_box.blockSignals(True)
        self.auto_box.setChecked(auto)
        self.auto_box.blockSignals(False)
        self._show_strength_slider()

    def set_noise_estimate(self, estimate: NoiseEstimate | None, summary: str = "") -> None:
        """Show what auto found in the open photo (None: no photo): ``luminance 3.2, colour 7.5`` (``summary``
        when it was made already) and "(PCA)" when it is the flat white-noise estimate rather than the noise-map
        network's."""
        grey = estimate is not None and estimate.grey is not None
        self.color_slider.setEnabled(not grey)  # a grey photo has no colour noise: Colour would do nothing
        self.color_slider.setToolTip(GREY_COLOUR_TOOLTIP if grey else COLOUR_TOOLTIP)
        if estimate is None:
            self.noise_label.setText("-")
            return
        method = " (PCA)" if estimate.method == "pca" else ""
        self.noise_label.setText(f"{summary or estimate.summary()}{method}")

    def set_findings(self, findings: Sequence[Finding]) -> None:
        """Show the warnings about the current result, each as its message and advice (none: hidden)."""
        self.findings = list(findings)
        self.warnings_label.setText("<br><br>".join(
            f"<b>&#9888; {html.escape(finding.message)}</b><br>{html.escape(finding.advice)}"
            for finding in self.findings))
        self.warnings_label.setToolTip("\n\n".join(finding.text() for finding in self.findings))
        self.warnings_label.setVisible(bool(self.findings))

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

    def _slider(self, maximum: int, value: int, tooltip: str) -> tuple[QSlider, QLabel]:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, maximum)
        slider.setValue(value)
        slider.setPageStep(10)
        slider.setToolTip(tooltip)
        label = QLabel()
        label.setMinimumWidth(self._value_width())
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return slider, label

    def _value_width(self) -> int:
        return self.fontMetrics().horizontalAdvance("200 %") + 6

    @staticmethod
    def _row(*widgets: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        for widget in widgets:
            row.addWidget(widget)
        return row

    def _auto_toggled(self, _auto: bool) -> None:
        self._show_strength_slider()
        self.strength_changed.emit()

    def _show_strength_slider(self) -> None:
        """With Auto on the slider is the amount (0-200 %), with Auto off the fixed sigma (0-75)."""
        auto = self.auto_box.isChecked()
        self.strength_slider.blockSignals(True)
        self.strength_slider.setRange(0, MAX_PERCENT if auto else MAX_STRENGTH)
        self.strength_slider.setValue(self._amount if auto else self._sigma)
        self.strength_slider.blockSignals(False)
        self.strength_slider.setToolTip(AMOUNT_TOOLTIP if auto else SIGMA_TOOLTIP)
        self.strength_name.setText("Amount" if auto else "Sigma")
        self._strength_ui()

    def _strength_ui(self) -> None:
        value = self.strength_slider.value()
        if self.auto_box.isChecked():
            self._amount = value
            self.strength_label.setText(f"{value} %")
        else:
            self._sigma = value
            self.strength_label.setText(f"{value}")
        self.luminance_label.setText(f"{self.luminance_slider.value()} %")
        self.color_label.setText(f"{self.color_slider.value()} %")

    def _released(self, slider: QSlider) -> None:
        """A drag ended: re-denoise once, if it moved the slider."""
        if self._pressed_at.pop(slider, None) != slider.value():
            self._settle.stop()
            self.strength_changed.emit()

    def _stepped(self, slider: QSlider) -> None:
        """A key, wheel or click on the groove moved the slider: re-denoise when it has been still a moment
        (a drag waits for the release instead)."""
        if not slider.isSliderDown():
            self._settle.start()

    def _detail_moved(self, value: int) -> None:
        self.detail_label.setText(f"{value} %")
        self.detail_changed.emit(value / 100.0)


class PanelScrollArea(QScrollArea):
    """The side panel in a vertical scroll area, for the window's dock: when the window is too short for the
    panel it scrolls, instead of its layout squeezing wrapped texts (the model note, the warnings) into clipped
    lines. It is never narrower than the panel's minimum plus the scroll bar, so the bar never narrows the panel
    below the width its texts were wrapped for (there is no horizontal scrolling)."""

    def __init__(self, panel: SidePanel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidget(panel)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def _extra_width(self) -> int:
        return self.verticalScrollBar().sizeHint().width() + 2 * self.frameWidth()

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        panel = self.widget()
        width = panel.minimumSizeHint().width() if panel is not None else 0
        return QSize(width + self._extra_width(), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        panel = self.widget()
        hint = panel.sizeHint() if panel is not None else QSize()
        return QSize(hint.width() + self._extra_width(), hint.height())
