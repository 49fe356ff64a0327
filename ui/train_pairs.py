"""The training dialog's noisy/clean pairs page: the two folders, their check in the background and its report.

Pairs are matched by file name with :func:`~denoiser.datasets.match_pairs` before anything starts. The check goes on
the bridge's ``io`` lane with ``replace=False``, since that lane also carries the folder pane's thumbnails and the
model manager's imports. A report describes the folders it was made for: other folders must be checked afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QFormLayout, QLabel, QLineEdit, QListWidget, QPushButton, QWidget

from denoiser.datasets import PairReport, match_pairs
from denoiser.progress import Progress
from ui.folder_field import folder_field
from ui.worker import JobHandle, WorkerBridge

CHECK_JOB = "check-pairs"


class PairsPage(QWidget):
    """The pair folders, the Check pairs button, the report (summary and problems) and "Skip the problem pairs"."""

    changed = Signal()
    """Something that decides whether a run can start changed: the folders, the check, its report, the skip box."""

    def __init__(self, bridge: WorkerBridge, parent: QWidget | None = None) -> None:
        """``bridge``: the window's, whose ``io`` lane runs the check."""
        super().__init__(parent)
        self.bridge = bridge
        self.report: PairReport | None = None
        self._report_folders: tuple[str, str] | None = None
        self._check_job: JobHandle | None = None
        self._running = False

        pairs = QFormLayout(self)
        self.pairs_noisy_edit = QLineEdit()
        self.pairs_noisy_edit.setPlaceholderText("noisy photos, or a folder holding noisy/ and clean/")
        self.pairs_clean_edit = QLineEdit()
        self.pairs_clean_edit.setPlaceholderText("clean photos (empty: noisy/ and clean/ inside the first)")
        pairs.addRow("Noisy", folder_field(self.pairs_noisy_edit, "Folder of noisy photos"))
        pairs.addRow("Clean", folder_field(self.pairs_clean_edit, "Folder of clean photos"))
        self.check_button = QPushButton("Check pairs")
        self.check_button.setToolTip("Match the photos by file name and check each pair before training")
        self.check_button.clicked.connect(self.check_pairs)
        self.pair_summary = QLabel("Check the pairs before training.")
        self.pair_summary.setWordWrap(True)
        self.pair_problems = QListWidget()
        self.pair_problems.setMaximumHeight(110)
        self.skip_box = QCheckBox("Skip the problem pairs")
        self.skip_box.toggled.connect(self.changed)
        pairs.addRow(self.check_button, self.pair_summary)
        pairs.addRow(self.pair_problems)
        pairs.addRow(self.skip_box)
        for edit in (self.pairs_noisy_edit, self.pairs_clean_edit):
            edit.textChanged.connect(self._folders_changed)

    def folders(self) -> tuple[str, str]:
        """The noisy folder and the clean one as typed ("" where empty)."""
        return self.pairs_noisy_edit.text().strip(), self.pairs_clean_edit.text().strip()

    def skip_bad_pairs(self) -> bool:
        """Whether the problem pairs are to be left out of the run."""
        return self.skip_box.isChecked()

    def checking(self) -> bool:
        """Whether a pair check is going on."""
        return self._check_job is not None

    def problem(self) -> str:
        """Why the pairs cannot be trained on now, or "" when they can."""
        if not self.folders()[0]:
            return "Choose the folder of noisy photos (and the clean one)."
        if self.checking():
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

    def set_running(self, running: bool) -> None:
        """A run started or ended: a check may start again once it ended and no check goes on."""
        self._running = running
        if not running:
            self.check_button.setEnabled(self._check_job is None)

    def _folders_changed(self) -> None:
        # A report describes the folders it was made for; other folders must be checked afresh.
        if self.report is not None and self._report_folders != self.folders():
            self.report, self._report_folders = None, None
            self.pair_problems.clear()
            self.pair_summary.setText("The folders changed: check the pairs again.")
        self.changed.emit()

    def check_pairs(self) -> bool:
        """Match the pair folders in the background; the report shows when done. False when no folder is given."""
        noisy, clean = self.folders()
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
        self.changed.emit()
        return True

    def _show_report(self, folders: tuple[str, str], report: PairReport) -> None:
        if folders != self.folders():
            self.pair_summary.setText("The folders changed while checking: check the pairs again.")
            return
        self.report, self._report_folders = report, folders
        self.pair_problems.clear()
        self.pair_problems.addItems(report.problems())
        self.pair_summary.setText(report.summary() + ("." if report.ok else ": see below."))
        self.skip_box.setEnabled(not report.ok)
        self.changed.emit()

    def _on_check_succeeded(self, result: object) -> None:
        self._check_job = None
        self.check_button.setEnabled(not self._running)
        folders, report = result  # type: ignore[misc]
        self._show_report(folders, report)

    def _on_check_failed(self, message: str) -> None:
        self._check_job = None
        self.check_button.setEnabled(not self._running)
        self.pair_summary.setText(f"Cannot check the pairs: {message}")
        self.changed.emit()

    def _on_check_cancelled(self) -> None:
        self._check_job = None
        self.check_button.setEnabled(not self._running)
        self.pair_summary.setText("The pair check was interrupted; check the pairs again.")
        self.changed.emit()
