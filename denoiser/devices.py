"""Which device runs a model: the names a user may give (auto, cpu, cuda, cuda:N, mps), what this machine has,
and the CPU where PyTorch is not installed (the desktop bundle, which runs models through ONNX Runtime only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from denoiser.errors import DenoiserError, UnknownNameError
from denoiser.exported import torch_available

__all__ = ["CPU_ONLY", "DEVICE_NAMES", "CpuOnly", "available_devices", "resolve_device"]

DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class CpuOnly:
    """The CPU, as :func:`resolve_device` names it where PyTorch is not installed (``.type`` as torch's)."""

    type: str = "cpu"

    def __str__(self) -> str:
        return "cpu"


CPU_ONLY = CpuOnly()


def available_devices() -> list[str]:
    """Device names usable on this machine: auto, cpu, then each CUDA GPU and MPS when present."""
    devices = ["auto", "cpu"]
    if not torch_available():
        return devices
    import torch

    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(name: Any = "auto") -> Any:
    """``auto`` picks CUDA, then MPS, then the CPU; a named device must exist here. A ``torch.device``, or
    :data:`CPU_ONLY` where PyTorch is not installed (where only the CPU can be asked for)."""
    if isinstance(name, CpuOnly):
        return name
    if not torch_available():
        key = str(name).strip().lower()
        if key.split(":")[0] not in DEVICE_NAMES:
            raise UnknownNameError("device", str(name), DEVICE_NAMES)
        if key not in ("auto", "cpu"):
            raise DenoiserError(f"device {name!r} needs PyTorch, which this installation leaves out; use cpu")
        return CPU_ONLY
    import torch

    if isinstance(name, torch.device):
        return name
    key = name.strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = key.split(":")[0]
    if kind not in DEVICE_NAMES:
        raise UnknownNameError("device", name, DEVICE_NAMES)
    if kind == "cuda" and not torch.cuda.is_available():
        raise DenoiserError(f"device {name!r} asked for, but CUDA is not available on this machine; "
                            "use --device cpu (or auto, which takes a GPU when there is one)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DenoiserError(f"device {name!r} asked for, but MPS is not available on this machine; "
                            "use --device cpu (or auto)")
    return torch.device(key)
