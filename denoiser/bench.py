"""The benchmark: the project's model beside CBM3D and OpenCV's non-local means, in one run, one table.

Protocol (``../shared/data/README.md``): clean 8-bit image; noisy = clip(round(clean + N(0, sigma^2))) as
uint8 with ``numpy.random.default_rng(i)`` for the i-th file in sorted order; every method's output rounded to
uint8; PSNR over the whole image and SSIM (Wang et al.) averaged over the set; seconds per megapixel timed per
method in the same run. Each (method, set, sigma) runs in a fresh process so that its peak memory can be read
(``ru_maxrss``) and reported beside the memory the process held before the method started.

CBM3D (``bm3d`` package) and scikit-image are optional: ``pip install .[bench]``.
Run: ``denoiser bench --sets cbsd68 kodak24 --sigmas 15 25 50`` (or ``python -m denoiser.bench``).
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

BENCH_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "bench"
METHOD_NAMES = ("ours", "ours-auto", "cbm3d", "nlm")


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

    @property
    def extra_mb(self) -> float:
        """Peak memory above what the process held before the method ran."""
        return self.peak_mb - self.baseline_mb


def set_folder(name: str | Path) -> Path:
    """A benchmark set by name (``kodak24``, ``cbsd68``, ``set12``) or any folder of clean images."""
    folder = Path(name)
    if not folder.is_dir():
        folder = BENCH_DATA / str(name)
    if not folder.is_dir():
        raise DenoiserError(f"{name}: no such benchmark set or folder (looked in {BENCH_DATA})")
    return folder


def load_set(name: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The clean images of a set, sorted by file name, as uint8 (RGB, or H x W for a grey set)."""
    from denoiser.io import find_images, read_image

    images = []
    for path in find_images([set_folder(name)])[:limit]:
        pixels = read_image(path).color_pixels()
        if pixels.dtype != np.uint8:
            pixels = (pixels >> 8).astype(np.uint8)
        images.append((path.name, pixels[:, :, 0] if pixels.shape[2] == 1 else pixels))
    return images


def _rss_mb() -> float:
    """Peak resident memory so far (the kernel updates it lazily: callers also take the current value)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _denoiser_for(method: str, model_spec: str) -> Callable[[np.ndarray, float], np.ndarray]:
    """A function (noisy uint8, sigma) -> uint8 result for ``method``."""
    if method in ("ours", "ours-auto"):
        from denoiser.batch import auto_strength
        from denoiser.inference import denoise_array
        from denoiser.modelstore import load_model

        model, _ = load_model(model_spec)

        def ours(noisy: np.ndarray, sigma: float) -> np.ndarray:
            strength = sigma if method == "ours" else auto_strength(noisy[:, :, None] if noisy.ndim == 2 else noisy)
            out = denoise_array(noisy, model, strength, device="cpu")
            out = out[:, :, 0] if noisy.ndim == 2 else out
            return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

        return ours
    if method == "cbm3d":
        try:
            import bm3d
        except ImportError as err:
            raise DenoiserError("CBM3D needs the bm3d package: pip install '.[bench]'") from err

        def cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
            scaled = noisy.astype(np.float64) / 255.0
            out = bm3d.bm3d(scaled, sigma / 255.0) if noisy.ndim == 2 else bm3d.bm3d_rgb(scaled, sigma / 255.0)
            return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

        return cbm3d
    if method == "nlm":
        import cv2

        def nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
            if noisy.ndim == 2:
                return cv2.fastNlMeansDenoising(noisy, None, 0.6 * sigma, 7, 21)
            bgr = np.ascontiguousarray(noisy[:, :, ::-1])
            return cv2.fastNlMeansDenoisingColored(bgr, None, 0.6 * sigma, 0.8 * sigma, 7, 21)[:, :, ::-1]

        return nlm
    raise UnknownNameError("benchmark method", method, METHOD_NAMES)


def run_method(method: str, set_name: str, sigma: float, model_spec: str = "default",
               limit: int | None = None, threads: int | None = None) -> MethodResult:
    """Run one method over one set at one sigma, in this process."""
    from denoiser.metrics import psnr, ssim
    from denoiser.noise import add_gaussian_noise

    if threads:
        import torch

        torch.set_num_threads(threads)
    images = load_set(set_name, limit)
    denoise = _denoiser_for(method, model_spec)
    baseline = _current_rss_mb()
    psnrs, ssims, seconds, megapixels = [], [], 0.0, 0.0
    for index, (_, clean) in enumerate(images):
        noisy = add_gaussian_noise(clean, sigma, index)
        started = time.perf_counter()
        out = denoise(noisy, sigma)
        seconds += time.perf_counter() - started
        megapixels += clean.shape[0] * clean.shape[1] / 1e6
        psnrs.append(psnr(clean, out))
        ssims.append(ssim(clean, out))
    return MethodResult(method, str(set_name), sigma, len(images), float(np.mean(psnrs)), float(np.mean(ssims)),
                        seconds / megapixels, max(_rss_mb(), _current_rss_mb()), baseline)


def _child(queue: multiprocessing.Queue, args: tuple) -> None:
    try:
        queue.put(("ok", asdict(run_method(*args))))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which names the method
        queue.put(("error", f"{type(err).__name__}: {err}"))


def run_isolated(method: str, set_name: str, sigma: float, model_spec: str = "default",
                 limit: int | None = None, threads: int | None = None) -> MethodResult:
    """:func:`run_method` in a fresh process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, (method, set_name, sigma, model_spec, limit, threads)))
    process.start()
    status, payload = queue.get()
    process.join()
    if status != "ok":
        raise DenoiserError(f"{method} on {set_name} at sigma {sigma:g} failed: {payload}")
    return MethodResult(**payload)


def run_bench(sets: list[str], sigmas: list[float], methods: list[str], model_spec: str = "default",
              limit: int | None = None, threads: int | None = None, isolated: bool = True) -> Iterator[MethodResult]:
    """Every method on every set at every sigma; yields results as they come."""
    for name in methods:
        if name not in METHOD_NAMES:
            raise UnknownNameError("benchmark method", name, METHOD_NAMES)
    run = run_isolated if isolated else run_method
    for set_name in sets:
        for sigma in sigmas:
            for method in methods:
                yield run(method, set_name, sigma, model_spec, limit, threads)


def format_table(results: list[MethodResult]) -> str:
    """A Markdown table, one row per (set, sigma, method)."""
    lines = ["| set | sigma | method | PSNR (dB) | SSIM | s/MP | peak memory (MB) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.set} ({r.images}) | {r.sigma:g} | {r.method} | {r.psnr:.2f} | {r.ssim:.4f} | "
                     f"{r.seconds_per_mp:.2f} | {r.peak_mb:.0f} (+{r.extra_mb:.0f}) |")
    return "\n".join(lines)


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``denoiser bench`` and ``python -m denoiser.bench``)."""
    parser.add_argument("--sets", nargs="+", default=["cbsd68", "kodak24"], help="kodak24, cbsd68, set12 or folders")
    parser.add_argument("--sigmas", nargs="+", type=float, default=[15.0, 25.0, 50.0])
    parser.add_argument("--methods", nargs="+", default=["ours", "cbm3d", "nlm"], choices=METHOD_NAMES)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the project's model")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments and print the table."""
    import platform

    results = []
    started = time.strftime("%Y-%m-%d %H:%M")
    for result in run_bench(args.sets, args.sigmas, args.methods, args.model, args.limit, args.threads):
        results.append(result)
        print(f"{result.set} sigma {result.sigma:g} {result.method}: {result.psnr:.2f} dB, SSIM {result.ssim:.4f}, "
              f"{result.seconds_per_mp:.2f} s/MP, peak {result.peak_mb:.0f} MB", flush=True)
    print()
    print(f"{started}, {platform.machine()} {platform.processor() or ''}, {multiprocessing.cpu_count()} cores, "
          f"model {args.model}")
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
