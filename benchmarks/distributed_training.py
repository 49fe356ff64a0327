"""Training throughput with torch.distributed on the CPU: patches per second for one process and for two gloo
processes (``torchrun --nproc-per-node 2 ... --distributed``) on the same cores.

Run: ``python benchmarks/distributed_training.py [--steps 40] [--repeat 3] [--batch-size 16] [--patch 64]``.
Every configuration trains the same model on the same in-memory photos with the same global batch (two processes
take half each), without validation or checkpoints, and batches built in the training process (``workers`` 0), so
the figure includes what each rank pays to build the whole step's batch (see :mod:`denoiser.distributed`). The
rate is counted after ``--warmup`` steps, and the median of ``--repeat`` launches is printed, with the fastest.
Each configuration runs in fresh processes (the two-process ones under ``torchrun --standalone``); the script
launches them itself. The threads per process are set explicitly, so that 1 process x 2 threads and 2 processes x
1 thread use the same two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGURATIONS = [
    ("1 process x 1 thread", 1, 1),
    ("1 process x 2 threads", 1, 2),
    ("2 processes x 1 thread (gloo)", 2, 1),
]
"""(label, processes, threads per process)."""


def _photos(count: int = 8, size: int = 192) -> list:
    """Smooth synthetic colour photos (seeded): enough texture for a denoiser, no files to read."""
    import numpy as np

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:size, 0:size]
    photos = []
    for a, b, c in rng.uniform(0.02, 0.2, (count, 3)):
        image = np.stack([np.sin(x * a) * 90, np.cos(y * b) * 90, np.sin((x + y) * c) * 90], axis=2) + 128
        photos.append(image.clip(0, 255).astype(np.uint8))
    return photos


def _child(args: argparse.Namespace) -> None:
    """One process of a configuration: train, and (rank 0) write the rate after the warm-up to ``args.result``."""
    import torch

    from denoiser.datasets import StepBatches, SyntheticSource
    from denoiser.distributed import process_group
    from denoiser.noise import NoiseMix
    from denoiser.train_request import TrainConfig
    from denoiser.training import train

    torch.set_num_threads(args.threads)
    source = SyntheticSource(_photos(), NoiseMix(models=("gaussian",)))
    config = TrainConfig(family="unet", model={"widths": [32, 64, 128], "blocks": 1}, steps=args.steps,
                         batch_size=args.batch_size, patch=args.patch, validation_fraction=0.0,
                         validation_every=10**6, workers=0, seed=0)

    def rate(world: object | None) -> dict[str, float]:
        times: dict[int, float] = {}
        for event in train(source, config, device="cpu", world=world):  # type: ignore[arg-type]
            if event.stage == "train":
                times[event.done] = time.perf_counter()
        seconds = times[args.steps] - times[args.warmup]
        built = time.perf_counter()
        batches = StepBatches(source, list(range(len(source))), args.batch_size, args.patch, 0)
        for step in range(5):
            batches[step]
        return {"patches_per_s": args.batch_size * (args.steps - args.warmup) / seconds,
                "batch_build_s": (time.perf_counter() - built) / 5}

    if args.processes == 1:
        result = rate(None)
    else:
        with process_group("cpu") as world:
            result = rate(world)
            if not world.is_main:
                return
    Path(args.result).write_text(json.dumps(result))


def _launch(processes: int, threads: int, args: argparse.Namespace) -> dict[str, float]:
    """One launch of a configuration in fresh processes; rank 0's figures."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        child = [__file__, "--child", "--processes", str(processes), "--threads", str(threads), "--steps",
                 str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size), "--patch",
                 str(args.patch), "--result", str(result)]
        if processes == 1:
            command = [sys.executable, *child]
        else:
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                       str(processes), *child]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}: {done.stderr[-2000:]}")
        return json.loads(result.read_text())


def main(argv: list[str] | None = None) -> int:
    """Measure every configuration of :data:`CONFIGURATIONS`; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="steps left out of the rate")
    parser.add_argument("--batch-size", type=int, default=16, help="the global batch (two processes: half each)")
    parser.add_argument("--patch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3, help="launches per configuration (the median is printed)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    print(f"unet 32,64,128 (564k weights), global batch {args.batch_size} x {args.patch}x{args.patch} patches, "
          f"{args.steps - args.warmup} steps timed, {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f} before")
    print(f"{'configuration':<32}{'patches/s (median)':>20}{'fastest':>10}{'batch build':>14}")
    for label, processes, threads in CONFIGURATIONS:
        runs = [_launch(processes, threads, args) for _ in range(args.repeat)]
        rates = [run["patches_per_s"] for run in runs]
        build = statistics.median(run["batch_build_s"] for run in runs)
        print(f"{label:<32}{statistics.median(rates):>20.1f}{max(rates):>10.1f}{build * 1000:>11.1f} ms")
    print(f"load average {os.getloadavg()[0]:.1f} after (other work on the same cores lowers every figure)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
