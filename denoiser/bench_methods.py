"""The benchmark's methods and runs: each method as a denoiser, one run of a method over a set (timed, with its
memory), the same in a fresh process, and the whole grid of sets, sigmas and methods.

The methods are the project's model (``ours`` at the known sigma, ``ours-auto`` with auto strength), CBM3D, OpenCV's
non-local means and ``noisy`` (the input itself); the inputs come from :mod:`denoiser.bench_sets`, the table and
the command are :mod:`denoiser.bench`.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import numpy as np

from denoiser.bench_sets import PAIRS_PROTOCOL, REAL_NOISE, check_protocol, is_pair_set, load_trials
from denoiser.errors import DenoiserError, UnknownNameError

METHOD_NAMES = ("ours", "ours-auto", "cbm3d", "nlm", "noisy")
"""``noisy`` is the input itself: the row every method is measured against."""
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
    """``clipped`` or ``float`` (see :data:`~denoiser.bench_sets.PROTOCOLS`), or
    :data:`~denoiser.bench_sets.PAIRS_PROTOCOL` for a pair set."""
    note: str = ""
    """What the method was given when it differs from the protocol's input, or what sigma 0 means for it."""

    @property
    def extra_mb(self) -> float:
        """Peak memory above what the process held before the method ran."""
        return self.peak_mb - self.baseline_mb


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


def method_denoiser(method: str, model_spec: str, passes: int = 1) -> Callable[[np.ndarray, float], np.ndarray]:
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
            return _to_uint8(out)

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
    from denoiser.noise_estimation import estimate_noise

    return estimate_noise(noisy)


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
    trials = load_trials(set_name, sigma, limit, protocol)
    protocol = PAIRS_PROTOCOL if pair_set else protocol
    denoise = method_denoiser(method, model_spec, passes)
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
