"""How well a noise-map estimator reads noise: known Gaussian noise, clean photos, real camera pairs.

For each set and sigma: the median luminance and colour level read over each photo, against the true sigma
(Gaussian, both protocols; sigma 0 is the photo as it is) or against the noise actually in the photo (a pair set:
the local standard deviation of noisy - clean, in the same luminance/colour units, median over the photo).
Prints mean absolute errors and the mean levels read, and seconds per megapixel.

Run: ``python benchmarks/estimator_check.py [--estimator FILE] --sets kodak24 polyu --sigmas 0 15 50``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from denoiser.bench import is_pair_set, load_pairs, load_set
from denoiser.estimator import bundled_estimator_path, estimate_map, load_estimator
from denoiser.noise import add_gaussian_noise, float_noisy
from denoiser.synthesis import local_noise_maps


def true_pair_levels(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Median luminance and colour level (0-255) of the noise in a real pair."""
    noise = (noisy.astype(np.float32) - clean.astype(np.float32)) / 255.0
    tensor = torch.from_numpy(np.ascontiguousarray(noise.transpose(2, 0, 1)))[None]
    maps = local_noise_maps(tensor)[0].numpy() * 255
    return float(np.median(maps[0])), float(np.median(maps[1]))


def main() -> None:
    """Print one row per set, sigma and protocol."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimator", default=str(bundled_estimator_path()))
    parser.add_argument("--sets", nargs="+", default=["kodak24", "polyu"])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 5.0, 15.0, 25.0, 50.0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    estimator, _ = load_estimator(args.estimator)
    print("| set | sigma | protocol | luminance read (mean) | colour read (mean) | abs. error lum / col | s/MP |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets:
        if is_pair_set(name):
            rows = [(noisy, true_pair_levels(noisy, clean)) for _, noisy, clean in load_pairs(name, args.limit)]
            _report(estimator, name, "real", "pairs", rows)
            continue
        photos = load_set(name, args.limit)
        for sigma in args.sigmas:
            for protocol in ("clipped", "float") if sigma > 0 else ("clipped",):
                rows = []
                for k, (_, clean) in enumerate(photos):
                    make = add_gaussian_noise if protocol == "clipped" else float_noisy
                    rows.append((make(clean, sigma, k), (sigma, sigma)))
                _report(estimator, name, f"{sigma:g}", protocol, rows)


def _report(estimator: torch.nn.Module, name: str, sigma: str, protocol: str,
            rows: list[tuple[np.ndarray, tuple[float, float]]]) -> None:
    read, errors, seconds, pixels = [], [], 0.0, 0
    for noisy, (true_lum, true_col) in rows:
        started = time.perf_counter()
        levels = estimate_map(estimator, noisy)
        seconds += time.perf_counter() - started
        pixels += noisy.shape[0] * noisy.shape[1]
        lum, col = float(np.median(levels[:, :, 0])), float(np.median(levels[:, :, 1]))
        read.append((lum, col))
        errors.append((abs(lum - true_lum), abs(col - true_col)))
    mean_read, mean_error = np.mean(read, axis=0), np.mean(errors, axis=0)
    print(f"| {name} ({len(rows)}) | {sigma} | {protocol} | {mean_read[0]:.2f} | {mean_read[1]:.2f} | "
          f"{mean_error[0]:.2f} / {mean_error[1]:.2f} | {seconds / (pixels / 1e6):.3f} |")


if __name__ == "__main__":
    main()
