"""The training dialog's controls: the photos, the model and the budget, checked and made into a ``TrainRequest``.

Three ways in, as on the command line (``denoiser train``): clean photos + synthetic noise, noisy/clean pairs (the
pairs page, :mod:`ui.train_pairs`, checks them before anything starts) and noisy photos alone (self-supervised). The
controls make the engine's :class:`~denoiser.train_request.TrainRequest`, as the command line's flags do, and start at
the request's defaults. The name rules for the model to save live here too: the engine's, then the names taken.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from denoiser.batch.naming import unique_path
from denoiser.errors import DenoiserError
from denoiser.modelfile import WEIGHTS_SUFFIX
from denoiser.models import families
from denoiser.modelstore import DEFAULT_MODEL, list_models, user_models_dir, validate_model_name
from denoiser.noise import NOISE_MODELS, NoiseMix
from denoiser.train_request import (
    DEFAULT_STEPS,
    MINUTES_STEP_CAP,
    DataSpec,
    ModelSpec,
    NoiseSpec,
    ScheduleSpec,
    TrainRequest,
)
from ui.folder_field import folder_field
from ui.train_pairs import PairsPage
from ui.worker import WorkerBridge

MODES = ("clean", "pairs", "noisy")
"""The dialog's ways in."""
MODE_TITLES = {
    "clean": "Clean photos + synthetic noise",
    "pairs": "Noisy / clean pairs",
    "noisy": "Noisy photos only (self-supervised)",
}
SCRATCH = "(from scratch)"
FAMILY_ORDER = ("unet", "undercomplete", "sparse", "variational")
DEFAULTS = TrainRequest()
"""The engine's defaults, where the controls start (the noisy patches' "as saved photos" excepted: ticked here)."""


def name_problem(name: str) -> str:
    """Why ``name`` cannot be a new library model's name (the engine's rule, then taken names), or "" when it can."""
    if not name:
        return "Give the model a name."
    try:
        validate_model_name(name)
    except DenoiserError as err:
        reason = str(err).partition(": ")[2] or str(err)
        return f"{reason[:1].upper()}{reason[1:]}."
    if (user_models_dir() / f"{name}{WEIGHTS_SUFFIX}").exists() or name in {i.name for i in list_models()}:
        return f"A model named {name!r} already exists; choose another name."
    return ""


def free_name(base: str) -> str:
    """``base``, else ``base-2``, ``base-3``...: the first name no model in the library or bundled with the app has
    (the engine's rule for a taken name, :func:`~denoiser.batch.naming.unique_path`)."""
    library = user_models_dir()
    taken = {(library / f"{info.name}{WEIGHTS_SUFFIX}").resolve() for info in list_models()}
    return unique_path(library / f"{base}{WEIGHTS_SUFFIX}", taken).stem


class TrainForm(QWidget):
    """The "Your photos", "Model" and "Budget" boxes, one above the other. Starts on no way in: call :meth:`set_mode`.

    While a run goes on (:meth:`set_running`) only the name to save the model as stays editable.
    """

    changed = Signal()
    """Something that decides whether a run can start changed (a folder, the noise, the pairs, the way in)."""
    mode_changed = Signal(str)
    """The way in just chosen: "clean", "pairs" or "noisy"."""

    def __init__(self, bridge: WorkerBridge, parent: QWidget | None = None, *, workers: int = 1,
                 model_config: dict[str, Any] | None = None, device: str = "auto") -> None:
        """``bridge``: the window's, which checks the pairs; the rest as :class:`~ui.train_dialog.TrainDialog`'s."""
        super().__init__(parent)
        self.workers, self.model_config, self.device = workers, dict(model_config or {}), device
        self._running = False
        self._start_chosen = False  # once the user picks a starting model, mode changes leave it alone
        self.vanished_start = ""
        """The chosen starting model, gone from the library since it was chosen ("" when none is)."""
        self._families: dict[str, str] = {}
        self.pairs = PairsPage(bridge)
        self.pairs.changed.connect(self.changed)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self._build_source_box())
        column.addWidget(self._build_model_box())
        column.addWidget(self._build_budget_box())
        self.refresh_models()
        self.name_edit.setText(free_name("my-model"))

    # ----- building -------------------------------------------------------------------------------------------
    def _build_source_box(self) -> QGroupBox:
        box = QGroupBox("Your photos")
        self.mode_group = QButtonGroup(self)
        self.mode_buttons: dict[str, QRadioButton] = {}
        self.pages = QStackedWidget()
        column = QVBoxLayout(box)
        for index, mode in enumerate(MODES):
            button = QRadioButton(MODE_TITLES[mode])
            self.mode_group.addButton(button, index)
            self.mode_buttons[mode] = button
            column.addWidget(button)
        self.mode_group.idToggled.connect(lambda index, on: on and self._mode_changed(MODES[index]))

        clean_page = QWidget()
        form = QFormLayout(clean_page)
        self.clean_folder_edit = QLineEdit()
        self.clean_folder_edit.setPlaceholderText("a folder of clean photos")
        form.addRow("Folder", folder_field(self.clean_folder_edit, "Folder of clean photos"))
        noise_row = QWidget()
        noise_layout = QHBoxLayout(noise_row)
        noise_layout.setContentsMargins(0, 0, 0, 0)
        self.noise_boxes: dict[str, QCheckBox] = {}
        for name in NOISE_MODELS:
            check = QCheckBox(name.replace("_", "-"))
            check.setChecked(name in DEFAULTS.noise.kinds)
            check.toggled.connect(self.changed)
            self.noise_boxes[name] = check
            noise_layout.addWidget(check)
        form.addRow("Noise", noise_row)
        self.sigma_spin = QSpinBox()
        self.sigma_spin.setRange(1, 255)
        self.sigma_spin.setValue(int(DEFAULTS.noise.sigma_max))
        self.sigma_spin.setToolTip("Largest noise sigma added (8-bit units)")
        form.addRow("Up to sigma", self.sigma_spin)
        self.quantize_box = QCheckBox("as saved photos: 8-bit, clipped")
        self.quantize_box.setChecked(True)
        self.quantize_box.setToolTip(
            "Round and clip the noisy training patches to 8 bits, as a saved photo is: the model learns the clipped\n"
            "noise of dark and bright areas it will meet in use (the bundled default was trained so)")
        form.addRow("Noisy patches", self.quantize_box)

        noisy_page = QWidget()
        noisy = QFormLayout(noisy_page)
        self.noisy_folder_edit = QLineEdit()
        self.noisy_folder_edit.setPlaceholderText("a folder of noisy photos")
        noisy.addRow("Folder", folder_field(self.noisy_folder_edit, "Folder of noisy photos"))
        noisy.addRow(QLabel("No clean versions needed: the model learns from the noise's randomness "
                            "(Neighbor2Neighbor)."))
        for edit in (self.clean_folder_edit, self.noisy_folder_edit):
            edit.textChanged.connect(self.changed)

        for page in (clean_page, self.pairs, noisy_page):
            self.pages.addWidget(page)
        column.addWidget(self.pages)
        return box

    def _build_model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.family_box = QComboBox()
        # The flagship first: families() lists them in import order, which puts an experiment on top.
        known = families()
        self.family_box.addItems([f for f in FAMILY_ORDER if f in known] + [f for f in known if f not in FAMILY_ORDER])
        self.family_box.setCurrentText(DEFAULTS.model.family)
        self.family_box.setToolTip("Autoencoder family (a fine-tuned model keeps its own)")
        self.start_box = QComboBox()
        self.start_box.setToolTip("Fine-tune a model you have, or train a new one from scratch")
        self.start_box.currentIndexChanged.connect(self._start_model_changed)
        self.start_box.activated.connect(self._start_model_picked)  # user choices only
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("name in your model library")
        form.addRow("Start from", self.start_box)
        form.addRow("Family", self.family_box)
        form.addRow("Save as", self.name_edit)
        return box

    def _build_budget_box(self) -> QGroupBox:
        box = QGroupBox("Budget")
        grid = QGridLayout(box)
        self.minutes_radio = QRadioButton("Minutes")
        self.steps_radio = QRadioButton("Steps")
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0.5, 24 * 60)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setValue(10)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, MINUTES_STEP_CAP)
        self.steps_spin.setValue(DEFAULT_STEPS)
        budget_group = QButtonGroup(box)
        for button in (self.minutes_radio, self.steps_radio):
            budget_group.addButton(button)
        self.minutes_radio.toggled.connect(self._budget_changed)
        self.minutes_radio.setChecked(True)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 256)
        self.batch_spin.setValue(DEFAULTS.schedule.batch_size)
        self.patch_spin = QSpinBox()
        self.patch_spin.setRange(16, 512)
        self.patch_spin.setSingleStep(16)
        self.patch_spin.setValue(DEFAULTS.schedule.patch)
        self.patch_spin.setToolTip("Patch edge in pixels, a multiple of 16")
        self.validate_spin = QSpinBox()
        self.validate_spin.setRange(1, 100_000)
        self.validate_spin.setValue(DEFAULTS.schedule.validation_every)
        self.validate_spin.setToolTip("Steps between validations on the held-out photos (one epoch)")
        grid.addWidget(self.minutes_radio, 0, 0)
        grid.addWidget(self.minutes_spin, 0, 1)
        grid.addWidget(self.steps_radio, 0, 2)
        grid.addWidget(self.steps_spin, 0, 3)
        grid.addWidget(QLabel("Batch"), 1, 0)
        grid.addWidget(self.batch_spin, 1, 1)
        grid.addWidget(QLabel("Patch"), 1, 2)
        grid.addWidget(self.patch_spin, 1, 3)
        grid.addWidget(QLabel("Validate every"), 2, 0)
        grid.addWidget(self.validate_spin, 2, 1)
        grid.addWidget(QLabel("steps"), 2, 2)
        return box

    # ----- choices --------------------------------------------------------------------------------------------
    def mode(self) -> str:
        """The way in: "clean", "pairs" or "noisy"."""
        return MODES[max(0, self.mode_group.checkedId())]

    def set_mode(self, mode: str) -> None:
        """Choose the way in: "clean" (photos + synthetic noise), "pairs" or "noisy" (self-supervised)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if self.mode_buttons[mode].isChecked():
            self._mode_changed(mode)
        else:
            self.mode_buttons[mode].setChecked(True)  # -> _mode_changed

    def _mode_changed(self, mode: str) -> None:
        self.pages.setCurrentIndex(MODES.index(mode))
        # A stacked widget is as tall as its tallest page; hidden pages must not claim room for their controls.
        for index in range(self.pages.count()):
            policy = QSizePolicy.Policy.Preferred if index == MODES.index(mode) else QSizePolicy.Policy.Ignored
            self.pages.widget(index).setSizePolicy(policy, policy)
        self.pages.adjustSize()
        if not self._start_chosen:
            # Pairs usually come from the user's own camera: fine-tuning the default model needs far fewer
            # of them than a fresh network does. The other ways default to a fresh network.
            wanted = DEFAULT_MODEL if mode == "pairs" else SCRATCH
            index = self.start_box.findText(wanted)
            self.start_box.setCurrentIndex(index if index >= 0 else 0)
        self.mode_changed.emit(mode)
        self.changed.emit()

    def refresh_models(self, renamed: tuple[str, str] | None = None) -> None:
        """Fill the starting-model chooser from the library, keeping the current choice where it still exists.

        ``renamed``: (old, new) name of a model just renamed, which the choice follows. A chosen model that is gone
        (deleted, or renamed elsewhere) leaves "from scratch" chosen and :meth:`problem` saying so until the user
        picks again: the run must not quietly start from something else.
        """
        current = self.start_box.currentText()
        if renamed is not None and current == renamed[0]:
            current = renamed[1]
        # Models are addressed by file stem (what load_model resolves), which for the bundled one is "default".
        self._families = {info.path.stem if info.path is not None else info.name: info.family
                          for info in list_models()}
        self.start_box.blockSignals(True)
        self.start_box.clear()
        self.start_box.addItem(SCRATCH)
        self.start_box.addItems(list(self._families))
        index = self.start_box.findText(current)
        if index < 0 and current not in ("", SCRATCH):
            self.vanished_start = current
        self.start_box.setCurrentIndex(max(0, index))
        self.start_box.blockSignals(False)
        self._start_model_changed()
        self.changed.emit()

    def start_model(self) -> str:
        """The model to fine-tune, or "" for a fresh network."""
        text = self.start_box.currentText()
        return "" if text in ("", SCRATCH) else text

    def _start_model_picked(self, _index: int) -> None:
        self._start_chosen = True
        if self.vanished_start:
            self.vanished_start = ""
            self.changed.emit()

    def _start_model_changed(self, *_: object) -> None:
        name = self.start_model()
        # A fine-tuned model keeps its family and layout; show which, and let it not be changed.
        if name and name in self._families:
            self.family_box.setCurrentText(self._families[name])
        self.family_box.setEnabled(not name and not self._running)

    def _budget_changed(self) -> None:
        self.minutes_spin.setEnabled(self.minutes_radio.isChecked())
        self.steps_spin.setEnabled(self.steps_radio.isChecked())

    def set_running(self, running: bool) -> None:
        """Lock the photos, the starting model and the budget while a run goes on; unlock them after."""
        for widget in (self.mode_buttons[m] for m in MODES):
            widget.setEnabled(not running)
        for widget in (self.pages, self.start_box, self.minutes_radio, self.steps_radio, self.minutes_spin,
                       self.steps_spin, self.batch_spin, self.patch_spin, self.validate_spin):
            widget.setEnabled(not running)
        self._running = running
        if not running:
            self._budget_changed()
        self.pairs.set_running(running)
        self._start_model_changed()

    # ----- the request ----------------------------------------------------------------------------------------
    def problem(self) -> str:
        """Why the controls cannot make a run now (no folder, no usable noise, unchecked pairs), or "" when they can."""
        mode = self.mode()
        if self.vanished_start:
            return (f"The model {self.vanished_start!r} is no longer in your library (deleted or renamed): choose "
                    "the model to start from.")
        if mode == "clean":
            if not self.clean_folder_edit.text().strip():
                return "Choose a folder of clean photos."
            try:
                NoiseMix(models=self._noise_models()).validate()
            except DenoiserError as err:
                return f"Noise: {err}."
        elif mode == "noisy":
            if not self.noisy_folder_edit.text().strip():
                return "Choose a folder of noisy photos."
        else:
            return self.pairs.problem()
        return ""

    def _noise_models(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.noise_boxes.items() if box.isChecked())

    def request(self) -> TrainRequest:
        """What the controls say, as the engine's training request (the model is saved afterwards, from the dialog)."""
        mode = self.mode()
        if mode == "pairs":
            noisy, clean = self.pairs.folders()
            folders = (noisy, clean) if clean else (noisy,)
        else:
            folders = ({"clean": self.clean_folder_edit, "noisy": self.noisy_folder_edit}[mode].text().strip(),)
        start_from = self.start_model()
        # A fresh network's config (widths and the rest apart, as the engine has it); a fine-tuned model keeps its own.
        options = {} if start_from else dict(self.model_config)
        widths, noise_channels = tuple(options.pop("widths", ())), options.pop("noise_channels", 0)
        by_minutes = self.minutes_radio.isChecked()
        return TrainRequest(
            model=ModelSpec(family=self.family_box.currentText(), widths=widths, options=options,
                            start_from=start_from, noise_channels=noise_channels),
            data=DataSpec(mode=mode, folders=folders, skip_bad_pairs=mode == "pairs" and self.pairs.skip_bad_pairs()),
            noise=NoiseSpec(kinds=self._noise_models(), sigma_max=float(self.sigma_spin.value()),
                            quantize=self.quantize_box.isChecked()),
            schedule=ScheduleSpec(
                steps=None if by_minutes else self.steps_spin.value(),
                minutes=self.minutes_spin.value() if by_minutes else 0.0, batch_size=self.batch_spin.value(),
                patch=self.patch_spin.value(), validation_every=self.validate_spin.value(), device=self.device,
                workers=self.workers),
        )
