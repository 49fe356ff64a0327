"""How well a noise-map estimator reads noise: known Gaussian noise, clean photos, real camera pairs.

For each set and sigma: the median luminance and colour level read over each photo, against the true sigma
(Gaussian, both protocols; sigma 0 is the photo as it is) or against the noise actually in the photo (a pair set:
the local standard deviation of noisy - clean, in the same luminance/colour units, median over the photo).
Prints mean absolute errors and the mean levels read, and seconds per megapixel.

Grey photos (a grey set such as ``set12``, or any set with ``--grey``: its photos, or both photos of each pair,
made grey with Rec. 601 luma as photo software does) are read as the estimator reads them, three equal channels,
and scored in grey units: the true level is the grey noise's sigma (or the local standard deviation of the pair's
grey noise) in both channels, what the estimator is trained to read for a grey photo.

Photos without a clean version (``--read ../shared/data/real/rni6``) are only read: the median levels per photo,
beside the PCA white-noise estimate.

Run: ``python benchmarks/estimator_check.py [--estimator FILE] --sets kodak24 polyu --sigmas 0 15 50``;
``--sets set12`` or ``--sets polyu kodak24 --grey`` for grey photos.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from denoiser.bench_sets import is_pair_set, load_pairs, load_set
from denoiser.estimator import bundled_estimator_path, estimate_map, load_estimator
from denoiser.estimator_training import grey_photo
from denoiser.noise import add_gaussian_noise, float_noisy
from denoiser.noise_estimation import estimate_noise
from denoiser.noise_maps import local_noise_maps


def true_pair_levels(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Median luminance and colour level (0-255) of the noise in a real pair (grey: the grey noise's, twice)."""
    noise = (noisy.astype(np.float32) - clean.astype(np.float32)) / 255.0
    if noise.ndim == 2:
        noise = noise[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(noise.transpose(2, 0, 1)))[None]
    maps = local_noise_maps(tensor)[0].numpy() * 255
    return float(np.median(maps[0])), float(np.median(maps[1]))


def main() -> None:
    """Print one row per set, sigma and protocol."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimator", default=str(bundled_estimator_path()))
    parser.add_argument("--sets", nargs="*", default=["kodak24", "polyu"])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 5.0, 15.0, 25.0, 50.0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--grey", action="store_true", help="make the photos grey first (Rec. 601 luma)")
    parser.add_argument("--read", nargs="+", default=[], metavar="DIR", help="folders of noisy photos to read only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    estimator, _ = load_estimator(args.estimator)
    if args.read:
        print("| photo | luminance read (median) | colour read (median) | PCA estimate |")
        print("|---|---|---|---|")
        for folder in args.read:
            for file, photo in load_set(folder):
                levels = estimate_map(estimator, photo)
                print(f"| {file} | {np.median(levels[:, :, 0]):.2f} | {np.median(levels[:, :, 1]):.2f} | "
                      f"{estimate_noise(photo):.2f} |")
        if not args.sets:
            return
    print("| set | sigma | protocol | luminance read (mean) | colour read (mean) | abs. error lum / col | s/MP |")
    print("|---|---|---|---|---|---|---|")
    for name in args.sets:
        label = f"{name} grey" if args.grey else name
        if is_pair_set(name):
            pairs = [(noisy, clean) for _, noisy, clean in load_pairs(name, args.limit)]
            if args.grey:
                pairs = [(_grey(noisy), _grey(clean)) for noisy, clean in pairs]
            rows = [(noisy, true_pair_levels(noisy, clean)) for noisy, clean in pairs]
            _report(estimator, label, "real", "pairs", rows)
            continue
        photos = [(file, _grey(clean) if args.grey else clean) for file, clean in load_set(name, args.limit)]
        for sigma in args.sigmas:
            for protocol in ("clipped", "float") if sigma > 0 else ("clipped",):
                rows = []
                for k, (_, clean) in enumerate(photos):
                    make = add_gaussian_noise if protocol == "clipped" else float_noisy
                    rows.append((make(clean, sigma, k), (sigma, sigma)))
                _report(estimator, label, f"{sigma:g}", protocol, rows)


def _grey(photo: np.ndarray) -> np.ndarray:
    """A colour photo as H x W uint8 luma (a grey one as it is)."""
    return photo if photo.ndim == 2 else grey_photo(photo)[:, :, 0]


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
