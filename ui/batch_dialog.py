"""The batch dialog: denoise a whole folder into another one, with live results, progress, ETA and Cancel.

All the work is the engine's :func:`denoiser.batch.run_batch`, run as one job on the app's ``model`` lane of
the shared :class:`~ui.worker.WorkerBridge`; the model is loaded inside that job, so the dialog never blocks
the event loop. The engine keeps a manifest in the output folder, so Start after a Cancel (or a crash)
skips the files already done and finishes the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QCloseEvent, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from denoiser.batch import DEFAULT_PATTERN, BatchReport, BatchSettings, FileResult, output_path_for, run_batch
from denoiser.batch.ray_pool import ray_available
from denoiser.batch.ray_run import run_ray_batch
from denoiser.devices import available_devices
from denoiser.errors import DenoiserError, SettingsChanged
from denoiser.formatting import duration_text
from denoiser.inference import TileSettings
from denoiser.io.formats import format_info
from denoiser.model_loading import load_model_for_inference
from denoiser.noise import MAX_SIGMA
from denoiser.progress import Progress
from denoiser.strength import MAX_AMOUNT
from ui.folder_field import folder_field
from ui.panel import AMOUNT_TOOLTIP, COLOUR_TOOLTIP, LUMINANCE_TOOLTIP, QUALITY_CHOICES, SIGMA_TOOLTIP
from ui.worker import JobHandle, WorkerBridge

FORMATS = [("Same as each photo (RAW gives 16-bit TIFF)", "same"), ("PNG", "png"), ("JPEG", "jpeg"), ("WebP", "webp"),
           *[(label, key) for label, key, name in (("HEIC", "heic", "HEIF"), ("AVIF", "avif", "AVIF"))
             if format_info(name).available],
           ("TIFF 16-bit", "tiff16")]
COLLISIONS = [("Add a number (name-2)", "unique"), ("Skip existing files", "skip"),
              ("Overwrite existing files", "overwrite")]
LOSSY = ("same", "jpeg", "webp", "heic", "avif")
"""Formats whose output can be lossy (JPEG, WebP, HEIC, AVIF), where the quality setting applies."""
COLUMNS = ("File", "Status", "Sigma", "Seconds", "Output / message")
"""The results table; Sigma is the typical level of the noise map each photo was denoised with."""
FAILED_COLOUR = QColor("#d33")


def eta_text(seconds: float | None) -> str:
    """``about 1 min 20 s left`` and the like; a note while the estimate is not known yet."""
    if seconds is None:
        return "estimating the time left..."
    return f"about {duration_text(seconds)} left"


def cancelled_text(done: int) -> str:
    """What the dialog says when its batch was cancelled after ``done`` files denoised in this run."""
    kept = ("nothing was denoised in this run" if done == 0
            else f"{done} photo{'s' if done > 1 else ''} denoised, {'its file is' if done == 1 else 'their files are'}"
                 " complete")
    return (f"Cancelled: {kept}; the photo in progress was not written. Start again to finish the rest (photos "
            "already done are skipped).")


class BatchDialog(QDialog):
    """Choose a folder, an output folder and settings; Start denoises every photo in the background.

    Tests (and callers) can skip the file pickers by setting :attr:`input_edit` and :attr:`output_edit`, then
    call :meth:`start`; :attr:`results_table` fills in live, one row per file.
    """

    open_pair = Signal(Path, Path)
    """(input, output) of a done row the user double-clicked."""
    batch_finished = Signal(object)
    """The :class:`~denoiser.batch.BatchReport` of a batch that ran to its end."""

    def __init__(self, bridge: WorkerBridge, models: list[str], current_model: str,
                 parent: QWidget | None = None, devices: list[str] | None = None, passes: int = 1) -> None:
        super().__init__(parent)
        self.setWindowTitle("Denoise a Folder")
        self.bridge = bridge
        self._job: JobHandle | None = None
        self._results: list[FileResult] = []
        self.report: BatchReport | None = None
        """The last batch that ran to its end."""
        self.last_message = ""

        self.input_edit = QLineEdit()
        self.input_edit.setPlaceholderText("folder of noisy photos")
        self.recursive_box = QCheckBox("Include sub-folders")
        self.recursive_box.setChecked(True)
        self.output_edit = QLineEdit()
        self.output_edit.setPlaceholderText("folder for the results")
        self.pattern_edit = QLineEdit(DEFAULT_PATTERN)
        self.pattern_edit.setToolTip("Output file name without extension; {stem} is the photo's own name.")
        self.format_box = QComboBox()
        for label, key in FORMATS:
            self.format_box.addItem(label, key)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setValue(95)
        self.quality_spin.setToolTip("JPEG and WebP quality")
        self.format_box.currentIndexChanged.connect(self._format_changed)
        self.metadata_box = QCheckBox("Keep EXIF and colour profile")
        self.metadata_box.setChecked(True)
        self.collision_box = QComboBox()
        for label, key in COLLISIONS:
            self.collision_box.addItem(label, key)
        self.collision_box.setToolTip("What to do when an output file already exists. "
                                      "An input photo is never overwritten.")
        self.model_box = QComboBox()
        for name in models or [current_model]:
            self.model_box.addItem(name, name)
        found = self.model_box.findData(current_model)
        self.model_box.setCurrentIndex(max(0, found))
        self.auto_box = QCheckBox("Auto (estimated per photo)")
        self.auto_box.setChecked(True)
        self.amount_spin = self._percent_spin(AMOUNT_TOOLTIP)
        self.strength_spin = QDoubleSpinBox()
        self.strength_spin.setRange(0.0, MAX_SIGMA)
        self.strength_spin.setDecimals(1)
        self.strength_spin.setValue(25.0)
        self.strength_spin.setPrefix("sigma ")
        self.strength_spin.setToolTip(SIGMA_TOOLTIP)
        self.auto_box.toggled.connect(self._auto_toggled)
        self.luminance_spin = self._percent_spin(LUMINANCE_TOOLTIP)
        self.color_spin = self._percent_spin(COLOUR_TOOLTIP)
        self._auto_toggled(True)
        self.passes_box = QComboBox()
        for count, label in QUALITY_CHOICES:
            self.passes_box.addItem(label, count)
        self.passes_box.setCurrentIndex(max(0, self.passes_box.findData(passes)))
        self.device_box = QComboBox()
        for device in devices or available_devices():
            self.device_box.addItem(device, device)
        self.ray_box: QCheckBox | None = None
        """Run on cluster (Ray), shown only where Ray is installed: the files go to the workers of a Ray cluster
        (the one ``ray start`` started on this machine, else one of its own here)."""
        if ray_available():
            self.ray_box = QCheckBox("Run on cluster (Ray)")
            self.ray_box.setToolTip("Spread the photos over the workers of a Ray cluster: the one 'ray start' "
                                    "started on this computer, else one of its own here. Photos and output folder "
                                    "must be on a disk every machine sees.")

        # Compact: the settings that belong together share a row, so the results table gets the height.
        self.form = QWidget()
        form = QFormLayout(self.form)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Input folder", folder_field(self.input_edit, "Folder of photos to denoise", self._input_chosen))
        form.addRow("", self.recursive_box)
        form.addRow("Output folder", folder_field(self.output_edit, "Folder for the results"))
        form.addRow("Name pattern", self._row(self.pattern_edit, QLabel("If the output exists"), self.collision_box))
        form.addRow("Format", self._row(self.format_box, QLabel("Quality"), self.quality_spin, self.metadata_box,
                                        packed=True))
        form.addRow("Model", self.model_box)
        form.addRow("Strength", self._row(self.auto_box, QLabel("Amount"), self.amount_spin, QLabel("or fixed"),
                                          self.strength_spin, packed=True))
        form.addRow("Noise", self._row(QLabel("Luminance"), self.luminance_spin, QLabel("Colour"), self.color_spin,
                                       packed=True))
        form.addRow("Passes", self._row(self.passes_box, QLabel("Device"), self.device_box,
                                        *([self.ray_box] if self.ray_box is not None else []), packed=True))

        self.overall_bar = QProgressBar()
        self.overall_bar.setFormat("%v of %m files")
        self.eta_label = QLabel("")
        self.file_bar = QProgressBar()
        self.file_bar.setFormat("%p%")
        self.file_label = QLabel("")
        # Each bar with its text beside it; hidden until a batch starts (empty bars say nothing before that).
        self.progress_box = QWidget()
        progress = QGridLayout(self.progress_box)
        progress.setContentsMargins(0, 0, 0, 0)
        for row, (bar, label) in enumerate(((self.overall_bar, self.eta_label), (self.file_bar, self.file_label))):
            # Ignored: a long file name is cut at the column's edge instead of widening the dialog.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            progress.addWidget(bar, row, 0)
            progress.addWidget(label, row, 1)
        progress.setColumnStretch(0, 3)
        progress.setColumnStretch(1, 2)
        self.progress_box.setVisible(False)
        self.status_label = QLabel("Choose an input and an output folder, then Start.")
        self.status_label.setWordWrap(True)

        self.results_table = QTableWidget(0, len(COLUMNS))
        self.results_table.setHorizontalHeaderLabels(list(COLUMNS))
        self.results_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.results_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.results_table.verticalHeader().setVisible(False)
        self.results_table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 8)
        header = self.results_table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.results_table.setToolTip("Double-click a done row to compare the photo with its result.")
        self.results_table.cellDoubleClicked.connect(self._row_activated)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.reject)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.start_button, self.cancel_button, self.close_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addWidget(self.progress_box)
        layout.addWidget(self.results_table, 1)
        layout.addWidget(self.status_label)
        layout.addLayout(buttons)
        self.resize(760, 640)
        self._format_changed()

    @staticmethod
    def _row(*widgets: QWidget, packed: bool = False) -> QWidget:
        """``widgets`` in a row; ``packed``: at their natural sizes, from the left."""
        holder = QWidget()
        row = QHBoxLayout(holder)
        row.setContentsMargins(0, 0, 0, 0)
        for widget in widgets:
            row.addWidget(widget)
        if packed:
            row.addStretch(1)
        return holder

    @staticmethod
    def _percent_spin(tooltip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(0, int(round(MAX_AMOUNT * 100)))
        spin.setSingleStep(10)
        spin.setValue(100)
        spin.setSuffix(" %")
        spin.setToolTip(tooltip)
        return spin

    def _auto_toggled(self, auto: bool) -> None:
        """Auto: the amount of each photo's estimate applies; otherwise the fixed sigma."""
        self.amount_spin.setEnabled(auto)
        self.strength_spin.setEnabled(not auto)

    def set_strength(self, auto: bool, sigma: float, amount: float = 1.0, luminance: float = 1.0,
                     color: float = 1.0) -> None:
        """Start from these strength settings (the window's; amounts 1.0 = 100 %, clamped to the controls)."""
        self.auto_box.setChecked(auto)
        self._auto_toggled(auto)
        self.strength_spin.setValue(float(sigma))
        for spin, value in ((self.amount_spin, amount), (self.luminance_spin, luminance), (self.color_spin, color)):
            spin.setValue(int(round(value * 100)))

    # ----- fields ------------------------------------------------------------------------------------------------
    def _input_chosen(self, folder: str) -> None:
        if not self.output_edit.text().strip():
            # A sibling folder, so the results never mix with the photos they came from.
            chosen = Path(folder)
            self.output_edit.setText(str(chosen.parent / f"{chosen.name}_denoised"))

    def _format_changed(self, *_: object) -> None:
        self.quality_spin.setEnabled(self.format_box.currentData() in LOSSY)

    def model_name(self) -> str:
        """The model chosen in the combo box."""
        return str(self.model_box.currentData() or self.model_box.currentText())

    def settings(self) -> BatchSettings:
        """The batch the fields describe; raises DenoiserError with a message for the user when they are
        incomplete or invalid."""
        source, target = self.input_edit.text().strip(), self.output_edit.text().strip()
        if not source:
            raise DenoiserError("choose the folder of photos to denoise")
        if not Path(source).is_dir():
            raise DenoiserError(f"{source} is not a folder")
        if not target:
            raise DenoiserError("choose a folder for the results")
        settings = BatchSettings(
            strength=None if self.auto_box.isChecked() else float(self.strength_spin.value()),
            amount=self.amount_spin.value() / 100.0 if self.auto_box.isChecked() else 1.0,
            luminance=self.luminance_spin.value() / 100.0,
            color=self.color_spin.value() / 100.0,
            tiles=TileSettings(passes=int(self.passes_box.currentData() or 1)),
            device=str(self.device_box.currentData()),
            pattern=self.pattern_edit.text().strip() or DEFAULT_PATTERN,
            format=str(self.format_box.currentData()),
            quality=int(self.quality_spin.value()),
            keep_metadata=self.metadata_box.isChecked(),
            inputs=[Path(source)],
            output=Path(target),
            recursive=self.recursive_box.isChecked(),
            collision=str(self.collision_box.currentData()),
        )
        output_path_for(Path("photo.png"), Path(target), settings)  # a bad name pattern fails now, not per file
        return settings

    # ----- running ------------------------------------------------------------------------------------------------
    def is_running(self) -> bool:
        """Whether a batch started here has not ended yet (running, or waiting for the lane)."""
        return self._job is not None

    def results(self) -> list[FileResult]:
        """The results of the current or last batch, in the table's order."""
        return list(self._results)

    def _confirm_overwrite(self) -> bool:
        answer = QMessageBox.question(
            self, "Overwrite existing files?",
            "Output files that already exist will be replaced by the new results. Input photos are never "
            "replaced. Continue?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _confirm_redo(self, changed: SettingsChanged) -> bool:
        answer = QMessageBox.question(
            self, "Denoise again?",
            f"{len(changed.files)} photo(s) in {changed.folder} were denoised before with "
            f"{'; '.join(changed.differences)}.\n\nDenoise them again with these settings? The earlier results "
            "are kept beside the new ones.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def start(self, redo: bool = False) -> bool:
        """Start the batch the fields describe; False (with the reason shown) when it cannot start.

        ``redo``: denoise again photos done before in the output folder with other settings (without it the
        batch stops before any work and asks, :meth:`_confirm_redo`)."""
        if self.is_running():
            return False
        try:
            settings = self.settings()
        except DenoiserError as err:
            self._say(f"Cannot start: {err}.", error=True)
            return False
        if settings.collision == "overwrite" and not redo and not self._confirm_overwrite():
            self._say("Not started: overwriting was not confirmed.")
            return False
        settings.redo = redo
        model_name = self.model_name()
        on_cluster = self.ray_box is not None and self.ray_box.isChecked()

        def job(should_stop: Any, on_progress: Any) -> BatchReport | SettingsChanged:
            model, info = load_model_for_inference(model_name)
            try:
                if on_cluster:
                    return run_ray_batch(settings, model, info.name, info.path, on_progress=on_progress,
                                         should_stop=should_stop)
                return run_batch(settings, model, info.name, on_progress=on_progress, should_stop=should_stop)
            except SettingsChanged as changed:  # nothing was done: the window asks, then starts again
                return changed

        self._results = []
        self.report = None
        self.results_table.setRowCount(0)
        self.overall_bar.setRange(0, 0)  # busy until the first file event gives a total
        self.file_bar.setRange(0, 1)
        self.file_bar.setValue(0)
        self.eta_label.setText("")
        self.file_label.setText("")
        self.progress_box.setVisible(True)
        # replace=False: a batch waits for the window's current job instead of silently cancelling it.
        self._job = handle = self.bridge.submit("batch", job, lane="model", replace=False)
        handle.started.connect(self._on_started)
        handle.progress.connect(self._on_progress)
        handle.succeeded.connect(self._on_succeeded)
        handle.failed.connect(self._on_failed)
        handle.cancelled.connect(self._on_cancelled)
        self._set_running(True)
        self._say("Waiting for the current job to finish...")
        return True

    def cancel(self) -> None:
        """Stop the batch within one tile batch; files already written stay, and Start finishes the rest."""
        if self._job is not None:
            self._job.cancel()
            self._say("Cancelling...")

    def _set_running(self, running: bool) -> None:
        self.form.setEnabled(not running)
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _finish(self) -> None:
        self._job = None
        self._set_running(False)
        self.file_label.setText("")

    def _on_started(self) -> None:
        self._say(f"Loading {self.model_name()} and looking for photos...")

    def _on_progress(self, event: Progress) -> None:
        if event.stage == "files":
            self.overall_bar.setRange(0, max(1, event.total))
            self.overall_bar.setValue(event.done)
            result = event.extra.get("result")
            if isinstance(result, FileResult):
                self._add_row(result)
            else:
                self.file_bar.setRange(0, 1)
                self.file_bar.setValue(0)
                self.file_label.setText(event.message)
                self._say(f"Denoising {event.message} ({event.done + 1} of {event.total})...")
        elif event.stage == "tiles":
            if event.total:
                self.file_bar.setRange(0, event.total)
                self.file_bar.setValue(event.done)
                self.file_label.setText(f"{event.message}: {event.done} of {event.total} tile batches")
            elif event.message:
                self._say(event.message)
        if "eta" in event.extra:
            self.eta_label.setText(eta_text(event.extra["eta"]))

    def _on_succeeded(self, report: object) -> None:
        if isinstance(report, SettingsChanged):
            self._finish()
            self.overall_bar.setRange(0, 1)
            self.progress_box.setVisible(False)  # nothing ran
            if self._confirm_redo(report):
                self.start(redo=True)
            else:
                self._say("Not started: the photos done before with other settings were left as they are.")
            return
        if not isinstance(report, BatchReport):
            return
        self._finish()
        self.report = report
        if [r.source for r in report.results] != [r.source for r in self._results]:
            # A progress event is dropped when a cancel races the end of the job; the report is complete.
            self._results = []
            self.results_table.setRowCount(0)
            for result in report.results:
                self._add_row(result)
        self.overall_bar.setRange(0, max(1, len(report.results)))
        self.overall_bar.setValue(len(report.results))
        self.file_bar.setValue(self.file_bar.maximum())
        self.eta_label.setText("")
        if not report.results:
            self._say("No photos found in the input folder.", error=True)
        else:
            where = f" The manifest is {report.manifest}." if report.manifest else ""
            self._say(f"Finished: {report.done} denoised, {report.failed} failed, {report.skipped} skipped.{where}",
                      error=report.failed > 0)
        self.batch_finished.emit(report)

    def _on_failed(self, message: str) -> None:
        self._finish()
        self.eta_label.setText("")
        self._say(f"The batch stopped: {message}", error=True)

    def _on_cancelled(self) -> None:
        self._finish()
        self.eta_label.setText("")
        self.file_bar.reset()  # the file in progress was abandoned, not left at its last percentage
        self._say(cancelled_text(sum(1 for r in self._results if r.status == "done" and not r.resumed)))

    # ----- the results table -----------------------------------------------------------------------------------
    def _add_row(self, result: FileResult) -> None:
        self._results.append(result)
        row = self.results_table.rowCount()
        self.results_table.insertRow(row)
        status = "done (before)" if result.resumed else result.status
        detail = str(result.output) if result.status == "done" or result.resumed else result.message
        if result.metrics.get("psnr_denoised") is not None and result.metrics.get("psnr_noisy") is not None:
            detail += f"  (PSNR {result.metrics['psnr_noisy']:.2f} -> {result.metrics['psnr_denoised']:.2f} dB)"
        cells = [
            result.source.name,
            status,
            f"{result.sigma:.1f}" if result.sigma is not None else "",
            f"{result.seconds:.2f}",
            detail,
        ]
        for column, text in enumerate(cells):
            item = QTableWidgetItem(text)
            item.setToolTip(str(result.source) if column == 0 else text)
            if result.status == "failed":
                item.setForeground(QBrush(FAILED_COLOUR))
            if column == 0:
                item.setData(Qt.ItemDataRole.UserRole, len(self._results) - 1)
            self.results_table.setItem(row, column, item)
        self.results_table.scrollToBottom()

    def result_at(self, row: int) -> FileResult | None:
        """The result shown in table row ``row``."""
        item = self.results_table.item(row, 0)
        if item is None:
            return None
        index = item.data(Qt.ItemDataRole.UserRole)
        return self._results[index] if isinstance(index, int) and 0 <= index < len(self._results) else None

    def _row_activated(self, row: int, _column: int) -> None:
        result = self.result_at(row)
        if result is None or result.output is None or not (result.status == "done" or result.resumed):
            return
        if result.output.is_file():
            self.open_pair.emit(result.source, result.output)

    # ----- status and closing --------------------------------------------------------------------------------------
    def _say(self, message: str, error: bool = False) -> None:
        self.last_message = message
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #d33;" if error else "")

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Closing the dialog cancels a running batch: what is written stays and a later Start resumes."""
        self.cancel()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.cancel()
        super().closeEvent(event)
