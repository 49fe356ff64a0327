"""Exporting a model to ONNX for ONNX Runtime, once per model: the file is cached under the user's cache folder,
named by the model's fingerprint, so a retrained or renamed model never reuses another's graph.

Export traces the model in eval mode with dynamic batch, height and width, and a two-plane noise input (see
:mod:`denoiser.onnx_runtime`); it takes about a second for the bundled model and is written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import warnings
from pathlib import Path

import platformdirs
import torch

from denoiser.batch.fingerprints import model_fingerprint
from denoiser.io.atomic import atomic_write_bytes
from denoiser.models.base import Autoencoder
from denoiser.onnx_runtime import LEVEL_CHANNELS

__all__ = ["EXPORT_OPSET", "export_onnx", "onnx_cache_dir", "onnx_file_for"]

EXPORT_OPSET = 17
_DYNAMIC = {0: "batch", 2: "height", 3: "width"}


def onnx_cache_dir() -> Path:
    """Where exported graphs are kept (``$DENOISER_HOME/cache/onnx`` when that variable is set, for tests)."""
    home = os.environ.get("DENOISER_HOME")
    base = Path(home) / "cache" if home else Path(platformdirs.user_cache_dir("denoiser", appauthor=False))
    return base / "onnx"


def onnx_file_for(model: Autoencoder) -> Path:
    """The model's ONNX graph, exported now unless the cache already holds it."""
    digest = model_fingerprint(model).removeprefix("sha256:")
    path = onnx_cache_dir() / f"{model.family}-{digest[:32]}.onnx"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model, path)
    return path


def export_onnx(model: Autoencoder, path: Path) -> Path:
    """Write ``model`` as an ONNX graph to ``path`` (atomically); returns ``path``."""
    traced = copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval()
    side = 2 * max(traced.size_multiple, 8)
    image = torch.rand(1, model.config.channels, side, side)
    level = torch.full((1, LEVEL_CHANNELS, side, side), 0.1)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # tracer warnings about branches fixed by the traced shapes: intended
        torch.onnx.export(traced, (image, level), buffer, input_names=["image", "level"], output_names=["clean"],
                          dynamic_axes={"image": _DYNAMIC, "level": _DYNAMIC, "clean": _DYNAMIC},
                          opset_version=EXPORT_OPSET, dynamo=False)
    atomic_write_bytes(path, buffer.getvalue())
    return path
