"""Models and the noise-map estimator as exported ONNX graphs with a JSON sidecar: what inference needs when
PyTorch is not installed (the desktop bundle, which leaves torch out to stay a few hundred megabytes).

The sidecar (``<graph>.onnx.json``) holds what tiling needs and a torch model would compute from its classes:
family, image channels, receptive radius and margin, size multiple, the model's fingerprint and its description.
Graphs and sidecars are written at build time by :func:`denoiser.onnx_export.export_bundle_assets`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from denoiser.errors import ModelLoadError, first_line

__all__ = ["SIDECAR_SUFFIX", "ExportedConfig", "ExportedModel", "load_exported", "sidecar_path", "torch_available"]

SIDECAR_SUFFIX = ".json"


def torch_available() -> bool:
    """Whether PyTorch can be imported here (False in the desktop bundle)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def sidecar_path(graph: Path) -> Path:
    """``default.onnx`` -> ``default.onnx.json``."""
    return graph.with_name(graph.name + SIDECAR_SUFFIX)


@dataclass(frozen=True)
class ExportedConfig:
    """The parts of a model's configuration inference reads."""

    channels: int
    widths: tuple[int, ...] = (64,)
    noise_channels: int = 2


@dataclass(frozen=True)
class ExportedModel:
    """A denoiser as an ONNX graph: runs through ONNX Runtime only (``TileSettings.engine`` ``onnx``/``auto``)."""

    name: str
    family: str
    config: ExportedConfig
    receptive_radius: int
    receptive_margin: int
    size_multiple: int
    fingerprint: str
    graph: Path
    info: dict[str, Any] = field(default_factory=dict)

    def eval(self) -> ExportedModel:
        """Nothing to switch: a graph is always in inference mode (here so callers need not tell it from torch)."""
        return self


def load_exported(graph: Path, name: str | None = None) -> ExportedModel:
    """The exported model whose graph is ``graph``; :class:`ModelLoadError` naming the file when it or its sidecar
    is missing or unreadable."""
    sidecar = sidecar_path(graph)
    if not graph.is_file() or not sidecar.is_file():
        raise ModelLoadError(graph, "no exported graph and description here; reinstall the app")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        config = data["config"]
        return ExportedModel(
            name=name or graph.name.removesuffix(".onnx"),
            family=str(data["family"]),
            config=ExportedConfig(int(config["channels"]), tuple(int(w) for w in config.get("widths", (64,))),
                                  int(config.get("noise_channels", 2))),
            receptive_radius=int(data["receptive_radius"]),
            receptive_margin=int(data["receptive_margin"]),
            size_multiple=int(data["size_multiple"]),
            fingerprint=str(data["fingerprint"]),
            graph=graph,
            info=dict(data.get("info", {})),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelLoadError(sidecar, f"not a description of an exported model ({first_line(err)})") from err
