"""The ``denoiser`` command: the top-level parser and dispatch, and the ``denoise`` and ``estimate-noise`` commands.

The other sub-commands live in their own modules (:mod:`~denoiser.models_cli`, :mod:`~denoiser.train_cli`,
:mod:`~denoiser.estimator_cli`, :mod:`~denoiser.bench`); what they share is in :mod:`~denoiser.cli_common`,
with the conventions every command keeps (results on stdout, the rest on stderr; ``-q``/``-v``; bars only at a
terminal; a reader that goes away ends a command quietly).

Every expected failure is a :class:`~denoiser.errors.DenoiserError` and is printed as one line naming the
file and the problem, never as a traceback. Exit status: 0 all good, 1 some files failed, 2 nothing done.

Only light modules are imported at the top (no torch, and nothing that imports it): ``--help``, ``--version``
and every parse error answer in a fraction of a second, and each command imports what it runs. A test checks
that importing this module leaves torch unloaded.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from denoiser import __version__
from denoiser.bench import add_bench_arguments, bench_command
from denoiser.cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SOME_FAILED,
    Console,
    add_verbosity_arguments,
    at_terminal,
    confirm,
    positive_int,
    silence_stdout,
    stdout_is_a_pipe,
)
from denoiser.errors import Cancelled, DenoiserError, SettingsChanged
from denoiser.estimator_cli import add_estimator_parser, cmd_train_estimator
from denoiser.formats_cli import add_formats_parser, cmd_formats
from denoiser.io.formats import FORMAT_TABLE, WRITABLE_EXTENSIONS, FormatInfo
from denoiser.models_cli import add_models_parser, cmd_models
from denoiser.progress import Progress, ProgressFn
from denoiser.strength import MAX_AMOUNT
from denoiser.tiling import PASS_COUNTS
from denoiser.train_cli import add_train_parser, cmd_train

if TYPE_CHECKING:
    from denoiser.batch import BatchSettings, FileResult
    from denoiser.batch.ray_pool import RayCluster
    from denoiser.models import Autoencoder

COMPLETION_SHELLS = ("bash", "zsh", "tcsh")
"""The shells ``--print-completion`` writes a script for (through shtab)."""
FILE_COMPLETION = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
"""shtab's ``FILE``, written out so that building the parser does not import shtab."""
VERBOSITY_COMMANDS = ("denoise", "estimate-noise", "models", "train", "train-estimator")
"""The sub-commands that also take ``-q``/``-v`` after their name (``denoiser -q CMD`` works for all)."""
FORMAT_CHOICES = ["png", "jpg", "tif", "webp", "bmp", "heic", "avif", "tiff16"]


def _strength(text: str) -> tuple[float | None, float]:
    """``auto``, ``auto`` times a percentage (``150%``), or a fixed sigma: (sigma or None, amount)."""
    text = text.strip().lower()
    if text == "auto":
        return None, 1.0
    if text.endswith("%"):
        return None, _percent(text)
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"strength must be 'auto', a percentage of auto (e.g. 150%) or a sigma, "
                                         f"not {text!r}") from err
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError("strength must be between 0 and 255 (sigma in 8-bit units)")
    return value, 1.0


def _percent(text: str) -> float:
    """``80`` or ``80%`` as 0.8; 0-200 %."""
    try:
        value = float(text.strip().rstrip("%")) / 100.0
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 80%, not {text!r}") from err
    if not 0 <= value <= MAX_AMOUNT:
        raise argparse.ArgumentTypeError(f"a percentage must be between 0% and {MAX_AMOUNT:.0%}, not {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"quality must be between 1 and 100, not {text}")
    return value


class _PrintCompletion(argparse.Action):
    """``--print-completion SHELL``: print shtab's completion script for the whole parser, then exit (shtab is
    imported only here)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import shtab

        print(shtab.complete(parser, shell=values))
        parser.exit()


def _completes_files(action: argparse.Action) -> argparse.Action:
    """Mark an argument as a path, for the completion scripts."""
    action.complete = FILE_COMPLETION  # type: ignore[attr-defined]
    return action


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="denoiser", description="Clean noisy photos with denoising autoencoders.")
    parser.add_argument("--version", action="version", version=f"denoiser {__version__}")
    parser.add_argument("--print-completion", choices=COMPLETION_SHELLS, action=_PrintCompletion, metavar="SHELL",
                        help="print the shell completion script for bash, zsh or tcsh and exit")
    add_verbosity_arguments(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True)
    _add_denoise_parser(commands)
    _add_estimate_parser(commands)
    add_models_parser(commands)
    add_formats_parser(commands)
    add_train_parser(commands)
    add_estimator_parser(commands)
    bench = commands.add_parser("bench", help="benchmark the model against CBM3D and OpenCV NLM (pip install .[bench])",
                                description="PSNR, SSIM, seconds per megapixel and peak memory per method, one table.")
    add_bench_arguments(bench)
    for name in VERBOSITY_COMMANDS:
        add_verbosity_arguments(commands.choices[name])
    return parser


def _add_denoise_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("denoise", help="denoise image files and folders",
                              description="Denoise image files and folders into OUT. A manifest there "
                                          "(denoiser-manifest.json) records every file, so running the same "
                                          "command again skips what is done and finishes the rest. One photo "
                                          "with an image name as OUT (-o result.png) is written to that file, "
                                          "in the format its extension names, and no manifest is kept. "
                                          "stdout gets one line per file (or --json); failures, warnings, "
                                          "progress and the summary go to stderr.")
    _completes_files(run.add_argument("inputs", nargs="+", metavar="IN",
                                      help="image files or folders (searched recursively unless --no-recursive)"))
    _completes_files(run.add_argument("-o", "--output", required=True, metavar="OUT",
                                      help="folder for the results, or for one photo the result's file name "
                                           "(e.g. result.png)"))
    run.add_argument("--model", default="default", help="'default', a saved model's name, or a .safetensors path")
    run.add_argument("--strength", type=_strength, default=(None, 1.0), metavar="auto|PCT%|SIGMA",
                     help="auto (the default: the noise found in each photo, region by region), a percentage of "
                          "auto (e.g. 150%%), or a fixed noise level sigma, 0-255")
    run.add_argument("--luminance", type=_percent, default=1.0, metavar="PCT",
                     help="luminance noise (grain) removed, 0-200%% of the strength (default 100%%)")
    run.add_argument("--color", "--colour", dest="color", type=_percent, default=1.0, metavar="PCT",
                     help="colour noise (chroma blotches) removed, 0-200%% of the strength (default 100%%)")
    run.add_argument("--tile", type=positive_int, default=None, help="tile edge in pixels (default: from the device)")
    run.add_argument("--overlap", type=_non_negative, default=None, help="tile overlap (default: the model's margin)")
    run.add_argument("--batch-size", type=positive_int, default=None, help="tiles per batch")
    run.add_argument("--passes", type=int, choices=PASS_COUNTS, default=1,
                     help="denoise in 1, 2, 4 or 8 orientations and average: slower, slightly better (default 1)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--engine", choices=["auto", "torch", "onnx"], default="auto",
                     help="what runs the model: auto (ONNX Runtime on the CPU, about 1.25x faster there; torch on "
                          "GPUs), torch or onnx")
    run.add_argument("--name", default=None, help="output name pattern in a folder (default {stem}_denoised)")
    run.add_argument("--format", default=None, choices=FORMAT_CHOICES,
                     help="output format (default: the input's, or OUT's extension for one photo; camera RAW gives "
                          "16-bit TIFF); tiff16 writes 16-bit TIFF ('denoiser formats' lists what this install "
                          "reads and writes)")
    run.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP/HEIC/AVIF quality, 1-100 (default 95)")
    run.add_argument("--strip-metadata", action="store_true", help="do not copy EXIF and ICC profile")
    run.add_argument("--no-recursive", dest="recursive", action="store_false",
                     help="only the images directly in the folders given, not in their sub-folders")
    run.add_argument("--on-collision", choices=["unique", "skip", "overwrite"], default="unique",
                     help="when an output file exists: write NAME-2... (unique, the default), leave it (skip), "
                          "or replace it (overwrite, asks first); an input is never overwritten")
    run.add_argument("-y", "--yes", action="store_true", help="do not ask before overwriting (--on-collision "
                                                              "overwrite)")
    run.add_argument("--redo", action="store_true",
                     help="denoise again files the manifest in OUT says were done with another model or other "
                          "settings (without it the batch says what differs and asks, or stops when it cannot "
                          "ask); earlier outputs are kept")
    run.add_argument("--json", action="store_true",
                     help="print one JSON document on stdout at the end: every file (source, output, status, "
                          "sigma, seconds, findings, message) and the totals")
    _add_ray_arguments(run)


RAY_INSTALL_HINT = "pip install 'denoiser[cluster]'"


def _ray_installed() -> bool:
    """Whether Ray can be imported here, asked without importing it (it takes a second)."""
    import importlib.util

    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def _add_ray_arguments(run: argparse.ArgumentParser) -> None:
    missing = "" if _ray_installed() else f" Ray is not installed here: {RAY_INSTALL_HINT}."
    group = run.add_argument_group("on a Ray cluster", "Spread the files over the workers of a Ray cluster; every "
                                   "machine must see the inputs under the same paths (a shared file system). Only "
                                   "this process writes OUT: the manifest, resuming and the collision policy are the "
                                   f"local batch's.{missing}")
    group.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                       help="run on Ray: without ADDRESS the cluster 'ray start' started on this machine, else "
                            "one of its own here; 'auto' (the running cluster), HOST:PORT or ray://HOST:PORT "
                            f"another ({RAY_INSTALL_HINT})")
    group.add_argument("--ray-workers", type=positive_int, default=None, metavar="N",
                       help="workers to start (default: one per GPU, or per --cpus-per-worker CPU cores)")
    group.add_argument("--cpus-per-worker", type=positive_int, default=None, metavar="N",
                       help="CPU cores each worker takes (default: 4 for a CPU worker, 1 beside a GPU)")


def _add_estimate_parser(commands: argparse._SubParsersAction) -> None:
    est = commands.add_parser("estimate-noise", help="print each image's luminance and colour noise (sigma, 0-255)",
                              description="Print each image's luminance and colour noise as auto strength reads "
                                          "it, with the PCA white-noise estimate as a check. Unreadable files are "
                                          "named on stderr.")
    _completes_files(est.add_argument("files", nargs="+", metavar="FILE"))
    est.add_argument("--json", action="store_true", help="print one JSON list on stdout: per file luminance, "
                                                         "color, method, PCA check (or the failure)")


# --- denoise: where the results go ------------------------------------------------------------------------------


class OutputUsageError(Exception):
    """``-o`` does not fit the inputs or the other options: a usage error (exit status 2)."""


def _format_named_by(path: Path) -> FormatInfo | None:
    """The image format whose extension ``path`` has (available here or not), None for any other name."""
    suffix = path.suffix.lower()
    return next((info for info in FORMAT_TABLE if suffix in info.extensions), None)


def single_output_file(args: argparse.Namespace) -> Path | None:
    """The file ``-o`` names when it is one photo's result (``-o result.png``), None when it is a folder.

    OUT is a file when it names an image format (and is neither an existing folder nor written with a trailing
    slash), or is an existing file; then
    there must be exactly one input file, and OUT's extension must be one this install writes, agreeing with
    ``--format``. Anything else raises :class:`OutputUsageError` saying what to give instead.
    """
    out = Path(args.output)
    if out.is_dir() or args.output.endswith(("/", os.sep)):  # "result.png/" asks for a folder
        return None
    named = _format_named_by(out)
    if named is None and not out.exists():
        return None
    inputs = [Path(p) for p in args.inputs]
    if len(inputs) != 1 or inputs[0].is_dir():
        what = f"{len(inputs)} inputs are given" if len(inputs) != 1 else f"{inputs[0]} is a folder"
        raise OutputUsageError(f"-o {out} names one image file, but {what}: give a folder for the results")
    if named is None:
        raise OutputUsageError(f"-o {out} is an existing file with no image extension; name the result with "
                               f"one this install writes ({', '.join(WRITABLE_EXTENSIONS)}), or give a folder")
    if not (named.available and named.writable):
        why = named.missing() if not named.available else f"{named.label} files are never written"
        raise OutputUsageError(f"-o {out}: {why}; use .tif (16 bits) or .png")
    if args.format is not None:
        from denoiser.batch import OUTPUT_FORMATS, normalize_format

        extension = OUTPUT_FORMATS[normalize_format(args.format)][0]
        if WRITABLE_EXTENSIONS.get(str(extension)) != named.name:
            raise OutputUsageError(f"--format {args.format} and -o {out} name different formats; the file's "
                                   "extension is enough")
    if args.name is not None:
        raise OutputUsageError(f"--name names results in a folder; -o {out} names the file itself")
    return out


def _batch_settings(args: argparse.Namespace) -> BatchSettings:
    from denoiser.batch import DEFAULT_PATTERN, BatchSettings
    from denoiser.inference import TileSettings

    sigma, amount = args.strength
    return BatchSettings(
        strength=sigma,
        amount=amount,
        luminance=args.luminance,
        color=args.color,
        tiles=TileSettings(args.tile, args.overlap, args.batch_size, args.passes, args.engine),
        device=args.device,
        pattern=args.name or DEFAULT_PATTERN,
        format=args.format or "same",
        quality=args.quality,
        keep_metadata=not args.strip_metadata,
        inputs=[Path(p) for p in args.inputs],
        output=Path(args.output),
        recursive=args.recursive,
        collision=args.on_collision,
        redo=args.redo,
    )


def _collision_target(out: Path, collision: str) -> tuple[Path | None, bool]:
    """Where one photo's result goes when OUT may exist: (the path, or None to skip; whether to replace it)."""
    from denoiser.batch import unique_path

    if not out.exists():
        return out, False
    if collision == "skip":
        return None, False
    if collision == "unique":
        return unique_path(out), False
    return out, True


def denoise_one_file(source: Path, out: Path, settings: BatchSettings, model: Autoencoder,
                     on_progress: ProgressFn) -> FileResult:
    """Denoise ``source`` into the file ``out`` (format from its extension) with the batch's engine, without a
    manifest. Same safety as a batch: the input is never replaced, an existing OUT only with the ``overwrite``
    policy; a failure is the result's message, not an exception."""
    from denoiser.batch import FileResult, denoise_image
    from denoiser.batch.run import failure_message
    from denoiser.io import read_image, write_image

    started = time.monotonic()
    target, overwrite = _collision_target(out, settings.collision)
    if target is None:
        return FileResult(source, out, "skipped", message=f"{out} already exists (collision policy: skip)")
    on_progress(Progress("files", 0, 1, source.name, extra={"path": source}))
    result = FileResult(source, None, "failed")
    try:
        outcome = denoise_image(read_image(source), model, settings, on_progress)
        result.output = write_image(target, outcome.image, quality=settings.quality,
                                    keep_metadata=settings.keep_metadata, bit_depth=settings.bit_depth,
                                    protected=[source], overwrite=overwrite)
        result.status, result.sigma = "done", float(outcome.sigma)
        result.findings = [finding.to_dict() for finding in outcome.findings]
    except Exception as err:  # noqa: BLE001 - reported as a failed file, as in a batch
        result.message = failure_message(source, err)
    result.seconds = time.monotonic() - started
    return result


# --- denoise: what the user sees -----------------------------------------------------------------------------------


class _Bar:
    """A tqdm bar on stderr fed by engine progress events."""

    def __init__(self, unit: str, total: int = 0, leave: bool = False) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=leave)

    def __call__(self, event: Progress) -> None:
        if event.total and self.bar.total != event.total:
            self.bar.reset(total=event.total)
        self.bar.n = event.done
        self.bar.set_description(event.message[:40] if event.message else event.stage, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class DenoiseProgress:
    """The batch's progress: at a terminal, a bar for the files and one for the tiles of the current file; in a
    log (stderr not a terminal), one plain line as each file starts. Nothing with ``-q``. Engine notes (an
    out-of-memory retry) are notes on stderr."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.files: _Bar | None = None
        self.tiles: _Bar | None = None
        if console.shows_bars:
            self.files, self.tiles = _Bar("file", total=total, leave=True), _Bar("tile", leave=False)
            console.bars_open = True

    def __call__(self, event: Progress) -> None:
        """An engine progress event (stages ``files``, ``tiles`` and ``denoise``)."""
        if event.stage == "files" and "result" not in event.extra:
            self._file_started(event.done, event.extra.get("path", event.message))
        elif event.stage in ("tiles", "denoise"):
            if not event.total:
                if event.message:
                    self.console.note(event.message)
            elif self.tiles is not None:
                self.tiles(event)

    def _file_started(self, index: int, source: object) -> None:
        if self.files is None:
            self.console.note(f"[{index + 1}/{self.total}] {source}")

    def file_finished(self) -> None:
        """One more file is through."""
        if self.files is not None:
            self.files.bar.update(1)

    def close(self) -> None:
        """Take the bars off the terminal."""
        for bar in (self.tiles, self.files):
            if bar is not None:
                bar.close()
        self.console.bars_open = False


def result_record(result: FileResult) -> dict[str, Any]:
    """One file's result as plain JSON values (``--json``)."""
    return {
        "source": str(result.source),
        "output": str(result.output) if result.output is not None else None,
        "status": result.status,
        "resumed": result.resumed,
        "sigma": result.sigma,
        "seconds": round(result.seconds, 3),
        "findings": result.findings,
        "message": result.message,
        "reference": str(result.reference) if result.reference is not None else None,
        "metrics": result.metrics,
    }


class DenoiseReport:
    """What ``denoise`` tells: a line per file on stdout (or one JSON document at the end with ``--json``),
    failures and warnings on stderr, details with ``-v``, and the summary on stderr."""

    def __init__(self, console: Console, as_json: bool) -> None:
        self.console = console
        self.as_json = as_json
        self.results: list[FileResult] = []
        self.warnings = 0
        self.started = time.monotonic()

    def count(self, status: str) -> int:
        """How many files so far ended with ``status``."""
        return sum(1 for result in self.results if result.status == status)

    def add(self, result: FileResult) -> None:
        """Tell one file's result."""
        self.results.append(result)
        console = self.console
        if result.status == "failed":
            console.error(f"FAILED  {result.message}")
            return
        if not self.as_json:
            console.report(self._result_line(result))
        for finding in result.findings:
            self.warnings += 1
            console.note(f"  warning: {finding['message']} {finding['advice']}")
        if result.status == "done":
            console.detail(f"  {result.source.name}: {result.seconds:.2f} s")
        if result.reference_note:
            console.detail(f"  {result.reference_note}")
        elif result.metrics:
            figures = ", ".join(f"{key} {value:.4g}" for key, value in result.metrics.items() if value is not None)
            console.detail(f"  against {result.reference}: {figures}")

    @staticmethod
    def _result_line(result: FileResult) -> str:
        if result.status == "done":
            return f"ok      {result.source} -> {result.output} (sigma {result.sigma:.1f})"
        if result.output is None:  # another run is on it
            return f"skip    {result.source} ({result.message})"
        reason = "already done" if result.resumed else "output exists"
        return f"skip    {result.source} -> {result.output} ({reason})"

    def finish(self, model_name: str, output: Path, manifest: Path | None, stopped: str = "") -> None:
        """The summary on stderr; with ``--json`` the document on stdout. ``stopped``: why the batch ended early
        (``interrupted``, or an error's message)."""
        elapsed = time.monotonic() - self.started
        done, failed, skipped = self.count("done"), self.count("failed"), self.count("skipped")
        if self.as_json:
            self.console.result(json.dumps({
                "model": model_name, "output": str(output), "manifest": str(manifest) if manifest else None,
                "files": [result_record(result) for result in self.results],
                "totals": {"done": done, "failed": failed, "skipped": skipped, "warnings": self.warnings,
                           "seconds": round(elapsed, 3)},
                "interrupted": stopped == "interrupted",
                "error": stopped if stopped and stopped != "interrupted" else None,
            }, indent=2))
        if stopped:
            return
        self.console.note(f"{done} denoised, {failed} failed, {skipped} skipped, in {elapsed:.1f} s with model "
                          f"{model_name}; results in {output}")
        if self.warnings:
            also = f"; they are also in {manifest}" if manifest else ""
            self.console.note(f"{self.warnings} warning(s) above{also}")


# --- denoise: the command --------------------------------------------------------------------------------------------


def _confirm_overwrite(settings: BatchSettings, single: Path | None, yes: bool) -> bool:
    """With ``--on-collision overwrite`` and no ``--yes``: ask once (at a terminal; elsewhere refuse). A single
    file is asked about only when it exists."""
    if settings.collision != "overwrite" or yes or (single is not None and not single.exists()):
        return True
    if not at_terminal():
        raise DenoiserError("not overwriting existing outputs: stdin is not a terminal, so confirm "
                            "--on-collision overwrite with --yes")
    question = (f"replace {single} (the input is never replaced)?" if single is not None else
                f"replace existing output files in {settings.output} (inputs are never replaced)?")
    return confirm(question)


def _ray_cluster(args: argparse.Namespace, single: Path | None) -> RayCluster | None:
    """The cluster ``--ray`` asks for (None without it); says how to install Ray, before any work, when it is
    missing."""
    if args.ray is None:
        if args.ray_workers is not None or args.cpus_per_worker is not None:
            raise DenoiserError("--ray-workers and --cpus-per-worker apply only with --ray")
        return None
    if single is not None:
        raise OutputUsageError(f"--ray runs a batch into a folder; -o {args.output} names one file")
    from denoiser.batch.ray_pool import RayCluster, import_ray

    import_ray()
    return RayCluster(address=args.ray or None, workers=args.ray_workers, cpus_per_worker=args.cpus_per_worker)


def _cmd_denoise(args: argparse.Namespace) -> int:
    from denoiser.batch import MANIFEST_NAME, Manifest, collect_inputs
    from denoiser.inference import resolve_device
    from denoiser.model_loading import load_model_for_inference

    console = Console.for_args(args, keep_going=True)  # a reader gone from stdout does not stop the batch
    single = single_output_file(args)
    cluster = _ray_cluster(args, single)
    settings = _batch_settings(args)
    # A missing input fails before a model loads.
    files = collect_inputs(settings, None if single is not None else Manifest.load(settings.output))
    if not files:
        console.error("no images found in the given inputs")
        return EXIT_ERROR
    if not _confirm_overwrite(settings, single, args.yes):
        console.error("nothing done (overwriting was not confirmed)")
        return EXIT_ERROR
    # A device this machine lacks is said once, before the model loads (on Ray, by the workers that lack it).
    device = resolve_device(args.device) if cluster is None else "the Ray cluster"
    model, info = load_model_for_inference(args.model)
    console.detail(f"model {info.name} ({info.family}, {info.path}) on {device}")
    manifest = None if single is not None else settings.output / MANIFEST_NAME
    report, progress = DenoiseReport(console, args.json), DenoiseProgress(console, len(files))
    stopped = ""
    try:
        results = (iter([denoise_one_file(files[0][0], single, settings, model, progress)]) if single is not None
                   else _results_asking_before_a_redo(settings, model, info.name, progress, files,
                                                      _batch_runner(cluster, info.path)))
        for result in results:
            progress.file_finished()
            report.add(result)
    except KeyboardInterrupt:
        stopped = "interrupted"
    except Exception as err:
        stopped = str(err) or type(err).__name__  # main says it on stderr; --json records it
        raise
    finally:
        progress.close()
        report.finish(info.name, settings.output, manifest, stopped)
    if stopped:
        console.error(f"interrupted after {report.count('done')} denoised: files already written are complete, "
                      "none is half-written; run the same command again to finish the rest")
        return 130
    return EXIT_OK if report.count("failed") == 0 else EXIT_SOME_FAILED


def _batch_runner(cluster: RayCluster | None, model_path: Path | None) -> Callable[..., Iterator[FileResult]]:
    """The batch engine: :func:`~denoiser.batch.iter_batch` here, or on the Ray ``cluster`` with workers loading
    the model from ``model_path``."""
    if cluster is None:
        from denoiser.batch import iter_batch

        return iter_batch
    from denoiser.batch.ray_run import iter_ray_batch

    return functools.partial(iter_ray_batch, model_path=model_path, cluster=cluster)


def _results_asking_before_a_redo(settings: BatchSettings, model: Autoencoder, model_name: str,
                                  progress: ProgressFn, files: list,
                                  batch: Callable[..., Iterator[FileResult]]) -> Iterator[FileResult]:
    """The results of ``batch`` (:func:`_batch_runner`); when files were done before with other settings, ask (at a
    terminal) before denoising them again, else let :class:`SettingsChanged` say what differs (exit status 2)."""
    try:
        yield from batch(settings, model, model_name, on_progress=progress, files=files)
        return
    except SettingsChanged as changed:  # raised before any file was touched
        if not at_terminal():
            raise
        print(changed, file=sys.stderr)
        if not confirm("denoise them again with this run's settings?"):
            raise DenoiserError("nothing done (denoising again was not confirmed)") from None
    settings.redo = True
    yield from batch(settings, model, model_name, on_progress=progress, files=files)


# --- estimate-noise --------------------------------------------------------------------------------------------------


def noise_record(file: str) -> tuple[dict[str, Any], str]:
    """One file's noise as auto reads it: (plain JSON values, the line ``estimate-noise`` prints)."""
    from denoiser.io import read_image
    from denoiser.noise_estimation import estimate_noise, workable_patch
    from denoiser.strength import estimate_noise_map

    pixels = read_image(file).color()
    estimate = estimate_noise_map(pixels)
    patch = workable_patch(pixels.shape[0], pixels.shape[1], pixels.shape[2] if pixels.ndim == 3 else 1)
    pca = float(estimate_noise(pixels, patch=patch)) if patch is not None else None
    check = f"PCA white-noise check {pca:.2f}" if pca is not None else "no PCA check: too small"
    grey = None if estimate.grey is None else round(float(estimate.grey), 4)
    record = {"file": file, "status": "ok", "luminance": round(estimate.luminance, 4),
              "color": round(estimate.color, 4), "grey": grey, "spread": round(estimate.spread, 4),
              "method": estimate.method, "measured": estimate.measured, "rough": estimate.rough,
              "pca_check": round(pca, 4) if pca is not None else None}
    return record, f"{file}\t{estimate.summary()}\t({estimate.method}; {check})"


def _cmd_estimate(args: argparse.Namespace) -> int:
    """Print each file's noise as auto reads it (saying when it is assumed or rough, the photo being too small),
    with the PCA white-noise estimate beside it as a check; ``--json``: one list at the end."""
    console = Console.for_args(args)
    records: list[dict[str, Any]] = []
    failed = 0
    for file in args.files:
        started = time.monotonic()
        try:
            record, line = noise_record(file)
        except DenoiserError as err:
            failed += 1
            console.error(f"FAILED  {err}")
            records.append({"file": file, "status": "failed", "message": str(err)})
            continue
        records.append(record)
        if not args.json:
            console.result(line)
        console.detail(f"  {file}: map read by {record['method']}, spread {record['spread']:.1f}, "
                       f"{time.monotonic() - started:.2f} s")
    if args.json:
        console.result(json.dumps(records, indent=2))
    return EXIT_OK if failed == 0 else EXIT_SOME_FAILED


COMMANDS = {
    "denoise": _cmd_denoise,
    "estimate-noise": _cmd_estimate,
    "models": cmd_models,
    "formats": cmd_formats,
    "train": cmd_train,
    "train-estimator": cmd_train_estimator,
    "bench": bench_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also used by the console script).

    A reader of stdout that goes away (``denoiser formats | head -1``) ends the command quietly with status 0:
    no traceback, no "Exception ignored" at exit (``denoise`` goes on with its files, its lines unread).
    """
    try:
        status = _run(argv)
    except SystemExit:  # --help, --version, a usage error: their text may meet a closed pipe at the last flush
        _flush_stdout()
        raise
    except BrokenPipeError:
        silence_stdout()
        return EXIT_OK
    _flush_stdout()
    return status


def _flush_stdout() -> None:
    """Flush stdout now, so that a reader gone away is met here, and silenced, not in the interpreter's last
    flush (which would print "Exception ignored ... BrokenPipeError" and exit with 120)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except OutputUsageError as err:
        _command_parser(parser, args.command).error(str(err))  # usage, message, exit status 2
    except Cancelled:
        print("stopped", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: files already written are complete, none is half-written", file=sys.stderr)
        return 130
    except DenoiserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        print(f"error: 'denoiser {args.command}' needs PyTorch, which this installation leaves out (the desktop "
              "bundle denoises only); install Denoiser with pip to train and manage models", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a user sees one line; DENOISER_DEBUG=1 shows the traceback
        if isinstance(err, BrokenPipeError) and stdout_is_a_pipe():
            raise  # the reader went away: main ends quietly
        if os.environ.get("DENOISER_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {err} (set DENOISER_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_ERROR


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The sub-command ``name``'s parser (for its usage line in an error)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


if __name__ == "__main__":
    sys.exit(main())
