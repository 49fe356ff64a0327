"""The training dialog: runs the job the controls ask for, shows its progress, and saves the result to the library.

The dialog composes its parts: the controls (:mod:`ui.train_form`, with the pairs page of :mod:`ui.train_pairs`),
which make the engine's :class:`~denoiser.train_request.TrainRequest` as the command line's flags do, and the live
plots and sample pictures (:mod:`ui.train_plots`). The run is one job on the bridge's ``train`` lane:
:func:`~denoiser.train_run.run_training`, which reads the photos, trains and reports every progress event; this module
only turns those events into plot points, sample pictures and text. Saves go on the ``io`` lane with
``replace=False``, since that lane also carries the folder pane's thumbnails and the model manager's imports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from denoiser.formatting import duration_text
from denoiser.modelfile import WEIGHTS_SUFFIX
from denoiser.modelstore import user_models_dir
from denoiser.progress import Progress
from denoiser.train_request import TrainRequest
from denoiser.train_run import TrainOutcome, run_training
from denoiser.training import TrainingResult
from ui.train_form import SCRATCH, TrainForm, name_problem
from ui.train_plots import TrainPlots
from ui.worker import JobHandle, WorkerBridge

__all__ = ["SCRATCH", "TrainDialog", "figures_text", "name_problem"]

TRAIN_JOB, SAVE_JOB = "train", "save-model"
SAVE_TEXT, SAVE_COPY_TEXT = "Save to library", "Save unchanged copy"
"""The save button's text, and its text when the run kept the starting model unchanged (nothing beat it)."""


def figures_text(outcome: TrainOutcome) -> str:
    """The end-of-run figures: the validation metric of the starting model and the best one, and the gain."""
    result = outcome.result
    scratch = not outcome.config.start_from
    start_name = "untrained network" if scratch else f"starting model ({outcome.config.start_from})"
    steps = f"{result.steps} steps in {duration_text(result.seconds)}" + (" (stopped early)" if result.stopped_early
                                                                          else "")
    if result.best is None or result.start is None:
        return f"{steps}. No validation figures: too few photos to hold any out."
    # A fine-tune that no step beat ends as its starting model (the best kept): saving it gives a renamed copy.
    kept = ("\nNo step beat the starting model: saving gives its weights unchanged, under a new name."
            if result.start_kept else "")
    if result.metric == "val_psnr":
        return (f"{steps}.\nValidation PSNR: {start_name} {result.start:.2f} dB, best {result.best:.2f} dB, "
                f"gain {result.gain:+.2f} dB.{kept}")
    return (f"{steps}.\nValidation loss (self-supervised, lower is better): {start_name} {result.start:.4g}, "
            f"best {result.best:.4g}, improvement {result.gain:+.4g}.{kept}")


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
        self.outcome: TrainOutcome | None = None
        self._train_job: JobHandle | None = None
        self._save_job: tuple[JobHandle, str] | None = None  # the save's handle and the name it saves as
        self._running_request: TrainRequest | None = None

        self.form = TrainForm(bridge, workers=workers, model_config=model_config, device=device)
        left = QVBoxLayout()
        left.addWidget(self.form)
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

        self.form.changed.connect(self._update_start)
        self.form.mode_changed.connect(self._mode_changed)
        self.form.name_edit.textChanged.connect(lambda _: self.save_note.setText(""))
        self.form.set_mode("clean")

    def _build_run_box(self) -> QWidget:
        panel = QWidget()
        column = QVBoxLayout(panel)
        column.setContentsMargins(0, 0, 0, 0)
        self.plots = TrainPlots()
        column.addWidget(self.plots, 1)
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
        self.save_button = QPushButton(SAVE_TEXT)
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

    # ----- starting -------------------------------------------------------------------------------------------
    def _mode_changed(self, mode: str) -> None:
        self.plots.label_validation(mode == "noisy")

    def start_problem(self) -> str:
        """Why Start is not possible now, or "" when it is."""
        return "Training is running." if self.is_running() else self.form.problem()

    def _update_start(self, *_: object) -> None:
        problem = self.start_problem()
        self.start_button.setEnabled(not problem)
        if not self.is_running():
            self._note(problem)

    def _note(self, message: str, error: bool = False) -> None:
        self.note_label.setText(message)
        self.note_label.setStyleSheet("color: #d33;" if error else "")

    def refresh_models(self, renamed: tuple[str, str] | None = None) -> None:
        """The library changed (a model saved, renamed, deleted or imported elsewhere): refresh the "Start from" list;
        ``renamed`` (old, new) lets the choice follow a rename. A chosen model that is gone blocks Start, saying so."""
        self.form.refresh_models(renamed)
        self._update_start()

    def start(self) -> bool:
        """Start a run with the current choices; False (and the reason under the controls) when not possible."""
        if not self.is_running():
            self.form.refresh_models()  # the library may have changed (another window, the command line) since
        problem = self.start_problem()
        if problem:
            self._note(problem)
            return False
        request = self.form.request()
        report = self.form.pairs.report if request.data.mode == "pairs" else None
        self.outcome, self._running_request = None, request
        self.plots.clear()
        self.plots.label_validation(request.data.mode == "noisy")
        self.figures_label.setText("")
        self.save_note.setText("")
        self.save_button.setEnabled(False)
        self.save_button.setText(SAVE_TEXT)
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
        self.form.set_running(running)
        self.cancel_button.setEnabled(running)
        if running:
            self._note("")
        else:
            self._running_request = None
        self.plots.set_live(running)
        self._update_start()

    # ----- the run --------------------------------------------------------------------------------------------
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
        self.plots.record(extra)
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
            # The budget says when the run ends (a schedule fitted from the slow first steps ends too soon); a step
            # limit only when one was set as well, the engine's ETA counting it.
            left = max(0.0, budget - seconds)
            eta = min(eta, left) if request is not None and request.schedule.steps else left
            self.progress_bar.setValue(int(min(1.0, seconds / budget) * 1000))
        else:
            self.progress_bar.setRange(0, max(1, event.total))
            self.progress_bar.setValue(event.done)
        text = f"Step {event.done}"
        if not minutes:
            text += f" of {event.total}"
        text += f" - {duration_text(seconds)} spent, about {duration_text(eta)} left - loss {extra['loss']:.4g}"
        validation = self.plots.validation_points()
        if validation:
            value = validation[-1][1]
            text += (f" - validation {value:.2f} dB" if self.plots.validation_metric() == "val_psnr"
                     else f" - validation {value:.4g}")
        self.eta_label.setText(text)

    # ----- the end --------------------------------------------------------------------------------------------
    def _on_train_succeeded(self, result: object) -> None:
        assert isinstance(result, TrainOutcome)
        self._train_job = None
        self.outcome = result
        self._set_running(False)
        self.progress_bar.setValue(self.progress_bar.maximum())
        self.eta_label.setText("Finished.")
        self.figures_label.setText(figures_text(result))
        self.save_button.setText(SAVE_COPY_TEXT if result.result.start_kept else SAVE_TEXT)
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

    # ----- saving ---------------------------------------------------------------------------------------------
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
            self.form.name_edit.setText(name)
        name = self.form.name_edit.text()
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
        self.form.refresh_models()  # the new model can be fine-tuned further
        self.model_saved.emit(name)

    def _save_said(self, message: str, error: bool) -> None:
        self.save_note.setText(message)
        self.save_note.setStyleSheet("color: #d33;" if error else "")

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Closing while a run goes on cancels it: its result could not be saved from anywhere else."""
        if self.is_running():
            self.cancel()
        super().done(result)
