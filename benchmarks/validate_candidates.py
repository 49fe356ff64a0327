"""Score candidate models on the default's validation photos, on every kind of noise its training makes.

The 13 held-out photos of ``../shared/data/train/cbsd432`` (the seeded 3 % split every default has used, never a
benchmark set) with seeded noise of three kinds: Gaussian sigma 25 rounded and clipped to 8 bits, the same noise
unclipped (float), and the simulated camera pipeline of :mod:`denoiser.synthesis` (shot and read noise, demosaicing,
in-camera processing, JPEG), the model being told the noise's true map. Choosing between training snapshots on this
keeps the benchmarks out of the choice.

Run: ``python benchmarks/validate_candidates.py MODEL [MODEL ...] [--clean ../shared/data/train/cbsd432]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from denoiser.datasets import load_images
from denoiser.inference import denoise_array
from denoiser.metrics import psnr
from denoiser.modelstore import load_model
from denoiser.noise import add_gaussian_noise, float_noisy
from denoiser.synthesis import SynthesisMix, synthesize_batch
from denoiser.validation import split_images


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float 0-1 to uint8, rounded and clipped (the benchmark's scoring)."""
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def camera_trial(clean: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A seeded camera-pipeline copy of a uint8 photo: noisy (float), target (uint8) and the true map (0-255)."""
    generator = torch.Generator().manual_seed(seed)
    tensor = torch.from_numpy(clean.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    height, width = tensor.shape[2] // 8 * 8, tensor.shape[3] // 8 * 8
    made = synthesize_batch(tensor[:, :, :height, :width].contiguous(), SynthesisMix(weights={"camera": 1.0}),
                            generator)
    noisy = made.noisy[0].permute(1, 2, 0).numpy()
    target = to_uint8(made.target[0].permute(1, 2, 0).numpy())
    return noisy, target, made.maps[0].permute(1, 2, 0).numpy() * 255.0


def main() -> None:
    """Print a row per model: PSNR on each kind of noise and their mean."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+")
    parser.add_argument("--clean", default="../shared/data/train/cbsd432")
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    images, _, _ = load_images(args.clean)
    _, held = split_images(len(images), 0.03, 0)
    photos = [images[i] for i in held]
    trials: dict[str, list[tuple[np.ndarray, np.ndarray, float | np.ndarray]]] = {"clipped": [], "float": [],
                                                                                 "camera": []}
    for k, photo in enumerate(photos):
        trials["clipped"].append((add_gaussian_noise(photo, args.sigma, k), photo, args.sigma))
        trials["float"].append((float_noisy(photo, args.sigma, k), photo, args.sigma))
        trials["camera"].append(camera_trial(photo, k))
    print(f"{len(photos)} held-out photos of {args.clean}; Gaussian sigma {args.sigma:g}")
    print("| model | clipped | float | camera | mean |")
    print("|---|---|---|---|---|")
    for spec in args.models:
        model, _ = load_model(spec)
        scores = {}
        for kind, items in trials.items():
            values = [psnr(clean, to_uint8(np.clip(denoise_array(noisy, model, level, device="cpu"), 0, 1)))
                      for noisy, clean, level in items]
            scores[kind] = float(np.mean(values))
        mean = float(np.mean(list(scores.values())))
        print(f"| {spec} | {scores['clipped']:.3f} | {scores['float']:.3f} | {scores['camera']:.3f} | {mean:.3f} |")


if __name__ == "__main__":
    main()
