"""The model manager: the user's model library as a table, with rename, delete, import, export, details and, for
a variational model, images sampled from its prior.

Library work is the engine's (:mod:`denoiser.modelstore`, :mod:`denoiser.prior_samples`); this dialog only shows it
and asks questions. Import, export and sampling read whole model files, so they run on the worker bridge's ``io``
lane; rename and delete move or remove two small files and run at once. Every refusal from the engine (a pickle, a
truncated file, a name already taken, a bundled model) is shown in :attr:`ModelManager.message_label` and
kept in :attr:`ModelManager.last_error`, never raised to the caller.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from denoiser.batch.naming import unique_path
from denoiser.errors import DenoiserError
from denoiser.formatting import duration_text, size_text
from denoiser.modelfile import WEIGHTS_SUFFIX, ModelInfo
from denoiser.modelstore import export_model, import_model, list_models, model_size_bytes, remove_model, rename_model
from denoiser.prior_samples import can_sample, write_samples
from ui.file_filters import save_filters
from ui.worker import JobHandle, WorkerBridge

COLUMNS = ("Name", "Family", "Trained on", "Validation", "Size", "Modified", "Bundled")
IMPORT_JOB = "model-import"
EXPORT_JOB = "model-export"
SAMPLE_JOB = "model-sample"
SAMPLE_COUNT = 16
"""How many images Sample... draws: a 4 x 4 grid."""
SAMPLE_SIZE = 64
"""The edge of each sampled image, in pixels."""
_ERROR_STYLE = "color: #e06c6c;"
_INFO_STYLE = "color: #9ac48a;"


@dataclass
class ModelRow:
    """One row of the table: the engine's description plus what the file system says about it."""

    name: str
    """The name the engine addresses the model by: the file's stem (``default`` for the bundled default)."""
    info: ModelInfo
    size: int | None
    modified: datetime | None


@dataclass
class _PendingJob:
    """An import or export submitted to the bridge and not yet finished."""

    kind: str  # "import", "export" or "sample"
    subject: str  # the file imported, or the name of the model exported or sampled
    label: str  # what the messages call the whole operation: "FILE", "FILE as 'NAME'", "'NAME' to PATH"
    before: list[str]  # library names when it was submitted, to tell whether a cancelled import still landed
    detail: str = ""  # what a sampling drew: "16 images of 64 x 64 pixels, seed 7"


NOT_COMPARABLE = "Figures measured on different validation sets are not comparable with one another."


def validation_set(validation: dict[str, Any], training: dict[str, Any] | None = None) -> tuple[str, str]:
    """What a model's validation figure was measured on, from what its file records: a short tag for the table
    (``σ25 synthetic, own held-out photos``, ``own held-out camera pairs``; "" when not recorded) and a sentence for
    the tooltip and details. "Own": each model is measured on photos held out of its own training data, so two
    models' figures compare only when they were trained on the same data.

    Synthetic noise records its ``sigma`` (and the ``protocols``: ``clipped`` 8-bit, ``float`` unclipped);
    held-out noisy/clean pairs record no sigma and the training ``mode`` "pairs"; noisy-only data a loss.
    """
    training = training or {}
    split = validation.get("split")
    held = f" ({split})" if isinstance(split, str) and split else ""
    sigma = validation.get("sigma")
    if validation.get("metric") == "val_loss":
        return ("noisy photos" if training.get("mode") == "noisy" else "",
                f"Self-supervised loss on held-out noisy photos{held}, with no clean references: lower is better; "
                "not a PSNR.")
    if isinstance(sigma, (int, float)):
        protocols = [p for p in validation.get("protocols") or [] if p in ("clipped", "float")]
        how = {("clipped",): ", rounded and clipped to 8 bits",
               ("float",): ", unclipped",
               ("clipped", "float"): ", averaged over rounded-and-clipped 8-bit and unclipped noise"}.get(
                   tuple(sorted(protocols)), "")
        return (f"\u03c3{sigma:g} synthetic, own held-out photos",
                f"PSNR on held-out clean photos{held} with synthetic Gaussian noise at sigma {sigma:g}{how}.")
    if training.get("mode") == "pairs":
        return "own held-out camera pairs", f"PSNR on held-out noisy/clean camera pairs{held}: real camera noise."
    return "", "What this figure was measured on is not recorded in the model file."


def validation_text(validation: dict[str, Any], training: dict[str, Any] | None = None) -> str:
    """The validation figure a table cell shows: PSNR when the model has one, else its metric's best value,
    followed by what it was measured on when the file records it (``30.86 dB (σ25 synthetic)``)."""
    psnr = validation.get("psnr")
    best = validation.get("best")
    metric = validation.get("metric")
    if isinstance(psnr, (int, float)):
        figure = f"{psnr:.2f} dB"
    elif isinstance(best, (int, float)):
        figure = f"{metric or 'best'} {best:.4g}"
    else:
        return "-"
    tag, _sentence = validation_set(validation, training)
    return f"{figure} ({tag})" if tag else figure


def _row_for(info: ModelInfo) -> ModelRow:
    # The engine finds models by file stem (library_model_path, resolve_model_path), not by the name inside the
    # JSON, which can differ for hand-copied files and always differs for the bundled default ("default").
    name = info.path.stem if info.path is not None else info.name
    size: int | None
    try:
        size = model_size_bytes(info)
    except DenoiserError:  # vanished since list_models read it: still listed, its size unknown
        size = None
    modified: datetime | None = None
    if info.path is not None:
        try:
            modified = datetime.fromtimestamp(info.path.stat().st_mtime)
        except OSError:
            modified = None
    return ModelRow(name=name, info=info, size=size, modified=modified)


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def describe_row(row: ModelRow) -> str:
    """Everything the model's description says, as plain text for the details pane."""
    info = row.info
    lines = [f"Name: {row.name}" + (" (bundled with the app; cannot be renamed or deleted)" if info.bundled else "")]
    if info.name != row.name:
        lines.append(f"Name in its description: {info.name}")
    lines.append(f"Family: {info.family}")
    if info.description:
        lines.append(f"Description: {info.description}")
    lines.append(f"File: {info.path}")
    modified = row.modified.strftime("%Y-%m-%d %H:%M") if row.modified else "?"
    lines.append(f"Size: {size_text(row.size)}; modified {modified}")
    lines.append("")
    lines.append("Configuration:")
    lines.extend(f"  {key}: {_value_text(value)}" for key, value in sorted(info.config.items()))
    lines.append("")
    lines.append(f"Trained on: {info.trained_on or 'not recorded'}")
    training = info.training
    if "command" in training:
        lines.append(f"Training command: {training['command']}")
    summary = []
    if isinstance(training.get("seconds"), (int, float)):
        summary.append(f"{duration_text(training['seconds'])} of training")
    if "steps" in training:
        summary.append(f"{training['steps']} steps")
    if summary:
        lines.append("Training time: " + ", ".join(summary))
    if training:
        lines.append("Training record:")
        lines.extend(f"  {key}: {_value_text(value)}" for key, value in sorted(training.items()))
    lines.append("")
    validation = info.validation
    if validation:
        lines.append(f"Validation: {validation_text(validation, info.training)}")
        lines.append(f"  {validation_set(validation, info.training)[1]} {NOT_COMPARABLE}")
        gain = validation.get("gain")
        start = validation.get("start")
        best = validation.get("best")
        if isinstance(gain, (int, float)) and isinstance(start, (int, float)) and isinstance(best, (int, float)):
            unit = " dB" if validation.get("metric", "val_psnr") == "val_psnr" else ""
            lines.append(f"  from {start:.4g} at the start to {best:.4g} at best (gain {gain:+.4g}{unit})")
        lines.extend(f"  {key}: {_value_text(value)}" for key, value in sorted(validation.items()))
    else:
        lines.append("Validation: not recorded")
    return "\n".join(lines)


class ModelManager(QDialog):
    """The model library: a table of models and buttons to rename, delete, import, export, inspect and (variational
    models) sample them.

    Created with the main window's :class:`~ui.worker.WorkerBridge`; import, export and sampling jobs run on its
    ``io`` lane (never replacing other io work). :attr:`models_changed` is emitted after every rename, delete and
    import so the main window can refresh its model chooser (after :attr:`model_renamed` for a rename). The
    question dialogs go through :meth:`confirm`, :meth:`ask_name`, :meth:`ask_import_path`,
    :meth:`ask_export_path` and :meth:`ask_sample_path`, which tests replace.
    """

    models_changed = Signal()
    """The library changed (a model renamed, deleted or imported)."""
    model_renamed = Signal(str, str)
    """(old name, new name): emitted before :attr:`models_changed`, so the model in use can follow its name."""
    operation_done = Signal(str, bool, str)
    """(operation: "rename", "delete", "import", "export" or "sample"; whether it worked; the message shown)"""

    def __init__(self, bridge: WorkerBridge, parent: QWidget | None = None,
                 model_in_use: Callable[[], str | None] = lambda: None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.resize(900, 520)
        self._bridge = bridge
        self._model_in_use = model_in_use  # the main window's, so that deleting it is said before and after
        self._rows: list[ModelRow] = []
        self._jobs: list[_PendingJob] = []  # imports and exports not yet finished
        self.last_error = ""
        """The last error shown ("" until one is); kept so tests and callers need not read the label."""

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeaderItem(COLUMNS.index("Validation")).setToolTip(
            "The model's best validation figure and, in brackets, what it was measured on (its tooltip says more). "
            + NOT_COMPARABLE)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # "Trained on" holds a sentence; let it take the spare width and elide rather than push columns away.
        header.setSectionResizeMode(COLUMNS.index("Trained on"), QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.itemDoubleClicked.connect(lambda _item: self.show_details(True))

        self.details = QPlainTextEdit()
        self.details.setReadOnly(True)
        self.details.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.details.setVisible(False)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)

        self.rename_button = QPushButton("Rename...")
        self.rename_button.setToolTip("Give the selected model another name (bundled models cannot be renamed)")
        self.rename_button.clicked.connect(self._rename_clicked)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected model from your library (bundled models stay)")
        self.delete_button.clicked.connect(self._delete_clicked)
        self.import_button = QPushButton("Import...")
        self.import_button.setToolTip(f"Copy a {WEIGHTS_SUFFIX} model file into your library")
        self.import_button.clicked.connect(self._import_clicked)
        self.export_button = QPushButton("Export...")
        self.export_button.setToolTip(f"Write the selected model as one self-contained {WEIGHTS_SUFFIX} file")
        self.export_button.clicked.connect(self._export_clicked)
        self.sample_button = QPushButton("Sample...")
        self.sample_button.setToolTip(f"Save a grid of {SAMPLE_COUNT} images the selected variational model draws "
                                      "from its prior: what it takes images to look like")
        self.sample_button.clicked.connect(self._sample_clicked)
        self.details_button = QPushButton("Details")
        self.details_button.setCheckable(True)
        self.details_button.setToolTip("Show everything the selected model's description says")
        self.details_button.toggled.connect(self.show_details)
        close_button = QPushButton("Close")
        close_button.clicked.connect(self.accept)

        buttons = QHBoxLayout()
        for button in (self.rename_button, self.delete_button, self.import_button, self.export_button,
                       self.sample_button, self.details_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(close_button)

        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        self.message_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message_label)
        layout.addLayout(buttons)

        self.refresh()

    # ----- public API ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read the library again and redraw the table, keeping the selection when that model is still there."""
        selected = self.selected_name()
        self._rows = [_row_for(info) for info in list_models()]
        self.table.setRowCount(len(self._rows))
        for index, row in enumerate(self._rows):
            info = row.info
            modified = row.modified.strftime("%Y-%m-%d %H:%M") if row.modified else "?"
            cells = (row.name, info.family, info.trained_on or "-", validation_text(info.validation, info.training),
                     size_text(row.size), modified, "yes" if info.bundled else "")
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(info.trained_on if COLUMNS[column] == "Trained on" and info.trained_on else text)
                if COLUMNS[column] == "Validation" and info.validation:
                    item.setToolTip(f"{text}\n{validation_set(info.validation, info.training)[1]}\n{NOT_COMPARABLE}")
                if COLUMNS[column] in ("Validation", "Size"):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(index, column, item)
        if not self.select(selected or "") and self._rows:
            self.table.selectRow(0)
        self._selection_changed()

    def names(self) -> list[str]:
        """The table's model names, top to bottom (bundled models first, as the engine lists them)."""
        return [row.name for row in self._rows]

    def select(self, name: str) -> bool:
        """Select the row of model ``name``; False (selection unchanged) when there is none.

        A library model may share a bundled model's name; the engine's rename, delete and export then act on
        the library one, so that is the row chosen.
        """
        matches = [index for index, row in enumerate(self._rows) if row.name == name]
        if not matches:
            return False
        library = [index for index in matches if not self._rows[index].info.bundled]
        self.table.selectRow((library or matches)[0])
        return True

    def selected_name(self) -> str | None:
        """The selected model's name, or None."""
        row = self._selected_row()
        return row.name if row else None

    def is_bundled(self, name: str) -> bool:
        """Whether ``name`` is listed only as a bundled model (which cannot be renamed or deleted)."""
        rows = [row for row in self._rows if row.name == name]
        return bool(rows) and all(row.info.bundled for row in rows)

    def rename(self, old: str, new: str) -> bool:
        """Rename library model ``old`` to ``new``; True when done. Refusals are shown, not raised."""
        if self.is_bundled(old):
            return self._fail("rename", f"{old!r} is bundled with the app and cannot be renamed")
        try:
            rename_model(old, new)
        except DenoiserError as err:
            text = str(err)  # the engine's message may name the action already ("cannot rename ...")
            said = text[:1].upper() + text[1:] if text.lower().startswith("cannot rename") else \
                f"Cannot rename {old!r}: {text}"
            return self._fail("rename", said)
        self.refresh()
        self.select(new)
        self._succeed("rename", f"Renamed {old!r} to {new!r}.")
        self.model_renamed.emit(old, new)
        self.models_changed.emit()
        return True

    def delete(self, name: str) -> bool:
        """Delete library model ``name`` after :meth:`confirm` agrees; True when deleted."""
        if self.is_bundled(name):
            return self._fail("delete", f"{name!r} is bundled with the app and cannot be deleted")
        in_use = name == self._model_in_use()
        warning = "\nIt is the model in use: the main window switches to the default." if in_use else ""
        if not self.confirm("Delete model", f"Delete the model {name!r} from your library?\nIts weights and "
                                            f"description are removed; this cannot be undone.{warning}"):
            return False
        try:
            remove_model(name)
        except DenoiserError as err:
            return self._fail("delete", f"Cannot delete {name!r}: {err}")
        self.refresh()
        self._succeed("delete", f"Deleted {name!r}.")
        self.models_changed.emit()
        return True

    def import_file(self, path: str | Path, name: str | None = None) -> JobHandle:
        """Import the model file ``path`` (as ``name``, else its file name) on the io lane; returns its handle.

        The engine loads the whole file before copying anything, so a pickle, a truncated file or a mismatched
        one is refused (the message names the file) and the library is left as it was.
        """
        source = Path(path)

        def job(_should_stop: Callable[[], bool], _on_progress: Callable[..., None]) -> ModelInfo:
            return import_model(source, name)

        label = str(source) if name is None else f"{source} as {name!r}"
        return self._submit("import", IMPORT_JOB, job, str(source), label, f"Importing {source.name}...")

    def export_to(self, name: str, path: str | Path) -> JobHandle:
        """Export model ``name`` to ``path`` (a folder or a ``.safetensors`` file) on the io lane; returns its handle.

        The engine never overwrites an existing file; bundled models can be exported too.
        """
        destination = Path(path)

        def job(_should_stop: Callable[[], bool], _on_progress: Callable[..., None]) -> Path:
            return export_model(name, destination)

        return self._submit("export", EXPORT_JOB, job, name, f"{name!r} to {destination}", f"Exporting {name!r}...")

    def sample_to(self, name: str, path: str | Path, *, count: int = SAMPLE_COUNT, size: int = SAMPLE_SIZE,
                  seed: int | None = None) -> JobHandle:
        """Decode ``count`` draws from variational model ``name``'s prior at ``size`` x ``size`` (``seed``: random
        when None) and save them in one grid to the image file ``path``, on the io lane; returns its handle.

        The engine's :func:`~denoiser.prior_samples.write_samples` does it all, as ``denoiser models sample`` does:
        a model of another family is refused, and an existing file is never overwritten.
        """
        destination = Path(path)
        chosen = secrets.randbelow(2**31) if seed is None else seed

        def job(_should_stop: Callable[[], bool], _on_progress: Callable[..., None]) -> Path:
            return write_samples(name, destination, count=count, size=size, seed=chosen)[0]

        detail = f"{count} image{'s' if count != 1 else ''} of {size} x {size} pixels, seed {chosen}"
        return self._submit("sample", SAMPLE_JOB, job, name, f"{name!r} to {destination}",
                            f"Sampling {name!r}...", detail)

    def details_text(self, name: str | None = None) -> str:
        """Everything the description of model ``name`` (default: the selected one) says; "" when none."""
        if name is None:
            row = self._selected_row()
        else:
            rows = [r for r in self._rows if r.name == name]
            library = [r for r in rows if not r.info.bundled]
            row = (library or rows or [None])[0]
        return describe_row(row) if row else ""

    def show_details(self, visible: bool = True) -> None:
        """Show or hide the details pane (the Details button toggles it)."""
        self.details.setVisible(visible)
        if self.details_button.isChecked() != visible:
            self.details_button.setChecked(visible)  # re-enters with the same value, which changes nothing
        self.details.setPlainText(self.details_text())

    def busy(self) -> bool:
        """Whether an import, export or sampling of this dialog is running or waiting."""
        return bool(self._jobs)

    # ----- questions (replaced in tests) -------------------------------------------------------------------
    def confirm(self, title: str, question: str) -> bool:
        """Ask a yes/no question; the default answer is No, since what it guards cannot be undone."""
        answer = QMessageBox.question(self, title, question,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def ask_name(self, title: str, prompt: str, current: str) -> str | None:
        """Ask for a model name; None when cancelled."""
        text, ok = QInputDialog.getText(self, title, prompt, text=current)
        return text if ok else None

    def ask_import_path(self) -> Path | None:
        """Ask for a model file to import; None when cancelled."""
        # "All files" is offered so that someone holding a .pt file gets the engine's reason it is refused
        # instead of a file dialog that silently hides it.
        path, _filter = QFileDialog.getOpenFileName(
            self, "Import a model", str(Path.home()), f"Models (*{WEIGHTS_SUFFIX});;All files (*)")
        return Path(path) if path else None

    def ask_export_path(self, name: str) -> Path | None:
        """Ask where to export model ``name``; None when cancelled."""
        path, _filter = QFileDialog.getSaveFileName(
            self, f"Export {name}", str(Path.home() / f"{name}{WEIGHTS_SUFFIX}"), f"Models (*{WEIGHTS_SUFFIX})")
        if not path:
            return None
        target = Path(path)
        # Some platforms' dialogs drop the filter's extension; the engine insists on it for a file target.
        return target if target.suffix.lower() == WEIGHTS_SUFFIX else target.with_name(target.name + WEIGHTS_SUFFIX)

    def ask_sample_path(self, name: str) -> Path | None:
        """Ask where to save the samples of model ``name`` (PNG first; a name not yet taken offered); None when
        cancelled."""
        filters = save_filters()
        ordered = [filters.pop("PNG")] if "PNG" in filters else []
        ordered += filters.values()
        suggested = unique_path(Path.home() / f"{name}-samples.png")
        path, _filter = QFileDialog.getSaveFileName(self, f"Save samples of {name}", str(suggested), ";;".join(ordered))
        return Path(path) if path else None

    # ----- buttons ---------------------------------------------------------------------------------------------
    def _rename_clicked(self) -> None:
        old = self.selected_name()
        if old is None:
            return
        new = self.ask_name("Rename model", f"New name for {old!r}:", old)
        if new is not None and new != old:
            self.rename(old, new)

    def _delete_clicked(self) -> None:
        name = self.selected_name()
        if name is not None:
            self.delete(name)

    def _import_clicked(self) -> None:
        path = self.ask_import_path()
        if path is None:
            return
        name: str | None = None
        if path.suffix.lower() == WEIGHTS_SUFFIX and path.stem in self._library_names():
            # The engine would refuse with advice for the command line (--name); ask for a name here instead.
            name = self.ask_name("Import model", f"A model named {path.stem!r} is already in your library.\n"
                                 "Import it under another name:", f"{path.stem}-imported")
            if name is None:
                return
        self.import_file(path, name)

    def _export_clicked(self) -> None:
        self._ask_where_then(self.ask_export_path, self.export_to)

    def _sample_clicked(self) -> None:
        self._ask_where_then(self.ask_sample_path, self.sample_to)

    def _ask_where_then(self, ask: Callable[[str], Path | None], act: Callable[[str, Path], object]) -> None:
        """For the selected model: ``ask`` where to write, then ``act`` there, unless the question was cancelled."""
        name = self.selected_name()
        target = ask(name) if name is not None else None
        if name is not None and target is not None:
            act(name, target)

    # ----- internals -------------------------------------------------------------------------------------------
    def _selected_row(self) -> ModelRow | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        index = rows[0].row()
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def _library_names(self) -> list[str]:
        return [row.name for row in self._rows if not row.info.bundled]

    def _selection_changed(self) -> None:
        row = self._selected_row()
        editable = row is not None and not row.info.bundled
        self.rename_button.setEnabled(editable)
        self.delete_button.setEnabled(editable)
        self.export_button.setEnabled(row is not None)
        samples = row is not None and can_sample(row.info.family)
        self.sample_button.setEnabled(samples)
        self.sample_button.setToolTip(
            f"Save a grid of {SAMPLE_COUNT} images the selected model draws from its prior: what it takes images to "
            "look like" if samples or row is None else
            f"{row.name!r} is a {row.info.family or 'unknown'} model: only variational models have a prior to draw "
            "images from")
        self.details_button.setEnabled(row is not None)
        if row is not None and row.info.bundled:
            why = f"{row.name!r} is bundled with the app: it cannot be renamed or deleted (export it to get a copy)"
            self.rename_button.setToolTip(why)
            self.delete_button.setToolTip(why)
        else:
            self.rename_button.setToolTip("Give the selected model another name")
            self.delete_button.setToolTip("Delete the selected model from your library")
        self.details.setPlainText(self.details_text())  # cheap, and right whenever the pane is shown

    def _submit(self, kind: str, job_name: str, fn: Callable[..., Any], subject: str, label: str,
                message: str, detail: str = "") -> JobHandle:
        # replace=False: the io lane also carries thumbnails and saves, which an import must not cancel.
        handle = self._bridge.submit(job_name, fn, lane="io", replace=False)
        job = _PendingJob(kind, subject, label, self._library_names(), detail)
        self._jobs.append(job)
        handle.succeeded.connect(lambda result: self._on_job_succeeded(job, result))
        handle.failed.connect(lambda message: self._on_job_failed(job, message))
        handle.cancelled.connect(lambda: self._on_job_cancelled(job))
        self._show(message, error=False)
        return handle

    def _done(self, job: _PendingJob) -> None:
        self._jobs = [pending for pending in self._jobs if pending is not job]

    def _on_job_succeeded(self, job: _PendingJob, result: object) -> None:
        self._done(job)
        if job.kind == "import":
            path = getattr(result, "path", None)
            name = path.stem if isinstance(path, Path) else str(getattr(result, "name", ""))
            self.refresh()
            self.select(name)
            self._succeed("import", f"Imported {job.subject} as {name!r}.")
            self.models_changed.emit()
        elif job.kind == "sample":
            self._succeed("sample", f"Saved {job.detail} drawn by {job.subject!r} to {result}.")
        else:
            self._succeed("export", f"Exported {job.subject!r} to {result}.")

    def _on_job_failed(self, job: _PendingJob, message: str) -> None:
        self._done(job)
        # The engine's message names the file and the problem; say which operation it belongs to, and name
        # what was being imported or exported only when the message does not already (no path said twice).
        what = "" if job.subject in message else f" {job.label}"
        self._fail(job.kind, f"Cannot {job.kind}{what}: {message}")
        if job.kind == "import":
            self.refresh()  # nothing should have changed; show the library as it is, whatever happened

    def _on_job_cancelled(self, job: _PendingJob) -> None:
        self._done(job)
        # Another part of the app cancelled the io lane. The engine's import does not stop half-way, so it may
        # have finished regardless: compare the library before and after rather than guess.
        self.refresh()
        if self._library_names() != job.before:
            self._succeed(job.kind, f"Imported {job.subject} (the cancel came too late to stop it).")
            self.models_changed.emit()
        else:
            self._fail(job.kind, f"The {job.kind} of {job.label} was cancelled; nothing was changed.")

    def _show(self, text: str, *, error: bool) -> None:
        self.message_label.setStyleSheet(_ERROR_STYLE if error else _INFO_STYLE)
        self.message_label.setText(text)

    def _fail(self, operation: str, message: str) -> bool:
        self.last_error = message
        self._show(message, error=True)
        self.operation_done.emit(operation, False, message)
        return False

    def _succeed(self, operation: str, message: str) -> None:
        self._show(message, error=False)
        self.operation_done.emit(operation, True, message)

