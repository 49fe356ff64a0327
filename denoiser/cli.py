"""The ``denoiser`` command: the top-level parser and dispatch, and the ``denoise`` and ``estimate-noise`` commands.

The other sub-commands live in their own modules (:mod:`~denoiser.models_cli`, :mod:`~denoiser.train_cli`,
:mod:`~denoiser.estimator_cli`, :mod:`~denoiser.bench`); what they share is in :mod:`~denoiser.cli_common`.

Every expected failure is a :class:`~denoiser.errors.DenoiserError` and is printed as one line naming the
file and the problem, never as a traceback. Exit status: 0 all good, 1 some files failed, 2 nothing done.

Only light modules are imported at the top (no torch, and nothing that imports it): ``--help``, ``--version``
and every parse error answer in a fraction of a second, and each command imports what it runs. A test checks
that importing this module leaves torch unloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from denoiser import __version__
from denoiser.bench import add_bench_arguments, bench_command
from denoiser.cli_common import EXIT_ERROR, EXIT_OK, EXIT_SOME_FAILED, at_terminal, confirm, positive_int
from denoiser.errors import Cancelled, DenoiserError, SettingsChanged
from denoiser.estimator_cli import add_estimator_parser, cmd_train_estimator
from denoiser.formats_cli import add_formats_parser, cmd_formats
from denoiser.models_cli import add_models_parser, cmd_models
from denoiser.progress import Progress, ProgressFn
from denoiser.strength import MAX_AMOUNT
from denoiser.tiling import PASS_COUNTS
from denoiser.train_cli import add_train_parser, cmd_train

if TYPE_CHECKING:
    from denoiser.batch import BatchSettings, FileResult
    from denoiser.models import Autoencoder


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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="denoiser", description="Clean noisy photos with denoising autoencoders.")
    parser.add_argument("--version", action="version", version=f"denoiser {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("denoise", help="denoise image files and folders",
                              description="Denoise image files and folders into OUT. A manifest there "
                                          "(denoiser-manifest.json) records every file, so running the same "
                                          "command again skips what is done and finishes the rest.")
    run.add_argument("inputs", nargs="+", metavar="IN",
                     help="image files or folders (searched recursively unless --no-recursive)")
    run.add_argument("-o", "--output", required=True, metavar="OUT", help="folder for the results")
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
    run.add_argument("--name", default="{stem}_denoised", help="output name pattern (default {stem}_denoised)")
    run.add_argument("--format", default=None,
                     choices=["png", "jpg", "tif", "webp", "bmp", "heic", "avif", "tiff16"],
                     help="output format (default: the input's; camera RAW gives 16-bit TIFF); tiff16 writes 16-bit "
                          "TIFF ('denoiser formats' lists what this install reads and writes)")
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

    est = commands.add_parser("estimate-noise", help="print each image's luminance and colour noise (sigma, 0-255)")
    est.add_argument("files", nargs="+", metavar="FILE")

    add_models_parser(commands)
    add_formats_parser(commands)

    add_train_parser(commands)
    add_estimator_parser(commands)
    bench = commands.add_parser("bench", help="benchmark the model against CBM3D and OpenCV NLM (pip install .[bench])",
                                description="PSNR, SSIM, seconds per megapixel and peak memory per method, one table.")
    add_bench_arguments(bench)
    return parser


class _Bar:
    """A tqdm bar on stderr fed by engine progress events."""

    def __init__(self, unit: str) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=0, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False)

    def __call__(self, event: Progress) -> None:
        if event.total and self.bar.total != event.total:
            self.bar.reset(total=event.total)
        if event.total:
            self.bar.n = event.done
            self.bar.set_description(event.message[:40] if event.message else event.stage, refresh=False)
            self.bar.refresh()
        elif event.message:
            self.bar.write(event.message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _cmd_denoise(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm import tqdm

    from denoiser.batch import BatchSettings, Manifest, collect_inputs
    from denoiser.inference import TileSettings, resolve_device
    from denoiser.modelstore import load_model

    sigma, amount = args.strength
    settings = BatchSettings(
        strength=sigma,
        amount=amount,
        luminance=args.luminance,
        color=args.color,
        tiles=TileSettings(args.tile, args.overlap, args.batch_size, args.passes),
        device=args.device,
        pattern=args.name,
        format=args.format or "same",
        quality=args.quality,
        keep_metadata=not args.strip_metadata,
        inputs=[Path(p) for p in args.inputs],
        output=Path(args.output),
        recursive=args.recursive,
        collision=args.on_collision,
        redo=args.redo,
    )
    files = collect_inputs(settings, Manifest.load(settings.output))  # a missing input fails before a model loads
    if not files:
        print("no images found in the given inputs", file=sys.stderr)
        return EXIT_ERROR
    if settings.collision == "overwrite" and not args.yes:
        if not at_terminal():
            raise DenoiserError("not overwriting existing outputs: stdin is not a terminal, so confirm "
                                "--on-collision overwrite with --yes")
        if not confirm(f"replace existing output files in {settings.output} (inputs are never replaced)?"):
            print("nothing done (overwriting was not confirmed)", file=sys.stderr)
            return EXIT_ERROR
    resolve_device(args.device)  # a device this machine lacks is said once, before the model loads
    model, info = load_model(args.model)
    files_bar, tiles_bar = tqdm(total=len(files), unit="file", file=sys.stderr, dynamic_ncols=True), _Bar("tile")

    def progress(event: Progress) -> None:
        if event.stage == "tiles":
            tiles_bar(event)

    done = failed = skipped = warned = 0
    started = time.monotonic()
    try:
        for result in _results_asking_before_a_redo(settings, model, info.name, progress, files):
            files_bar.update(1)
            if result.status == "done":
                done += 1
                files_bar.write(f"ok      {result.source} -> {result.output} (sigma {result.sigma:.1f})",
                                file=sys.stdout)
                for finding in result.findings:
                    warned += 1
                    files_bar.write(f"  warning: {finding['message']} {finding['advice']}", file=sys.stdout)
            elif result.status == "skipped":
                skipped += 1
                if result.output is None:  # another run is on it
                    files_bar.write(f"skip    {result.source} ({result.message})", file=sys.stdout)
                else:
                    reason = "already done" if result.resumed else "output exists"
                    files_bar.write(f"skip    {result.source} -> {result.output} ({reason})", file=sys.stdout)
            else:
                failed += 1
                files_bar.write(f"FAILED  {result.message}", file=sys.stdout)
    except KeyboardInterrupt:
        tiles_bar.close()
        files_bar.close()
        print(f"interrupted after {done} denoised: files already written are complete, none is half-written; "
              "run the same command again to finish the rest", file=sys.stderr)
        return 130
    finally:
        tiles_bar.close()
        files_bar.close()
    elapsed = time.monotonic() - started
    print(f"{done} denoised, {failed} failed, {skipped} skipped, in {elapsed:.1f} s with model {info.name}; "
          f"results in {args.output}")
    if warned:
        print(f"{warned} warning(s) above; they are also in {settings.output / 'denoiser-manifest.json'}")
    return EXIT_OK if failed == 0 else EXIT_SOME_FAILED


def _results_asking_before_a_redo(settings: BatchSettings, model: Autoencoder, model_name: str,
                                  progress: ProgressFn, files: list) -> Iterator[FileResult]:
    """The batch's results; when files were done before with other settings, ask (at a terminal) before
    denoising them again, else let :class:`SettingsChanged` say what differs (exit status 2)."""
    from denoiser.batch import iter_batch

    try:
        yield from iter_batch(settings, model, model_name, on_progress=progress, files=files)
        return
    except SettingsChanged as changed:  # raised before any file was touched
        if not at_terminal():
            raise
        print(changed, file=sys.stderr)
        if not confirm("denoise them again with this run's settings?"):
            raise DenoiserError("nothing done (denoising again was not confirmed)") from None
    settings.redo = True
    yield from iter_batch(settings, model, model_name, on_progress=progress, files=files)


def _cmd_estimate(args: argparse.Namespace) -> int:
    """Print each file's noise as auto reads it (saying when it is assumed or rough, the photo being too small),
    with the PCA white-noise estimate beside it as a check."""
    from denoiser.io import read_image
    from denoiser.noise import estimate_noise, workable_patch
    from denoiser.strength import estimate_noise_map

    failed = 0
    for file in args.files:
        try:
            pixels = read_image(file).color()
            estimate = estimate_noise_map(pixels)
            patch = workable_patch(pixels.shape[0], pixels.shape[1], pixels.shape[2] if pixels.ndim == 3 else 1)
            check = (f"PCA white-noise check {estimate_noise(pixels, patch=patch):.2f}" if patch is not None
                     else "no PCA check: too small")
            print(f"{file}\t{estimate.summary()}\t({estimate.method}; {check})")
        except DenoiserError as err:
            failed += 1
            print(f"FAILED  {err}")
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
    """Run the command line; returns the exit status (also used by the console script)."""
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except Cancelled:
        print("stopped", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: files already written are complete, none is half-written", file=sys.stderr)
        return 130
    except DenoiserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a user sees one line; DENOISER_DEBUG=1 shows the traceback
        if os.environ.get("DENOISER_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {err} (set DENOISER_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
