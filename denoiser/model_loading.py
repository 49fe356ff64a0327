"""Loading the model to denoise with, by name or path: the torch model where PyTorch is installed; where it is
not (the desktop bundle), the bundled model's exported ONNX graph. The CLI and the app load through here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from denoiser.errors import ModelLoadError
from denoiser.exported import ExportedModel, load_exported, torch_available
from denoiser.resources import bundled_models_dir

if TYPE_CHECKING:
    from denoiser.models import Autoencoder

__all__ = ["ExportedInfo", "load_model_for_inference"]

DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class ExportedInfo:
    """What is known of an exported model: as much of :class:`~denoiser.modelfile.ModelInfo` as the CLI and the
    app show."""

    name: str
    family: str
    path: Path
    description: str = ""


def load_model_for_inference(spec: str | Path = DEFAULT_MODEL) -> tuple[Autoencoder | ExportedModel, Any]:
    """The model ``spec`` names (``default``, a library name, a file) and its info."""
    if torch_available():
        from denoiser.modelstore import load_model

        return load_model(spec)
    return load_bundled_graph(str(spec))


def load_bundled_graph(name: str) -> tuple[ExportedModel, ExportedInfo]:
    """A bundled model's exported graph; :class:`ModelLoadError` for any other model, which needs PyTorch."""
    graph = bundled_models_dir() / f"{name}.onnx"
    if not graph.is_file():
        if name == DEFAULT_MODEL:
            raise ModelLoadError(graph, "the bundled model's exported graph is missing; reinstall the app")
        raise ModelLoadError(Path(name), "this installation runs its bundled models only: other models need "
                                         "PyTorch, which it leaves out (install Denoiser with pip to use them)")
    model = load_exported(graph, name)
    return model, ExportedInfo(name, model.family, graph, str(model.info.get("description", "")))
