"""The main window's jobs, one kind at a time: each submitted job's handle wired to the slots given where it is
started, and only the latest job of each kind (open, denoise, display, ...) reaching the widgets, so a result
of a photo the user has left behind never lands on the one now shown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from denoiser.progress import Progress
from ui.worker import JobFn, JobHandle, WorkerBridge

__all__ = ["LatestJobs"]


class LatestJobs:
    """Starts the window's jobs on its :class:`~ui.worker.WorkerBridge` and wires each one's handle.

    ``progress(kind, event)`` gets the latest job's progress, ``failed(kind, message)`` says a failure that
    its starter did not handle, and ``activity()`` runs whenever a job starts or ends (to show or hide the
    progress bar).
    """

    def __init__(self, bridge: WorkerBridge, *, progress: Callable[[str, Progress], None],
                 failed: Callable[[str, str], None], activity: Callable[[], None]) -> None:
        self._bridge = bridge
        self._progress = progress
        self._failed = failed
        self._activity = activity
        self._latest: dict[str, JobHandle] = {}  # job kind -> the latest one; older ones reach no widget
        self.closed = False
        """Set when the window closes: nothing more is started."""
        self.last_error = ""
        """The message of the last job that failed."""

    def start(self, kind: str, fn: JobFn, lane: str = "model", replace: bool = True, *,
              succeeded: Callable[[Any], None] | None = None, failed: Callable[[str], None] | None = None,
              cancelled: Callable[[], None] | None = None) -> JobHandle | None:
        """Submit ``fn`` as the job of ``kind`` and wire its handle to the slots given (a failure without
        ``failed`` goes to the window's reporter); None once the window is closing."""
        if self.closed:
            return None
        handle = self._bridge.submit(kind, fn, lane=lane, replace=replace)
        self._latest[kind] = handle

        def latest(slot: Callable[..., None]) -> Callable[..., None]:
            return lambda *args: slot(*args) if self._latest.get(kind) is handle else None

        def on_failed(text: str) -> None:
            self.last_error = text
            if failed is not None:
                failed(text)
            else:
                self._failed(kind, text)

        if succeeded is not None:
            handle.succeeded.connect(latest(succeeded))
        handle.failed.connect(latest(on_failed))
        if cancelled is not None:
            handle.cancelled.connect(latest(cancelled))
        handle.progress.connect(latest(lambda event: self._progress(kind, event)))
        handle.started.connect(self._activity)
        handle.finished.connect(self._activity)
        self._activity()
        return handle

    def forget(self, kind: str) -> None:
        """Let the running job of ``kind`` reach no widget any more (its result is no longer wanted)."""
        self._latest.pop(kind, None)
