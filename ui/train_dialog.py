"""The training dialog: pick photos and a model, train in the background with a live plot, save to the library.

Three ways in, as on the command line (``denoiser train``): clean photos + synthetic noise, noisy/clean pairs
(checked with :func:`~denoiser.datasets.match_pairs` before anything starts) and noisy photos alone
(self-supervised). The controls make the engine's :class:`~denoiser.train_request.TrainRequest`, as the command
line's flags do, and the run is one job on the bridge's ``train`` lane: :func:`~denoiser.train_run.run_training`,
which reads the photos, trains and reports every progress event; this module only turns those events into plot
points, sample pictures and text. The controls start at the request's defaults. Pair checks and saves go on the
``io`` lane with ``replace=False``, since that lane also carries the folder pane's thumbnails and the model
manager's imports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from denoiser.batch.naming import unique_path
from denoiser.datasets import (
    PairReport,
    match_pairs,
)
from denoiser.errors import DenoiserError
from denoiser.formatting import duration_text
from denoiser.modelfile import WEIGHTS_SUFFIX
from denoiser.models import families
from denoiser.modelstore import (
    DEFAULT_MODEL,
    list_models,
    user_models_dir,
    validate_model_name,
)
from denoiser.noise import NOISE_MODELS, NoiseMix
from denoiser.progress import Progress
from denoiser.train_request import (
    DEFAULT_STEPS,
    MINUTES_STEP_CAP,
    DataSpec,
    ModelSpec,
    NoiseSpec,
    ScheduleSpec,
    TrainRequest,
)
from denoiser.train_run import TrainOutcome, run_training
from denoiser.training import TrainingResult
from ui.qimage import array_to_qimage
from ui.worker import JobHandle, WorkerBridge

MODES = ("clean", "pairs", "noisy")
"""The dialog's ways in."""
MODE_TITLES = {
    "clean": "Clean photos + synthetic noise",
    "pairs": "Noisy / clean pairs",
    "noisy": "Noisy photos only (self-supervised)",
}
SCRATCH = "(from scratch)"
FAMILY_ORDER = ("unet", "undercomplete", "sparse", "variational")
TRAIN_JOB, CHECK_JOB, SAVE_JOB = "train", "check-pairs", "save-model"
DEFAULTS = TrainRequest()
"""The engine's defaults, where the controls start (the noisy patches' "as saved photos" excepted: ticked here)."""
SAMPLE_SIDE = 192
"""Edge of the before/after sample pictures on screen (the engine's crop is at most 96 pixels)."""
SMOOTHING = 0.1
"""Weight of the newest step in the smoothed loss curve (a running average, for the eye only)."""
PLOT_REFRESH_MS = 200
"""Plots are redrawn at most this often: a tiny model can report hundreds of steps a second."""


def figures_text(outcome: TrainOutcome) -> str:
    """The end-of-run figures: the validation metric of the starting model and the best one, and the gain."""
    result = outcome.result
    scratch = not outcome.config.start_from
    start_name = "untrained network" if scratch else f"starting model ({outcome.config.start_from})"
    steps = f"{result.steps} steps in {duration_text(result.seconds)}" + (" (stopped early)" if result.stopped_early
                                                                          else "")
    if result.best is None or result.start is None:
        return f"{steps}. No validation figures: too few photos to hold any out."
    if result.metric == "val_psnr":
        return (f"{steps}.\nValidation PSNR: {start_name} {result.start:.2f} dB, best {result.best:.2f} dB, "
                f"gain {result.gain:+.2f} dB.")
    return (f"{steps}.\nValidation loss (self-supervised, lower is better): {start_name} {result.start:.4g}, "
            f"best {result.best:.4g}, improvement {result.gain:+.4g}.")


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


def _folder_row(edit: QLineEdit, browse: QPushButton) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(edit, 1)
    layout.addWidget(browse)
    return row


class TrainDialog(QDialog):
    """Train or fine-tune a model on the user's photos. All work goes through the window's bridge.

    Closing the dialog while a run goes on cancels the run: its result could not be saved from anywhere else.
    """

    model_saved = Signal(str)
    """The library name of a model just saved, so the main window can refresh its model chooser."""

    def __init__(self, bridge: WorkerBridge, parent: QWidget | None = None, *, workers: int = 1,
                 model_config: dict[str, Any] | None = None, device: str = "auto") -> None:
        """``workers``: background processes building batches (0 builds them in the job, for tests);
        ``model_config``: family config fields for runs from scratch (empty: the family's defaults)."""
        super().__init__(parent)
        self.setWindowTitle("Train a model")
        self.bridge = bridge
        self.workers, self.model_config, self.device = workers, dict(model_config or {}), device
        self.outcome: TrainOutcome | None = None
        self.report: PairReport | None = None
        self._report_folders: tuple[str, str] | None = None
        self._train_job: JobHandle | None = None
        self._check_job: JobHandle | None = None
        self._save_job: tuple[JobHandle, str] | None = None  # the save's handle and the name it saves as
        self._running_request: TrainRequest | None = None
        self._start_chosen = False  # once the user picks a starting model, mode changes leave it alone
        self._loss: list[tuple[int, float]] = []
        self._smoothed: list[float] = []
        self._validation: list[tuple[int, float]] = []
        self._metric: str | None = None
        self.sample_images: dict[str, Any] = {}  # "before"/"after" -> the QImage shown

        left = QVBoxLayout()
        left.addWidget(self._build_source_box())
        left.addWidget(self._build_model_box())
        left.addWidget(self._build_budget_box())
        self.note_label = QLabel()
        self.note_label.setWordWrap(True)
        left.addWidget(self.note_label)
        self.start_button = QPushButton("Start training")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel training")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        left.addLayout(buttons)
        left.addStretch(1)

        layout = QHBoxLayout(self)
        layout.addLayout(left, 0)
        layout.addWidget(self._build_run_box(), 1)
        self.resize(1150, 720)

        self._plot_timer = QTimer(self)
        self._plot_timer.setInterval(PLOT_REFRESH_MS)
        self._plot_timer.timeout.connect(self._refresh_plots)

        self.refresh_models()
        self.name_edit.setText(self._free_name("my-model"))
        self.set_mode("clean")

    # ----- building -------------------------------------------------------------------------------------------
    def _browse_button(self, edit: QLineEdit, title: str) -> QPushButton:
        button = QPushButton("Browse...")

        def choose() -> None:
            folder = QFileDialog.getExistingDirectory(self, title, edit.text())
            if folder:
                edit.setText(folder)

        button.clicked.connect(choose)
        return button

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
        form.addRow("Folder", _folder_row(self.clean_folder_edit,
                                          self._browse_button(self.clean_folder_edit, "Folder of clean photos")))
        noise_row = QWidget()
        noise_layout = QHBoxLayout(noise_row)
        noise_layout.setContentsMargins(0, 0, 0, 0)
        self.noise_boxes: dict[str, QCheckBox] = {}
        for name in NOISE_MODELS:
            check = QCheckBox(name.replace("_", "-"))
            check.setChecked(name in DEFAULTS.noise.kinds)
            check.toggled.connect(self._update_start)
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

        pairs_page = QWidget()
        pairs = QFormLayout(pairs_page)
        self.pairs_noisy_edit = QLineEdit()
        self.pairs_noisy_edit.setPlaceholderText("noisy photos, or a folder holding noisy/ and clean/")
        self.pairs_clean_edit = QLineEdit()
        self.pairs_clean_edit.setPlaceholderText("clean photos (empty: noisy/ and clean/ inside the first)")
        pairs.addRow("Noisy", _folder_row(self.pairs_noisy_edit,
                                          self._browse_button(self.pairs_noisy_edit, "Folder of noisy photos")))
        pairs.addRow("Clean", _folder_row(self.pairs_clean_edit,
                                          self._browse_button(self.pairs_clean_edit, "Folder of clean photos")))
        self.check_button = QPushButton("Check pairs")
        self.check_button.setToolTip("Match the photos by file name and check each pair before training")
        self.check_button.clicked.connect(self.check_pairs)
        self.pair_summary = QLabel("Check the pairs before training.")
        self.pair_summary.setWordWrap(True)
        self.pair_problems = QListWidget()
        self.pair_problems.setMaximumHeight(110)
        self.skip_box = QCheckBox("Skip the problem pairs")
        self.skip_box.toggled.connect(self._update_start)
        pairs.addRow(self.check_button, self.pair_summary)
        pairs.addRow(self.pair_problems)
        pairs.addRow(self.skip_box)
        for edit in (self.pairs_noisy_edit, self.pairs_clean_edit):
            edit.textChanged.connect(self._pair_folders_changed)

        noisy_page = QWidget()
        noisy = QFormLayout(noisy_page)
        self.noisy_folder_edit = QLineEdit()
        self.noisy_folder_edit.setPlaceholderText("a folder of noisy photos")
        noisy.addRow("Folder", _folder_row(self.noisy_folder_edit,
                                           self._browse_button(self.noisy_folder_edit, "Folder of noisy photos")))
        noisy.addRow(QLabel("No clean versions needed: the model learns from the noise's randomness "
                            "(Neighbor2Neighbor)."))
        for edit in (self.clean_folder_edit, self.noisy_folder_edit):
            edit.textChanged.connect(self._update_start)

        for page in (clean_page, pairs_page, noisy_page):
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
        self.name_edit.textChanged.connect(lambda _: self.save_note.setText(""))
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

    def _build_run_box(self) -> QWidget:
        panel = QWidget()
        column = QVBoxLayout(panel)
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

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.eta_label = QLabel("Not started.")
        column.addWidget(self.progress_bar)
        column.addWidget(self.eta_label)
        self.figures_label = QLabel()
        self.figures_label.setWordWrap(True)
        self.figures_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.figures_label)
        save_row = QHBoxLayout()
        self.save_button = QPushButton("Save to library")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(lambda: self.save())
        self.save_note = QLabel()
        self.save_note.setWordWrap(True)
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.reject)
        save_row.addWidget(self.save_button)
        save_row.addWidget(self.save_note, 1)
        save_row.addWidget(close_button)
        column.addLayout(save_row)
        return panel

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
        self.val_plot.setLabel("left", "loss (lower is better)" if mode == "noisy" else "PSNR (dB)")
        self._update_start()

    def refresh_models(self) -> None:
        """Fill the starting-model chooser from the library, keeping the current choice where it still exists."""
        current = self.start_box.currentText()
        # Models are addressed by file stem (what load_model resolves), which for the bundled one is "default".
        self._families = {info.path.stem if info.path is not None else info.name: info.family
                          for info in list_models()}
        self.start_box.blockSignals(True)
        self.start_box.clear()
        self.start_box.addItem(SCRATCH)
        self.start_box.addItems(list(self._families))
        index = self.start_box.findText(current)
        self.start_box.setCurrentIndex(max(0, index))
        self.start_box.blockSignals(False)
        self._start_model_changed()

    def start_model(self) -> str:
        """The model to fine-tune, or "" for a fresh network."""
        text = self.start_box.currentText()
        return "" if text in ("", SCRATCH) else text

    def _start_model_picked(self, _index: int) -> None:
        self._start_chosen = True

    def _start_model_changed(self, *_: object) -> None:
        name = self.start_model()
        # A fine-tuned model keeps its family and layout; show which, and let it not be changed.
        if name and name in self._families:
            self.family_box.setCurrentText(self._families[name])
        self.family_box.setEnabled(not name and not self.is_running())

    def _budget_changed(self) -> None:
        self.minutes_spin.setEnabled(self.minutes_radio.isChecked())
        self.steps_spin.setEnabled(self.steps_radio.isChecked())

    @staticmethod
    def _free_name(base: str) -> str:
        """``base``, else ``base-2``, ``base-3``...: the first name no model in the library or bundled with the app
        has (the engine's rule for a taken name, :func:`~denoiser.batch.naming.unique_path`)."""
        library = user_models_dir()
        taken = {(library / f"{info.name}{WEIGHTS_SUFFIX}").resolve() for info in list_models()}
        return unique_path(library / f"{base}{WEIGHTS_SUFFIX}", taken).stem

    # ----- pairs ----------------------------------------------------------------------------------------------
    def _pair_folders(self) -> tuple[str, str]:
        return self.pairs_noisy_edit.text().strip(), self.pairs_clean_edit.text().strip()

    def _pair_folders_changed(self) -> None:
        # A report describes the folders it was made for; other folders must be checked afresh.
        if self.report is not None and self._report_folders != self._pair_folders():
            self.report, self._report_folders = None, None
            self.pair_problems.clear()
            self.pair_summary.setText("The folders changed: check the pairs again.")
        self._update_start()

    def check_pairs(self) -> bool:
        """Match the pair folders in the background; the report shows when done. False when no folder is given."""
        noisy, clean = self._pair_folders()
        if not noisy:
            self.pair_summary.setText("Choose the folder of noisy photos first.")
            return False
        self.report, self._report_folders = None, None
        self.pair_problems.clear()
        self.pair_summary.setText("Checking the pairs...")
        folders = (noisy, clean)

        def job(should_stop: Callable[[], bool], on_progress: Callable[[Progress], None]) -> tuple[Any, ...]:
            return folders, match_pairs(noisy, clean or None)

        # replace=False: the io lane also carries thumbnails and imports, which a pair check must not cancel.
        self._check_job = handle = self.bridge.submit(CHECK_JOB, job, lane="io", replace=False)
        # Bound methods, not lambdas: Qt drops these connections when the dialog is destroyed.
        handle.succeeded.connect(self._on_check_succeeded)
        handle.failed.connect(self._on_check_failed)
        handle.cancelled.connect(self._on_check_cancelled)
        self.check_button.setEnabled(False)
        self._update_start()
        return True

    def _show_report(self, folders: tuple[str, str], report: PairReport) -> None:
        if folders != self._pair_folders():
            self.pair_summary.setText("The folders changed while checking: check the pairs again.")
            return
        self.report, self._report_folders = report, folders
        self.pair_problems.clear()
        self.pair_problems.addItems(report.problems())
        self.pair_summary.setText(report.summary() + ("." if report.ok else ": see below."))
        self.skip_box.setEnabled(not report.ok)
        self._update_start()

    # ----- starting -------------------------------------------------------------------------------------------
    def start_problem(self) -> str:
        """Why Start is not possible now, or "" when it is."""
        if self.is_running():
            return "Training is running."
        mode = self.mode()
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
            if not self._pair_folders()[0]:
                return "Choose the folder of noisy photos (and the clean one)."
            if self._check_job is not None:
                return "Checking the pairs..."
            if self.report is None:
                return "Check the pairs before training."
            if not self.report.pairs:
                return "No usable pairs: fix the problems listed above."
            if not self.report.ok and not self.skip_box.isChecked():
                count = len(self.report.problems())
                return (f"{count} problem{'s' if count != 1 else ''} with the pairs: fix them, or tick "
                        f"\"Skip the problem pairs\" to train on the {len(self.report.pairs)} usable ones.")
        return ""

    def _update_start(self, *_: object) -> None:
        problem = self.start_problem()
        self.start_button.setEnabled(not problem)
        if not self.is_running():
            self._note(problem)

    def _note(self, message: str, error: bool = False) -> None:
        self.note_label.setText(message)
        self.note_label.setStyleSheet("color: #d33;" if error else "")

    def _noise_models(self) -> tuple[str, ...]:
        return tuple(name for name, box in self.noise_boxes.items() if box.isChecked())

    def request(self) -> TrainRequest:
        """What the controls say, as the engine's training request (the model is saved afterwards, from here)."""
        mode = self.mode()
        if mode == "pairs":
            noisy, clean = self._pair_folders()
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
            data=DataSpec(mode=mode, folders=folders, skip_bad_pairs=mode == "pairs" and self.skip_box.isChecked()),
            noise=NoiseSpec(kinds=self._noise_models(), sigma_max=float(self.sigma_spin.value()),
                            quantize=self.quantize_box.isChecked()),
            schedule=ScheduleSpec(
                steps=None if by_minutes else self.steps_spin.value(),
                minutes=self.minutes_spin.value() if by_minutes else 0.0, batch_size=self.batch_spin.value(),
                patch=self.patch_spin.value(), validation_every=self.validate_spin.value(), device=self.device,
                workers=self.workers),
        )

    def start(self) -> bool:
        """Start a run with the current choices; False (and the reason under the controls) when not possible."""
        problem = self.start_problem()
        if problem:
            self._note(problem)
            return False
        request = self.request()
        report = self.report if request.data.mode == "pairs" else None
        self.outcome, self._running_request = None, request
        self._loss.clear()
        self._smoothed.clear()
        self._validation.clear()
        self._metric = None
        self.sample_images.clear()
        for label in self.sample_labels.values():
            label.clear()
        self._refresh_plots()
        self.val_plot.setLabel("left", "loss (lower is better)" if request.data.mode == "noisy" else "PSNR (dB)")
        self.figures_label.setText("")
        self.save_note.setText("")
        self.save_button.setEnabled(False)
        if request.schedule.minutes:
            self.progress_bar.setRange(0, 1000)  # time-budgeted: progress is time spent, in thousandths
        else:
            self.progress_bar.setRange(0, request.steps())
        self.progress_bar.setValue(0)
        self._train_job = handle = self.bridge.submit(
            TRAIN_JOB, lambda stop, on_progress: run_training(request, stop, on_progress, pairs=report), lane="train")
        handle.progress.connect(self._on_progress)
        handle.succeeded.connect(self._on_train_succeeded)
        handle.failed.connect(self._on_train_failed)
        handle.cancelled.connect(self._on_train_cancelled)
        self._set_running(True)
        self.eta_label.setText("Starting...")
        return True

    def cancel(self) -> None:
        """Stop the run after its current step; the dialog stays usable and the run's result is dropped."""
        if self._train_job is not None:
            self._train_job.cancel()
            self.eta_label.setText("Stopping after this step...")
            self.cancel_button.setEnabled(False)

    def is_running(self) -> bool:
        """Whether a run is going on (until the bridge says it ended, was cancelled or failed)."""
        return self._train_job is not None

    def _set_running(self, running: bool) -> None:
        for widget in (self.mode_buttons[m] for m in MODES):
            widget.setEnabled(not running)
        for widget in (self.pages, self.start_box, self.minutes_radio, self.steps_radio, self.minutes_spin,
                       self.steps_spin, self.batch_spin, self.patch_spin, self.validate_spin):
            widget.setEnabled(not running)
        if not running:
            self._budget_changed()
            self.check_button.setEnabled(self._check_job is None)
        self._start_model_changed()
        self.cancel_button.setEnabled(running)
        if running:
            self._note("")
            self._plot_timer.start()
        else:
            self._plot_timer.stop()
            self._refresh_plots()
            self._running_request = None
        self._update_start()

    # ----- live view ------------------------------------------------------------------------------------------
    def loss_points(self) -> list[tuple[int, float]]:
        """(step, training loss) of every step so far, as plotted."""
        return list(self._loss)

    def validation_points(self) -> list[tuple[int, float]]:
        """(step, validation metric) of the starting model (step 0) and every epoch so far, as plotted."""
        return list(self._validation)

    def validation_metric(self) -> str | None:
        """"val_psnr" or "val_loss" once the run has reported one."""
        return self._metric

    @property
    def result(self) -> TrainingResult | None:
        """The finished run's result (None before the end, after a cancel or a failure)."""
        return self.outcome.result if self.outcome is not None else None

    def train_job(self) -> JobHandle | None:
        """The running training job's handle (None when no run goes on)."""
        return self._train_job

    def _on_progress(self, event: Progress) -> None:
        extra = event.extra
        if event.stage == "load" and event.message:
            if "warning" in extra:  # kept in sight for the whole run, not replaced by the next progress line
                self._note(f"Warning: {extra['warning']}", error=True)
            else:
                self.eta_label.setText(event.message)
            return
        if event.stage == "start":
            self.eta_label.setText("Scoring the starting model on the held-out photos...")
            return
        if event.stage not in ("validate", "train"):
            return
        if "loss" in extra:
            loss = float(extra["loss"])
            self._loss.append((int(extra["step"]), loss))
            previous = self._smoothed[-1] if self._smoothed else loss
            self._smoothed.append(previous + SMOOTHING * (loss - previous))
        metric = next((key for key in ("val_psnr", "val_loss") if key in extra), None)
        if metric is not None:
            self._metric = metric
            self._validation.append((int(extra.get("step", 0)), float(extra[metric])))
            self.val_plot.setLabel("left", "PSNR (dB)" if metric == "val_psnr" else "loss (lower is better)")
        if "sample" in extra:
            self._show_sample(extra["sample"])
        if event.stage == "train" and "seconds" in extra:
            self._show_progress(event)
        elif event.stage == "validate":
            self.eta_label.setText("Starting model scored; training...")

    def _show_progress(self, event: Progress) -> None:
        extra, request = event.extra, self._running_request
        minutes = request.schedule.minutes if request is not None else 0.0
        seconds = float(extra["seconds"])
        eta = float(extra.get("eta_s", 0.0))
        if minutes:
            budget = minutes * 60
            # Until the engine fits its schedule to the budget (after ~20 steps) its ETA counts the step cap.
            eta = min(eta, max(0.0, budget - seconds))
            self.progress_bar.setValue(int(min(1.0, seconds / budget) * 1000))
        else:
            self.progress_bar.setRange(0, max(1, event.total))
            self.progress_bar.setValue(event.done)
        text = f"Step {event.done}"
        if not minutes:
            text += f" of {event.total}"
        text += f" - {duration_text(seconds)} spent, about {duration_text(eta)} left - loss {extra['loss']:.4g}"
        if self._validation:
            value = self._validation[-1][1]
            text += f" - validation {value:.2f} dB" if self._metric == "val_psnr" else f" - validation {value:.4g}"
        self.eta_label.setText(text)

    def _show_sample(self, sample: dict[str, Any]) -> None:
        for key, label in self.sample_labels.items():
            if key not in sample:
                continue
            image = array_to_qimage(sample[key])
            self.sample_images[key] = image
            # Nearest-neighbour enlargement: the point is to see the noise and the detail, not to smooth them.
            label.setPixmap(QPixmap.fromImage(image).scaled(
                SAMPLE_SIDE, SAMPLE_SIDE, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation))

    def _refresh_plots(self) -> None:
        steps = [step for step, _ in self._loss]
        self.loss_curve.setData(steps, [loss for _, loss in self._loss])
        self.smooth_curve.setData(steps, self._smoothed)
        self.val_curve.setData([step for step, _ in self._validation], [value for _, value in self._validation])

    # ----- the end --------------------------------------------------------------------------------------------
    def _on_train_succeeded(self, result: object) -> None:
        assert isinstance(result, TrainOutcome)
        self._train_job = None
        self.outcome = result
        self._set_running(False)
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.eta_label.setText("Finished.")
        self.figures_label.setText(figures_text(result))
        self.save_button.setEnabled(True)
        self.save_note.setText("")

    def _on_train_failed(self, message: str) -> None:
        self._train_job = None
        self._set_running(False)
        self.eta_label.setText("Training failed.")
        self._note(f"Training failed: {message}", error=True)

    def _on_train_cancelled(self) -> None:
        self._train_job = None
        self._set_running(False)
        self.eta_label.setText("Training cancelled; nothing to save. Change the settings or start again.")

    def _on_check_succeeded(self, result: object) -> None:
        self._check_job = None
        self.check_button.setEnabled(not self.is_running())
        folders, report = result  # type: ignore[misc]
        self._show_report(folders, report)

    def _on_check_failed(self, message: str) -> None:
        self._check_job = None
        self.check_button.setEnabled(not self.is_running())
        self.pair_summary.setText(f"Cannot check the pairs: {message}")
        self._update_start()

    def _on_check_cancelled(self) -> None:
        self._check_job = None
        self.check_button.setEnabled(not self.is_running())
        self.pair_summary.setText("The pair check was interrupted; check the pairs again.")
        self._update_start()

    def _on_save_succeeded(self, _path: object) -> None:
        if self._save_job is not None:
            self._saved(self._save_job[1])

    def _on_save_failed(self, message: str) -> None:
        self._save_job = None
        self.save_button.setEnabled(self.outcome is not None)
        self._save_said(f"Not saved: {message}", error=True)

    def _on_save_cancelled(self) -> None:
        if self._save_job is None:
            return
        # The save job never polls its stop flag, so "cancelled" may come after the file landed.
        name = self._save_job[1]
        if (user_models_dir() / f"{name}{WEIGHTS_SUFFIX}").exists():
            self._saved(name)
        else:
            self._save_job = None
            self.save_button.setEnabled(self.outcome is not None)
            self._save_said("The save was interrupted; press Save again.", error=True)

    def save(self, name: str | None = None) -> bool:
        """Save the finished run's model into the library as ``name`` (default: the name field) in the background.

        False, with the reason beside the button, when there is nothing to save or the name cannot be used.
        """
        if name is not None:
            self.name_edit.setText(name)
        name = self.name_edit.text()
        if self.outcome is None:
            self._save_said("Nothing to save: finish a training run first.", error=True)
            return False
        if self._save_job is not None:
            self._save_said("Saving already...", error=False)
            return False
        problem = name_problem(name)
        if problem:
            self._save_said(problem, error=True)
            return False
        outcome = self.outcome

        def job(should_stop: Callable[[], bool], on_progress: Callable[[Progress], None]) -> Path:
            # The library checks the name again: another window may have saved one so since it was checked.
            return outcome.save(name=name)[0]

        # replace=False: the io lane also carries thumbnails and imports, which a save must not cancel.
        handle = self.bridge.submit(SAVE_JOB, job, lane="io", replace=False)
        self._save_job = (handle, name)
        handle.succeeded.connect(self._on_save_succeeded)
        handle.failed.connect(self._on_save_failed)
        handle.cancelled.connect(self._on_save_cancelled)
        self.save_button.setEnabled(False)
        self._save_said(f"Saving {name!r}...", error=False)
        return True

    def _saved(self, name: str) -> None:
        self._save_job = None
        self._save_said(f"Saved as {name!r} in your library.", error=False)
        self.refresh_models()  # the new model can be fine-tuned further
        self.model_saved.emit(name)

    def _save_said(self, message: str, error: bool) -> None:
        self.save_note.setText(message)
        self.save_note.setStyleSheet("color: #d33;" if error else "")

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Closing while a run goes on cancels it: its result could not be saved from anywhere else."""
        if self.is_running():
            self.cancel()
        super().done(result)
