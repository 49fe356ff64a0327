"""The benchmark: the project's model beside CBM3D and OpenCV's non-local means, in one run, one table.

Protocol (``../shared/data/README.md``), chosen with ``--protocol``:

* ``clipped`` (the default): clean 8-bit image; noisy = clip(round(clean + N(0, sigma^2))) as uint8, what a
  user's noisy 8-bit file looks like.
* ``float``: the protocol of the published DnCNN/FFDNet/DRUNet tables: noisy = clean/255 + N(0, sigma^2)/255 in
  float32 (0-1 units), neither rounded nor clipped, as 16-bit scans, float images and RAW developments are. The
  project's model and CBM3D take that float image; OpenCV's NLM takes only uint8, so it gets the rounded and
  clipped image (the clipped protocol's input), and the "noisy" row is that image's PSNR.

Both draw the noise with ``numpy.random.default_rng(i)`` for the i-th file in sorted order, the same draws, so the
two differ only by rounding and clipping. Sigma 0 adds no noise (noisy = clean): the rows then show how much each
method changes a clean photo. Every method's output is rounded to uint8; PSNR over the whole image and SSIM
(Wang et al.) on uint8, averaged over the set; seconds per megapixel timed per method in the same run. Each
(method, set, sigma) runs in a fresh process so that its peak memory can be read (``ru_maxrss``) and reported
beside the memory the process held before the method started.

CBM3D (``bm3d`` package) and scikit-image are optional: ``pip install .[bench]``.
Real camera noise: a *pair set* (``polyu``, or any folder with ``noisy/`` and ``clean/``) is scored on its
seeded validation split (the split ``denoiser train --pairs`` holds out, 10 %, seed 0), once per method rather
than per sigma: there is no true sigma, so every method gets the noise estimate of each noisy photo (ours:
auto strength; CBM3D and NLM: ``estimate_noise``). Its rows read "real" in the sigma column and "pairs" in the
protocol column: it has no synthetic noise, so ``--protocol`` does not apply to it.

Run: ``denoiser bench --sets cbsd68 kodak24 polyu --sigmas 15 25 50 --protocol float``
(or ``python -m denoiser.bench``).
"""

from __future__ import annotations

import argparse
import json
import math
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
REAL_NOISE = -1.0
"""The sigma recorded for a pair set's rows: each image's noise is estimated, not known (sigma 0 means no noise)."""
METHOD_NAMES = ("ours", "ours-auto", "cbm3d", "nlm", "noisy")
"""``noisy`` is the input itself: the row every method is measured against."""
PROTOCOLS = ("clipped", "float")
"""How the synthetic noisy input is made (see the module's docstring); ``clipped`` is the default."""
PAIRS_PROTOCOL = "pairs"
"""The protocol recorded for a pair set's rows: real noise, neither synthetic protocol applies."""
PROTOCOL_DESCRIPTIONS = {
    "clipped": "noisy = clip(round(clean + N(0, sigma^2)), 0, 255) as uint8",
    "float": "noisy = clean/255 + N(0, sigma^2)/255 in float32, neither rounded nor clipped",
    PAIRS_PROTOCOL: "real noisy/clean pairs, no synthetic noise",
}
UINT8_ONLY = ("nlm", "noisy")
"""Methods that take only 8-bit pixels: under the float protocol they get the rounded and clipped noisy image."""


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
    protocol: str = "clipped"
    """``clipped`` or ``float`` (see :data:`PROTOCOLS`), or :data:`PAIRS_PROTOCOL` for a pair set."""
    note: str = ""
    """What the method was given when it differs from the protocol's input, or what sigma 0 means for it."""

    @property
    def extra_mb(self) -> float:
        """Peak memory above what the process held before the method ran."""
        return self.peak_mb - self.baseline_mb


@dataclass
class Trial:
    """One image of a run: the input the methods get, the clean image, and the input as 8-bit pixels."""

    noisy: np.ndarray
    """The protocol's noisy input: uint8 (clipped protocol, pair sets) or float32 in 0-1 units (float protocol)."""
    clean: np.ndarray
    rounded: np.ndarray
    """``noisy`` rounded and clipped to uint8 (``noisy`` itself when it is uint8): what 8-bit-only methods get."""


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


def check_protocol(protocol: str) -> None:
    """Raise :class:`UnknownNameError` unless ``protocol`` is one of :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise UnknownNameError("benchmark protocol", protocol, PROTOCOLS)


def protocol_trial(clean: np.ndarray, sigma: float, seed: int, protocol: str = "clipped") -> Trial:
    """The noisy input of one clean uint8 image under ``protocol`` (sigma 0: noisy = clean)."""
    from denoiser.noise import add_gaussian_noise, float_noisy

    check_protocol(protocol)
    # Both protocols draw the same noise; the uint8 one is rounded and clipped from the float64 sum, not from
    # the float32 input, so 8-bit-only methods get exactly the clipped protocol's input.
    rounded = add_gaussian_noise(clean, sigma, seed)
    noisy = float_noisy(clean, sigma, seed) if protocol == "float" else rounded
    return Trial(noisy, clean, rounded)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """uint8 pixels as they are; a float image in 0-1 units rounded and clipped to 8 bits."""
    # float64 on purpose (io.from_float scales in float32): the closest match to the clipped protocol's rounding.
    if image.dtype == np.uint8:
        return image
    return np.clip(np.round(image.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)


def _rss_mb() -> float:
    """Peak resident memory so far (the kernel updates it lazily: callers also take the current value)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def _denoiser_for(method: str, model_spec: str, passes: int = 1) -> Callable[[np.ndarray, float], np.ndarray]:
    """A function (noisy, sigma) -> uint8 result for ``method``.

    ``noisy`` is uint8, or float in 0-1 units (the float protocol; NLM needs uint8 and rounds it if given float).
    Sigma :data:`REAL_NOISE` means "estimate it"; sigma 0 means the input has no noise.
    """
    if method in ("ours", "ours-auto"):
        from denoiser.inference import TileSettings, denoise_array
        from denoiser.io import from_float
        from denoiser.modelstore import load_model
        from denoiser.strength import Strength, levels_for

        model, _ = load_model(model_spec)

        def ours(noisy: np.ndarray, sigma: float) -> np.ndarray:
            # A float input goes in unchanged: denoise_array and the noise estimate both take float in 0-1 units.
            blind = method == "ours-auto" or sigma == REAL_NOISE
            color = noisy[:, :, None] if noisy.ndim == 2 else noisy
            strength = levels_for(color, Strength())[0] if blind else sigma  # auto: the photo's own noise map
            out = denoise_array(color, model, strength, tiles=TileSettings(passes=passes), device="cpu")
            out = out[:, :, 0] if noisy.ndim == 2 else out
            return from_float(out, 8)

        return ours
    if method == "cbm3d":
        try:
            import bm3d
        except ImportError as err:
            raise DenoiserError("CBM3D needs the bm3d package: pip install '.[bench]'") from err

        def cbm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
            sigma = _estimated(noisy) if sigma == REAL_NOISE else sigma
            if sigma <= 0:
                return _to_uint8(noisy)  # no noise to remove (bm3d divides by sigma): the input, unchanged
            # bm3d works in the units of its sigma: 0-1 here, the float protocol's units.
            scaled = noisy.astype(np.float64) / 255.0 if noisy.dtype == np.uint8 else noisy.astype(np.float64)
            out = bm3d.bm3d(scaled, sigma / 255.0) if noisy.ndim == 2 else bm3d.bm3d_rgb(scaled, sigma / 255.0)
            return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)

        return cbm3d
    if method == "nlm":
        import cv2

        def nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
            # OpenCV's non-local means takes only 8-bit pixels: a float input is rounded and clipped first
            # (run_method hands it the rounded and clipped image already, see UINT8_ONLY).
            noisy = _to_uint8(noisy)
            sigma = _estimated(noisy) if sigma == REAL_NOISE else sigma
            if sigma <= 0:
                return noisy.copy()  # filter strength h = 0: nothing to remove, the input returned unchanged
            if noisy.ndim == 2:
                return cv2.fastNlMeansDenoising(noisy, None, 0.6 * sigma, 7, 21)
            bgr = np.ascontiguousarray(noisy[:, :, ::-1])
            return cv2.fastNlMeansDenoisingColored(bgr, None, 0.6 * sigma, 0.8 * sigma, 7, 21)[:, :, ::-1]

        return nlm
    if method == "noisy":
        return lambda noisy, sigma: _to_uint8(noisy)
    raise UnknownNameError("benchmark method", method, METHOD_NAMES)


def _estimated(noisy: np.ndarray) -> float:
    """The peers' sigma on real noise: the same estimate the app's auto strength starts from."""
    from denoiser.noise import estimate_noise

    return estimate_noise(noisy)


def _trials(set_name: str, sigma: float, limit: int | None, protocol: str = "clipped") -> list[Trial]:
    """A pair set's validation split (uint8, the protocol does not apply), or a clean set with the protocol's
    noise (the i-th image in sorted order seeded with i)."""
    if is_pair_set(set_name):
        return [Trial(noisy, clean, noisy) for _, noisy, clean in load_pairs(set_name, limit)]
    return [protocol_trial(clean, sigma, index, protocol) for index, (_, clean) in enumerate(load_set(set_name, limit))]


def _note(method: str, sigma: float, protocol: str) -> str:
    """What a result's reader needs to know beyond the protocol: what the method got, what sigma 0 means."""
    notes = []
    if protocol == "float" and method == "nlm":
        notes.append("OpenCV NLM takes uint8 only: given the rounded and clipped noisy image")
    if protocol == "float" and method == "noisy":
        notes.append("PSNR of the rounded and clipped noisy image")
    if sigma == 0 and protocol != PAIRS_PROTOCOL:
        if method in ("cbm3d", "nlm"):
            notes.append("sigma 0: input returned unchanged")
        elif method != "noisy":
            notes.append("sigma 0: noisy = clean, PSNR of the output against its own input")
    return "; ".join(notes)


def run_method(method: str, set_name: str, sigma: float, model_spec: str = "default",
               limit: int | None = None, threads: int | None = None, passes: int = 1,
               protocol: str = "clipped") -> MethodResult:
    """Run one method over one set at one sigma (a pair set: :data:`REAL_NOISE`), in this process.

    ``protocol`` (``clipped`` or ``float``) makes a clean set's noisy input; a pair set ignores it and records
    :data:`PAIRS_PROTOCOL`.
    """
    from denoiser.metrics import psnr, ssim

    check_protocol(protocol)
    pair_set = is_pair_set(set_name)
    if sigma < 0 and not pair_set:
        raise DenoiserError(f"sigma must be 0 or more, not {sigma:g}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    trials = _trials(set_name, sigma, limit, protocol)
    protocol = PAIRS_PROTOCOL if pair_set else protocol
    denoise = _denoiser_for(method, model_spec, passes)
    baseline = _current_rss_mb()
    psnrs, ssims, seconds, megapixels = [], [], 0.0, 0.0
    for trial in trials:
        noisy = trial.rounded if method in UINT8_ONLY else trial.noisy
        started = time.perf_counter()
        out = denoise(noisy, sigma)
        seconds += time.perf_counter() - started
        megapixels += trial.clean.shape[0] * trial.clean.shape[1] / 1e6
        psnrs.append(psnr(trial.clean, out))
        ssims.append(ssim(trial.clean, out))
    return MethodResult(method, str(set_name), sigma, len(trials), float(np.mean(psnrs)), float(np.mean(ssims)),
                        seconds / megapixels, max(_rss_mb(), _current_rss_mb()), baseline,
                        passes if method in ("ours", "ours-auto") else 1, protocol, _note(method, sigma, protocol))


def _child(queue: multiprocessing.Queue, args: tuple) -> None:
    try:
        queue.put(("ok", asdict(run_method(*args))))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which names the method
        queue.put(("error", f"{type(err).__name__}: {err}"))


def run_isolated(method: str, set_name: str, sigma: float, model_spec: str = "default",
                 limit: int | None = None, threads: int | None = None, passes: int = 1,
                 protocol: str = "clipped") -> MethodResult:
    """:func:`run_method` in a fresh process, so that its peak memory is its own."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(queue, (method, set_name, sigma, model_spec, limit, threads,
                                                           passes, protocol)))
    process.start()
    status, payload = queue.get()
    process.join()
    if status != "ok":
        raise DenoiserError(f"{method} on {set_name} at sigma {sigma:g} failed: {payload}")
    return MethodResult(**payload)


def run_bench(sets: list[str], sigmas: list[float], methods: list[str], model_spec: str = "default",
              limit: int | None = None, threads: int | None = None, isolated: bool = True,
              passes: int = 1, protocol: str = "clipped") -> Iterator[MethodResult]:
    """Every method on every set at every sigma under ``protocol``; yields results as they come."""
    for name in methods:
        if name not in METHOD_NAMES:
            raise UnknownNameError("benchmark method", name, METHOD_NAMES)
    check_protocol(protocol)
    for sigma in sigmas:
        if sigma < 0:
            raise DenoiserError(f"sigma must be 0 or more, not {sigma:g}")
    run = run_isolated if isolated else run_method
    for set_name in sets:
        # A pair set has no sigma to vary: each method runs once, on estimated noise ("ours" is then ours-auto).
        pair_set = is_pair_set(set_name)
        chosen = list(dict.fromkeys("ours-auto" if pair_set and m == "ours" else m for m in methods))
        for sigma in [REAL_NOISE] if pair_set else sigmas:
            for method in chosen:
                yield run(method, set_name, sigma, model_spec, limit, threads, passes, protocol)


def _sigma_text(sigma: float) -> str:
    return "real" if sigma == REAL_NOISE else f"{sigma:g}"


def format_table(results: list[MethodResult]) -> str:
    """A Markdown table, one row per (set, sigma, method), with a protocol column; each distinct note becomes a
    numbered footnote under the table, marked beside the method."""
    lines = ["| set | sigma | protocol | method | PSNR (dB) | SSIM | s/MP | peak memory (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for r in results:
        method = r.method
        if r.note:
            if r.note not in notes:
                notes.append(r.note)
            method += f" [{notes.index(r.note) + 1}]"
        lines.append(f"| {r.set} ({r.images}) | {_sigma_text(r.sigma)} | {r.protocol} | {method} | {r.psnr:.2f} | "
                     f"{r.ssim:.4f} | {r.seconds_per_mp:.2f} | {r.peak_mb:.0f} (+{r.extra_mb:.0f}) |")
    if notes:
        lines.append("")
        lines.extend(f"[{number}] {note}" for number, note in enumerate(notes, 1))
    return "\n".join(lines)


def results_json(results: list[MethodResult]) -> str:
    """The results as a JSON list, one object per result with its ``protocol`` and ``note``.

    An infinite PSNR (output identical to the clean image, e.g. the "noisy" row at sigma 0) is written as
    ``null``, which strict JSON readers accept, where ``Infinity`` is not JSON.
    """
    rows = []
    for result in results:
        row = asdict(result)
        row.update({key: None for key, value in row.items() if isinstance(value, float) and not math.isfinite(value)})
        rows.append(row)
    return json.dumps(rows, indent=2)


def _sigma_argument(text: str) -> float:
    """``--sigmas`` values: 0 (no noise) or more."""
    try:
        sigma = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not sigma >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"sigma must be 0 or more, not {text}")
    return sigma


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``denoiser bench`` and ``python -m denoiser.bench``)."""
    parser.add_argument("--sets", nargs="+", default=["cbsd68", "kodak24"],
                        help="kodak24, cbsd68, set12, polyu (real pairs: their validation split) or folders")
    parser.add_argument("--sigmas", nargs="+", type=_sigma_argument, default=[15.0, 25.0, 50.0],
                        help="noise levels in 0-255 units; 0 adds no noise (how much a clean photo is changed)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="clipped",
                        help="clipped: noisy input rounded and clipped to uint8 (default); float: clean/255 + "
                             "N(0, sigma^2)/255 in float32, neither rounded nor clipped (the published tables; "
                             "OpenCV NLM still gets the rounded, clipped image). Pair sets ignore it")
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

    protocol = getattr(args, "protocol", "clipped")
    results = []
    started = time.strftime("%Y-%m-%d %H:%M")
    for result in run_bench(args.sets, args.sigmas, args.methods, args.model, args.limit, args.threads,
                            passes=args.passes, protocol=protocol):
        results.append(result)
        print(f"{result.set} sigma {_sigma_text(result.sigma)} ({result.protocol}) {result.method}: "
              f"{result.psnr:.2f} dB, SSIM {result.ssim:.4f}, {result.seconds_per_mp:.2f} s/MP, "
              f"peak {result.peak_mb:.0f} MB", flush=True)
    print()
    print(f"{started}, {platform.machine()} {platform.processor() or ''}, {multiprocessing.cpu_count()} cores, "
          f"model {args.model}" + (f", {args.passes} passes (self-ensemble)" if args.passes > 1 else ""))
    print(f"protocol {protocol}: {PROTOCOL_DESCRIPTIONS[protocol]}")
    print(format_table(results))
    if args.json:
        args.json.write_text(results_json(results))
    return 0


def main() -> None:
    """``python -m denoiser.bench``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    raise SystemExit(bench_command(parser.parse_args()))


if __name__ == "__main__":
    main()
