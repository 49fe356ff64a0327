"""The main window's status bar: one message (red for an error), and while the window's own model work runs a
progress bar and Cancel; a denoise's progress read as percent and time left, said in the status line and on the
result pane."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

from denoiser.progress import Progress
from ui.progress_text import ProgressClock, progress_text

__all__ = ["StatusBarReport"]

ERROR_STYLE = "color: #d33;"

log = logging.getLogger("denoiser.app")


class StatusBarReport:
    """The message, progress bar and Cancel button of a window's status bar, kept true by its jobs."""

    def __init__(self, status_bar: QStatusBar, cancel: Callable[[], None]) -> None:
        self.label = QLabel("Open a photo or a folder (or drop one here).")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setFormat("%p %")
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(cancel)
        status_bar.addWidget(self.label, 1)
        status_bar.addPermanentWidget(self.progress_bar)
        status_bar.addPermanentWidget(self.cancel_button)
        self._clock = ProgressClock()
        self._busy = False
        self._showing_error = False

    def say(self, message: str, error: bool = False) -> None:
        """Show ``message`` (in red for an error, which the log gets too)."""
        self.label.setText(message)
        self.label.setStyleSheet(ERROR_STYLE if error else "")
        self._showing_error = error
        if error:
            log.warning("%s", message)

    def note(self, message: str) -> None:
        """Show ``message`` unless an error is shown: a note in passing ("Model default ready.") never hides why
        something failed."""
        if not self._showing_error:
            self.say(message)

    def set_busy(self, busy: bool) -> bool:
        """Show the progress bar (indeterminate until counts come) and Cancel while busy; True when it changed."""
        if busy == self._busy:
            return False
        self._busy = busy
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.progress_bar.setRange(0, 0)
        return True

    def start_measuring(self) -> None:
        """A new denoise starts: its time left is measured afresh."""
        self._clock.reset()

    def show_counts(self, event: Progress) -> None:
        """Move the progress bar to ``event``'s (done, total)."""
        self.progress_bar.setRange(0, event.total)
        self.progress_bar.setValue(event.done)

    def show_denoise_progress(self, what: str, event: Progress) -> int:
        """Move the bar and say ``what: 42 %, about 12 s left``; returns the percent (for the result pane)."""
        self.show_counts(event)
        percent, left = self._clock.update(event.done, event.total)
        self.say(progress_text(what, percent, left))
        return percent
