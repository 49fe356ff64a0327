"""``denoiser train``: train or fine-tune a model on the user's own photos from the command line.

Three ways in: ``--clean DIR`` (clean photos + synthetic noise), ``--pairs NOISY [CLEAN]`` (noisy/clean pairs
matched by file name; problems are listed before anything starts) and ``--noisy DIR`` (noisy photos alone,
self-supervised). The model goes to the user's library under ``--name`` (and/or to ``--out``). Ctrl+C stops
cleanly after the current step and keeps a checkpoint when ``--checkpoint`` is given: the same command resumes.
``--session-minutes`` ends a session the same way after a wall time, for a run spread over several sessions (on
borrowed machines, say, the checkpoint folder travelling between them). ``--distributed`` makes the command one of
several processes that ``torchrun`` started (several GPUs or machines): rank 0 alone speaks, and saves the model.

This module turns the arguments into a :class:`~denoiser.train_request.TrainRequest`, asks about problem pairs,
and shows the run in the terminal; :func:`denoiser.train_run.run_training` does the run, as it does for the app.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from denoiser.cli_common import Console
from denoiser.errors import Cancelled, DenoiserError
from denoiser.noise import NOISE_MODELS
from denoiser.progress import Progress
from denoiser.train_request import (
    DEFAULT_STEPS,
    FINE_TUNE_LEARNING_RATE,
    FRESH_LEARNING_RATE,
    DataSpec,
    ModelSpec,
    NoiseSpec,
    OutputSpec,
    ScheduleSpec,
    TrainRequest,
)

if TYPE_CHECKING:  # torch comes with them: imported where a command runs, so --help answers at once
    from denoiser.datasets import PairReport
    from denoiser.synthesis import SynthesisMix

EXIT_SESSION_OVER = 75
"""``--session-minutes`` ran out before the run ended: the checkpoint is saved, run the same command again."""
FAMILY_NAMES = ("unet", "nafnet", "sparse", "undercomplete", "variational")
"""The families ``--family`` offers, in :func:`denoiser.models.families` order. Written out because listing the
registry imports torch, which ``denoiser train --help`` should not wait for; a test keeps the two the same."""
SYNTHESIS_KINDS = ("gaussian_clipped", "gaussian_float", "gaussian_16bit", "gaussian_varying", "camera")
""":data:`denoiser.synthesis.NOISE_KINDS`, written out for ``--help`` for the same reason (a test compares them)."""
_DEFAULTS = TrainRequest()
"""The request's defaults, which the flags' defaults are."""


def _rate(value: float) -> str:
    return f"{value:.0e}".replace("e-0", "e-")


def add_train_parser(commands: argparse._SubParsersAction) -> None:
    """The ``train`` sub-command's arguments."""
    model, data, noise, schedule = _DEFAULTS.model, _DEFAULTS.data, _DEFAULTS.noise, _DEFAULTS.schedule
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
    train.add_argument("--family", default=model.family, choices=FAMILY_NAMES,
                       help=f"autoencoder family (default {model.family})")
    train.add_argument("--widths", help="comma-separated channel widths per level, e.g. 32,64,128")
    budget = train.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="time budget in minutes")
    budget.add_argument("--steps", type=int, help=f"number of optimiser steps (default {DEFAULT_STEPS})")
    train.add_argument("--noise", default=",".join(noise.kinds),
                       help=f"noise models for --clean, comma-separated from {', '.join(NOISE_MODELS)}")
    train.add_argument("--sigma-max", type=float, default=noise.sigma_max,
                       help=f"largest Gaussian sigma for --clean (0-255; default {noise.sigma_max:g})")
    train.add_argument("--quantize", action="store_true",
                       help="round and clip the noisy patches to 8 bits, as saved photos (and the benchmark) are")
    train.add_argument("--quantize-probability", type=float, default=noise.quantize_probability, metavar="P",
                       help="with --quantize: the share of patches rounded and clipped (the rest keep float noise)")
    train.add_argument("--synthesis", metavar="MIX",
                       help="with --clean: make the noise on the training device from this mix, 'default' or "
                            f"KIND=WEIGHT,... of {', '.join(SYNTHESIS_KINDS)} (camera: raw noise through a camera "
                            "pipeline and JPEG); replaces --noise")
    train.add_argument("--add-pairs", metavar="DIR",
                       help="with --synthesis: mix in the training part of this pair set (noisy/ and clean/; the "
                            "part that --pairs and bench hold out is never used)")
    train.add_argument("--pair-share", type=float, default=noise.pair_share,
                       help="share of each batch from --add-pairs")
    train.add_argument("--noise-channels", type=int, choices=(1, 2),
                       help="2: the model takes luminance and colour noise apart (a --from model with one noise "
                            "input is widened first, computing what it did)")
    train.add_argument("--skip-bad-pairs", action="store_true", help="train on the usable pairs without asking")
    train.add_argument("--patience", type=int, default=schedule.patience,
                       help="stop after this many epochs without improvement")
    train.add_argument("--batch-size", type=int, default=schedule.batch_size)
    train.add_argument("--patch", type=int, default=schedule.patch, help="patch edge, a multiple of 16")
    train.add_argument("--lr", type=float, help=f"learning rate (default {_rate(FRESH_LEARNING_RATE)}, or "
                                                f"{_rate(FINE_TUNE_LEARNING_RATE)} when fine-tuning)")
    train.add_argument("--validation-fraction", type=float, default=data.validation_fraction)
    train.add_argument("--validation-every", type=int, default=schedule.validation_every, help="steps per epoch")
    train.add_argument("--checkpoint", metavar="DIR", help="checkpoint folder: resumes when it holds a checkpoint")
    train.add_argument("--checkpoint-every", type=int, default=schedule.checkpoint_every,
                       help="steps between checkpoints")
    train.add_argument("--session-minutes", type=float, default=schedule.session_minutes, metavar="M",
                       help="with --checkpoint: end this session after M minutes of wall time, keeping the "
                            f"checkpoint, and exit with status {EXIT_SESSION_OVER} (the same command goes on, here or "
                            "on another machine with a copy of the folder); --minutes is the whole run's budget")
    train.add_argument("--device", default=schedule.device)
    train.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    train.add_argument("--workers", type=int, default=schedule.workers, help="background processes building batches")
    train.add_argument("--distributed", action="store_true",
                       help="train as one of several processes started by torchrun (one per GPU, or several on CPUs; "
                            "one machine or many): torchrun --nproc-per-node N -m denoiser train ... --distributed. "
                            "--batch-size is the batch of all of them together; --threads and --workers are per "
                            "process; rank 0 alone validates, writes the checkpoint and saves the model")
    train.add_argument("--seed", type=int, default=data.seed,
                       help="seed of the batches, the noise and the held-out split (unless --split-seed)")
    train.add_argument("--split-seed", type=int, default=data.split_seed,
                       help="seed of the held-out split alone (default: a fine-tune holds out its starting "
                            "model's split, a new model --seed's)")


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


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


def request_from_args(args: argparse.Namespace) -> TrainRequest:
    """The training request the ``train`` arguments make (flags that do not go together are refused here, in the
    flags' words). ``--pairs`` ignores the noise flags, as ``--from`` ignores ``--family`` and ``--widths``."""
    if args.pairs and len(args.pairs) > 2:
        raise DenoiserError("--pairs takes one folder (with noisy/ and clean/) or two (NOISY CLEAN)")
    synthesis, add_pairs = None, ""
    if not args.pairs:
        if args.synthesis and not args.clean:
            raise DenoiserError("--synthesis makes noise for clean photos: give them with --clean")
        if args.add_pairs and not args.synthesis:
            raise DenoiserError("--add-pairs goes with --synthesis")
        synthesis = parse_synthesis(args.synthesis).to_dict() if args.synthesis else None
        add_pairs = args.add_pairs or ""
    mode = "pairs" if args.pairs else "clean" if args.clean else "noisy"
    widths = tuple(int(w) for w in args.widths.split(",")) if args.widths and not args.start_from else ()
    return TrainRequest(
        model=ModelSpec(family=args.family, widths=widths, start_from=args.start_from or "",
                        noise_channels=args.noise_channels or 0),
        data=DataSpec(mode=mode, folders=tuple(args.pairs) if args.pairs else (args.clean or args.noisy,),
                      add_pairs=add_pairs, skip_bad_pairs=args.skip_bad_pairs,
                      validation_fraction=args.validation_fraction, seed=args.seed,
                      split_seed=args.split_seed),
        noise=NoiseSpec(kinds=tuple(m.strip() for m in args.noise.split(",") if m.strip()), sigma_max=args.sigma_max,
                        quantize=args.quantize, quantize_probability=args.quantize_probability, synthesis=synthesis,
                        pair_share=args.pair_share),
        schedule=ScheduleSpec(
            steps=args.steps or None, minutes=args.minutes or 0.0, batch_size=args.batch_size, patch=args.patch,
            learning_rate=args.lr or None, validation_every=args.validation_every, patience=args.patience,
            checkpoint=args.checkpoint or "", checkpoint_every=args.checkpoint_every,
            session_minutes=args.session_minutes, device=args.device, threads=args.threads or 0,
            workers=args.workers, distributed=args.distributed),
        output=OutputSpec(name=args.name or "", file=args.out or ""),
    )


def _go_on_with(report: PairReport) -> None:
    """Pairs with problems and no ``--skip-bad-pairs``: go on only when the user says so."""
    if not _confirm(f"train on the {len(report.pairs)} usable pairs and skip the rest?"):
        raise DenoiserError("stopped before training: fix the pairs listed above, or pass --skip-bad-pairs")


def _no_questions_when_distributed(report: PairReport) -> None:
    """Pairs with problems in a distributed run: no process asks (several would, at once)."""
    raise DenoiserError(f"{report.summary()}: a distributed run does not ask; fix the pairs listed above, or pass "
                        "--skip-bad-pairs")


class _Terminal:
    """The run as the terminal shows it: the pair report, skipped files and what trains on what on stdout (``-q``
    leaves out all but the pairs' problems), then a progress bar on stderr when it is a terminal (in a log, only
    the validation lines) while Ctrl+C asks the run to stop after its current step (from the run's start to its
    end only)."""

    def __init__(self, timed: bool, console: Console | None = None) -> None:
        self.timed = timed
        self.console = console or Console()
        self.stop_requested = False
        self.started = time.monotonic()
        self.running = False
        self.bar: Any = None
        self._previous: Any = None

    def should_stop(self) -> bool:
        """Whether Ctrl+C was pressed."""
        return self.stop_requested

    def _interrupt(self, signum: int, frame: Any) -> None:
        if not self.stop_requested:  # torchrun passes a Ctrl+C on to its processes twice
            print("\nstopping after this step...", file=sys.stderr)
        self.stop_requested = True

    def __call__(self, event: Progress) -> None:
        """Show one event of :func:`~denoiser.train_run.run_training`."""
        console = self.console
        if event.stage == "pairs":
            console.report(f"pairs: {event.message}")
            for line in event.extra["report"].problems():
                console.result(f"  {line}")  # even with -q: an error that stops the run points at them
        elif event.stage == "load":
            for line in event.extra.get("skipped", ()):
                console.report(f"skipped {line}")
            if "warning" in event.extra:
                console.note(f"warning: {event.extra['warning']}")
            if "note" in event.extra:
                console.note(event.extra["note"])
        elif event.stage == "start":
            console.report(event.message)
            self._previous = signal.signal(signal.SIGINT, self._interrupt)
            self.running = True
            if console.shows_bars:
                from tqdm import tqdm

                self.bar = tqdm(total=event.total if not self.timed else None, unit="step", file=sys.stderr,
                                dynamic_ncols=True)
                console.bars_open = True
            self.started = time.monotonic()
        elif event.stage == "done":
            self.close()  # the save that follows is not a training step: Ctrl+C interrupts it as any command
        elif not self.running:
            return
        elif event.stage == "validate":
            metric = next(k for k in ("val_psnr", "val_loss") if k in event.extra)
            console.note(f"starting model: {metric} {event.extra[metric]:.4g}")
        elif event.stage == "train":
            self._show_step(event)
            if event.message:
                console.note(event.message)

    def _show_step(self, event: Progress) -> None:
        if self.bar is None:
            return
        if event.total and self.bar.total != event.total:
            self.bar.total = event.total
        self.bar.n = event.done
        shown = {k: f"{v:.4g}" for k, v in event.extra.items() if k in ("loss", "val_psnr", "val_loss")}
        self.bar.set_postfix(shown, refresh=True)

    def close(self) -> None:
        """Close the bar and give Ctrl+C back its usual meaning."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
            self.console.bars_open = False
        if self.running:
            self.running = False
            signal.signal(signal.SIGINT, self._previous)


class _SilentTerminal(_Terminal):
    """A distributed run's terminal on a rank other than 0: shows nothing (rank 0 speaks for the run), but Ctrl+C
    still asks the run to stop after its current step."""

    def __call__(self, event: Progress) -> None:
        """Catch Ctrl+C from the run's start to its end; show nothing."""
        if event.stage == "start":
            self._previous = signal.signal(signal.SIGINT, self._interrupt)
            self.running = True
        elif event.stage == "done":
            self.close()

    def _interrupt(self, signum: int, frame: Any) -> None:
        self.stop_requested = True


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``denoiser train``; returns the exit status."""
    from denoiser.distributed import environment_rank
    from denoiser.train_run import SessionOver, run_training

    if not args.name and not args.out:
        raise DenoiserError("say where the model goes: --name NAME (your library) and/or --out FILE")
    if args.session_minutes and not args.checkpoint:
        raise DenoiserError("--session-minutes needs --checkpoint DIR: the folder the next session goes on from")
    request = request_from_args(args)  # the run checks where the model goes first, not after a training thrown away
    command = "denoiser " + " ".join(sys.argv[1:]) if sys.argv and "denoiser" in sys.argv[0] else ""
    console = Console.for_args(args)
    speaks = not args.distributed or environment_rank() == 0  # in a distributed run, rank 0 speaks for all
    if speaks:
        console.detail(f"request: {request.to_dict()}")
    terminal = (_Terminal if speaks else _SilentTerminal)(timed=bool(request.schedule.minutes), console=console)
    go_on = _no_questions_when_distributed if args.distributed else _go_on_with
    try:
        outcome = run_training(request, terminal.should_stop, terminal, go_on=go_on, command=command)
    except DenoiserError as err:
        if isinstance(err, SessionOver):
            if speaks:
                print(f"this session's {args.session_minutes:g} minutes are over; run the same command to go on "
                      f"from {args.checkpoint}", file=sys.stderr)
            return EXIT_SESSION_OVER
        if terminal.stop_requested or (args.distributed and isinstance(err, Cancelled)):
            if speaks:
                print(f"stopped at your request; {_what_was_kept(args)}", file=sys.stderr)
            return 130
        raise
    finally:
        terminal.close()
    if not speaks:
        return 0
    result = outcome.result
    unit = "dB" if result.metric == "val_psnr" else ""
    figures = f"{result.metric} {result.best:.4g} {unit}".strip() if result.best is not None else "no validation"
    if result.gain is not None:
        figures += f" (starting model {result.start:.4g}, gain {result.gain:+.4g} {unit})".rstrip()
    if result.start_kept:
        figures += ": no step beat the starting model"
    console.report(f"trained {result.steps} steps in {time.monotonic() - terminal.started:.0f} s; {figures}")
    for path in outcome.saved:
        console.report(f"saved {path}")
    if result.start_kept:  # a renamed copy must not pass for a model tuned to the user's photos
        console.error(f"warning: no training step beat the starting model ({args.start_from}) on the held-out "
                      f"photos, so what was saved is {args.start_from}'s weights, unchanged")
    return 0


def _what_was_kept(args: argparse.Namespace) -> str:
    """After Ctrl+C: what the stopped run left behind (no model is saved; a checkpoint when one was asked for)."""
    if args.checkpoint:
        return (f"no model saved; the checkpoint in {args.checkpoint} holds the run: run the same command to resume "
                "from it")
    return "nothing saved (no model, no checkpoint: --checkpoint DIR keeps a run to resume)"
