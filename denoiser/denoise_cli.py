"""``denoiser denoise``: its arguments, the one-photo output (``-o FILE``), the batch (local or on Ray) with its
progress, report and ``--json``, and the question before a redo or an overwrite.

Only light modules are imported at the top (no torch): the engine is imported inside :func:`cmd_denoise`.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SOME_FAILED,
    Console,
    at_terminal,
    completes_files,
    confirm,
    positive_int,
)
from denoiser.denoise_report import DenoiseProgress, DenoiseReport
from denoiser.errors import DenoiserError, SettingsChanged
from denoiser.io.formats import FORMAT_TABLE, WRITABLE_EXTENSIONS, FormatInfo
from denoiser.progress import ProgressFn
from denoiser.strength import MAX_AMOUNT
from denoiser.tiling import PASS_COUNTS

if TYPE_CHECKING:
    from denoiser.batch import BatchSettings, FileResult
    from denoiser.batch.ray_pool import RayCluster
    from denoiser.models import Autoencoder

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


def add_denoise_parser(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("denoise", help="denoise image files and folders",
                              description="Denoise image files and folders into OUT. A manifest there "
                                          "(denoiser-manifest.json) records every file, so running the same "
                                          "command again skips what is done and finishes the rest. One photo "
                                          "with an image name as OUT (-o result.png) is written to that file, "
                                          "in the format its extension names, and no manifest is kept. "
                                          "stdout gets one line per file (or --json); failures, warnings, "
                                          "progress and the summary go to stderr.")
    completes_files(run.add_argument("inputs", nargs="+", metavar="IN",
                                      help="image files or folders (searched recursively unless --no-recursive)"))
    completes_files(run.add_argument("-o", "--output", required=True, metavar="OUT",
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


class OutputUsageError(Exception):
    """``-o`` does not fit the inputs or the other options: a usage error (exit status 2)."""


def _format_named_by(path: Path) -> FormatInfo | None:
    """The image format whose extension ``path`` has (available here or not), None for any other name."""
    suffix = path.suffix.lower()
    return next((info for info in FORMAT_TABLE if suffix in info.extensions), None)


def single_output_file(args: argparse.Namespace) -> Path | None:
    """The file ``-o`` names when it is one photo's result (``-o result.png``), None when it is a folder.

    OUT is a file when it names an image format (and is neither an existing folder nor written with a trailing
    slash), or is an existing file; then there must be exactly one input file, and OUT's extension must be one this
    install writes, agreeing with ``--format``. OUT is never an input file, and with one input file a new OUT with
    another extension (``r.txt``, the typo ``r.jgp``) is refused rather than made a folder; a name without an
    extension is one. Anything else raises :class:`OutputUsageError` saying what to give instead.
    """
    from denoiser.io.writing import same_file

    out, inputs = Path(args.output), [Path(p) for p in args.inputs]
    source = next((p for p in inputs if p.is_file() and same_file(out, p)), None)
    if source is not None:
        raise OutputUsageError(f"-o {args.output} is the input {source}: a result never replaces its photo; name "
                               "another file, or a folder")
    if out.is_dir() or args.output.endswith(("/", os.sep)):  # "result.png/" asks for a folder
        return None
    named = _format_named_by(out)
    one_file = len(inputs) == 1 and not inputs[0].is_dir()
    if named is None and not out.exists() and out.suffix and one_file:
        raise OutputUsageError(f"-o {out}: {out.suffix} is not an extension this install writes "
                               f"({', '.join(WRITABLE_EXTENSIONS)}); a folder for the results is named with a "
                               f"trailing / (-o {out}/) or exists already")
    if named is None and not out.exists():
        return None
    if not one_file:
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


# --- denoise: what the user sees -----------------------------------------------------------------------------------


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


def cmd_denoise(args: argparse.Namespace) -> int:
    from denoiser.batch import MANIFEST_NAME, FileResult, Manifest, collect_inputs
    from denoiser.batch.inputs import named_non_images, not_an_image
    from denoiser.batch.one_file import denoise_one_file
    from denoiser.inference import resolve_device
    from denoiser.model_loading import load_model_for_inference

    console = Console.for_args(args, keep_going=True)  # a reader gone from stdout does not stop the batch
    single = single_output_file(args)
    cluster = _ray_cluster(args, single)
    settings = _batch_settings(args)
    # A missing input fails before a model loads; a file named that is no image is reported, not skipped.
    files = collect_inputs(settings, None if single is not None else Manifest.load(settings.output))
    not_images = [FileResult(path, None, "failed", not_an_image(path)) for path in named_non_images(settings.inputs)]
    if not files:
        raise DenoiserError("; ".join(r.message for r in not_images) or f"no images found in {' '.join(args.inputs)}")
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
    for result in not_images:
        report.add(result)
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
        report.finish(info.name, single or settings.output, manifest, stopped, one_file=single is not None)
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
