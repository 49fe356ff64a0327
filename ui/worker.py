"""The one bridge between the GUI thread and background work.

Long work is a plain function ``fn(should_stop, on_progress) -> result`` that runs on a worker thread. Submitting
it returns a :class:`JobHandle`, a QObject of the GUI thread with the job's own signals (``started``,
``progress``, ``succeeded``, ``failed``, ``cancelled``, then ``finished``), wired where the job is created::

    handle = bridge.submit("denoise", job)
    handle.succeeded.connect(self._show_result)

Widgets never start threads, are never touched from a worker, and never see another job's events. Work runs in
*lanes*, each one QThread running one job at a time: ``model`` for denoising, latents and model loading; ``io``
for thumbnails and file reads, so a folder of photos keeps filling in while a denoise runs; ``display`` for
re-blending a result when a slider moves; ``train`` for a training run, which takes minutes to hours and must
not hold up the viewer.

Submitting a job with ``replace=True`` (the default) cancels the lane's running and waiting jobs *of the same
name*; ``replace=False`` queues behind them. A cancelled or replaced job's handle gets ``cancelled`` and never
``succeeded``, even when its result was already on its way. A failure is logged here, on the worker thread: an
unexpected error with its traceback, an engine error (:class:`~denoiser.errors.DenoiserError`) as one line, a
cancel not at all.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from denoiser.errors import Cancelled, DenoiserError
from denoiser.progress import Progress

JobFn = Callable[[Callable[[], bool], Callable[[Progress], None]], Any]
LANES = ("model", "io", "display", "train")

log = logging.getLogger("denoiser.worker")


@dataclass
class Job:
    """One unit of background work and its stop flag."""

    job_id: int
    name: str
    fn: JobFn
    stop: threading.Event = field(default_factory=threading.Event)
    generation: tuple[int, int] = (0, 0)
    """The lane's cancel counts (all jobs, jobs of this name) when the job was queued: a later cancel covers it."""


class JobHandle(QObject):
    """One submitted job, seen from the GUI thread: its own signals, always delivered on the GUI thread.

    Exactly one of ``succeeded``, ``failed`` and ``cancelled`` is emitted, then ``finished``.
    """

    started = Signal()
    """The job left the queue and runs."""
    progress = Signal(object)
    """A :class:`~denoiser.progress.Progress` event (none after a cancel)."""
    succeeded = Signal(object)
    """The job's result."""
    failed = Signal(str)
    """A one-line message naming the file and the problem (the traceback, if any, is :attr:`details`)."""
    cancelled = Signal()
    """Cancelled, replaced by a newer job of its name, or dropped at shutdown; its result is never delivered."""
    finished = Signal()
    """After any of the three outcomes, once the bridge no longer counts the job as busy."""

    def __init__(self, job_id: int, name: str, lane: str, bridge: WorkerBridge) -> None:
        super().__init__()  # no parent: it lives as long as the bridge's open jobs or its owner refer to it
        self.job_id = job_id
        self.name = name
        self.lane = lane
        self.details = ""
        """The traceback text of an unexpected failure ("" otherwise)."""
        self.outcome: str | None = None
        """None while open, then "succeeded", "failed" or "cancelled"."""
        self._bridge = bridge
        self._cancel_asked = False
        self._stop: threading.Event | None = None  # the job's stop flag

    def cancel(self) -> None:
        """Ask this job (only this one) to stop; its handle then gets ``cancelled``."""
        self._bridge._cancel_handle(self)

    def is_done(self) -> bool:
        """Whether the job has ended (its outcome signal was emitted)."""
        return self.outcome is not None

    def cancel_requested(self) -> bool:
        """Whether a cancel (or a replacing job) covers this job."""
        return self._cancel_asked


class _Lane(QThread):
    """A worker thread that runs the jobs of one lane in order. Its signals carry job ids to the bridge."""

    progress = Signal(int, object)  # job id, Progress
    succeeded = Signal(int, object)  # job id, result
    failed = Signal(int, str, str)  # job id, message, traceback text
    cancelled = Signal(int)
    started_job = Signal(int)

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName(f"denoiser-{name}-lane")
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.current: Job | None = None
        self.generation = 0
        self.name_generations: dict[str, int] = {}
        self.lock = threading.Lock()

    def put(self, job: Job) -> None:
        """Queue ``job`` after every cancel so far."""
        with self.lock:
            job.generation = (self.generation, self.name_generations.get(job.name, 0))
            self.jobs.put(job)

    def _covered(self, job: Job) -> bool:
        """Whether a cancel came after ``job`` was queued (for all jobs or for its name)."""
        return job.generation < (self.generation, 0) or job.generation[1] < self.name_generations.get(job.name, 0)

    def run(self) -> None:  # noqa: D401 - Qt's name
        while True:
            job = self.jobs.get()
            if job is None:
                return
            with self.lock:
                # A job taken off the queue just before a cancel_all is covered by the generation count.
                if job.stop.is_set() or self._covered(job):
                    job.stop.set()
                    self.cancelled.emit(job.job_id)
                    continue
                self.current = job
            self.started_job.emit(job.job_id)
            self._run_one(job)
            with self.lock:
                self.current = None

    def _run_one(self, job: Job) -> None:
        def on_progress(event: Progress) -> None:
            if not job.stop.is_set():
                self.progress.emit(job.job_id, event)

        details = ""
        try:
            result = job.fn(job.stop.is_set, on_progress)
        except Cancelled:
            self.cancelled.emit(job.job_id)
            return
        except DenoiserError as err:
            log.warning("job %r failed: %s", job.name, err)
            message = str(err)
        except MemoryError:
            log.exception("job %r ran out of memory", job.name)
            message = "out of memory"
        except Exception as err:  # noqa: BLE001 - the app must survive any job's failure and say what it was
            log.exception("job %r failed with an unexpected error", job.name)
            details = traceback.format_exc()
            message = f"unexpected {type(err).__name__}: {err}"
        else:
            if job.stop.is_set():
                self.cancelled.emit(job.job_id)
            else:
                self.succeeded.emit(job.job_id, result)
            return
        self.failed.emit(job.job_id, message, details)

    def cancel_all(self, name: str | None = None, job_id: int | None = None) -> None:
        """Stop the running job and drop the waiting ones: only those called ``name`` when given, only the job
        ``job_id`` when given."""
        with self.lock:
            if job_id is None:
                if name is None:
                    self.generation += 1
                else:
                    self.name_generations[name] = self.name_generations.get(name, 0) + 1

            def matches(job: Job) -> bool:
                return name in (None, job.name) and job_id in (None, job.job_id)

            if self.current is not None and matches(self.current):
                self.current.stop.set()
            kept = []
            while True:
                try:
                    waiting = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if waiting is not None and matches(waiting):
                    waiting.stop.set()
                    self.cancelled.emit(waiting.job_id)  # it will never run: say so now
                else:
                    kept.append(waiting)
            for job in kept:
                self.jobs.put(job)


class WorkerBridge(QObject):
    """Runs jobs off the GUI thread and reports on each job's :class:`JobHandle`. Create one per window; call
    :meth:`shutdown` on close."""

    submitted = Signal(object)
    """A new :class:`JobHandle` (for observers such as tests; its owner connects to the handle itself)."""
    busy_changed = Signal(bool)
    """True when the model lane starts working, False when it has nothing left to do."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lanes = {name: _Lane(name, self) for name in LANES}
        self._open: dict[int, JobHandle] = {}  # jobs not yet finished
        for lane in self._lanes.values():
            # The lanes live on the GUI thread, so these connections are queued from the worker threads.
            lane.progress.connect(self._on_progress)
            lane.started_job.connect(self._on_started)
            lane.succeeded.connect(self._on_succeeded)
            lane.failed.connect(self._on_failed)
            lane.cancelled.connect(self._on_cancelled)
            lane.start()
        self._closed = False

    def submit(self, name: str, fn: JobFn, *, lane: str = "model", replace: bool = True) -> JobHandle:
        """Queue ``fn`` on ``lane`` and return its handle; with ``replace`` the lane's running and waiting jobs of
        the same ``name`` are cancelled first (a new denoise replaces the old one; a batch on the same lane is
        left alone); without, it waits for them."""
        if self._closed:
            raise RuntimeError("the worker bridge is shut down")
        if replace:
            self.cancel(lane, name)
        job = Job(next(self._ids), name, fn)
        handle = JobHandle(job.job_id, name, lane, self)
        handle._stop = job.stop
        was_busy = self.is_busy()
        self._open[job.job_id] = handle
        self._lanes[lane].put(job)
        self.submitted.emit(handle)
        if not was_busy and lane == "model":
            self.busy_changed.emit(True)
        return handle

    def cancel(self, lane: str = "model", name: str | None = None) -> None:
        """Ask the lane's running job to stop (within one tile batch) and drop waiting jobs; with ``name``,
        only the jobs of that name. Their handles get ``cancelled``, never a result."""
        for handle in list(self._open.values()):
            if handle.lane == lane and name in (None, handle.name):
                handle._cancel_asked = True
        self._lanes[lane].cancel_all(name)

    def _cancel_handle(self, handle: JobHandle) -> None:
        if handle.is_done():
            return
        handle._cancel_asked = True
        if handle._stop is not None:
            handle._stop.set()  # also covers a job the lane has just taken off its queue
        self._lanes[handle.lane].cancel_all(handle.name, handle.job_id)

    def is_busy(self, lane: str = "model", name: str | None = None) -> bool:
        """Whether ``lane`` has a job (of ``name``, when given) running or waiting."""
        return any(handle.lane == lane and name in (None, handle.name) for handle in self._open.values())

    # ----- from the lanes (on the GUI thread) -----------------------------------------------------------------
    def _on_started(self, job_id: int) -> None:
        handle = self._open.get(job_id)
        if handle is not None and not handle._cancel_asked:
            handle.started.emit()

    def _on_progress(self, job_id: int, event: Progress) -> None:
        handle = self._open.get(job_id)
        if handle is not None and not handle._cancel_asked:
            handle.progress.emit(event)

    def _on_succeeded(self, job_id: int, result: object) -> None:
        handle = self._close(job_id)
        if handle is None:
            return
        if handle._cancel_asked:  # cancelled after its result was on its way: never delivered
            self._end(handle, "cancelled")
        else:
            self._end(handle, "succeeded", result)

    def _on_failed(self, job_id: int, message: str, details: str) -> None:
        handle = self._close(job_id)
        if handle is None:
            return
        handle.details = details
        if handle._cancel_asked:
            self._end(handle, "cancelled")
        else:
            self._end(handle, "failed", message)

    def _on_cancelled(self, job_id: int) -> None:
        handle = self._close(job_id)
        if handle is not None:
            self._end(handle, "cancelled")

    def _close(self, job_id: int) -> JobHandle | None:
        """The job's handle, no longer counted as busy (None when it was already closed)."""
        handle = self._open.pop(job_id, None)
        if handle is not None and handle.lane == "model" and not self.is_busy("model"):
            self.busy_changed.emit(False)
        return handle

    @staticmethod
    def _end(handle: JobHandle, outcome: str, *args: Any) -> None:
        handle.outcome = outcome
        getattr(handle, outcome).emit(*args)
        handle.finished.emit()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything and wait for the lanes to end; True when all stopped in time."""
        if self._closed:
            return True
        self._closed = True
        for handle in self._open.values():
            handle._cancel_asked = True
        for lane in self._lanes.values():
            lane.cancel_all()
            lane.jobs.put(None)
        return all(lane.wait(timeout_ms) for lane in self._lanes.values())

    def wait_until_stopped(self) -> None:
        """Shut down (if not yet) and wait, without a limit, for every lane to end: a job that outlasted
        :meth:`shutdown`'s wait (a model load cannot be cancelled) ends on its own. Called before the process
        exits, which would otherwise destroy a running thread (Qt aborts the process then)."""
        self.shutdown(0)
        for lane in self._lanes.values():
            lane.wait()
