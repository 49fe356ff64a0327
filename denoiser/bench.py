"""The benchmark: the project's model beside CBM3D and OpenCV's non-local means, in one run, one table.

Protocol (``../shared/data/README.md``): clean 8-bit image; noisy = clip(round(clean + N(0, sigma^2))) as
uint8 with ``numpy.random.default_rng(i)`` for the i-th file in sorted order; every method's output rounded to
uint8; PSNR over the whole image and SSIM (Wang et al.) averaged over the set; seconds per megapixel timed per
method in the same run. Each (method, set, sigma) runs in a fresh process so that its peak memory can be read
(``ru_maxrss``) and reported beside the memory the process held before the method started.

CBM3D (``bm3d`` package) and scikit-image are optional: ``pip install .[bench]``.
Real camera noise: a *pair set* (``polyu``, or any folder with ``noisy/`` and ``clean/``) is scored on its
seeded validation split (the split ``denoiser train --pairs`` holds out, 10 %, seed 0), once per method rather
than per sigma: there is no true sigma, so every method gets the noise estimate of each noisy photo (ours:
auto strength; CBM3D and NLM: ``estimate_noise``). Its rows read "real" in the sigma column.

Run: ``denoiser bench --sets cbsd68 kodak24 polyu --sigmas 15 25 50`` (or ``python -m denoiser.bench``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.tiling import PASS_COUNTS

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BENCH_DATA = SHARED_DATA / "bench"
PAIR_SETS = {"polyu": SHARED_DATA / "pairs" / "polyu"}
PAIR_VALIDATION_FRACTION = 0.1
PAIR_SEED = 0
REAL_NOISE = 0.0
"""The sigma recorded for a pair set's rows: each image's noise is estimated, not known."""
METHOD_NAMES = ("ours", "ours-auto", "cbm3d", "nlm", "noisy")
"""``noisy`` is the input itself: the row every method is measured against."""


@dataclass
class MethodResult:
    """One method on one set at one sigma."""

    method: str
    set: str
    sigma: float
    images: int
    psnr: float
    ssim: float
    seconds_per_mp: float
    peak_mb: float
    baseline_mb: float
    passes: int = 1
    """Orientations the project's model averaged (1 for the peers)."""

    @property
    def extra_mb(self) -> float:
        """Peak memory above what the process held before the method ran."""
        return self.peak_mb - self.baseline_mb


def set_folder(name: str | Path) -> Path:
    """A benchmark set by name (``kodak24``, ``cbsd68``, ``set12``, ``polyu``) or any folder."""
    folder = Path(name)
    if not folder.is_dir():
        folder = PAIR_SETS.get(str(name), BENCH_DATA / str(name))
    if not folder.is_dir():
        raise DenoiserError(f"{name}: no such benchmark set or folder (looked in {BENCH_DATA} and {SHARED_DATA})")
    return folder


def is_pair_set(name: str | Path) -> bool:
    """True for a set of real noisy/clean pairs (a folder holding ``noisy/`` and ``clean/``)."""
    folder = set_folder(name)
    return (folder / "noisy").is_dir() and (folder / "clean").is_dir()


def load_pairs(name: str | Path, limit: int | None = None,
               part: str = "validation") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One part of a pair set's seeded split (``validation``, what the benchmark scores, or ``training``, what a
    calibration may look at) as (name, noisy, clean) uint8 triples, in the split's order."""
    from denoiser.datasets import match_pairs
    from denoiser.training import split_images

    if part not in ("validation", "training"):
        raise DenoiserError(f"part must be 'validation' or 'training', not {part!r}")
    report = match_pairs(set_folder(name))
    if not report.pairs:
        raise DenoiserError(f"{name}: no matching noisy/clean pairs")
    train, held = split_images(len(report.pairs), PAIR_VALIDATION_FRACTION, PAIR_SEED)
    chosen = [report.pairs[i] for i in (held if part == "validation" else train)][:limit]
    return [(noisy.name, read_uint8(noisy), read_uint8(clean)) for noisy, clean in chosen]


def read_uint8(path: Path) -> np.ndarray:
    """An image's colour as 8-bit pixels (16-bit ones scaled down), H x W for grey."""
    from denoiser.io import read_image

    pixels = read_image(path).color_pixels()
    if pixels.dtype != np.uint8:
        pixels = (pixels >> 8).astype(np.uint8)
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def load_set(name: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The clean images of a set, sorted by file name, as uint8 (RGB, or H x W for a grey set)."""
    from denoiser.io import find_images

    return [(path.name, read_uint8(path)) for path in find_images([set_folder(name)])[:limit]]


def _rss_mb() -> float:
    """Peak resident memory so far (the kernel updates it lazily: callers also take the current value)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _denoiser_for(method: str, model_spec: str, passes: int = 1) -> Callable[[np.ndarray, float], np.ndarray]:
    """A function (noisy uint8, sigma) -> uint8 result for ``method``; sigma :data:`REAL_NOISE` means "estimate it"."""
    if method in ("ours", "ours-auto"):
        from denoiser.batch import auto_strength
        from denoiser.inference import TileSettings, denoise_array
        from denoiser.modelstore import load_model

        model, _ = load_model(model_spec)

        def ours(noisy: np.ndarray, sigma: float) -> np.ndarray:
            blind = method == "ours-auto" or sigma == REAL_NOISE
            color = noisy[:, :, None] if noisy.ndim == 2 else noisy
            strength = auto_strength(color, model.camera_strength) if blind else sigma
            out = denoise_array(noisy, model, strength, tiles=TileSettings(passes=passes), device="cpu")
            out = out[:, :, 0] if noisy.ndim == 2 else out
            return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

        return ours
    if method == "cbm3d":
        try:
            import bm3d
        except ImportError as err:
            raise DenoiserError("CBM3D needs the bm3d package: pip install '.[bench]'") from err

        def cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
            sigma = _estimated(noisy) if sigma == REAL_NOISE else sigma
            scaled = noisy.astype(np.float64) / 255.0
            out = bm3d.bm3d(scaled, sigma / 255.0) if noisy.ndim == 2 else bm3d.bm3d_rgb(scaled, sigma / 255.0)
            return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

        return cbm3d
    if method == "nlm":
        import cv2

        def nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
            sigma = _estimated(noisy) if sigma == REAL_NOISE else sigma
            if noisy.ndim == 2:
                return cv2.fastNlMeansDenoising(noisy, None, 0.6 * sigma, 7, 21)
            bgr = np.ascontiguousarray(noisy[:, :, ::-1])
            return cv2.fastNlMeansDenoisingColored(bgr, None, 0.6 * sigma, 0.8 * sigma, 7, 21)[:, :, ::-1]

        return nlm
    if method == "noisy":
        return lambda noisy, sigma: noisy
    raise UnknownNameError("benchmark method", method, METHOD_NAMES)


def _estimated(noisy: np.ndarray) -> float:
    """The peers' sigma on real noise: the same estimate the app's auto strength starts from."""
    from denoiser.noise import estimate_noise

    return estimate_noise(noisy)


def _trials(set_name: str, sigma: float, limit: int | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(noisy, clean) uint8 images: a pair set's validation split, or a clean set with the protocol's noise."""
    from denoiser.noise import add_gaussian_noise

    if is_pair_set(set_name):
        return [(noisy, clean) for _, noisy, clean in load_pairs(set_name, limit)]
    clean_images = load_set(set_name, limit)
    return [(add_gaussian_noise(clean, sigma, index), clean) for index, (_, clean) in enumerate(clean_images)]


def run_method(method: str, set_name: str, sigma: float, model_spec: str = "default",
               limit: int | None = None, threads: int | None = None, passes: int = 1) -> MethodResult:
    """Run one method over one set at one sigma (a pair set: :data:`REAL_NOISE`), in this process."""
    from denoiser.metrics import psnr, ssim

    if threads:
        import torch

        torch.set_num_threads(threads)
    images = _trials(set_name, sigma, limit)
    denoise = _denoiser_for(method, model_spec, passes)
    baseline = _current_rss_mb()
    psnrs, ssims, seconds, megapixels = [], [], 0.0, 0.0
    for noisy, clean in images:
        started = time.perf_counter()
        out = denoise(noisy, sigma)
        seconds += time.perf_counter() - started
        megapixels += clean.shape[0] * clean.shape[1] / 1e6
        psnrs.append(psnr(clean, out))
        ssims.append(ssim(clean, out))
    return MethodResult(method, str(set_name), sigma, len(images), float(np.mean(psnrs)), float(np.mean(ssims)),
                        seconds / megapixels, max(_rss_mb(), _current_rss_mb()), baseline,
                        passes if method in ("ours", "ours-auto") else 1)


def _child(queue: multiprocessing.Queue, args: tuple) -> None:
    try:
        queue.put(("ok", asdict(run_method(*args))))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which names the method
        queue.put(("error", f"{type(err).__name__}: {err}"))


def run_isolated(method: str, set_name: str, sigma: float, model_spec: str = "default",
                 limit: int | None = None, threads: int | None = None, passes: int = 1) -> MethodResult:
    """:func:`run_method` in a fresh process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, (method, set_name, sigma, model_spec, limit, threads,
                                                                          passes)))
    process.start()
    status, payload = queue.get()
    process.join()
    if status != "ok":
        raise DenoiserError(f"{method} on {set_name} at sigma {sigma:g} failed: {payload}")
    return MethodResult(**payload)


def run_bench(sets: list[str], sigmas: list[float], methods: list[str], model_spec: str = "default",
              limit: int | None = None, threads: int | None = None, isolated: bool = True,
              passes: int = 1) -> Iterator[MethodResult]:
    """Every method on every set at every sigma; yields results as they come."""
    for name in methods:
        if name not in METHOD_NAMES:
            raise UnknownNameError("benchmark method", name, METHOD_NAMES)
    run = run_isolated if isolated else run_method
    for set_name in sets:
        # A pair set has no sigma to vary: each method runs once, on estimated noise ("ours" is then ours-auto).
        pair_set = is_pair_set(set_name)
        chosen = list(dict.fromkeys("ours-auto" if pair_set and m == "ours" else m for m in methods))
        for sigma in [REAL_NOISE] if pair_set else sigmas:
            for method in chosen:
                yield run(method, set_name, sigma, model_spec, limit, threads, passes)


def format_table(results: list[MethodResult]) -> str:
    """A Markdown table, one row per (set, sigma, method)."""
    lines = ["| set | sigma | method | PSNR (dB) | SSIM | s/MP | peak memory (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        sigma = "real" if r.sigma == REAL_NOISE else f"{r.sigma:g}"
        lines.append(f"| {r.set} ({r.images}) | {sigma} | {r.method} | {r.psnr:.2f} | {r.ssim:.4f} | "
                     f"{r.seconds_per_mp:.2f} | {r.peak_mb:.0f} (+{r.extra_mb:.0f}) |")
    return "\n".join(lines)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``denoiser bench`` and ``python -m denoiser.bench``)."""
    parser.add_argument("--sets", nargs="+", default=["cbsd68", "kodak24"],
                        help="kodak24, cbsd68, set12, polyu (real pairs: their validation split) or folders")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[15.0, 25.0, 50.0])
    parser.add_argument("--methods", nargs="+", default=["ours", "cbm3d", "nlm"], choices=METHOD_NAMES)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the project's model")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--passes", type=int, choices=PASS_COUNTS, default=1,
                        help="orientations the project's model averages (self-ensemble; default 1)")


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments and print the table."""
    import platform

    results = []
    started = time.strftime("%Y-%m-%d %H:%M")
    for result in run_bench(args.sets, args.sigmas, args.methods, args.model, args.limit, args.threads,
                            passes=args.passes):
        results.append(result)
        sigma = "real" if result.sigma == REAL_NOISE else f"{result.sigma:g}"
        print(f"{result.set} sigma {sigma} {result.method}: {result.psnr:.2f} dB, SSIM {result.ssim:.4f}, "
              f"{result.seconds_per_mp:.2f} s/MP, peak {result.peak_mb:.0f} MB", flush=True)
    print()
    print(f"{started}, {platform.machine()} {platform.processor() or ''}, {multiprocessing.cpu_count()} cores, "
          f"model {args.model}" + (f", {args.passes} passes (self-ensemble)" if args.passes > 1 else ""))
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


def main() -> None:
    """``python -m denoiser.bench``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    raise SystemExit(bench_command(parser.parse_args()))


if __name__ == "__main__":
    main()
