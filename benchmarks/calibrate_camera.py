"""Measure (and with --write, store) a model's camera strength on the training split of noisy/clean pairs.

See :mod:`denoiser.calibrate`. The validation split (10 %, seed 0, as ``denoiser train --pairs`` and
``denoiser bench --sets polyu`` use it) is never looked at.

Run: ``python benchmarks/calibrate_camera.py ../shared/data/pairs/polyu --model default --write``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from denoiser.bench import PAIR_SEED, PAIR_VALIDATION_FRACTION, load_pairs
from denoiser.calibrate import DEFAULT_CANDIDATES, calibrate_camera_strength
from denoiser.modelstore import load_model, resolve_model_path


def main() -> None:
    """Print the mean PSNR per candidate; write the best into the model's JSON with --write."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder with noisy/ and clean/")
    parser.add_argument("--model", default="default")
    parser.add_argument("--candidates", nargs="+", type=float, default=list(DEFAULT_CANDIDATES))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--write", action="store_true", help="store the best candidate in the model's JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = [(noisy, clean) for _, noisy, clean in load_pairs(args.folder, part="training")]
    model, info = load_model(args.model)
    started = time.monotonic()
    calibration = calibrate_camera_strength(model, pairs, args.candidates,
                                            on_step=lambda i, n: print(f"\r{i}/{n} pairs", end="", flush=True))
    print(f"\n{len(pairs)} training pairs of {args.folder}, {time.monotonic() - started:.0f} s; "
          f"noisy input {calibration.noisy_psnr:.2f} dB")
    for candidate, value in calibration.psnr_by_candidate.items():
        print(f"camera strength {candidate:5g}: {value:.3f} dB{'  <- best' if candidate == calibration.best else ''}")
    if args.write:
        path, _ = resolve_model_path(args.model)
        json_path = path.with_suffix(".json")
        data = json.loads(json_path.read_text())
        data["auto"] = calibration.auto_section(
            f"training split of {args.folder} ({len(pairs)} pairs; {PAIR_VALIDATION_FRACTION:.0%} held out, seed "
            f"{PAIR_SEED}): python benchmarks/calibrate_camera.py {args.folder} --model {args.model} --write")
        json_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        print(f"wrote camera strength {calibration.best:g} into {json_path} (model {info.name})")


if __name__ == "__main__":
    main()
