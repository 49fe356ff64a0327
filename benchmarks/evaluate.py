"""Mean PSNR of a model on a benchmark set under the protocol of ``../shared/data/README.md``.

Noisy input = clip(round(clean + N(0, sigma^2))) as uint8, noise from ``default_rng(i)`` for the i-th file in
sorted order; the output is rounded to uint8; PSNR over the whole image, averaged over the set.

Run: ``python benchmarks/evaluate.py --set kodak24 --sigma 25 [--model default] [--strength true|auto]``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from denoiser.batch import auto_strength
from denoiser.inference import denoise_array
from denoiser.io import find_images, read_image
from denoiser.metrics import psnr
from denoiser.modelstore import load_model
from denoiser.noise import add_gaussian_noise

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bench"


def main() -> None:
    """Evaluate and print per-set figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", default="kodak24", help="kodak24, cbsd68 or set12 (a folder under shared/data/bench)")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--model", default="default")
    parser.add_argument("--strength", choices=["true", "auto"], default="true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, info = load_model(args.model)
    files = find_images([DATA / args.set])[: args.limit]
    noisy_scores, model_scores, seconds, megapixels = [], [], 0.0, 0.0
    for index, path in enumerate(files):
        clean = np.round(read_image(path).color() * 255).astype(np.uint8)
        noisy = add_gaussian_noise(clean, args.sigma, index)
        started = time.perf_counter()
        sigma = args.sigma if args.strength == "true" else auto_strength(noisy)
        out = denoise_array(noisy, model, sigma, device="cpu")
        seconds += time.perf_counter() - started
        megapixels += clean.shape[0] * clean.shape[1] / 1e6
        result = np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
        noisy_scores.append(psnr(clean, noisy))
        model_scores.append(psnr(clean, result))
    print(f"{args.set}, sigma {args.sigma:g}, {len(files)} images, model {info.name} ({info.family}), "
          f"strength {args.strength}, {torch.get_num_threads()} threads")
    print(f"noisy input  PSNR {np.mean(noisy_scores):.2f} dB")
    gain = np.mean(model_scores) - np.mean(noisy_scores)
    print(f"model output PSNR {np.mean(model_scores):.2f} dB  (gain {gain:+.2f} dB)")
    print(f"speed {seconds / megapixels:.2f} s/MP")


if __name__ == "__main__":
    main()
