"""A batch spread over a Ray cluster (``denoiser denoise IN... -o OUT --ray [ADDRESS]``): the driver.

This process stays the manifest's only writer and does, per file, what :class:`~denoiser.batch.run.BatchRun`
does, in the same order: hash the input, decide under the manifest's lock (skip it as done, or claim it and its
output name), and once a worker (:mod:`~denoiser.batch.ray_pool`) hands back the encoded result, write it into
the claimed name through the one atomic write, its hash noted in the claim before the rename, then record it.
So the manifest, resuming, the collision policy, per-file failures and the progress events (files done of the
total, and the time left, from the batch's throughput) are the local batch's, and the outputs are
byte-identical to it. A driver killed mid-run leaves claims that the next run settles like a local one's: an
output whose hash was noted is adopted, anything else is done again.

Ray is imported only when a batch runs on it; without it, :func:`iter_ray_batch` raises
:class:`~denoiser.errors.DenoiserError` saying ``pip install 'denoiser[cluster]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.batch.failures import failure_message, folder_refuses_writes
from denoiser.batch.fingerprints import file_sha256
from denoiser.batch.ray_pool import RayCluster, WorkerPool, connected, plan_workers
from denoiser.batch.ray_worker import EncodedFile
from denoiser.batch.results import BatchReport, FileResult
from denoiser.batch.run import BatchRun, Claim, Eta, batch_report, batch_session
from denoiser.batch.settings import BatchSettings
from denoiser.errors import DenoiserError, ImageWriteError, reason
from denoiser.exported import ExportedModel
from denoiser.io import atomic_write
from denoiser.io.writing import same_file
from denoiser.progress import Progress, ProgressFn, StopFn, check_stop

if TYPE_CHECKING:
    from denoiser.models import Autoencoder

__all__ = ["RayBatchRun", "RayCluster", "iter_ray_batch", "run_ray_batch"]


class ThroughputEta(Eta):
    """Seconds left from the batch's throughput since the workers started (files denoised per second of wall
    time): with several workers at once, the time each file takes overstates what is left."""

    def __init__(self, total: int) -> None:
        super().__init__(total)
        self.started = time.monotonic()

    def start(self) -> None:
        """The workers are ready: the clock starts now."""
        self.started = time.monotonic()

    def add(self, seconds: float) -> None:
        """One more file denoised (``seconds`` is its own time, not what it cost the batch)."""
        self.measured_files += 1
        self.measured_seconds = time.monotonic() - self.started

    def left(self, finished: int, current_fraction: float = 0.0, current_seconds: float = 0.0) -> float | None:
        """Estimate with ``finished`` files behind (denoised or skipped)."""
        if self.measured_files == 0:
            return None
        per_file = (time.monotonic() - self.started) / self.measured_files
        return max(0.0, (self.total - finished) * per_file)


@dataclass
class InFlight:
    """A file claimed by this run and handed to a worker."""

    index: int
    claim: Claim
    result: FileResult


@dataclass
class RayBatchRun(BatchRun):
    """One batch run whose files are denoised by Ray workers (see the module's description)."""

    finished: int = field(init=False, default=0)
    """Files whose result is in (denoised, failed or skipped)."""
    in_flight: dict[int, InFlight] = field(init=False, default_factory=dict)

    eta: ThroughputEta = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.eta = ThroughputEta(len(self.files))

    def results(self, start_workers: Callable[[int], WorkerPool]) -> Iterator[FileResult]:
        """Every file's result, in the order they come in. The workers are started (``start_workers``, given how
        many files are left at most) when the first file needs denoising, so a rerun with nothing left to do
        starts none; then at most their ``capacity`` files are in flight. On any way out before the end (stop,
        error, the caller leaving) the claims of files in flight are given back."""
        pool: WorkerPool | None = None
        next_file = 0
        try:
            while next_file < len(self.files) or self.in_flight:
                check_stop(self.should_stop)
                while next_file < len(self.files) and len(self.in_flight) < (pool.capacity if pool else 1):
                    begun = self.begin(next_file)
                    next_file += 1
                    if isinstance(begun, FileResult):
                        yield begun
                        continue
                    self.in_flight[begun.index] = begun
                    if pool is None:
                        pool = start_workers(len(self.files) - begun.index)
                        self.eta.start()
                    pool.submit(begun.index, self.files[begun.index][0], begun.claim.target)
                if pool is None:
                    continue
                answers = pool.answers()
                for note in answers.notes:
                    self.on_progress(Progress("tiles", 0, 0, note))
                for index, encoded in answers.files:
                    yield self.complete(self.in_flight.pop(index), encoded)
        finally:
            self.release_claims()

    def begin(self, index: int) -> InFlight | FileResult:
        """File ``index``: announce it, hash it and decide under the manifest's lock; the claim to hand to a worker,
        or the file's finished result (skipped, or failed before any work)."""
        source, root = self.files[index]
        self.on_progress(Progress("files", self.finished, self.eta.total, source.name,
                                  extra={"eta": self.eta.left(self.finished), "path": source}))
        result = FileResult(source, None, "failed")
        try:
            result.input_sha256 = file_sha256(source)
            with self.manifest.locked():
                decided = self._decide(source, root, result)
        except Exception as err:  # noqa: BLE001 - one file's failure must not stop the batch
            result.message = failure_message(source, err)
            if folder_refuses_writes(err):
                self._stop_for(err, source, None)
            return self.conclude(result, record=True, claim=None)
        if isinstance(decided, Claim):
            return InFlight(index, decided, result)
        finished, record = decided
        return self.conclude(finished, record=record, claim=None)

    def complete(self, flight: InFlight, encoded: EncodedFile) -> FileResult:
        """A worker's answer for ``flight``: write the output into the claimed name and record the file."""
        source, claim = flight.result.source, flight.claim
        result = dataclasses.replace(flight.result, seconds=encoded.seconds)
        if encoded.data is None:
            result.message = encoded.message
            return self.conclude(result, record=True, claim=claim)
        try:
            written = self._place(source, claim, encoded.data)
        except Exception as err:  # noqa: BLE001 - as in the local batch: this file fails, the batch goes on
            result.message = failure_message(source, err)
            if folder_refuses_writes(err):
                self._stop_for(err, source, claim)
            return self.conclude(result, record=True, claim=claim)
        result = dataclasses.replace(result, output=written, status="done", sigma=encoded.sigma,
                                     findings=list(encoded.findings), reference=encoded.reference,
                                     metrics=dict(encoded.metrics), reference_note=encoded.reference_note)
        self.eta.add(encoded.seconds)
        return self.conclude(result, record=True, claim=claim)

    def conclude(self, result: FileResult, record: bool, claim: Claim | None) -> FileResult:
        """Record ``result`` (unless another run holds the file) and report it; the file is no longer in flight."""
        if record:
            with self.manifest.locked():
                self.manifest.record(result, self.model_name, self.fingerprint, self.signature,
                                     self.settings.run_options(), claim.output_sha256 if claim else None)
        self.finished += 1
        self.on_progress(Progress("files", self.finished, self.eta.total, result.source.name,
                                  extra={"eta": self.eta.left(self.finished), "result": result,
                                         "path": result.source}))
        return result

    def _place(self, source: Path, claim: Claim, data: bytes) -> Path:
        """Write ``data`` into the claimed name as :func:`~denoiser.io.write_image` writes a result: never onto an
        input, an existing file only with the overwrite policy, atomically, its hash noted in the claim before
        the rename (a run killed right after it is adopted by the next, not redone)."""
        target = claim.target
        for protected in [source, *self.protected.near(target)]:
            if same_file(target, protected):
                raise ImageWriteError(target, f"would overwrite the input {protected.name}; choose another output "
                                              "name or folder")
        if target.is_dir():
            raise ImageWriteError(target, "is a folder")

        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            note_hash = self.hash_recorder(source, claim)
            with atomic_write(target, replace=claim.overwrite, before_place=note_hash) as temporary:
                temporary.write_bytes(data)
        except FileExistsError as err:  # the name was taken meanwhile (by something outside the manifest)
            raise ImageWriteError(target, "already exists (overwriting was not allowed)") from err
        except OSError as err:
            raise ImageWriteError(target, f"could not write: {reason(err)}") from err
        return target

    def release_claims(self) -> None:
        """Give back the claims of the files in flight: what the manifest held before each stays."""
        if not self.in_flight:
            return
        with contextlib.suppress(OSError, DenoiserError), self.manifest.locked():
            for flight in self.in_flight.values():
                self.manifest.put(flight.result.source, flight.claim.previous)
        self.in_flight.clear()


def iter_ray_batch(
    settings: BatchSettings,
    model: Autoencoder | ExportedModel,
    model_name: str,
    model_path: Path | None,
    cluster: RayCluster | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    files: list[tuple[Path, Path | None]] | None = None,
) -> Iterator[FileResult]:
    """:func:`~denoiser.batch.run.iter_batch` on a Ray cluster: one :class:`FileResult` per file, in the order
    they finish.

    ``model`` is loaded here for its fingerprint; workers load it from ``model_path`` (the same file on a shared
    file system), else by ``model_name``, and refuse a model with another fingerprint. The inputs (and their
    clean references) must be readable from every machine under the same paths (a shared file system); only this
    process writes: the outputs and the manifest. Ray is joined (:class:`RayCluster`) and the workers started
    when the first file needs denoising: a rerun with nothing left to do needs neither.

    Progress: as :func:`~denoiser.batch.run.iter_batch` (stage ``files``, ``done`` counting the files whose result
    is in), without per-tile events; notes (stage ``tiles`` with ``total`` 0) say where the workers run and when
    one is lost, and stage ``workers`` carries ``extra["workers"]``, a
    :class:`~denoiser.batch.ray_worker.WorkerInfo` each, once they are ready.
    """
    run = RayBatchRun.open(settings, model, model_name, on_progress, should_stop, files)
    with batch_session(run), contextlib.ExitStack() as workers:
        yield from run.results(lambda left: _start_workers(workers, cluster or RayCluster(), run, model_path, left))


def _start_workers(stack: contextlib.ExitStack, cluster: RayCluster, run: RayBatchRun, model_path: Path | None,
                   files_left: int) -> WorkerPool:
    """Connect to ``cluster`` and start the batch's workers (no more than ``files_left``), both undone when
    ``stack`` closes; tells where they run (a note, and stage ``workers`` with each
    :class:`~denoiser.batch.ray_worker.WorkerInfo`)."""
    ray = stack.enter_context(connected(cluster))
    plan = plan_workers(ray.cluster_resources(), cluster, run.settings.device)
    pool = WorkerPool(ray, cluster, dataclasses.replace(plan, count=min(plan.count, files_left)))
    stack.callback(pool.close)
    workers = pool.start(model_path, run.model_name, run.fingerprint, run.settings, run.should_stop)
    where = f"Ray: {pool.plan.describe()} on {len({worker.host for worker in workers})} machine(s)"
    run.on_progress(Progress("workers", len(workers), len(workers), where, extra={"workers": workers}))
    run.on_progress(Progress("tiles", 0, 0, where))
    return pool


def run_ray_batch(
    settings: BatchSettings,
    model: Autoencoder | ExportedModel,
    model_name: str,
    model_path: Path | None,
    cluster: RayCluster | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> BatchReport:
    """Run :func:`iter_ray_batch` to the end; returns every file's result and the manifest's path."""
    return batch_report(settings, iter_ray_batch(settings, model, model_name, model_path, cluster, on_progress,
                                                 should_stop))
