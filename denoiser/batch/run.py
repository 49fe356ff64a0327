"""The batch loop: every input denoised once, a failed file never stops the rest, a stopped batch resumes.

Outputs go to a separate folder under a new name (``{stem}_denoised`` by default); writes are atomic, so a
stopped or crashed run leaves no partial file, and no output is ever written over an input. :func:`iter_batch`
(and :func:`run_batch`, which collects its results) is the batch engine the CLI and the app share; what one run
holds (manifest, fingerprint, names taken, the inputs by folder, the ETA) is one :class:`BatchRun`, and what comes
before a batch's first file and after its last is :func:`batch_session`, wherever the files are denoised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from denoiser.batch.failures import failure_message, folder_refuses_writes, os_error_in
from denoiser.batch.fingerprints import file_sha256
from denoiser.batch.inputs import InputFolders, collect_inputs
from denoiser.batch.manifest import MANIFEST_NAME, Manifest, new_owner, now_text, owner_is_live, register_run
from denoiser.batch.naming import check_name_length, output_path_for, unique_path
from denoiser.batch.references import compare_with_reference
from denoiser.batch.results import BatchReport, FileResult
from denoiser.batch.settings import BatchSettings, DenoiseSettings, setting
from denoiser.batch.single import Denoised, denoise_image
from denoiser.errors import Cancelled, DenoiserError, SettingsChanged
from denoiser.exported import ExportedModel
from denoiser.inference import resolve_device
from denoiser.io import SUPPORTED_EXTENSIONS, Image, identify_format, read_image, what_writing_loses, write_image
from denoiser.model_identity import model_fingerprint
from denoiser.progress import Progress, ProgressFn, StopFn, check_stop, ignore_progress

if TYPE_CHECKING:
    from denoiser.models import Autoencoder

Run = TypeVar("Run", bound="BatchRun")


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
    model: Autoencoder | ExportedModel
    model_name: str
    files: list[tuple[Path, Path | None]]
    """(input file, the folder its tree is kept relative to or None), from :func:`collect_inputs`."""
    manifest: Manifest
    on_progress: ProgressFn = ignore_progress
    should_stop: StopFn | None = None
    fingerprint: str = field(init=False)
    signature: dict[str, Any] = field(init=False)
    taken: set[Path] = field(default_factory=set)
    """Outputs of this run: never reused by another input, whatever the collision policy."""
    protected: InputFolders = field(init=False)
    eta: Eta = field(init=False)
    run_id: str = field(default_factory=lambda: secrets.token_hex(8))
    owner: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        if self.settings.output is None:
            raise DenoiserError("no output folder given for the batch")
        self.fingerprint = model_fingerprint(self.model)
        # As it reads back from the manifest, so that a rerun's comparison is exact.
        self.signature = json.loads(json.dumps(self.settings.output_signature()))
        self.protected = InputFolders([source for source, _ in self.files])
        self.eta = Eta(len(self.files))
        self.owner = new_owner(self.run_id)

    @classmethod
    def open(cls: type[Run], settings: BatchSettings, model: Autoencoder | ExportedModel, model_name: str,
             on_progress: ProgressFn | None, should_stop: StopFn | None,
             files: list[tuple[Path, Path | None]] | None) -> Run:
        """A run over the output folder's manifest and ``files`` (None: :func:`collect_inputs` finds them)."""
        if settings.output is None:
            raise DenoiserError("no output folder given for the batch")
        manifest = Manifest.load(settings.output)
        files = collect_inputs(settings, manifest) if files is None else files
        return cls(settings, model, model_name, files, manifest, on_progress or ignore_progress, should_stop)

    @property
    def output(self) -> Path:
        """The batch's output folder."""
        assert self.settings.output is not None
        return self.settings.output

    def step(self, index: int) -> FileResult:
        """File ``index``: skip it as done (or as another run's), or claim, denoise and record it; report progress."""
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
        claim: Claim | None = None
        record = True
        try:
            result.input_sha256 = file_sha256(source)
            with self.manifest.locked():
                decided = self._decide(source, root, result)
            if isinstance(decided, Claim):
                claim = decided
                result = self._denoise(source, claim, result, tile_progress)
                if result.status == "done":
                    self.eta.add(time.monotonic() - started)
            else:
                result, record = decided
        except (Cancelled, KeyboardInterrupt):  # a cancel, or Ctrl+C in the command line
            if claim is not None:
                with self.manifest.locked():
                    self.manifest.put(source, claim.previous)  # the claim goes; what was there before stays
            raise
        except Exception as err:  # noqa: BLE001 - one file's failure, foreseen or not, must not stop the batch
            result.status, result.output, result.message = "failed", None, failure_message(source, err)
            if folder_refuses_writes(err):
                self._stop_for(err, source, claim)
        result.seconds = time.monotonic() - started
        if record:
            with self.manifest.locked():
                self.manifest.record(result, self.model_name, self.fingerprint, self.signature,
                                     self.settings.run_options(), claim.output_sha256 if claim else None)
        self.on_progress(Progress("files", index + 1, total, source.name,
                                  extra={"eta": self.eta.left(index + 1), "result": result, "path": source}))
        return result

    def _stop_for(self, err: BaseException, source: Path, claim: Claim | None) -> NoReturn:
        """The output folder takes no more writes (disk full, read-only): every later file would fail the same
        way, so the batch stops here, saying where and what to do."""
        if claim is not None:
            with contextlib.suppress(OSError, DenoiserError), self.manifest.locked():
                self.manifest.put(source, claim.previous)
        os_error = os_error_in(err)
        what = os_error.strerror if os_error is not None and os_error.strerror else str(err)
        folder = claim.target.parent if claim is not None else self.output
        done = self.eta.measured_files
        raise DenoiserError(f"{folder}: {what} while writing the result of {source.name}; nothing more can be "
                            f"written there. The {done} file(s) denoised so far are complete. Free some space (or "
                            "choose another output folder) and run the same command again to finish the rest")

    def _decide(self, source: Path, root: Path | None, result: FileResult) -> Claim | tuple[FileResult, bool]:
        """Under the manifest's lock: what to do with ``source``. A claim on it (and its output name) to denoise
        it, or a finished result and whether to record it."""
        manifest = self.manifest
        entry = manifest.get(source)
        if entry is not None and entry.get("status") == "running":
            if owner_is_live(entry.get("owner", {})):
                owner = entry.get("owner", {})
                return dataclasses.replace(result, status="skipped", message=(
                    f"being denoised by another run (process {owner.get('pid')} on {owner.get('host')})")), False
            entry = self._settle_stale_claim(source, entry)
        assert result.input_sha256 is not None
        previous = manifest.done_output(source, result.input_sha256, self.fingerprint, self.signature)
        if previous is not None:
            entry = manifest.get(source) or {}
            self.taken.add(previous.resolve())
            return dataclasses.replace(result, output=previous, status="skipped", resumed=True,
                                       message=f"already done: {previous}", sigma=entry.get("sigma")), False
        base = output_path_for(source, self.output, self.settings, root, identify_format(source))
        check_name_length(base)
        taken = self.taken | manifest.reserved_outputs()
        overwrite = False
        if base.resolve() in taken:
            target = unique_path(base, taken)  # another input (of this run or a concurrent one) has this name
        elif base.exists() and self.settings.collision == "skip":
            return dataclasses.replace(result, output=base, status="skipped",
                                       message=f"{base} already exists (collision policy: skip)"), True
        elif base.exists() and self.settings.collision == "unique":
            target = unique_path(base, taken)
        else:
            target, overwrite = base, self.settings.collision == "overwrite"
        check_name_length(target)
        self.taken.add(target.resolve())
        claim = Claim(target, overwrite, entry)
        manifest.put(source, {
            "status": "running", "owner": self.owner, "input": str(source.resolve()),
            "input_sha256": result.input_sha256, "model": self.model_name,
            "model_fingerprint": self.fingerprint, "settings": self.signature, "output": str(target.resolve()),
            "output_sha256": None, "previous": entry,
        })
        return claim

    def _settle_stale_claim(self, source: Path, claim: dict[str, Any]) -> dict[str, Any] | None:
        """A claim whose process died: delete the temporary files it left, adopt its output when the file there
        is the one it encoded (killed after the rename, before recording it), else go back to the entry before
        it. Returns the entry now in force."""
        output = claim.get("output")
        if isinstance(output, str):
            target = Path(output)
            for temporary in target.parent.glob(f".{target.stem[:100]}.tmp-*{target.suffix}"):
                with contextlib.suppress(OSError):
                    temporary.unlink()
            expected = claim.get("output_sha256")
            if expected and target.is_file() and file_sha256(target) == expected:
                adopted = {key: value for key, value in claim.items() if key not in ("owner", "previous")}
                adopted.update(status="done", message="finished by an interrupted run", finished=now_text(),
                               sigma=None, seconds=None, findings=[], metrics={}, reference=None,
                               reference_note="", options={})
                self.manifest.put(source, adopted)
                return adopted
        previous = claim.get("previous")
        self.manifest.put(source, previous)
        return previous

    def hash_recorder(self, source: Path, claim: Claim) -> Callable[[Path], None]:
        """What to call with an output's finished temporary file just before it takes its name: its hash goes into
        the claim and the manifest, so that a run killed right after the rename is adopted by the next, not
        redone."""

        def note_hash(temporary: Path) -> None:
            claim.output_sha256 = file_sha256(temporary)
            with self.manifest.locked():
                entry = dict(self.manifest.get(source) or {})
                if entry.get("status") == "running" and entry.get("owner") == self.owner:
                    entry["output_sha256"] = claim.output_sha256
                    self.manifest.put(source, entry)

        return note_hash

    def _denoise(self, source: Path, claim: Claim, result: FileResult, on_progress: ProgressFn) -> FileResult:
        """Denoise into the claimed name, write, measure against a reference."""
        settings = self.settings
        image = read_image(source)
        outcome = denoise_image(image, self.model, settings, on_progress, self.should_stop)
        denoised = outcome.image

        # protected: whatever the policy, write_image refuses to replace any input of the batch.
        written = write_image(claim.target, denoised, quality=settings.quality,
                              keep_metadata=settings.keep_metadata, bit_depth=settings.bit_depth,
                              protected=self.protected.near(claim.target), overwrite=claim.overwrite,
                              before_place=self.hash_recorder(source, claim))
        result = dataclasses.replace(result, output=written, status="done", sigma=float(outcome.sigma),
                                     findings=file_findings(source, image, outcome, settings, written.name))
        result.reference, result.metrics, result.reference_note = compare_with_reference(source, image, denoised)
        return result


def file_findings(source: Path, image: Image, outcome: Denoised, settings: DenoiseSettings,
                  output_name: str) -> list[dict[str, Any]]:
    """What to tell about one denoised file: the result's findings, and a photo whose content is another format
    than its extension says (kept in its real format)."""
    findings = [f.to_dict() for f in outcome.findings]
    named = SUPPORTED_EXTENSIONS.get(source.suffix.lower())
    if settings.format == "same" and image.format != named:
        findings.append({"code": "format_kept", "message": f"{source.name} holds a {image.format} image, not "
                         f"the {named} its extension names: written as {image.format}, {output_name}.",
                         "advice": "Rename the photo to match its format."})
    for lost in what_writing_loses(outcome.image, output_name, settings.bit_depth):
        findings.append({"code": "lost_in_writing", "message": f"In {output_name}, {lost}.",
                         "advice": "Write a format that holds it (float TIFF: --format same or .tif; alpha: PNG, "
                                   "TIFF, WebP)."})
    return findings


@dataclass
class Claim:
    """This run's hold on one input: the output name it reserved and what the manifest said before."""

    target: Path
    overwrite: bool
    previous: dict[str, Any] | None
    output_sha256: str | None = None


def settings_changes(manifest: Manifest, files: list[tuple[Path, Path | None]], model_name: str,
                     fingerprint: str, signature: dict[str, Any]) -> tuple[list[Path], list[str]]:
    """The inputs the manifest says were done, output still there, with another model or other settings; and
    what differs, in words (``strength 20 (now 30)``)."""
    changed: list[Path] = []
    differences: dict[str, None] = {}
    for source, _ in files:
        entry = manifest.get(source)
        if not entry or entry.get("status") != "done" or not isinstance(entry.get("output"), str) \
                or not Path(entry["output"]).is_file():
            continue
        before = entry.get("settings") or {}
        what = [f"{key} {setting(before, key)} (now {setting(signature, key)})"
                for key in sorted({*before, *signature}) if setting(before, key) != setting(signature, key)]
        if entry.get("model_fingerprint") != fingerprint:
            old = entry.get("model")
            what.insert(0, f"model {old} (now {model_name})" if old != model_name
                        else f"another version of model {model_name}")
        if what:
            changed.append(source)
            differences.update(dict.fromkeys(what))
    return changed, list(differences)


def iter_batch(
    settings: BatchSettings,
    model: Autoencoder | ExportedModel,
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
    reported and the batch goes on; ``should_stop`` is polled before each file, each tile batch and, within a tile,
    between the network's layers, and on stop :class:`Cancelled` is raised (the manifest already holds every
    finished file).
    """
    run = BatchRun.open(settings, model, model_name, on_progress, should_stop, files)
    resolve_device(settings.device)  # a device this machine lacks fails once, here, not once per file
    with batch_session(run):
        for index in range(len(run.files)):
            check_stop(should_stop)
            yield run.step(index)


@contextlib.contextmanager
def batch_session(run: BatchRun) -> Iterator[None]:
    """What comes before a batch's first file and after its last, wherever its files are denoised: a stop when the
    manifest holds files done with other settings (unless ``redo``), stale temporaries removed, the run registered
    as live, and at the end the journal folded into the manifest."""
    settings, manifest = run.settings, run.manifest
    if not settings.redo:
        changed, differences = settings_changes(manifest, run.files, run.model_name, run.fingerprint, run.signature)
        if changed:
            raise SettingsChanged(settings.output, changed, differences)
    with manifest.locked():
        manifest.remove_stale_temporaries()
    register_run(run.run_id, True)
    finished = False
    try:
        yield
        finished = True
    finally:
        register_run(run.run_id, False)
        # Fold the journal into the snapshot: also when cancelled, so that the manifest exists at all. When the
        # batch stopped on an error, that error is the one to tell (the journal keeps every entry anyway).
        try:
            manifest.compact()
        except DenoiserError:
            if finished:
                raise


def batch_report(settings: BatchSettings, results: Iterator[FileResult]) -> BatchReport:
    """A batch's ``results`` (from :func:`iter_batch` or the Ray batch's), run to the end, with the manifest's path."""
    collected = list(results)
    assert settings.output is not None
    manifest = settings.output / MANIFEST_NAME
    return BatchReport(collected, manifest if manifest.is_file() else None)


def run_batch(
    settings: BatchSettings,
    model: Autoencoder | ExportedModel,
    model_name: str,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> BatchReport:
    """Run :func:`iter_batch` to the end; returns every file's result and the manifest's path."""
    return batch_report(settings, iter_batch(settings, model, model_name, on_progress, should_stop))
