"""Exporting a model to ONNX for ONNX Runtime, once per model: the file is cached under the user's cache folder,
named by the model's fingerprint, so a retrained or renamed model never reuses another's graph.

Export traces the model in eval mode with dynamic batch, height and width, and a two-plane noise input (see
:mod:`denoiser.onnx_runtime`); it takes about a second for the bundled model and is written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any

import platformdirs
import torch

from denoiser.exported import sidecar_path
from denoiser.io.atomic import atomic_write_bytes
from denoiser.model_identity import model_fingerprint
from denoiser.models.base import Autoencoder
from denoiser.onnx_runtime import LEVEL_CHANNELS

__all__ = ["EXPORT_OPSET", "export_bundle_assets", "export_estimator_onnx", "export_onnx", "onnx_cache_dir",
           "onnx_file_for"]

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
    _traced_to(path, traced, (image, level), ["image", "level"])
    return path


def _traced_to(path: Path, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str]) -> None:
    buffer = io.BytesIO()
    dynamic = {name: _DYNAMIC for name in [*names, "out"]}
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        torch.onnx.export(module, inputs, buffer, input_names=names, output_names=["out"], dynamic_axes=dynamic,
                          opset_version=EXPORT_OPSET, dynamo=False)
    atomic_write_bytes(path, buffer.getvalue())


def export_estimator_onnx(estimator: torch.nn.Module, path: Path) -> Path:
    """Write the noise-map estimator as an ONNX graph (``image`` N x 3 x H x W in, ``out`` the quarter-resolution
    N x 2 x H/4 x W/4 levels) to ``path``; returns ``path``."""
    module = copy.deepcopy(estimator).to("cpu").eval()
    _traced_to(path, module, (torch.rand(1, 3, 64, 64),), ["image"])
    return path


def _write_sidecar(graph: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(sidecar_path(graph), json.dumps(data, indent=2, sort_keys=True).encode())


def export_bundle_assets(out_dir: Path) -> list[Path]:
    """Export the bundled default model and noise-map estimator, with their sidecars, into ``out_dir/models`` and
    ``out_dir/estimator``: what a bundle without torch denoises with. Returns the files written."""
    from denoiser.estimator import bundled_estimator
    from denoiser.modelstore import DEFAULT_MODEL, load_model

    model, info = load_model(DEFAULT_MODEL)
    graph = out_dir / "models" / f"{DEFAULT_MODEL}.onnx"
    graph.parent.mkdir(parents=True, exist_ok=True)
    export_onnx(model, graph)
    _write_sidecar(graph, {
        "family": model.family,
        "config": {"channels": model.config.channels, "widths": list(model.config.widths),
                   "noise_channels": model.config.noise_channels},
        "receptive_radius": model.receptive_radius,
        "receptive_margin": model.receptive_margin,
        "size_multiple": model.size_multiple,
        "fingerprint": model_fingerprint(model),
        "info": {"description": info.description, "family": info.family, "trained_on": info.trained_on},
    })
    written = [graph, sidecar_path(graph)]
    estimator = bundled_estimator()
    if estimator is not None:
        estimator_graph = out_dir / "estimator" / "noise-map.onnx"
        estimator_graph.parent.mkdir(parents=True, exist_ok=True)
        export_estimator_onnx(estimator, estimator_graph)
        _write_sidecar(estimator_graph, {"reads_grey": bool(getattr(estimator, "reads_grey", False))})
        written += [estimator_graph, sidecar_path(estimator_graph)]
    return written
