"""Running an exported model with ONNX Runtime: one cached session per model file, tiles in, tiles out, all numpy
(no torch needed here, so a bundle can denoise without it).

The graph takes ``image`` (N x C x H x W, float 0-1) and ``level`` (N x 2 x H x W, the luminance and colour noise
in 0-1 units; a one-noise-input model's graph folds the two into one itself) and gives the cleaned N x C x H x W
batch as its one output.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from denoiser.errors import Cancelled, DenoiserError

__all__ = [
    "LEVEL_CHANNELS",
    "OnnxGraph",
    "OnnxTileRunner",
    "is_allocation_failure",
    "level_planes",
    "onnxruntime_available",
]

LEVEL_CHANNELS = 2
"""The noise input of every exported graph: luminance and colour planes."""

STOP_POLL_SECONDS = 0.05
"""How often a run given ``should_stop`` asks it."""


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime is installed (found without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def level_planes(level: float | np.ndarray, count: int, height: int, width: int) -> np.ndarray:
    """The graph's ``level`` input for ``count`` tiles of height x width: from one number, from an N x K x 1 x 1
    array (one level per tile) or an N x K x h x w map window, K = 1 (both planes get it) or 2."""
    if not isinstance(level, np.ndarray):
        return np.full((count, LEVEL_CHANNELS, height, width), level, dtype=np.float32)
    level = level.astype(np.float32, copy=False)
    if level.shape[1] == 1:
        level = np.repeat(level, LEVEL_CHANNELS, axis=1)
    if level.shape[1] != LEVEL_CHANNELS:
        raise DenoiserError(f"a noise map of {level.shape[1]} channels cannot feed a model that takes 1 or 2")
    return np.ascontiguousarray(np.broadcast_to(level, (count, LEVEL_CHANNELS, height, width)))


def is_allocation_failure(err: BaseException) -> bool:
    """Whether ONNX Runtime failed for lack of memory (its message, as it has no exception type for it)."""
    text = str(err).lower()
    return "failed to allocate" in text or "bad_alloc" in text or "out of memory" in text


@functools.lru_cache(maxsize=4)
def _session(path: str, threads: int) -> object:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Memory patterns plan one buffer layout per input shape and keep it: on a megapixel tile that doubled the
    # peak (1.0 GB of activations against 0.56 GB without), at no gain in speed.
    options.enable_mem_pattern = False
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _threads() -> int:
    """Threads for a session: what torch would use (``OMP_NUM_THREADS`` or the CPU count), at least one."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    return int(configured) if configured.isdigit() and int(configured) > 0 else max(1, os.cpu_count() or 1)


class OnnxGraph:
    """One exported graph on the CPU: ``graph(name=array, ...)`` gives its first output."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        if not onnxruntime_available():
            raise DenoiserError("ONNX Runtime is not installed (pip install onnxruntime); use --engine torch")
        self.path = Path(path)
        self.session = _session(str(self.path), threads or _threads())

    def __call__(self, should_stop: Callable[[], bool] | None = None, **inputs: np.ndarray) -> np.ndarray:
        """The graph's first output for ``inputs`` (float32 arrays by input name). With ``should_stop``, the run
        is abandoned within about 50 ms of it turning True (raising :class:`~denoiser.errors.Cancelled`) instead of
        finishing a tile whose result nobody wants: a megapixel tile takes about a second on two cores."""
        if should_stop is None:
            return self.session.run(None, inputs)[0]  # type: ignore[attr-defined]
        import onnxruntime as ort

        options = ort.RunOptions()
        finished = threading.Event()

        def watch() -> None:
            while not finished.wait(STOP_POLL_SECONDS):
                if should_stop():
                    options.terminate = True
                    return

        watcher = threading.Thread(target=watch, name="onnx-stop-watch", daemon=True)
        watcher.start()
        try:
            return self.session.run(None, inputs, options)[0]  # type: ignore[attr-defined]
        except Exception as err:
            if options.terminate:
                raise Cancelled("cancelled") from err
            raise
        finally:
            finished.set()
            watcher.join()


class OnnxTileRunner:
    """Runs batches of tiles through the denoiser graph at ``path`` on the CPU."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.graph = OnnxGraph(path, threads)

    def __call__(self, tiles: np.ndarray, level: float | np.ndarray,
                 should_stop: Callable[[], bool] | None = None) -> np.ndarray:
        """The cleaned N x h x w x C float32 tiles of N x h x w x C float32 ``tiles`` at ``level`` (0-1 units);
        ``should_stop`` abandons the run part-way (see :meth:`OnnxGraph.__call__`)."""
        count, height, width, _ = tiles.shape
        image = np.ascontiguousarray(tiles.transpose(0, 3, 1, 2), dtype=np.float32)
        clean = self.graph(should_stop, image=image, level=level_planes(level, count, height, width))
        return np.ascontiguousarray(clean.transpose(0, 2, 3, 1))
