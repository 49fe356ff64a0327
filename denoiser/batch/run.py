"""The batch loop: every input denoised once, a failed file never stops the rest, a stopped batch resumes.

Outputs go to a separate folder under a new name (``{stem}_denoised`` by default); writes are atomic, so a
stopped or crashed run leaves no partial file, and no output is ever written over an input. :func:`iter_batch`
(and :func:`run_batch`, which collects its results) is the batch engine the CLI and the app share; what one run
holds (manifest, fingerprint, names taken, the inputs by folder, the ETA) is one :class:`BatchRun`.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from denoiser.batch.fingerprints import file_sha256, model_fingerprint
from denoiser.batch.inputs import InputFolders, collect_inputs
from denoiser.batch.manifest import MANIFEST_NAME, Manifest
from denoiser.batch.naming import output_path_for, unique_path
from denoiser.batch.references import find_reference, reference_metrics
from denoiser.batch.results import BatchReport, FileResult
from denoiser.batch.settings import BatchSettings
from denoiser.batch.single import denoise_image
from denoiser.errors import Cancelled, DenoiserError
from denoiser.io import read_image, write_image
from denoiser.models import Autoencoder
from denoiser.progress import Progress, ProgressFn, StopFn, check_stop, ignore_progress


def failure_message(source: Path, err: BaseException) -> str:
    """A one-line message naming the file and the problem."""
    if isinstance(err, DenoiserError):
        text = str(err)
        return text if str(source) in text or source.name in text else f"{source}: {text}"
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return f"{source}: out of memory ({err})"
    return f"{source}: unexpected {type(err).__name__}: {err}"


class Eta:
    """Seconds left, from the average time of the files denoised so far (files skipped cost nothing)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.measured_seconds = 0.0
        self.measured_files = 0

    def add(self, seconds: float) -> None:
        """A file was denoised in ``seconds``."""
        self.measured_seconds += seconds
        self.measured_files += 1

    def left(self, finished: int, current_fraction: float = 0.0, current_seconds: float = 0.0) -> float | None:
        """Estimate with ``finished`` files behind and the current one ``current_fraction`` through."""
        units = self.measured_files + current_fraction
        if units <= 0.02:  # too little seen to guess; "unknown" beats a wild number
            return None
        per_file = (self.measured_seconds + current_seconds) / units
        return max(0.0, (self.total - finished - current_fraction) * per_file)


@dataclass
class BatchRun:
    """One run of a batch: its settings and model, and what it keeps from file to file."""

    settings: BatchSettings
    model: Autoencoder
    model_name: str
    files: list[tuple[Path, Path | None]]
    """(input file, the folder its tree is kept relative to or None), from :func:`collect_inputs`."""
    manifest: Manifest
    on_progress: ProgressFn = ignore_progress
    should_stop: StopFn | None = None
    fingerprint: str = ""
    signature: dict[str, Any] = field(default_factory=dict)
    taken: set[Path] = field(default_factory=set)
    """Outputs of this run: never reused by another input, whatever the collision policy."""
    protected: InputFolders = field(init=False)
    eta: Eta = field(init=False)

    def __post_init__(self) -> None:
        if self.settings.output is None:
            raise DenoiserError("no output folder given for the batch")
        self.fingerprint = self.fingerprint or model_fingerprint(self.model)
        # As it reads back from the manifest, so that a rerun's comparison is exact.
        self.signature = json.loads(json.dumps(self.settings.output_signature()))
        self.protected = InputFolders([source for source, _ in self.files])
        self.eta = Eta(len(self.files))

    @property
    def output(self) -> Path:
        """The batch's output folder."""
        assert self.settings.output is not None
        return self.settings.output

    def step(self, index: int) -> FileResult:
        """File ``index``: skip it as done, or denoise it; record it in the manifest and report progress."""
        source, root = self.files[index]
        total = self.eta.total
        self.on_progress(Progress("files", index, total, source.name,
                                  extra={"eta": self.eta.left(index), "path": source}))
        started = time.monotonic()

        def tile_progress(event: Progress) -> None:
            if not event.total:  # a note from the tiler (out-of-memory retry): pass its message on
                self.on_progress(Progress("tiles", 0, 0, event.message, extra={"file": index, "path": source}))
                return
            left = self.eta.left(index, event.done / event.total, time.monotonic() - started)
            self.on_progress(Progress("tiles", event.done, event.total, source.name,
                                      extra={"file": index, "path": source, "eta": left}))

        result = FileResult(source, None, "failed")
        try:
            result.input_sha256 = file_sha256(source)
            previous = self.manifest.done_output(source, result.input_sha256, self.fingerprint, self.signature)
            if previous is not None:
                entry = self.manifest.get(source) or {}
                result = dataclasses.replace(result, output=previous, status="skipped", resumed=True,
                                             message=f"already done: {previous}", sigma=entry.get("sigma"))
                self.taken.add(previous.resolve())
            else:
                result = self._denoise(source, root, result, tile_progress)
                if result.status == "done":
                    self.eta.add(time.monotonic() - started)
        except Cancelled:
            raise
        except Exception as err:  # noqa: BLE001 - one file's failure, foreseen or not, must not stop the batch
            result.status, result.output, result.message = "failed", None, failure_message(source, err)
        result.seconds = time.monotonic() - started
        if not result.resumed:  # a resumed file keeps its entry: it says how and when it was done
            self.manifest.record(result, self.model_name, self.fingerprint, self.signature,
                                 self.settings.run_options())
            self.manifest.save()
        self.on_progress(Progress("files", index + 1, total, source.name,
                                  extra={"eta": self.eta.left(index + 1), "result": result, "path": source}))
        return result

    def _denoise(self, source: Path, root: Path | None, result: FileResult, on_progress: ProgressFn) -> FileResult:
        """Resolve the output name by the collision policy, denoise, write, measure against a reference."""
        settings = self.settings
        base = output_path_for(source, self.output, settings, root)
        overwrite = False
        if base.resolve() in self.taken:
            target = unique_path(base, self.taken)  # another input of this run already wrote there
        elif base.exists() and settings.collision == "skip":
            return dataclasses.replace(result, output=base, status="skipped",
                                       message=f"{base} already exists (collision policy: skip)")
        elif base.exists() and settings.collision == "unique":
            target = unique_path(base, self.taken)
        else:
            target, overwrite = base, settings.collision == "overwrite"
        image = read_image(source)
        outcome = denoise_image(image, self.model, settings, on_progress, self.should_stop)
        denoised = outcome.image
        # protected: whatever the policy, write_image refuses to replace any input of the batch.
        written = write_image(target, denoised, quality=settings.quality, keep_metadata=settings.keep_metadata,
                              bit_depth=settings.bit_depth, protected=self.protected.near(target),
                              overwrite=overwrite)
        self.taken.add(written.resolve())
        result = dataclasses.replace(result, output=written, status="done", sigma=float(outcome.sigma),
                                     findings=[f.to_dict() for f in outcome.findings])
        reference = find_reference(source)
        if reference is not None:
            result.reference = reference
            try:
                result.metrics, result.reference_note = reference_metrics(image, denoised, read_image(reference))
            except Exception as err:  # noqa: BLE001 - a bad reference must not fail a file that was denoised
                result.reference_note = f"reference not compared: {failure_message(reference, err)}"
        return result


def iter_batch(
    settings: BatchSettings,
    model: Autoencoder,
    model_name: str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    files: list[tuple[Path, Path | None]] | None = None,
) -> Iterator[FileResult]:
    """Denoise every image of the batch; yields one :class:`FileResult` per file, in order.

    Progress events: stage ``files`` (``done`` of ``total`` files; sent before each file with the file name,
    and after it with ``extra["result"]``, the FileResult) and stage ``tiles`` (tile batches of the current
    file; ``extra["file"]`` is its index). Both carry ``extra["eta"]``: estimated seconds left for the whole
    batch, or None while unknown.

    ``files`` is :func:`collect_inputs`' answer when the caller already has it. A file that fails is
    reported and the batch goes on; ``should_stop`` is polled before each file and each tile batch, and on
    stop :class:`Cancelled` is raised (the manifest already holds every finished file).
    """
    if settings.output is None:
        raise DenoiserError("no output folder given for the batch")
    manifest = Manifest.load(settings.output)
    if files is None:
        files = collect_inputs(settings, manifest)
    run = BatchRun(settings, model, model_name, files, manifest, on_progress or ignore_progress, should_stop)
    try:
        for index in range(len(files)):
            check_stop(should_stop)
            yield run.step(index)
    except Cancelled:
        # Every finished file is in the manifest already; saving once more makes sure it exists at all.
        manifest.save()
        raise


def run_batch(
    settings: BatchSettings,
    model: Autoencoder,
    model_name: str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> BatchReport:
    """Run :func:`iter_batch` to the end; returns every file's result and the manifest's path."""
    results = list(iter_batch(settings, model, model_name, on_progress, should_stop))
    assert settings.output is not None
    manifest = settings.output / MANIFEST_NAME
    return BatchReport(results, manifest if manifest.is_file() else None)
