"""The one bridge between the GUI thread and background work.

Long work is a plain function ``fn(should_stop, on_progress) -> result`` that runs on a worker thread; the
bridge turns its progress and its outcome into Qt signals delivered on the GUI thread. Widgets never start
threads and are never touched from a worker. Work runs in *lanes*, each one QThread running one job at a
time: ``model`` for denoising, latents and model loading; ``io`` for thumbnails and file reads, so a folder
of photos keeps filling in while a denoise runs; ``display`` for re-blending a result when a slider moves;
``train`` for a training run, which takes minutes to hours and must not hold up the viewer.

Submitting a job with ``replace=True`` (the default) cancels the lane's running job and drops its waiting
ones, so two jobs never race for the same widgets; results of cancelled jobs are never delivered.
"""

from __future__ import annotations

import itertools
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


@dataclass
class Job:
    """One unit of background work and its stop flag."""

    job_id: int
    name: str
    fn: JobFn
    stop: threading.Event = field(default_factory=threading.Event)
    generation: tuple[int, int] = (0, 0)
    """The lane's cancel counts (all jobs, jobs of this name) when the job was queued: a later cancel covers it."""


class _Lane(QThread):
    """A worker thread that runs the jobs of one lane in order."""

    progress = Signal(int, str, object)  # job id, job name, Progress
    succeeded = Signal(int, str, object)  # job id, job name, result
    failed = Signal(int, str, str)  # job id, job name, message
    cancelled = Signal(int, str)
    started_job = Signal(int, str)

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
                    self.cancelled.emit(job.job_id, job.name)
                    continue
                self.current = job
            self.started_job.emit(job.job_id, job.name)
            self._run_one(job)
            with self.lock:
                self.current = None

    def _run_one(self, job: Job) -> None:
        def on_progress(event: Progress) -> None:
            if not job.stop.is_set():
                self.progress.emit(job.job_id, job.name, event)

        try:
            result = job.fn(job.stop.is_set, on_progress)
        except Cancelled:
            self.cancelled.emit(job.job_id, job.name)
            return
        except DenoiserError as err:
            message = str(err)
        except MemoryError:
            message = "out of memory"
        except Exception as err:  # noqa: BLE001 - the app must survive any job's failure and say what it was
            traceback.print_exc()
            message = f"unexpected {type(err).__name__}: {err}"
        else:
            if job.stop.is_set():
                self.cancelled.emit(job.job_id, job.name)
            else:
                self.succeeded.emit(job.job_id, job.name, result)
            return
        self.failed.emit(job.job_id, job.name, message)

    def cancel_all(self, name: str | None = None) -> None:
        """Stop the running job and drop the waiting ones (only those called ``name`` when given)."""
        with self.lock:
            if name is None:
                self.generation += 1
            else:
                self.name_generations[name] = self.name_generations.get(name, 0) + 1
            if self.current is not None and name in (None, self.current.name):
                self.current.stop.set()
            kept = []
            while True:
                try:
                    waiting = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if waiting is not None and name in (None, waiting.name):
                    waiting.stop.set()
                    self.cancelled.emit(waiting.job_id, waiting.name)  # it will never run: say so now
                else:
                    kept.append(waiting)
            for job in kept:
                self.jobs.put(job)

    def busy(self) -> bool:
        """Whether a job runs or waits."""
        with self.lock:
            return self.current is not None or not self.jobs.empty()


class WorkerBridge(QObject):
    """Runs jobs off the GUI thread and reports on it. Create one per window; call :meth:`shutdown` on close."""

    progress = Signal(int, str, object)
    """(job id, job name, :class:`~denoiser.progress.Progress`)"""
    succeeded = Signal(int, str, object)
    """(job id, job name, result)"""
    failed = Signal(int, str, str)
    """(job id, job name, message naming the file and the problem)"""
    cancelled = Signal(int, str)
    started = Signal(int, str)
    busy_changed = Signal(bool)
    """True when the model lane starts working, False when it has nothing left to do."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._lanes = {name: _Lane(name, self) for name in LANES}
        self._open: dict[int, tuple[str, str]] = {}  # job id -> (lane, name), for jobs not yet finished
        for lane in self._lanes.values():
            lane.progress.connect(self.progress)
            lane.started_job.connect(self.started)
            lane.succeeded.connect(self._on_done)
            lane.succeeded.connect(self.succeeded)
            lane.failed.connect(self._on_done)
            lane.failed.connect(self.failed)
            lane.cancelled.connect(self._on_done)
            lane.cancelled.connect(self.cancelled)
            lane.start()
        self._closed = False

    def submit(self, name: str, fn: JobFn, *, lane: str = "model", replace: bool = True) -> int:
        """Queue ``fn`` on ``lane``; with ``replace`` the lane's running and waiting jobs of the same ``name``
        are cancelled first (a new denoise replaces the old one; a batch on the same lane is left alone)."""
        if self._closed:
            raise RuntimeError("the worker bridge is shut down")
        worker = self._lanes[lane]
        if replace:
            worker.cancel_all(name)
        job = Job(next(self._ids), name, fn)
        was_busy = self.is_busy()
        self._open[job.job_id] = (lane, name)
        worker.put(job)
        if not was_busy and lane == "model":
            self.busy_changed.emit(True)
        return job.job_id

    def cancel(self, lane: str = "model", name: str | None = None) -> None:
        """Ask the lane's running job to stop (within one tile batch) and drop waiting jobs; with ``name``,
        only the jobs of that name."""
        self._lanes[lane].cancel_all(name)

    def is_busy(self, lane: str = "model", name: str | None = None) -> bool:
        """Whether ``lane`` has a job (of ``name``, when given) running or waiting."""
        return any(open_lane == lane and name in (None, job_name) for open_lane, job_name in self._open.values())

    def _on_done(self, job_id: int, *_: object) -> None:
        lane, _name = self._open.pop(job_id, (None, None))
        if lane == "model" and not self.is_busy("model"):
            self.busy_changed.emit(False)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything and wait for the lanes to end; True when all stopped in time."""
        if self._closed:
            return True
        self._closed = True
        for lane in self._lanes.values():
            lane.cancel_all()
            lane.jobs.put(None)
        return all(lane.wait(timeout_ms) for lane in self._lanes.values())
