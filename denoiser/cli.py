"""The ``denoiser`` command: an argparse front end over the engine's functions.

Every expected failure is a :class:`~denoiser.errors.DenoiserError` and is printed as one line naming the
file and the problem, never as a traceback. Exit status: 0 all good, 1 some files failed, 2 nothing done.

Only light modules are imported at the top (no torch, and nothing that imports it): ``--help``, ``--version``
and every parse error answer in a fraction of a second, and each command imports what it runs. A test checks
that importing this module leaves torch unloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from denoiser import __version__
from denoiser.bench import add_bench_arguments, bench_command
from denoiser.errors import Cancelled, DenoiserError
from denoiser.estimator_cli import add_estimator_parser, cmd_train_estimator
from denoiser.progress import Progress
from denoiser.strength import MAX_AMOUNT
from denoiser.tiling import PASS_COUNTS
from denoiser.train_cli import add_train_parser, cmd_train

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2


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


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
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


def _add_models_parser(commands: argparse._SubParsersAction) -> None:
    """``denoiser models [list|info|rename|remove|import|export|sample]``; no action means ``list``."""
    models = commands.add_parser("models", help="list, inspect, rename, remove, import, export and sample models",
                                 description="Manage the bundled models and your model library. "
                                             "With no action, list them.")
    models.add_argument("--json", action="store_true", help="print JSON (list, info)")
    actions = models.add_subparsers(dest="models_action", metavar="ACTION")
    # SUPPRESS: a sub-parser's own default would overwrite "models --json list"'s flag.
    listing = actions.add_parser("list", help="list the bundled and saved models (the default action)")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    info = actions.add_parser("info", help="everything known about one model")
    info.add_argument("model", metavar="NAME|PATH", help="'default', a library name, or a .safetensors path")
    info.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    rename = actions.add_parser("rename", help="rename a model in your library")
    rename.add_argument("old", metavar="OLD")
    rename.add_argument("new", metavar="NEW")
    remove = actions.add_parser("remove", help="delete a model from your library")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    imp = actions.add_parser("import", help="copy a .safetensors model file into your library")
    imp.add_argument("file", metavar="FILE")
    imp.add_argument("--name", default=None, help="library name (default: the file's name)")
    export = actions.add_parser("export", help="write a model as one self-contained .safetensors file")
    export.add_argument("name", metavar="NAME", help="'default' or a library name")
    export.add_argument("destination", metavar="DEST", help="a folder, or a file name ending in .safetensors")
    sample = actions.add_parser("sample", help="decode random latents of a variational model into images",
                                description="Decode draws from a variational model's prior (a unit Gaussian over "
                                            "its latents): what the model takes images to look like. Other "
                                            "families have no prior to draw from.")
    sample.add_argument("name", metavar="NAME|PATH", help="a variational model: a library name or a .safetensors path")
    sample.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="image file for the samples, in a grid (e.g. samples.png); never overwritten")
    sample.add_argument("--count", type=_positive, default=1, help="how many images (default 1)")
    sample.add_argument("--size", type=_positive, default=64, help="edge of each image in pixels (default 64)")
    sample.add_argument("--seed", type=int, default=0, help="seed of the random latents (default 0)")


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
    run.add_argument("--tile", type=_positive, default=None, help="tile edge in pixels (default: from the device)")
    run.add_argument("--overlap", type=_non_negative, default=None, help="tile overlap (default: the model's margin)")
    run.add_argument("--batch-size", type=_positive, default=None, help="tiles per batch")
    run.add_argument("--passes", type=int, choices=PASS_COUNTS, default=1,
                     help="denoise in 1, 2, 4 or 8 orientations and average: slower, slightly better (default 1)")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--name", default="{stem}_denoised", help="output name pattern (default {stem}_denoised)")
    run.add_argument("--format", default=None, choices=["png", "jpg", "tif", "webp", "bmp", "tiff16"],
                     help="output format (default: the input's); tiff16 writes 16-bit TIFF")
    run.add_argument("--quality", type=_quality, default=95, help="JPEG/WebP quality, 1-100 (default 95)")
    run.add_argument("--strip-metadata", action="store_true", help="do not copy EXIF and ICC profile")
    run.add_argument("--no-recursive", dest="recursive", action="store_false",
                     help="only the images directly in the folders given, not in their sub-folders")
    run.add_argument("--on-collision", choices=["unique", "skip", "overwrite"], default="unique",
                     help="when an output file exists: write NAME-2... (unique, the default), leave it (skip), "
                          "or replace it (overwrite, asks first); an input is never overwritten")
    run.add_argument("-y", "--yes", action="store_true", help="do not ask before overwriting (--on-collision "
                                                              "overwrite)")

    est = commands.add_parser("estimate-noise", help="print each image's luminance and colour noise (sigma, 0-255)")
    est.add_argument("files", nargs="+", metavar="FILE")

    _add_models_parser(commands)

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

    from denoiser.batch import BatchSettings, Manifest, collect_inputs, iter_batch
    from denoiser.inference import TileSettings
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
    )
    files = collect_inputs(settings, Manifest.load(settings.output))  # a missing input fails before a model loads
    if not files:
        print("no images found in the given inputs", file=sys.stderr)
        return EXIT_ERROR
    if settings.collision == "overwrite" and not args.yes:
        # A script piping input cannot be trusted to have meant "yes": only a person at a terminal answers.
        if sys.stdin is None or not sys.stdin.isatty():
            raise DenoiserError("not overwriting existing outputs: stdin is not a terminal, so confirm "
                                "--on-collision overwrite with --yes")
        if not _confirm(f"replace existing output files in {settings.output} (inputs are never replaced)?"):
            print("nothing done (overwriting was not confirmed)", file=sys.stderr)
            return EXIT_ERROR
    model, info = load_model(args.model)
    files_bar, tiles_bar = tqdm(total=len(files), unit="file", file=sys.stderr, dynamic_ncols=True), _Bar("tile")

    def progress(event: Progress) -> None:
        if event.stage == "tiles":
            tiles_bar(event)

    done = failed = skipped = warned = 0
    started = time.monotonic()
    try:
        for result in iter_batch(settings, model, info.name, on_progress=progress, files=files):
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


def _cmd_estimate(args: argparse.Namespace) -> int:
    from denoiser.io import read_image
    from denoiser.noise import estimate_noise
    from denoiser.strength import estimate_noise_map

    failed = 0
    for file in args.files:
        try:
            pixels = read_image(file).color()
            estimate = estimate_noise_map(pixels)
            check = estimate_noise(pixels) if min(pixels.shape[:2]) >= 8 else float("nan")
            print(f"{file}\t{estimate.summary()}\t({estimate.method}; PCA white-noise check {check:.2f})")
        except DenoiserError as err:
            failed += 1
            print(f"FAILED  {err}")
    return EXIT_OK if failed == 0 else EXIT_SOME_FAILED


def _size_text(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _models_list(as_json: bool) -> int:
    from denoiser.modelstore import describe, list_models, user_models_dir

    infos = list_models()
    if as_json:
        print(json.dumps([{**i.to_json_dict(), "path": str(i.path), "bundled": i.bundled} for i in infos], indent=2))
        return EXIT_OK
    for info in infos:
        print(describe(info))
        if info.trained_on:
            print(f"    trained on {info.trained_on}")
    print(f"({len(infos)} models; your library is {user_models_dir()})")
    return EXIT_OK


def _models_info(spec: str, as_json: bool) -> int:
    from denoiser.modelstore import model_info, model_size_bytes

    info = model_info(spec)
    size = model_size_bytes(info)
    if as_json:
        print(json.dumps({**info.to_json_dict(), "path": str(info.path), "bundled": info.bundled,
                          "size_bytes": size}, indent=2))
        return EXIT_OK
    lines = [f"name:        {info.name}" + (" (bundled)" if info.bundled else ""), f"family:      {info.family}"]
    if info.description:
        lines.append(f"description: {info.description}")
    lines.append(f"config:      {json.dumps(info.config, sort_keys=True)}")
    lines.append(f"trained on:  {info.trained_on or 'unknown'}")
    training = dict(info.training)
    # "steps" is the run's upper bound; with a time budget "steps_done" is what it trained.
    planned, done = training.pop("steps", None), training.pop("steps_done", None)
    steps = done if done is not None else planned
    seconds, command = training.pop("seconds", None), training.pop("command", "")
    summary = [f"{steps} steps" if steps is not None else "", f"{seconds} s" if seconds is not None else ""]
    if done is not None and planned is not None and planned != done:
        summary.append(f"of at most {planned}")
    lines.append(f"training:    {', '.join(part for part in summary if part) or 'unknown'}")
    if command:
        lines.append(f"  command:   {command}")
    for key in sorted(training):
        lines.append(f"  {key}: {json.dumps(training[key], sort_keys=True)}")
    validation = dict(info.validation)
    psnr = validation.pop("psnr", None)
    if isinstance(psnr, (int, float)):
        sigma = validation.pop("sigma", None)
        at = f" at sigma {sigma}" if sigma is not None else ""
        lines.append(f"validation:  PSNR {psnr:.2f} dB{at}")
    else:
        lines.append("validation:  none recorded" if not validation else "validation:")
    for key in sorted(validation):
        lines.append(f"  {key}: {validation[key] if isinstance(validation[key], str) else json.dumps(validation[key])}")
    apart = int(info.config.get("noise_channels", 1)) == 2
    lines.append("noise input: " + ("luminance and colour noise apart" if apart else
                                    "one level for luminance and colour (the colour amount acts with the luminance)"))
    lines.append(f"size:        {_size_text(size)} ({size} bytes)")
    lines.append(f"path:        {info.path}")
    print("\n".join(lines))
    return EXIT_OK


def _confirm(question: str) -> bool:
    """Ask ``question [y/N]`` (on stderr, so stdout stays the command's output); only "y"/"yes" agree."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()  # "" at end of input: no
    return answer.strip().lower() in ("y", "yes")


def _models_remove(name: str, yes: bool) -> int:
    from denoiser.modelstore import library_model_path, remove_model

    path = library_model_path(name)  # unknown and bundled names fail before anything is asked
    if not yes:
        # A script piping input cannot be trusted to have meant "yes": only a person at a terminal answers.
        if sys.stdin is None or not sys.stdin.isatty():
            raise DenoiserError(f"not removing {name}: stdin is not a terminal, so confirm with --yes")
        if not _confirm(f"remove {name}?"):
            print(f"kept {name} (nothing removed)")
            return EXIT_OK
    remove_model(name)
    print(f"removed {name} ({path} and its .json)")
    return EXIT_OK


def _models_sample(args: argparse.Namespace) -> int:
    import math

    import numpy as np
    import torch

    from denoiser.io import Image, from_float, write_image
    from denoiser.modelstore import load_model

    model, info = load_model(args.name)
    sample = getattr(model, "sample", None)
    if not callable(sample):
        raise DenoiserError(f"{info.name} is a {info.family} model, which has no prior to draw images from; "
                            "only variational models can be sampled")
    with torch.inference_mode():
        images = sample(args.count, args.size, args.size, generator=torch.Generator().manual_seed(args.seed))
    columns = math.ceil(math.sqrt(args.count))
    rows, size = math.ceil(args.count / columns), args.size
    sheet = np.zeros((rows * size, columns * size, images.shape[1]), np.float32)
    for index, image in enumerate(images.clamp(0, 1).permute(0, 2, 3, 1).numpy()):
        row, column = divmod(index, columns)
        sheet[row * size : (row + 1) * size, column * size : (column + 1) * size] = image
    path = write_image(args.output, Image(from_float(sheet, 8)))
    print(f"wrote {args.count} sample(s) of {info.name}, {size}x{size} each (seed {args.seed}), to {path}")
    return EXIT_OK


def _cmd_models(args: argparse.Namespace) -> int:
    from denoiser.modelstore import export_model, import_model, rename_model

    action = args.models_action or "list"
    if action == "list":
        return _models_list(args.json)
    if action == "info":
        return _models_info(args.model, args.json)
    if action == "rename":
        path = rename_model(args.old, args.new)
        print(f"renamed {args.old} to {args.new} ({path})")
        return EXIT_OK
    if action == "remove":
        return _models_remove(args.name, args.yes)
    if action == "import":
        info = import_model(args.file, args.name)
        print(f"imported {args.file} as {info.name} ({info.family}; {info.path})")
        return EXIT_OK
    if action == "export":
        path = export_model(args.name, args.destination)
        print(f"exported {args.name} to {path}")
        return EXIT_OK
    if action == "sample":
        return _models_sample(args)
    raise DenoiserError(f"unknown models action {action!r}")


COMMANDS = {
    "denoise": _cmd_denoise,
    "estimate-noise": _cmd_estimate,
    "models": _cmd_models,
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
