"""Peak memory and time of denoising one large photo on the CPU (default: 6000 x 4000, the issue's target).

Run: ``python benchmarks/tiled_memory.py [--width 6000 --height 4000] [--tile 512] [--model default]``.
Prints the peak resident memory of this process (which does nothing else) and the seconds per megapixel.
The photo is synthetic (smooth shapes plus Gaussian noise, sigma 25) so the script needs no data files.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from denoiser.batch import DenoiseSettings, denoise_image
from denoiser.inference import TileSettings
from denoiser.io import Image
from denoiser.modelstore import load_model


def synthetic_photo(width: int, height: int, sigma: float, seed: int = 0) -> np.ndarray:
    """A uint8 RGB photo-like image: gradients and discs with Gaussian noise, built row band by row band."""
    rng = np.random.default_rng(seed)
    out = np.empty((height, width, 3), dtype=np.uint8)
    band = 500
    xs = np.arange(width, dtype=np.float32)
    for top in range(0, height, band):
        ys = np.arange(top, min(height, top + band), dtype=np.float32)[:, None]
        base = np.stack([
            128 + 90 * np.sin(xs / 700 + ys / 900),
            128 + 80 * np.cos(xs / 500 - ys / 650),
            128 + 70 * np.sin((xs + ys) / 1100),
        ], axis=2)
        noisy = base + rng.normal(0, sigma, base.shape).astype(np.float32)
        out[top : top + len(ys)] = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    """Build the photo, denoise it once, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--tile", type=int, default=None)
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--auto", action="store_true",
                        help="auto strength: read the photo's noise map first (the estimator), as the app does")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, info = load_model(args.model)
    photo = Image(synthetic_photo(args.width, args.height, 25.0))
    before = peak_rss_mb()
    started = time.perf_counter()
    tiles_seen = []
    settings = DenoiseSettings(strength=None if args.auto else 25.0, tiles=TileSettings(tile=args.tile))
    outcome = denoise_image(photo, model, settings, on_progress=lambda e: tiles_seen.append(e.total))
    result = outcome.image
    seconds = time.perf_counter() - started
    megapixels = args.width * args.height / 1e6
    print(f"model {info.name} ({info.family}, {model.parameter_count() / 1e6:.2f} M parameters), "
          f"{torch.get_num_threads()} CPU threads")
    print(f"image {args.width}x{args.height} ({megapixels:.1f} MP), {max(tiles_seen)} tiles")
    print(f"peak memory before denoising (image + model): {before:.0f} MB")
    print(f"peak memory overall: {peak_rss_mb():.0f} MB")
    print(f"time {seconds:.1f} s = {seconds / megapixels:.2f} s/MP; output {result.pixels.shape} {result.pixels.dtype}")
    print(f"strength {'auto' if args.auto else 'fixed'}: typical sigma {outcome.sigma:.1f}; "
          f"{len(outcome.findings)} warning(s)")


if __name__ == "__main__":
    main()
