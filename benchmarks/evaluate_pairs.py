"""PSNR of models on the held-out part of a folder of noisy/clean pairs (real camera noise).

The split is the one ``denoiser train`` makes (seeded, ``--validation-fraction`` of the matched pairs), so
a model fine-tuned on those pairs is scored only on pairs it never trained on. Strength is "auto" (the noise
estimate of each noisy photo), as in the app.

Run: ``python benchmarks/evaluate_pairs.py ../shared/data/pairs/polyu --models default my-tuned-model``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from denoiser.batch import auto_strength
from denoiser.datasets import match_pairs
from denoiser.inference import denoise_array
from denoiser.io import read_image
from denoiser.metrics import psnr
from denoiser.modelstore import load_model
from denoiser.training import split_images


def main() -> None:
    """Score the noisy input and each model on the validation pairs."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", help="folder with noisy/ and clean/ (or the noisy folder with --clean)")
    parser.add_argument("--clean", default=None)
    parser.add_argument("--models", nargs="+", default=["default"])
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--all", action="store_true", help="score every pair, not only the validation split")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = match_pairs(args.folder, args.clean)
    _, held = split_images(len(report.pairs), args.validation_fraction, args.seed)
    chosen = report.pairs if args.all else [report.pairs[i] for i in held]
    pairs = [(read_image(n).color_pixels(), read_image(c).color_pixels()) for n, c in chosen]
    names = ", ".join(n.name for n, _ in chosen)
    print(f"{len(pairs)} pairs ({'all' if args.all else 'validation split'}): {names}")
    print(f"noisy input          PSNR {np.mean([psnr(c, n) for n, c in pairs]):.2f} dB")
    for spec in args.models:
        model, info = load_model(spec)
        scores, seconds = [], 0.0
        for noisy, clean in pairs:
            started = time.perf_counter()
            out = denoise_array(noisy, model, auto_strength(noisy, model.camera_strength), device="cpu")
            seconds += time.perf_counter() - started
            scores.append(psnr(clean, np.clip(np.round(out * 255), 0, 255)))
        print(f"{info.name:<20} PSNR {np.mean(scores):.2f} dB  ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
