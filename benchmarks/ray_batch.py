"""Files per second of one folder denoised by the local batch and by a batch on Ray with 1 and 2 CPU workers.

Run: ``python benchmarks/ray_batch.py [--files 16] [--width 1024 --height 768] [--cpus-per-worker N] [--model
default] [--strength auto|SIGMA]`` (needs ``pip install '.[cluster]'``). The photos are synthetic (smooth shapes
plus Gaussian noise, sigma 25), written once to a temporary folder; each run writes into a folder of its own.
Ray runs on this machine (``ray.init``, started once and not timed); each Ray batch starts its own workers, which
load the model, and that start is part of its time (the ``start s`` column shows it, ``steady files/s`` leaves it
out). The local batch runs on every core (torch's default); each Ray worker on ``--cpus-per-worker`` cores
(default: half of them). The script then compares what the runs wrote: byte-identical with the same threads per
process; the local batch on more threads sums floats in another order, which moves a few values by one level.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from denoiser.batch import BatchSettings, run_batch
from denoiser.batch.ray_pool import RayCluster
from denoiser.batch.ray_run import run_ray_batch
from denoiser.inference import TileSettings
from denoiser.io import Image, read_image, write_image
from denoiser.model_loading import load_model_for_inference
from denoiser.progress import Progress

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiled_memory import synthetic_photo  # noqa: E402 - the benchmarks' shared synthetic photo


def make_photos(folder: Path, count: int, width: int, height: int) -> None:
    """``count`` synthetic noisy PNG photos of ``width`` x ``height`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        write_image(folder / f"photo{index:03d}.png", Image(synthetic_photo(width, height, 25.0, seed=index)))


def outputs(folder: Path) -> dict[str, bytes]:
    """The photos a run wrote, by name."""
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def largest_difference(a: Path, b: Path) -> tuple[int, float]:
    """The largest pixel difference between two runs' photos (8-bit levels) and the share of values that differ."""
    largest, differing, values = 0, 0, 0
    for photo in sorted(a.glob("*.png")):
        x = read_image(photo).pixels.astype(np.int32)
        y = read_image(b / photo.name).pixels.astype(np.int32)
        largest = max(largest, int(np.abs(x - y).max()))
        differing += int(np.count_nonzero(x != y))
        values += x.size
    return largest, differing / max(1, values)


def main() -> None:
    """Make the folder, run the three batches, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=768)
    parser.add_argument("--cpus-per-worker", type=int, default=None)
    parser.add_argument("--model", default="default")
    parser.add_argument("--strength", default="auto", help="auto (the default, as the CLI) or a fixed sigma")
    args = parser.parse_args()
    import ray

    cores = os.cpu_count() or 1
    each = args.cpus_per_worker or max(1, cores // 2)
    model, info = load_model_for_inference(args.model)
    strength = None if args.strength == "auto" else float(args.strength)
    with tempfile.TemporaryDirectory(prefix="ray-batch-bench-") as scratch:
        root = Path(scratch)
        make_photos(root / "in", args.files, args.width, args.height)
        make_photos(root / "warm-up", 1, 64, 64)  # the ONNX export of the model, once, before any timing

        def settings(out: str, folder: str = "in") -> BatchSettings:
            return BatchSettings(inputs=[root / folder], output=root / out, strength=strength, tiles=TileSettings(),
                                 device="cpu")

        run_batch(settings("warm-up-out", "warm-up"), model, info.name)
        ray.init(num_cpus=2 * each, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        rows = []
        started = time.perf_counter()
        report = run_batch(settings("local"), model, info.name)
        rows.append(("local batch", f"1 process, {cores} threads", time.perf_counter() - started, 0.0, report.done))
        for workers in (1, 2):
            ready: list[float] = []

            def on_progress(event: Progress, ready: list[float] = ready) -> None:
                if event.stage == "workers":
                    ready.append(time.perf_counter())

            started = time.perf_counter()
            report = run_ray_batch(settings(f"ray{workers}"), model, info.name, info.path,
                                   RayCluster(workers=workers, cpus_per_worker=each), on_progress=on_progress)
            rows.append((f"Ray, {workers} worker(s)", f"{workers} x {each} cores", time.perf_counter() - started,
                         ready[0] - started, report.done))
        ray.shutdown()
        same = outputs(root / "ray1") == outputs(root / "ray2")
        largest, share = largest_difference(root / "local", root / "ray1")

    print(f"{args.files} photos of {args.width}x{args.height}, model {info.name}, strength {args.strength}, "
          f"{cores} CPU cores, engine {os.environ.get('DENOISER_ENGINE', 'auto')}")
    print("| run | CPU | seconds | start s | files/s | steady files/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, cpu, seconds, start, done in rows:
        print(f"| {name} | {cpu} | {seconds:.1f} | {start:.1f} | {done / seconds:.2f} | "
              f"{done / (seconds - start):.2f} |")
    print(f"Ray with 1 and 2 workers wrote byte-identical files: {'yes' if same else 'NO'}; the local batch "
          f"({cores} threads, the workers {each}) differs from them by at most {largest} level(s) in "
          f"{share:.1e} of the values (float sums in another order)")


if __name__ == "__main__":
    main()
