"""``denoiser train``: train or fine-tune a model on the user's own photos from the command line.

Three ways in: ``--clean DIR`` (clean photos + synthetic noise), ``--pairs NOISY [CLEAN]`` (noisy/clean pairs
matched by file name; problems are listed before anything starts) and ``--noisy DIR`` (noisy photos alone,
self-supervised). The model goes to the user's library under ``--name`` (and/or to ``--out``). Ctrl+C stops
cleanly after the current step and keeps a checkpoint when ``--checkpoint`` is given: the same command resumes.
``--session-minutes`` ends a session the same way after a wall time, for a run spread over several sessions (on
borrowed machines, say, the checkpoint folder travelling between them).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from denoiser.errors import Cancelled, DenoiserError
from denoiser.noise import MAX_SIGMA, NOISE_MODELS

if TYPE_CHECKING:  # torch comes with it: imported where a command runs, so --help answers at once
    from denoiser.synthesis import SynthesisMix

EXIT_SESSION_OVER = 75
"""``--session-minutes`` ran out before the run ended: the checkpoint is saved, run the same command again."""
FAMILY_NAMES = ("unet", "nafnet", "sparse", "undercomplete", "variational")
"""The families ``--family`` offers, in :func:`denoiser.models.families` order. Written out because listing the
registry imports torch, which ``denoiser train --help`` should not wait for; a test keeps the two the same."""
SYNTHESIS_KINDS = ("gaussian_clipped", "gaussian_float", "gaussian_16bit", "gaussian_varying", "camera")
""":data:`denoiser.synthesis.NOISE_KINDS`, written out for ``--help`` for the same reason (a test compares them)."""


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    """The ``train`` sub-command's arguments."""
    train = commands.add_parser(
        "train", help="train or fine-tune a model on your photos",
        description="Train on clean photos + synthetic noise, on noisy/clean pairs, or on noisy photos alone.")
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--clean", metavar="DIR", help="folder of clean photos (noise is added synthetically)")
    source.add_argument("--pairs", nargs="+", metavar="DIR",
                        help="NOISY CLEAN folders matched by file name, or one folder holding noisy/ and clean/")
    source.add_argument("--noisy", metavar="DIR", help="folder of noisy photos only (self-supervised)")
    train.add_argument("--name", help="save into your model library under this name")
    train.add_argument("--out", metavar="PATH", help="also (or instead) save to this .safetensors file")
    train.add_argument("--from", dest="start_from", metavar="MODEL",
                       help="fine-tune this model ('default', a library name or a file) instead of starting afresh")
    train.add_argument("--family", default="unet", choices=FAMILY_NAMES, help="autoencoder family (default unet)")
    train.add_argument("--widths", help="comma-separated channel widths per level, e.g. 32,64,128")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="time budget in minutes")
    budget.add_argument("--steps", type=int, help="number of optimiser steps (default 1000)")
    train.add_argument("--noise", default="gaussian",
                       help=f"noise models for --clean, comma-separated from {', '.join(NOISE_MODELS)}")
    train.add_argument("--sigma-max", type=float, default=MAX_SIGMA,
                       help=f"largest Gaussian sigma for --clean (0-255; default {MAX_SIGMA:g})")
    train.add_argument("--quantize", action="store_true",
                       help="round and clip the noisy patches to 8 bits, as saved photos (and the benchmark) are")
    train.add_argument("--quantize-probability", type=float, default=1.0, metavar="P",
                       help="with --quantize: the share of patches rounded and clipped (the rest keep float noise)")
    train.add_argument("--synthesis", metavar="MIX",
                       help="with --clean: make the noise on the training device from this mix, 'default' or "
                            f"KIND=WEIGHT,... of {', '.join(SYNTHESIS_KINDS)} (camera: raw noise through a camera "
                            "pipeline and JPEG); replaces --noise")
    train.add_argument("--add-pairs", metavar="DIR",
                       help="with --synthesis: mix in the training part of this pair set (noisy/ and clean/; the "
                            "part that --pairs and bench hold out is never used)")
    train.add_argument("--pair-share", type=float, default=0.25, help="share of each batch from --add-pairs")
    train.add_argument("--noise-channels", type=int, choices=(1, 2),
                       help="2: the model takes luminance and colour noise apart (a --from model with one noise "
                            "input is widened first, computing what it did)")
    train.add_argument("--skip-bad-pairs", action="store_true", help="train on the usable pairs without asking")
    train.add_argument("--patience", type=int, default=0, help="stop after this many epochs without improvement")
    train.add_argument("--batch-size", type=int, default=16)
    train.add_argument("--patch", type=int, default=64, help="patch edge, a multiple of 16")
    train.add_argument("--lr", type=float, help="learning rate (default 1e-3, or 2e-4 when fine-tuning)")
    train.add_argument("--validation-fraction", type=float, default=0.1)
    train.add_argument("--validation-every", type=int, default=250, help="steps per epoch")
    train.add_argument("--checkpoint", metavar="DIR", help="checkpoint folder: resumes when it holds a checkpoint")
    train.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints")
    train.add_argument("--session-minutes", type=float, default=0.0, metavar="M",
                       help="with --checkpoint: end this session after M minutes of wall time, keeping the "
                            f"checkpoint, and exit with status {EXIT_SESSION_OVER} (the same command goes on, here or "
                            "on another machine with a copy of the folder); --minutes is the whole run's budget")
    train.add_argument("--device", default="auto")
    train.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    train.add_argument("--workers", type=int, default=1, help="background processes building batches")
    train.add_argument("--seed", type=int, default=0)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _build_source(args: argparse.Namespace, channels: int) -> tuple[Any, str]:
    from denoiser.datasets import match_pairs
    from denoiser.training import build_source

    if args.pairs:
        if len(args.pairs) > 2:
            raise DenoiserError("--pairs takes one folder (with noisy/ and clean/) or two (NOISY CLEAN)")
        report = match_pairs(args.pairs[0], args.pairs[1] if len(args.pairs) == 2 else None)
        print(f"pairs: {report.summary()}")
        for line in report.problems():
            print(f"  {line}")
        if not report.pairs:
            raise DenoiserError("no usable pairs to train on")
        if not report.ok and not args.skip_bad_pairs and not _confirm(
                f"train on the {len(report.pairs)} usable pairs and skip the rest?"):
            raise DenoiserError("stopped before training: fix the pairs listed above, or pass --skip-bad-pairs")
        source, trained_on, _ = build_source("pairs", args.pairs[0], channels, report=report,
                                             folders_text=" and ".join(args.pairs))
        return source, trained_on
    if args.synthesis:
        return _device_mix_source(args, channels)
    if args.add_pairs:
        raise DenoiserError("--add-pairs goes with --synthesis")
    kind = "clean" if args.clean else "noisy"
    noise = tuple(m.strip() for m in args.noise.split(",") if m.strip())
    source, trained_on, problems = build_source(kind, args.clean or args.noisy, channels, noise_models=noise,
                                                sigma_max=args.sigma_max, quantize=args.quantize,
                                                quantize_probability=args.quantize_probability)
    for line in problems:
        print(f"skipped {line}")
    return source, trained_on


def parse_synthesis(text: str) -> SynthesisMix:
    """``default`` or ``KIND=WEIGHT,...`` as a validated :class:`~denoiser.synthesis.SynthesisMix`."""
    from denoiser.synthesis import SynthesisMix

    if text.strip().lower() == "default":
        return SynthesisMix()
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, weight = item.partition("=")
        try:
            weights[kind.strip()] = float(weight) if weight else 1.0
        except ValueError as err:
            raise DenoiserError(f"--synthesis: {item!r} is not KIND=WEIGHT") from err
    mix = SynthesisMix(weights=weights)
    mix.validate()
    return mix


def _device_mix_source(args: argparse.Namespace, channels: int) -> tuple[Any, str]:
    from denoiser.bench import load_pairs
    from denoiser.datasets import DeviceMixSource, load_images, with_channels

    if not args.clean:
        raise DenoiserError("--synthesis makes noise for clean photos: give them with --clean")
    mix = parse_synthesis(args.synthesis)
    clean, paths, problems = load_images(args.clean, channels)
    for line in problems:
        print(f"skipped {line}")
    noisy_pairs, clean_pairs = [], []
    if args.add_pairs:
        for _, noisy, reference in load_pairs(args.add_pairs, part="training"):
            noisy_pairs.append(with_channels(noisy, channels))
            clean_pairs.append(with_channels(reference, channels))
    source = DeviceMixSource(clean, mix, noisy_pairs, clean_pairs, args.pair_share if args.add_pairs else 0.0)
    kinds = ", ".join(f"{k} {w:g}" for k, w in mix.weights.items() if w > 0)
    trained_on = f"{len(paths)} clean photos from {args.clean} + noise made on the training device ({kinds})"
    if args.add_pairs:
        trained_on += (f" + the training part of {args.add_pairs} ({len(noisy_pairs)} pairs, "
                       f"{source.pair_share:.0%} of each batch)")
    return source, trained_on


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``denoiser train``; returns the exit status."""
    import torch
    from tqdm import tqdm

    from denoiser.models.widen import with_colour_noise_input
    from denoiser.modelstore import load_model, new_model_path, save_model, save_to_library
    from denoiser.training import TrainConfig, train, training_info

    session_ends = time.monotonic() + args.session_minutes * 60 if args.session_minutes > 0 else math.inf
    if not args.name and not args.out:
        raise DenoiserError("say where the model goes: --name NAME (your library) and/or --out FILE")
    if args.session_minutes and not args.checkpoint:
        raise DenoiserError("--session-minutes needs --checkpoint DIR: the folder the next session goes on from")
    if args.name:
        new_model_path(args.name)  # a bad or taken name fails now, not after the training it would have thrown away
    if args.out and Path(args.out).exists():
        raise DenoiserError(f"{args.out} already exists; it is not overwritten")
    if args.threads:
        torch.set_num_threads(args.threads)
    start_model = None
    if args.start_from:
        start_model, start_info = load_model(args.start_from)
        if args.noise_channels == 2 and start_model.config.noise_channels == 1:
            start_model = with_colour_noise_input(start_model)
        elif args.noise_channels == 1 and start_model.config.noise_channels == 2:
            raise DenoiserError(f"{args.start_from} takes luminance and colour noise apart; it cannot be narrowed")
        family, model_config = start_model.family, start_model.config.to_dict()
    else:
        family = args.family
        model_config = {"widths": [int(w) for w in args.widths.split(",")]} if args.widths else {}
        if args.noise_channels:
            model_config["noise_channels"] = args.noise_channels
    source, trained_on = _build_source(args, channels=3 if start_model is None else start_model.config.channels)
    steps = args.steps or (1_000_000 if args.minutes else 1000)
    config = TrainConfig(
        mode=source.kind, family=family, model=model_config, start_from=args.start_from or "", steps=steps,
        minutes=args.minutes or 0.0, batch_size=args.batch_size, patch=args.patch,
        noise=source.mix.to_dict() if source.kind == "synthetic" else {},
        synthesis=source.mix.to_dict() if source.kind == "device_mix" else {},
        pair_share=source.pair_share if source.kind == "device_mix" else 0.0,
        learning_rate=args.lr or (2e-4 if start_model is not None else 1e-3),
        validation_fraction=args.validation_fraction, validation_every=args.validation_every,
        patience=args.patience, checkpoint_every=args.checkpoint_every, workers=args.workers, seed=args.seed,
    )
    print(f"training a {family} model on {trained_on}"
          + (f", starting from {args.start_from}" if args.start_from else ""))
    stop_requested = {"flag": False}

    def on_interrupt(signum: int, frame: Any) -> None:
        stop_requested["flag"] = True
        print("\nstopping after this step...", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    bar = tqdm(total=steps if not args.minutes else None, unit="step", file=sys.stderr, dynamic_ncols=True)
    result, started = None, time.monotonic()
    try:
        for event in train(source, config, start_model=start_model, checkpoint_dir=args.checkpoint,
                           should_stop=lambda: stop_requested["flag"] or time.monotonic() >= session_ends,
                           device=args.device):
            if event.stage == "done":
                result = event.extra["result"]
            elif event.stage == "validate":
                metric = next(k for k in ("val_psnr", "val_loss") if k in event.extra)
                bar.write(f"starting model: {metric} {event.extra[metric]:.4g}", file=sys.stderr)
            else:
                if event.total and bar.total != event.total:
                    bar.total = event.total
                bar.n = event.done
                shown = {k: f"{v:.4g}" for k, v in event.extra.items() if k in ("loss", "val_psnr", "val_loss")}
                bar.set_postfix(shown, refresh=True)
                if event.message:
                    bar.write(event.message, file=sys.stderr)
    except DenoiserError as err:
        if stop_requested["flag"]:
            where = f"; run the same command to resume from {args.checkpoint}" if args.checkpoint else ""
            print(f"stopped at your request{where}", file=sys.stderr)
            return 130
        if isinstance(err, Cancelled) and time.monotonic() >= session_ends:
            print(f"this session's {args.session_minutes:g} minutes are over; run the same command to go on from "
                  f"{args.checkpoint}", file=sys.stderr)
            return EXIT_SESSION_OVER
        raise
    finally:
        bar.close()
        signal.signal(signal.SIGINT, previous)
    assert result is not None
    command = "denoiser " + " ".join(sys.argv[1:]) if sys.argv and "denoiser" in sys.argv[0] else ""
    saved = []
    if args.name:
        info = training_info(result, config, trained_on, command, args.name)
        saved.append(save_to_library(result.model, args.name, info))
    if args.out:
        info = training_info(result, config, trained_on, command, Path(args.out).stem)
        saved.append(save_model(result.model, args.out, info))
    unit = "dB" if result.metric == "val_psnr" else ""
    figures = f"{result.metric} {result.best:.4g} {unit}".strip() if result.best is not None else "no validation"
    if result.gain is not None:
        figures += f" (starting model {result.start:.4g}, gain {result.gain:+.4g} {unit})".rstrip()
    print(f"trained {result.steps} steps in {time.monotonic() - started:.0f} s; {figures}")
    for path in saved:
        print(f"saved {path}")
    return 0
