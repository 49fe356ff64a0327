"""A batch's workers on a Ray cluster: how many and how big, the files in flight on each, and a file given to
another worker when its worker dies.

Ray is imported only here and in :mod:`~denoiser.batch.ray_run`, and only when a batch runs on it
(``pip install 'denoiser[cluster]'``); :func:`ray_available` answers without importing it.

One worker (a :class:`~denoiser.batch.ray_worker.FileDenoiser` actor) per GPU, or per ``cpus_per_worker`` CPU
cores where the cluster has no GPUs (or ``--device cpu``). Each worker holds at most ``files_per_worker`` files
(one denoising, the next one waiting), so memory stays flat however long the batch. A worker that dies loses
the files it held; Ray restarts it (up to ``max_restarts`` times) and each of those files goes to the least busy
worker, another one where there is a choice, up to ``max_file_attempts`` times.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from denoiser.batch.ray_worker import EncodedFile, FileDenoiser, WorkerInfo
from denoiser.batch.settings import BatchSettings
from denoiser.errors import DenoiserError, first_line
from denoiser.progress import StopFn, check_stop

INSTALL_HINT = "pip install 'denoiser[cluster]'"
STARTUP_SECONDS = 300.0
"""How long workers may take to start (resources to free, the model to load) before the batch gives up."""
POLL_SECONDS = 0.25
"""How often waiting for workers looks at ``should_stop``."""


@dataclass(frozen=True)
class RayCluster:
    """Where and how wide a batch runs on Ray."""

    address: str | None = None
    """``None``: the cluster ``ray start`` started on this machine, else a private one on this machine;
    ``auto``: the running cluster, which must exist; ``HOST:PORT`` or ``ray://HOST:PORT``: that cluster."""
    workers: int | None = None
    """How many workers; None: one per GPU, or as many as the CPU cores allow."""
    cpus_per_worker: int | None = None
    """CPU cores each worker takes (its torch and ONNX Runtime threads); None: 4 for a CPU worker (or all the
    cluster has, when fewer), 1 beside a GPU."""
    files_per_worker: int = 2
    """Files handed to a worker at once: one denoising while the next one travels."""
    max_restarts: int = 4
    """Times Ray restarts a worker that died before it is given up."""
    max_file_attempts: int = 3
    """Workers one file may be tried on before it is reported failed."""


def ray_available() -> bool:
    """Whether Ray is installed here (without importing it)."""
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def import_ray() -> Any:
    """The ``ray`` module; :class:`DenoiserError` saying how to install it when it is missing."""
    try:
        import ray
    except ImportError as err:
        raise DenoiserError(f"running a batch on a Ray cluster needs Ray, which is not installed: {INSTALL_HINT}") \
            from err
    return ray


@contextlib.contextmanager
def connected(cluster: RayCluster) -> Iterator[Any]:
    """Ray, connected to ``cluster`` (left as it is when this process already is; else joined, and left after)."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        # A private instance here goes without the dashboard (seconds to start); a running cluster keeps its own.
        ray.init(address=cluster.address or None, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {cluster.address}" if cluster.address else "a Ray cluster"
        raise DenoiserError(f"cannot reach {where}: {first_line(err).rstrip('.')}; start one with 'ray start "
                            "--head' (see docs/scale.md) or leave the address out to run on this machine") from err
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class WorkerPlan:
    """How many workers, with what each takes from the cluster."""

    count: int
    cpus: int
    gpus: int

    def describe(self) -> str:
        """``2 workers of 1 GPU and 1 CPU core each`` and the like."""
        gpu = "1 GPU and " if self.gpus else ""
        return f"{self.count} worker(s) of {gpu}{self.cpus} CPU core(s) each"


def plan_workers(resources: dict[str, float], cluster: RayCluster, device: str) -> WorkerPlan:
    """The workers ``cluster`` asks for on a cluster with ``resources`` (Ray's ``cluster_resources()``), for the
    batch's ``device``; :class:`DenoiserError` when they do not fit, saying what the cluster has."""
    gpus = int(resources.get("GPU", 0))
    cpus = int(resources.get("CPU", 0))
    key = device.strip().lower()
    if key.startswith("cuda") and gpus == 0:
        raise DenoiserError(f"--device {device} asks for GPUs, but the Ray cluster has none; use --device auto "
                            "or cpu")
    if key not in ("cpu", "mps") and gpus > 0:
        plan = WorkerPlan(cluster.workers or gpus, cluster.cpus_per_worker or 1, 1)
        if plan.count > gpus or plan.count * plan.cpus > cpus:
            raise DenoiserError(f"{plan.describe()} do not fit on the Ray cluster ({gpus} GPU(s), {cpus} CPU "
                                "core(s)); ask for fewer with --ray-workers or --cpus-per-worker")
        return plan
    each = cluster.cpus_per_worker or max(1, min(4, cpus))
    plan = WorkerPlan(cluster.workers or max(1, cpus // each), each, 0)
    if plan.count * plan.cpus > cpus:
        raise DenoiserError(f"{plan.describe()} need {plan.count * plan.cpus} CPU cores; the Ray cluster has {cpus}: "
                            "ask for fewer with --ray-workers or --cpus-per-worker, or add machines")
    return plan


def worker_settings(settings: BatchSettings, plan: WorkerPlan) -> BatchSettings:
    """The settings a worker runs with: its own device (the GPU Ray gave it, or the CPU), and the engine named
    (``auto`` resolved through this process's ``DENOISER_ENGINE``, which a worker does not inherit)."""
    engine = settings.tiles.engine
    if engine == "auto":
        engine = os.environ.get("DENOISER_ENGINE", "auto").strip().lower() or "auto"
    tiles = dataclasses.replace(settings.tiles, engine=engine)
    return dataclasses.replace(settings, device="cuda" if plan.gpus else "cpu", tiles=tiles)


@dataclass
class _Worker:
    handle: Any
    info: WorkerInfo
    held: int = 0
    """Files handed to it and not answered yet."""


@dataclass
class _Task:
    key: int
    source: Path
    target: Path
    attempts: int = 0
    worker: _Worker | None = None


@dataclass
class Answers:
    """What :meth:`WorkerPool.answers` collected: files answered, and notes on files that went to another
    worker."""

    files: list[tuple[int, EncodedFile]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class WorkerPool:
    """The batch's workers (see the module's description). Start with :meth:`start`, end with :meth:`close`."""

    def __init__(self, ray: Any, cluster: RayCluster, plan: WorkerPlan) -> None:
        self.ray = ray
        self.cluster = cluster
        self.plan = plan
        self.workers: list[_Worker] = []
        self.tasks: dict[Any, _Task] = {}
        """In flight, by the ObjectRef of its answer."""

    @property
    def capacity(self) -> int:
        """Files the workers may hold at once."""
        return len(self.workers) * self.cluster.files_per_worker

    def start(self, model_path: Path | None, model_name: str, fingerprint: str, settings: BatchSettings,
              should_stop: StopFn | None = None) -> list[WorkerInfo]:
        """Start the workers, each loading the model; returns where they run once all are ready.
        :class:`DenoiserError` with the worker's own reason when one cannot start (model, device)."""
        plan = self.plan
        actor = self.ray.remote(FileDenoiser).options(num_cpus=plan.cpus, num_gpus=plan.gpus,
                                                       max_restarts=self.cluster.max_restarts)
        settings = worker_settings(settings, plan)
        path = str(model_path) if model_path is not None else None
        handles = [actor.remote(path, model_name, fingerprint, settings, plan.cpus) for _ in range(plan.count)]
        waiting = {handle.info.remote(): index for index, handle in enumerate(handles)}
        infos: dict[int, WorkerInfo] = {}
        deadline = time.monotonic() + STARTUP_SECONDS
        try:
            while waiting:
                check_stop(should_stop)
                if time.monotonic() > deadline:
                    raise DenoiserError(f"the Ray workers did not start within {STARTUP_SECONDS:.0f} s ("
                                        f"{len(infos)} of {len(handles)} ready); the cluster may lack free "
                                        "resources for them ('ray status' shows what it has)")
                done, _ = self.ray.wait(list(waiting), num_returns=1, timeout=POLL_SECONDS)
                for ref in done:
                    infos[waiting.pop(ref)] = self._answer(ref)
            troubled = next((info for info in infos.values() if info.problem), None)
            if troubled is not None:
                raise DenoiserError(f"a Ray worker on {troubled.host} cannot start: {troubled.problem}")
        except BaseException:
            for handle in handles:
                with contextlib.suppress(Exception):
                    self.ray.kill(handle, no_restart=True)
            raise
        self.workers = [_Worker(handle, infos[index]) for index, handle in enumerate(handles)]
        return [worker.info for worker in self.workers]

    def _answer(self, ref: Any) -> Any:
        """A worker's answer, or its reason for failing as :class:`DenoiserError`."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as err:
            cause = getattr(err, "cause", None) or err
            raise DenoiserError(f"a Ray worker could not start: {_worker_reason(cause)}") from err

    def submit(self, key: int, source: Path, target: Path) -> None:
        """Hand file ``source`` (to be encoded as the output ``target`` will hold it) to the least busy worker."""
        self._hand_out(_Task(key, source, target))

    def _hand_out(self, task: _Task) -> None:
        if not self.workers:
            raise DenoiserError("every Ray worker of the batch died; the files denoised so far are complete: run "
                                "the same command again to finish the rest")
        worker = min(self.workers, key=lambda w: (w is task.worker, w.held))  # another worker than last time
        task.worker, task.attempts = worker, task.attempts + 1
        worker.held += 1
        self.tasks[worker.handle.denoise.remote(task.source, task.target)] = task

    def answers(self, timeout: float = POLL_SECONDS) -> Answers:
        """The files answered within ``timeout`` seconds (at least one when any is answered). A file whose worker
        died goes to another one (noted), or after ``max_file_attempts`` is answered as failed."""
        collected = Answers()
        if not self.tasks:
            return collected
        done, _ = self.ray.wait(list(self.tasks), num_returns=1, timeout=timeout)
        if done:  # whatever else is ready too, without waiting
            done, _ = self.ray.wait(list(self.tasks), num_returns=len(self.tasks), timeout=0)
        for ref in done:
            task = self.tasks.pop(ref)
            assert task.worker is not None
            task.worker.held -= 1
            try:
                collected.files.append((task.key, self.ray.get(ref)))
            except self.ray.exceptions.RayTaskError as err:  # the worker's code raised past its own handling
                collected.files.append((task.key, EncodedFile(None, message=f"{task.source}: {_worker_reason(err)}")))
            except self.ray.exceptions.RayError as err:  # the worker process died (killed, out of memory, node lost)
                self._lost(task, err, collected)
        return collected

    def _lost(self, task: _Task, err: BaseException, collected: Answers) -> None:
        """``task``'s worker died under it: drop the worker if Ray gave up on it, and try the file elsewhere."""
        worker = task.worker
        assert worker is not None
        if isinstance(err, self.ray.exceptions.ActorDiedError) and worker in self.workers:
            self.workers.remove(worker)  # restarted too often, or its machine is gone
        why = first_line(err, limit=120)
        if task.attempts >= self.cluster.max_file_attempts:
            collected.files.append((task.key, EncodedFile(None, message=(
                f"{task.source}: the Ray workers denoising it died {task.attempts} times (last: {why}); run the "
                "batch again to retry it"))))
            return
        collected.notes.append(f"the Ray worker on {worker.info.host} denoising {task.source.name} was lost ({why}); "
                               f"it goes to another worker (attempt {task.attempts + 1} of "
                               f"{self.cluster.max_file_attempts})")
        self._hand_out(task)

    def close(self) -> None:
        """Stop every worker (files still in flight are dropped: the driver releases their claims)."""
        for worker in self.workers:
            with contextlib.suppress(Exception):  # a worker already gone
                self.ray.kill(worker.handle, no_restart=True)
        self.workers, self.tasks = [], {}


def _worker_reason(err: BaseException) -> str:
    """The first line of a worker's own error, without Ray's wrapping."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, BaseException) and cause is not err:
        return first_line(cause)
    return first_line(err)
