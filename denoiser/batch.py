"""Denoise files and folders: one result per file, a failed file never stops the rest, a stopped batch resumes.

Outputs go to a separate folder under a new name (``{stem}_denoised`` by default); writes are atomic, so a
stopped or crashed run leaves no partial file, and no output is ever written over an input.

:func:`iter_batch` (and :func:`run_batch`, which collects its results) is the batch engine the CLI and the
GUI share. It keeps a manifest, ``denoiser-manifest.json``, in the output folder: one entry per input file
(input path and SHA-256, model name and fingerprint, the settings that shape the output, status, output
path, seconds, sigma, and PSNR/SSIM against a clean reference when one is found). The manifest is rewritten
atomically after every file, so it is valid JSON whenever the batch is killed, and running the same batch
again skips every file it records as done with the same input bytes, model and settings whose output file
still exists.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from denoiser.errors import Cancelled, DenoiserError, ImageReadError, UnknownNameError
from denoiser.findings import Finding, assess
from denoiser.inference import TileSettings, denoise_array
from denoiser.io import (
    SUPPORTED_EXTENSIONS,
    Image,
    atomic_write,
    convert_depth,
    find_images,
    read_image,
    to_float,
    write_image,
)
from denoiser.metrics import psnr, ssim
from denoiser.models import Autoencoder
from denoiser.models.blocks import combined_level
from denoiser.progress import Progress, ProgressFn, StopFn, check_stop, ignore_progress
from denoiser.strength import NoiseEstimate, Strength, levels_for

DEFAULT_PATTERN = "{stem}_denoised"
MANIFEST_NAME = "denoiser-manifest.json"
MANIFEST_VERSION = 1

COLLISION_POLICIES = ("unique", "skip", "overwrite")
"""What to do when an output file already exists: number a new name, leave the file alone, or replace it."""

OUTPUT_FORMATS: dict[str, tuple[str | None, int | None]] = {
    "same": (None, None),
    "png": (".png", None),
    "jpeg": (".jpg", None),
    "tiff": (".tif", None),
    "tiff16": (".tif", 16),
    "webp": (".webp", None),
    "bmp": (".bmp", None),
}
"""Output format name -> (file extension, forced bit depth); None keeps the input's extension / depth."""

FORMAT_ALIASES = {"jpg": "jpeg", "tif": "tiff"}

REFERENCE_FOLDER = "clean"
"""Name of the folder a clean reference is looked up in (see :func:`find_reference`)."""


def normalize_format(name: str) -> str:
    """The canonical output format name for ``name`` (``jpg`` -> ``jpeg``, ``tif`` -> ``tiff``)."""
    key = FORMAT_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in OUTPUT_FORMATS:
        raise UnknownNameError("output format", name, [*OUTPUT_FORMATS, *FORMAT_ALIASES])
    return key


@dataclass
class DenoiseSettings:
    """What to do to each file."""

    strength: float | None = None
    """Noise level sigma in 0-255 units; None estimates it per image ("auto")."""
    amount: float = 1.0
    """Multiplies the noise level (auto's estimate or the fixed sigma): 1.0 is 100 %, at most 2.0."""
    luminance: float = 1.0
    """Multiplies the luminance noise level."""
    color: float = 1.0
    """Multiplies the colour noise level."""
    tiles: TileSettings = field(default_factory=TileSettings)
    device: str = "auto"
    pattern: str = DEFAULT_PATTERN
    """Output file name without extension; ``{stem}`` is the input's name without extension."""
    format: str = "same"
    """One of :data:`OUTPUT_FORMATS` (or an alias): ``same`` keeps each input's format and bit depth;
    ``tiff16`` writes 16-bit TIFF whatever the input's depth."""
    quality: int = 95
    """JPEG/WebP quality, 1-100."""
    keep_metadata: bool = True

    def __post_init__(self) -> None:
        self.format = normalize_format(self.format)
        self.strength_setting()  # refuses out-of-range amounts now, not at the first file

    def strength_setting(self) -> Strength:
        """The strength fields as one :class:`~denoiser.strength.Strength`."""
        return Strength(self.strength, self.amount, self.luminance, self.color)

    @property
    def bit_depth(self) -> int | None:
        """The bit depth the format forces (16 for ``tiff16``), None to keep the input's."""
        return OUTPUT_FORMATS[self.format][1]

    def extension_for(self, source: Path) -> str:
        """The output extension for ``source``: the format's, or the input's own for ``same``."""
        return OUTPUT_FORMATS[self.format][0] or source.suffix

    def output_signature(self) -> dict[str, Any]:
        """The settings that shape an output file's pixels, name or encoding, as plain JSON values.

        A file is only skipped as done when its manifest entry holds the same signature. Device and batch
        size are left out: they change the speed, not the result (beyond float rounding).
        """
        return {
            **self.strength_setting().signature(),
            "tile": self.tiles.tile,
            "overlap": self.tiles.overlap,
            "pattern": self.pattern,
            "format": self.format,
            "quality": int(self.quality),
            "keep_metadata": bool(self.keep_metadata),
        }


@dataclass
class BatchSettings(DenoiseSettings):
    """A whole batch: what to denoise, where the results go, and how (the :class:`DenoiseSettings` fields)."""

    inputs: list[Path] = field(default_factory=list)
    """Image files and folders."""
    output: Path | None = None
    """Folder for the results and the manifest (created when missing)."""
    recursive: bool = True
    """Search folders' sub-folders too (their tree is kept under ``output``)."""
    collision: str = "unique"
    """One of :data:`COLLISION_POLICIES`. Whatever the policy, an input is never written over."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.inputs = [Path(p) for p in self.inputs]
        self.output = Path(self.output) if self.output is not None else None
        if self.collision not in COLLISION_POLICIES:
            raise UnknownNameError("collision policy", self.collision, COLLISION_POLICIES)

    def run_options(self) -> dict[str, Any]:
        """The settings that do not shape an output (recorded in the manifest, never compared)."""
        return {"device": self.device, "batch_size": self.tiles.batch_size, "collision": self.collision,
                "recursive": self.recursive}


@dataclass
class FileResult:
    """How one file went."""

    source: Path
    output: Path | None
    status: str
    """``done``, ``failed`` or ``skipped``."""
    message: str = ""
    sigma: float | None = None
    seconds: float = 0.0
    resumed: bool = False
    """Skipped because the manifest records it as done (as opposed to skipped for an existing output)."""
    input_sha256: str | None = None
    reference: Path | None = None
    """The clean reference found for it, if any (see :func:`find_reference`)."""
    metrics: dict[str, float | None] = field(default_factory=dict)
    """``psnr_noisy``, ``ssim_noisy``, ``psnr_denoised``, ``ssim_denoised`` against the reference."""
    reference_note: str = ""
    """Why a reference that was found could not be compared (size differs, unreadable...)."""
    findings: list[dict[str, str]] = field(default_factory=list)
    """Warnings about the result (:class:`~denoiser.findings.Finding` as code, message and advice)."""


@dataclass
class BatchReport:
    """Everything a finished batch did."""

    results: list[FileResult]
    manifest: Path | None

    def count(self, status: str) -> int:
        """How many files ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def done(self) -> int:
        """Files denoised by this run."""
        return self.count("done")

    @property
    def failed(self) -> int:
        """Files that could not be denoised."""
        return self.count("failed")

    @property
    def skipped(self) -> int:
        """Files left alone: done before (resumed) or their output existed (collision policy ``skip``)."""
        return self.count("skipped")


# ----------------------------------------------------------------------------------------------------------
# Denoising one image
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Denoised:
    """One denoised image and what to tell the user about it."""

    image: Image
    sigma: float
    """The typical noise level used (median over the photo, over luminance and colour; 0-255 units)."""
    findings: list[Finding] = field(default_factory=list)
    """Warnings about the result (see :mod:`denoiser.findings`)."""


def denoise_image(
    image: Image,
    model: Autoencoder,
    settings: DenoiseSettings,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    estimate: NoiseEstimate | None = None,
) -> Denoised:
    """Denoise the colour of ``image`` (alpha untouched), with the warnings the result deserves.

    ``estimate`` is the photo's noise map when it was already read (auto strength). The bit depth is kept, or
    raised to 16 when the settings' format forces it, so that a 16-bit output of an 8-bit photo holds the model's
    full precision instead of 8-bit steps.
    """
    # The native uint8/uint16 pixels go in as they are: a float copy of a 24 MP photo would cost 288 MB.
    pixels = image.color_pixels()
    levels, estimate = levels_for(pixels, settings.strength_setting(), estimate)
    if settings.bit_depth == 16 and image.bit_depth == 8:
        # x * 257 / 65535 == x / 255 exactly: the model sees the same values, the result keeps 16 bits.
        image = dataclasses.replace(image, pixels=convert_depth(image.pixels, 16))
        pixels = image.color_pixels()
    cleaned = denoise_array(pixels, model, levels, tiles=settings.tiles, device=settings.device,
                            on_progress=on_progress, should_stop=should_stop)
    np.clip(cleaned, 0.0, 1.0, out=cleaned)
    return Denoised(image.with_color(cleaned), typical_level(levels), assess(pixels, cleaned, estimate))


def typical_level(levels: np.ndarray) -> float:
    """One sigma for a luminance/colour map: the median over the photo of the per-RGB-channel level (the one-level
    equivalent a one-noise-input model is given, :func:`~denoiser.models.blocks.combined_level`)."""
    channels_first = torch.from_numpy(np.ascontiguousarray(levels, dtype=np.float32)).permute(2, 0, 1)[None]
    return float(np.median(combined_level(channels_first).numpy()))


# ----------------------------------------------------------------------------------------------------------
# Output names
# ----------------------------------------------------------------------------------------------------------


def output_path_for(source: Path, out_dir: Path, settings: DenoiseSettings, relative_to: Path | None = None) -> Path:
    """Where the result of ``source`` goes before collisions are resolved: same sub-folder, new name."""
    sub = source.parent.relative_to(relative_to) if relative_to is not None else Path()
    try:
        name = settings.pattern.format(stem=source.stem)
    except (KeyError, IndexError, ValueError) as err:
        raise DenoiserError(f"output name pattern {settings.pattern!r} is invalid ({err}); use {{stem}}") from err
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise DenoiserError(f"output name pattern {settings.pattern!r} gives an invalid name {name!r}")
    return out_dir / sub / f"{name}{settings.extension_for(source)}"


def unique_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path`` itself if free, else ``stem-2``, ``stem-3``... Existing files (inputs included) and the
    resolved paths in ``taken`` count as used."""
    taken = taken or set()
    candidate, number = path, 1
    while candidate.exists() or candidate.resolve() in taken:
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def _failure_message(source: Path, err: BaseException) -> str:
    """A one-line message naming the file and the problem."""
    if isinstance(err, DenoiserError):
        text = str(err)
        return text if str(source) in text or source.name in text else f"{source}: {text}"
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return f"{source}: out of memory ({err})"
    return f"{source}: unexpected {type(err).__name__}: {err}"


# ----------------------------------------------------------------------------------------------------------
# Fingerprints and references
# ----------------------------------------------------------------------------------------------------------


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex; raises ImageReadError naming the file when it cannot be read."""
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise ImageReadError(path, f"cannot read: {err.strerror or err}") from err
    return digest.hexdigest()


def model_fingerprint(model: Autoencoder) -> str:
    """``sha256:`` + hex SHA-256 of the model's family, its config (canonical JSON) and every weight tensor.

    Computed from the loaded model rather than its file, so it is the same for a model wherever its file
    lies (renamed, imported, exported) and changes with any retraining. Each tensor contributes its name,
    dtype, shape and raw bytes, in name order; a few megabytes of weights hash in milliseconds.
    """
    digest = hashlib.sha256()
    config = model.config.to_dict() if hasattr(model.config, "to_dict") else dataclasses.asdict(model.config)
    digest.update(json.dumps({"family": model.family, "config": config}, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"\n{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"


def find_reference(path: str | Path) -> Path | None:
    """The clean reference of a noisy photo, or None: same stem, any supported extension, in a ``clean/``
    folder beside the photo's folder (``X/noisy/a.png`` -> ``X/clean/a.*``) or inside it (``X/a.png`` ->
    ``X/clean/a.*``). A file of the photo's own extension wins; then the first by name. A photo that is
    itself in a ``clean/`` folder has no reference.
    """
    path = Path(path)
    folder = path.parent
    if folder.name == REFERENCE_FOLDER:
        return None
    for candidate_folder in (folder.parent / REFERENCE_FOLDER, folder / REFERENCE_FOLDER):
        if candidate_folder == folder or not candidate_folder.is_dir():
            continue
        matches = sorted(
            p for p in candidate_folder.iterdir()
            if p.stem == path.stem and p.suffix.lower() in SUPPORTED_EXTENSIONS and p.is_file()
        )
        if matches:
            same_ext = [p for p in matches if p.suffix.lower() == path.suffix.lower()]
            return (same_ext or matches)[0]
    return None


def _finite(value: float) -> float | None:
    """JSON has no infinity (identical images have infinite PSNR): such values are stored as None."""
    return round(value, 6) if math.isfinite(value) else None


def reference_metrics(noisy: Image, denoised: Image, reference: Image) -> tuple[dict[str, float | None], str]:
    """PSNR (dB) and SSIM of the noisy and the denoised colour against the reference, on a 0-1 scale.

    Returns the figures and an empty note, or no figures and a note saying why they cannot be compared
    (size or channel count differ). The denoised image is measured as computed, before encoding.
    """
    if (reference.width, reference.height) != (noisy.width, noisy.height):
        return {}, (f"reference is {reference.width}x{reference.height}, the photo {noisy.width}x{noisy.height}: "
                    "not compared")
    ref = to_float(reference.color_pixels())
    if ref.shape[2] != noisy.color_pixels().shape[2]:
        return {}, (f"reference has {ref.shape[2]} colour channel(s), the photo {noisy.color_pixels().shape[2]}: "
                    "not compared")
    figures: dict[str, float | None] = {}
    for label, image in (("noisy", noisy), ("denoised", denoised)):
        values = to_float(image.color_pixels())
        figures[f"psnr_{label}"] = _finite(psnr(ref, values, peak=1.0))
        figures[f"ssim_{label}"] = _finite(ssim(ref, values, peak=1.0))
    return figures, ""


# ----------------------------------------------------------------------------------------------------------
# The manifest
# ----------------------------------------------------------------------------------------------------------


def manifest_key(path: Path) -> str:
    """The manifest's key for an input: its absolute, resolved path."""
    return str(Path(path).resolve())


class Manifest:
    """The batch record in an output folder: ``{"format", "version", "files": {input path: entry}}``.

    Every :meth:`save` rewrites the whole file atomically (temporary file, fsync, rename), so a batch killed
    at any moment leaves either the previous or the new manifest, always valid JSON.
    """

    def __init__(self, path: Path, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = entries or {}

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        """The manifest in ``folder`` (empty when there is none). A file that is not a Denoiser manifest
        raises DenoiserError naming it rather than being silently replaced."""
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DenoiserError(f"{path}: the batch manifest cannot be read ({err}); move it away to start "
                                "afresh") from err
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict) or int(data.get("version", 0)) > MANIFEST_VERSION:
            raise DenoiserError(f"{path}: not a batch manifest this version of Denoiser understands; move it "
                                "away to start afresh")
        return cls(path, {str(k): v for k, v in files.items() if isinstance(v, dict)})

    def get(self, source: Path) -> dict[str, Any] | None:
        """The entry for input ``source``, if any."""
        return self.entries.get(manifest_key(source))

    def outputs(self) -> set[Path]:
        """The resolved output paths the manifest knows of (so they are never taken as inputs)."""
        return {Path(e["output"]).resolve() for e in self.entries.values() if isinstance(e.get("output"), str)}

    def done_output(self, source: Path, sha256: str, fingerprint: str, signature: dict[str, Any]) -> Path | None:
        """The output of ``source`` when the manifest says it is done from the same bytes, model and settings
        and that output file still exists; else None."""
        entry = self.get(source)
        if (
            entry is None
            or entry.get("status") != "done"
            or entry.get("input_sha256") != sha256
            or entry.get("model_fingerprint") != fingerprint
            or entry.get("settings") != signature
            or not isinstance(entry.get("output"), str)
        ):
            return None
        output = Path(entry["output"])
        return output if output.is_file() else None

    def record(self, result: FileResult, model_name: str, fingerprint: str, signature: dict[str, Any],
               options: dict[str, Any] | None = None) -> None:
        """Put ``result`` in the manifest (replacing the input's previous entry); call :meth:`save` after.

        ``signature`` (:meth:`DenoiseSettings.output_signature`) is what a rerun compares; ``options``
        (:meth:`BatchSettings.run_options`) is recorded for the record only.
        """
        self.entries[manifest_key(result.source)] = {
            "input": str(result.source.resolve()),
            "input_sha256": result.input_sha256,
            "model": model_name,
            "model_fingerprint": fingerprint,
            "settings": signature,
            "options": dict(options or {}),
            "status": result.status,
            "output": str(result.output.resolve()) if result.output is not None else None,
            "seconds": round(result.seconds, 3),
            "sigma": _finite(result.sigma) if result.sigma is not None else None,
            "message": result.message,
            "reference": str(result.reference.resolve()) if result.reference is not None else None,
            "metrics": dict(result.metrics),
            "reference_note": result.reference_note,
            "findings": list(result.findings),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self) -> None:
        """Write the manifest atomically (the folder is created when missing)."""
        payload = {"format": "denoiser-batch-manifest", "version": MANIFEST_VERSION, "files": self.entries}
        # allow_nan=False: the file must stay valid JSON for any reader, not just Python's.
        text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path) as temporary:
            temporary.write_text(text, encoding="utf-8")


# ----------------------------------------------------------------------------------------------------------
# The batch
# ----------------------------------------------------------------------------------------------------------


def _is_under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def collect_inputs(settings: BatchSettings, manifest: Manifest | None = None) -> list[tuple[Path, Path | None]]:
    """The image files of the batch, each once, as (file, the folder its tree is kept relative to or None).

    Left out: files inside the output folder when that folder lies inside an input folder, and files the
    manifest records as outputs, so a rerun never denoises its own results. A missing input raises
    ImageReadError.
    """
    out_dir = settings.output.resolve() if settings.output is not None else None
    skip = manifest.outputs() if manifest is not None else set()
    found: dict[Path, Path | None] = {}
    seen: set[Path] = set()  # resolved paths: a file named twice (itself and through its folder) runs once
    for item in settings.inputs:
        root = Path(item)
        is_folder = root.is_dir()
        # An output folder inside an input folder holds results, not photos to denoise again.
        nested_output = None
        if is_folder and out_dir is not None and out_dir != root.resolve() and _is_under(out_dir, root.resolve()):
            nested_output = out_dir
        for file in find_images([root], recursive=settings.recursive):
            resolved = file.resolve()
            if resolved in skip or resolved in seen:
                continue
            if nested_output is not None and _is_under(resolved, nested_output):
                continue
            seen.add(resolved)
            found[file] = root if is_folder else None
    return list(found.items())


class _InputFolders:
    """The batch's inputs by folder, so each write checks only the inputs that could share its folder.

    write_image compares its target with every protected path (following links); with all the inputs of
    a 10,000-photo batch that would be 10^8 comparisons. An input is filed under its own folder and under
    the folder its links resolve to, so an output beside the real file is still checked against it. (A hard
    link elsewhere needs no check: the atomic write replaces the output's directory entry, not the shared
    data.)
    """

    def __init__(self, files: list[Path]) -> None:
        self.by_folder: dict[Path, list[Path]] = {}
        for file in files:
            for folder in {file.parent.absolute(), file.resolve().parent}:
                self.by_folder.setdefault(folder, []).append(file)

    def near(self, target: Path) -> list[Path]:
        """The inputs in ``target``'s folder (by path or by identity: links, case-insensitive names)."""
        parent = target.parent.absolute()
        found: list[Path] = []
        for folder, files in self.by_folder.items():
            if folder == parent or _same_folder(folder, parent):
                found.extend(files)
        return found


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # a folder that does not exist (yet) holds no input
        return False


class _Eta:
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
    on_progress = on_progress or ignore_progress
    out_dir = settings.output
    manifest = Manifest.load(out_dir)
    if files is None:
        files = collect_inputs(settings, manifest)
    fingerprint = model_fingerprint(model)
    signature = json.loads(json.dumps(settings.output_signature()))  # as it reads back from the manifest
    protected = _InputFolders([source for source, _ in files])
    taken: set[Path] = set()  # outputs of this run: never reused by another input, whatever the policy
    eta = _Eta(len(files))

    try:
        for index, (source, root) in enumerate(files):
            check_stop(should_stop)
            yield _batch_step(index, source, root, settings, model, model_name, manifest, fingerprint, signature,
                              taken, protected, eta, on_progress, should_stop)
    except Cancelled:
        # Every finished file is in the manifest already; saving once more makes sure it exists at all.
        manifest.save()
        raise


def _batch_step(
    index: int,
    source: Path,
    root: Path | None,
    settings: BatchSettings,
    model: Autoencoder,
    model_name: str,
    manifest: Manifest,
    fingerprint: str,
    signature: dict[str, Any],
    taken: set[Path],
    protected: _InputFolders,
    eta: _Eta,
    on_progress: ProgressFn,
    should_stop: StopFn | None,
) -> FileResult:
    """One file of :func:`iter_batch`: skip it as done, or denoise it; record it and report progress."""
    total = eta.total
    on_progress(Progress("files", index, total, source.name, extra={"eta": eta.left(index), "path": source}))
    started = time.monotonic()

    def tile_progress(event: Progress) -> None:
        if not event.total:  # a note from the tiler (out-of-memory retry): pass its message on
            on_progress(Progress("tiles", 0, 0, event.message, extra={"file": index, "path": source}))
            return
        left = eta.left(index, event.done / event.total, time.monotonic() - started)
        on_progress(Progress("tiles", event.done, event.total, source.name,
                             extra={"file": index, "path": source, "eta": left}))

    result = FileResult(source, None, "failed")
    try:
        result.input_sha256 = file_sha256(source)
        previous = manifest.done_output(source, result.input_sha256, fingerprint, signature)
        if previous is not None:
            entry = manifest.get(source) or {}
            result = dataclasses.replace(result, output=previous, status="skipped", resumed=True,
                                         message=f"already done: {previous}", sigma=entry.get("sigma"))
            taken.add(previous.resolve())
        else:
            result = _denoise_one(source, root, settings, model, taken, protected, result, tile_progress,
                                  should_stop)
            if result.status == "done":
                eta.add(time.monotonic() - started)
    except Cancelled:
        raise
    except Exception as err:  # noqa: BLE001 - one file's failure, foreseen or not, must not stop the batch
        result.status, result.output, result.message = "failed", None, _failure_message(source, err)
    result.seconds = time.monotonic() - started
    if not result.resumed:  # a resumed file keeps its entry: it says how and when it was done
        manifest.record(result, model_name, fingerprint, signature, settings.run_options())
        manifest.save()
    on_progress(Progress("files", index + 1, total, source.name,
                         extra={"eta": eta.left(index + 1), "result": result, "path": source}))
    return result


def _denoise_one(
    source: Path,
    root: Path | None,
    settings: BatchSettings,
    model: Autoencoder,
    taken: set[Path],
    protected: _InputFolders,
    result: FileResult,
    on_progress: ProgressFn,
    should_stop: StopFn | None,
) -> FileResult:
    """Resolve the output name by the collision policy, denoise, write, measure against a reference."""
    assert settings.output is not None
    base = output_path_for(source, settings.output, settings, root)
    overwrite = False
    if base.resolve() in taken:
        target = unique_path(base, taken)  # another input of this run already wrote there
    elif base.exists() and settings.collision == "skip":
        return dataclasses.replace(result, output=base, status="skipped",
                                   message=f"{base} already exists (collision policy: skip)")
    elif base.exists() and settings.collision == "unique":
        target = unique_path(base, taken)
    else:
        target, overwrite = base, settings.collision == "overwrite"
    image = read_image(source)
    outcome = denoise_image(image, model, settings, on_progress, should_stop)
    denoised = outcome.image
    # protected: whatever the policy, write_image refuses to replace any input of the batch.
    written = write_image(target, denoised, quality=settings.quality, keep_metadata=settings.keep_metadata,
                          bit_depth=settings.bit_depth, protected=protected.near(target), overwrite=overwrite)
    taken.add(written.resolve())
    result = dataclasses.replace(result, output=written, status="done", sigma=float(outcome.sigma),
                                 findings=[f.to_dict() for f in outcome.findings])
    reference = find_reference(source)
    if reference is not None:
        result.reference = reference
        try:
            result.metrics, result.reference_note = reference_metrics(image, denoised, read_image(reference))
        except Exception as err:  # noqa: BLE001 - a bad reference must not fail a file that was denoised
            result.reference_note = f"reference not compared: {_failure_message(reference, err)}"
    return result


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
