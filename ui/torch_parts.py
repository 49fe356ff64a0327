"""What of the app needs PyTorch, and what stands in for it where torch is not installed (the desktop bundle,
which leaves it out and denoises with the bundled default model's exported graph through ONNX Runtime).

Opening, denoising, comparing, saving and batches work either way. Training, the model library and the latent
thumbnails need the torch model: without torch their entries are disabled and say why. The engine modules that
import torch (:mod:`denoiser.modelstore`, :mod:`denoiser.modelfile`, :mod:`denoiser.latents`...) are imported
here and elsewhere in the app only inside the functions that run with torch.
"""

from __future__ import annotations

from typing import Any

from denoiser.errors import DenoiserError
from denoiser.exported import load_exported, torch_available
from denoiser.model_loading import DEFAULT_MODEL, ExportedInfo
from denoiser.resources import bundled_models_dir

__all__ = ["LATENTS_NEED_PYTORCH", "NEEDS_PYTORCH", "OTHER_MODELS_NEED_PYTORCH", "model_entries", "model_names",
           "model_note", "torch_available"]

NEEDS_PYTORCH = "needs PyTorch: install Denoiser with pip to train and manage models"
"""Why Train a Model and Manage Models are disabled in an installation without torch."""
LATENTS_NEED_PYTORCH = ("What the model sees needs PyTorch: this installation runs the model's exported graph, which "
                        "gives the result only (install Denoiser with pip to see its bottleneck).")
"""Shown instead of the latent thumbnails when the model in use is an exported graph."""
OTHER_MODELS_NEED_PYTORCH = "other models need PyTorch: install Denoiser with pip to use them"
"""Said in the chooser's tooltip of the bundled model where it is the only one."""


def model_entries() -> list[tuple[str, str]]:
    """(name, description) of every model the chooser offers: the bundled and library models with torch;
    without it only the bundled default whose exported graph ships with the app (none when it is missing)."""
    if torch_available():
        from denoiser.modelstore import describe, list_models

        return [(info.name, describe(info)) for info in list_models()]
    try:
        model = load_exported(bundled_models_dir() / f"{DEFAULT_MODEL}.onnx", DEFAULT_MODEL)
    except DenoiserError:
        return []
    return [(model.name, f"{model.name}: {model.family} (bundled; {OTHER_MODELS_NEED_PYTORCH})")]


def model_names() -> list[str]:
    """The names :func:`model_entries` lists."""
    return [name for name, _ in model_entries()]


def model_note(info: Any) -> str:
    """The line under the chooser about the loaded model: its family and what it was trained on (an exported
    graph's description does not say, so it says how it runs)."""
    if isinstance(info, ExportedInfo):
        return f"{info.family}; bundled model, run through ONNX Runtime"
    return f"{info.family}; {info.trained_on or 'trained on unknown data'}"
