"""The bundled model through torch and through ONNX Runtime on this CPU: seconds per megapixel, peak memory, and
how far apart the results are.

Run: ``python benchmarks/engine_speed.py [--size 1024] [--repeat 3] [--rounds 3] [--threads 2]``.
Each engine runs in its own fresh process (so peak memory is that engine's alone) on the same noisy photo-sized
image at sigma 25, through :func:`denoiser.inference.denoise_array` with the default tiling. ONNX Runtime runs
twice: in a process that also holds torch (as a pip install runs it) and with torch left out, from the exported
graphs (as the desktop bundle runs it). Each process makes a warm-up run (for ONNX Runtime with torch, that
includes exporting the graph once, cached afterwards), then ``--repeat`` timed runs. The engines take turns for
``--rounds`` rounds (torch, ONNX Runtime, the bundle, torch, ...), so that a slow spell of a shared machine does not
fall on one engine alone; each engine's figure is the median over its rounds of each process's median, and the
speed-up is given per round too. The outputs are compared in the parent. POSIX only (peak memory from ``os.wait4``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from denoiser.machine import cpu_description
from denoiser.onnx_export import export_bundle_assets
from denoiser.resources import resources_dir

CHILD = """
import statistics, sys, time
from pathlib import Path
if "{engine}" == "bundle":  # as the desktop bundle runs: no torch at all, the exported graphs
    sys.modules["torch"] = None
    import denoiser.resources
    denoiser.resources.resources_dir = lambda: Path("{resources}")
else:
    import torch
    torch.set_num_threads({threads})
import numpy as np
from denoiser.inference import TileSettings, denoise_array
from denoiser.model_loading import load_model_for_inference
model, _ = load_model_for_inference("default")
rng = np.random.default_rng(0)
y, x = np.mgrid[0:{size}, 0:{size}] / {size}
clean = np.stack([x, y, (x + y) / 2], axis=2).astype(np.float32)
noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
tiles = TileSettings(engine="onnx" if "{engine}" == "bundle" else "{engine}")
denoise_array(noisy, model, 25.0, tiles=tiles, device="cpu")  # warm-up (and the one-time export)
times = []
for _ in range({repeat}):
    started = time.perf_counter()
    out = denoise_array(noisy, model, 25.0, tiles=tiles, device="cpu")
    times.append(time.perf_counter() - started)
np.save("{out}", out)
print(statistics.median(times))
"""


ENGINES = {
    "torch": "torch (eager, channels_last)",
    "onnx": "ONNX Runtime, torch installed",
    "bundle": "ONNX Runtime, no torch (the bundle)",
}


def run_engine(engine: str, size: int, repeat: int, threads: int, out: Path, resources: Path) -> tuple[float, float]:
    """Median seconds of one denoise and the process's peak resident memory in MB."""
    code = CHILD.format(engine=engine, size=size, repeat=repeat, threads=threads, out=out, resources=resources)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env.pop("DENOISER_ENGINE", None)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=env)
    _, status, usage = os.wait4(process.pid, 0)
    assert process.stdout is not None and process.stderr is not None
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{engine} run failed: {process.stderr.read().decode(errors='replace')}")
    return float(process.stdout.read().decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    """Print one line per engine and the difference between their outputs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image edge in pixels (default 1024: 1 MP)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="turns each engine takes, alternating (default 3)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    megapixels = args.size * args.size / 1e6
    outputs = {}
    seconds: dict[str, list[float]] = {engine: [] for engine in ENGINES}
    peaks: dict[str, float] = {engine: 0.0 for engine in ENGINES}
    print(f"{cpu_description()}: default model, {args.size}x{args.size} ({megapixels:.2f} MP), sigma 25, "
          f"{args.threads} threads, "
          f"median of {args.repeat} runs per process, {args.rounds} rounds")
    with tempfile.TemporaryDirectory() as folder:
        resources = Path(folder) / "resources"
        shutil.copytree(resources_dir(), resources, ignore=shutil.ignore_patterns("samples"))
        export_bundle_assets(resources)
        for round_number in range(1, args.rounds + 1):
            for engine in ENGINES:
                out = Path(folder) / f"{engine}.npy"
                median, peak = run_engine(engine, args.size, args.repeat, args.threads, out, resources)
                seconds[engine].append(median)
                peaks[engine] = max(peaks[engine], peak)
                outputs[engine] = np.load(out)
            print(f"round {round_number}: " + ", ".join(f"{engine} {seconds[engine][-1] / megapixels:.2f} s/MP"
                                                       for engine in ENGINES)
                  + f"; torch / onnx {seconds['torch'][-1] / seconds['onnx'][-1]:.2f}x", flush=True)
    for engine, label in ENGINES.items():
        print(f"{label:<34} {statistics.median(seconds[engine]) / megapixels:6.2f} s/MP   peak {peaks[engine]:6.0f} MB")
    for engine in ("onnx", "bundle"):
        speedup = statistics.median(seconds["torch"]) / statistics.median(seconds[engine])
        print(f"{ENGINES[engine]}: {speedup:.2f} times torch's speed")
    for engine in ("onnx", "bundle"):
        difference = float(np.abs(outputs[engine] - outputs["torch"]).max())
        print(f"largest difference, {engine} against torch: {difference:.2e} (0-1 scale)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
