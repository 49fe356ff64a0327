"""``denoiser train-estimator``: train the noise-map estimator that "auto" strength reads photos with.

Clean photos get noise synthesised on the training device; ``--pairs`` adds the training part of a real
noisy/clean pair set (the part ``denoiser train --pairs`` and ``denoiser bench`` do not hold out). A share of
each batch (``--grey-share``) is made grey, with the noise grey photos have, so that grey photos are read too.

Skipped files, validation lines and the progress (a bar at a terminal) go to stderr, the saved file to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from denoiser.cli_common import Console
from denoiser.errors import DenoiserError


def add_estimator_parser(commands: argparse._SubParsersAction) -> None:
    """The ``train-estimator`` sub-command's arguments."""
    parser = commands.add_parser("train-estimator", help="train the noise-map estimator used by auto strength",
                                 description="Train the network that reads a photo's luminance and colour noise.")
    parser.add_argument("--clean", required=True, metavar="DIR", help="folder of clean photos")
    parser.add_argument("--pairs", metavar="DIR", help="pair set (noisy/ and clean/): its training part is added")
    parser.add_argument("--pair-share", type=float, default=0.25, help="share of each batch from the pairs")
    parser.add_argument("--grey-share", type=float,
                        help="share of each batch made grey, with grey photos' noise (default 0.2; 0: colour only)")
    parser.add_argument("--from", dest="start", metavar="FILE",
                        help="fine-tune this estimator (e.g. the bundled one) instead of training a new one")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--validation-every", type=int, default=500)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, metavar="FILE", help="where the estimator goes (.safetensors)")


def validation_line(errors: dict[str, float]) -> str:
    """``validation error 0.84 (colour by sigma 0: 0.16, 5: 1.73, ...; grey by sigma 0: ...)``."""
    parts = []
    for label, prefix in (("colour", "error_sigma_"), ("grey", "error_grey_sigma_"),
                          ("grey correlated", "error_grey_correlated_sigma_")):
        by_sigma = [f"{k.removeprefix(prefix)}: {v:.2f}" for k, v in errors.items() if k.startswith(prefix)]
        if by_sigma:
            parts.append(f"{label} by sigma " + ", ".join(by_sigma))
    return f"validation error {errors['error']:.2f} ({'; '.join(parts)})"


class _StepBar:
    """The run's steps: a tqdm bar at a terminal, nothing in a log (validation lines are notes either way)."""

    def __init__(self, console: Console, steps: int) -> None:
        self.console = console
        self.bar: Any = None
        if console.shows_bars:
            from tqdm import tqdm

            self.bar = tqdm(total=steps, unit="step", file=sys.stderr, dynamic_ncols=True)
            console.bars_open = True

    def step(self, done: int, loss: float) -> None:
        """Step ``done`` finished with ``loss``."""
        if self.bar is not None:
            self.bar.n = done
            self.bar.set_postfix({"loss": f"{loss:.3g}"}, refresh=True)

    def close(self) -> None:
        """Take the bar off the terminal."""
        if self.bar is not None:
            self.bar.close()
            self.console.bars_open = False


def cmd_train_estimator(args: argparse.Namespace) -> int:
    """Run ``denoiser train-estimator``; returns the exit status."""
    import torch

    from denoiser.bench_sets import load_pairs
    from denoiser.datasets import DeviceMixSource, load_images
    from denoiser.estimator import load_estimator, save_estimator
    from denoiser.estimator_training import EstimatorTraining, train_estimator
    from denoiser.synthesis import SynthesisMix

    if Path(args.out).exists():
        raise DenoiserError(f"{args.out} already exists; it is not overwritten")
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console.for_args(args)
    clean, _, problems = load_images(args.clean)
    for line in problems:
        console.note(f"skipped {line}")
    pair_noisy, pair_clean = [], []
    if args.pairs:
        for _, noisy, reference in load_pairs(args.pairs, part="training"):
            pair_noisy.append(noisy)
            pair_clean.append(reference)
    source = DeviceMixSource(clean, SynthesisMix(), pair_noisy, pair_clean, args.pair_share if args.pairs else 0.0)
    config = EstimatorTraining(steps=args.steps, batch_size=args.batch_size, patch=args.patch,
                               learning_rate=args.lr, validation_every=args.validation_every, seed=args.seed,
                               grey_share=EstimatorTraining.grey_share if args.grey_share is None else args.grey_share)
    config.validate()
    start = load_estimator(args.start)[0] if args.start else None
    console.note(f"training the noise-map estimator on {len(clean)} clean photos"
                 + (f" and the {len(pair_noisy)} training pairs of {args.pairs}" if args.pairs else "")
                 + (f", {config.grey_share:.0%} of each batch grey" if config.grey_share else ""))
    console.detail(f"settings: {config}; device {args.device}")
    bar = _StepBar(console, config.steps)
    started, result = time.monotonic(), None
    try:
        for event in train_estimator(source, config, device=args.device, start=start):
            if event.stage == "done":
                result = event.extra["result"]
                continue
            bar.step(event.done, event.extra["loss"])
            if "error" in event.extra:
                console.note(f"step {event.done}: {validation_line(event.extra)}")
    finally:
        bar.close()
    assert result is not None
    estimator, info = result
    command = "denoiser " + " ".join(sys.argv[1:]) if sys.argv and "denoiser" in sys.argv[0] else ""
    info["training"]["command"] = command
    if args.start:
        info["training"]["start_from"] = Path(args.start).name
    info["trained_on"] = (f"{len(clean)} clean photos from {args.clean}"
                          + (f" + the training part of {args.pairs} ({len(pair_noisy)} pairs)" if args.pairs else ""))
    path = save_estimator(estimator, args.out, info)
    console.report(f"trained {config.steps} steps in {time.monotonic() - started:.0f} s; validation error "
                   f"{info['validation'].get('error', float('nan')):.2f}; saved {path}")
    return 0
