"""What runs a model over a batch of tiles: torch, or the model's ONNX graph through ONNX Runtime.

:func:`resolve_engine` chooses between them (``TileSettings.engine``, ``DENOISER_ENGINE``, what is installed),
:func:`tile_runner` makes the chosen one, and :func:`is_out_of_memory` tells either's allocation failure, after
which :func:`~denoiser.inference.denoise_array` retries smaller. torch and ONNX Runtime are imported only when a
runner of theirs is made.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.exported import ExportedModel
from denoiser.progress import StopFn, check_stop

if TYPE_CHECKING:
    from denoiser.models.base import Autoencoder

__all__ = ["ENGINES", "TileRunner", "is_out_of_memory", "resolve_engine", "tile_runner"]

ENGINES = ("auto", "torch", "onnx")

TileRunner = Callable[[np.ndarray, "float | np.ndarray", "StopFn | None"], np.ndarray]
"""Runs a batch of N x h x w x C float32 tiles at a noise input (0-1 units: one number, or N x K x h x w levels,
h and w 1 where a tile's level is the same everywhere) and gives the cleaned N x h x w x C float32 tiles. The third
argument, ``should_stop`` or None, lets a runner abandon a batch part-way by raising
:class:`~denoiser.errors.Cancelled` (ONNX Runtime between its nodes, torch between its layers)."""


def resolve_engine(engine: str, device: Any, model: object = None) -> str:
    """``torch`` or ``onnx`` for ``engine`` (``auto``: the environment's ``DENOISER_ENGINE``, else ONNX Runtime on
    the CPU where it is installed, torch elsewhere). ONNX Runtime runs on the CPU only here; an exported
    ``model`` (no torch weights) runs on it whatever is asked."""
    from denoiser.onnx_runtime import onnxruntime_available

    if isinstance(model, ExportedModel):
        if not onnxruntime_available():
            raise DenoiserError("this installation has neither PyTorch nor ONNX Runtime: nothing can run a model")
        return "onnx"
    key = engine.strip().lower()
    if key == "auto":
        key = os.environ.get("DENOISER_ENGINE", "auto").strip().lower() or "auto"
    if key not in ENGINES:
        raise UnknownNameError("inference engine", engine, ENGINES)
    if key == "auto":
        return "onnx" if device.type == "cpu" and onnxruntime_available() else "torch"
    if key == "onnx" and device.type != "cpu":
        raise DenoiserError(f"the onnx engine runs on the CPU, not on {device}; use --engine torch there")
    if key == "onnx" and not onnxruntime_available():
        raise DenoiserError("the onnx engine needs ONNX Runtime (pip install onnxruntime); use --engine torch")
    return key


def tile_runner(engine: str, model: Autoencoder | ExportedModel, device: Any) -> TileRunner:
    """The runner of ``model`` for ``engine`` (as :func:`resolve_engine` answers): its ONNX graph through ONNX
    Runtime, or the torch model on ``device``."""
    if engine == "onnx":
        return _onnx_runner(model)
    return _torch_runner(model, device)  # type: ignore[arg-type]


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is torch's out-of-memory error or an ONNX Runtime allocation failure."""
    from denoiser.onnx_runtime import is_allocation_failure

    return type(err).__name__ == "OutOfMemoryError" or is_allocation_failure(err)


def _torch_runner(model: Autoencoder, device: Any) -> TileRunner:
    import torch

    # The model stays on the device in channels_last layout afterwards: moving it back would cost more.
    model.to(device, memory_format=torch.channels_last)

    def run(tiles: np.ndarray, level: float | np.ndarray, should_stop: StopFn | None = None) -> np.ndarray:
        # channels_last (NHWC) runs these convolutions about 1.6x faster on the CPU than NCHW.
        inputs = torch.from_numpy(tiles).permute(0, 3, 1, 2).to(device).contiguous(memory_format=torch.channels_last)
        noise: float | torch.Tensor = level
        if isinstance(level, np.ndarray):
            noise = torch.from_numpy(np.require(level, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])).to(device)
            if level.shape[2:] != (1, 1):
                noise = noise.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), _stopping_between_layers(model, should_stop):
            return model(inputs, noise).float().permute(0, 2, 3, 1).cpu().numpy()

    return run


@contextlib.contextmanager
def _stopping_between_layers(model: Any, should_stop: StopFn | None) -> Iterator[None]:
    """While inside, every layer of ``model`` asks ``should_stop`` before it runs in this thread and raises
    :class:`~denoiser.errors.Cancelled` when it says so: a megapixel tile takes over a second on a CPU, too long for a
    cancelled job to finish. Another thread running the same model at the same time (the app's preview beside a full
    pass) is not stopped by this run's cancel. The hooks go when the block ends."""
    if should_stop is None:
        yield
        return
    owner = threading.get_ident()

    def ask(_module: Any, _inputs: Any) -> None:
        if threading.get_ident() == owner:
            check_stop(should_stop)

    handles = [layer.register_forward_pre_hook(ask) for layer in model.modules() if not any(layer.children())]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _onnx_runner(model: Autoencoder | ExportedModel) -> TileRunner:
    from denoiser.onnx_runtime import OnnxTileRunner

    if isinstance(model, ExportedModel):
        return OnnxTileRunner(model.graph)
    from denoiser.onnx_export import onnx_file_for

    return OnnxTileRunner(onnx_file_for(model))
