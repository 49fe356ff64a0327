"""One model file: ``safetensors`` weights plus a JSON description (:class:`ModelInfo`), never a pickle.

A model is two files side by side, ``NAME.safetensors`` and ``NAME.json``; the JSON (family, config with its
version, what it was trained on, validation figures) is also stored in the safetensors header, so the
weights file alone is enough to import. Loading rebuilds the model through the registry and loads the
weights strictly: a corrupt, truncated or mismatched file raises :class:`ModelLoadError` naming the file,
and nothing half-loaded is ever returned. Pickle-based files (``.pt``, ``.pth``, ``.ckpt``...) are refused
before they are opened. Where models are kept and how they are named is :mod:`denoiser.modelstore`'s job.

A model file is untrusted input. Before any tensor or module is allocated, the safetensors header (names,
types, shapes, byte count: :func:`read_header`) is checked against the tensors the configuration calls for,
worked out by building the model on PyTorch's ``meta`` device, which allocates nothing; weights beyond
:data:`MAX_WEIGHT_BYTES` are refused, and so are weights holding NaN or infinity. Every problem is a
:class:`ModelLoadError` naming the file, never another exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_to_bytes
from torch import Tensor

from denoiser.config import ConfigError, is_whole, short
from denoiser.errors import DenoiserError, ModelLoadError, UnknownNameError, first_line, reason
from denoiser.formatting import size_text
from denoiser.io import atomic_write_bytes
from denoiser.models import Autoencoder, create_model, families
from denoiser.safetensors_checks import WeightsHeader, read_header, refuse_non_finite

WEIGHTS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")
FORMAT_VERSION = 1
HEADER_KEY = "denoiser"

MAX_WEIGHT_BYTES = 2 * 1024**3
"""Most bytes of weights a model file may hold (the bundled models hold a few MB): a file, or a description,
asking for more is refused before anything is allocated."""
MAX_DESCRIPTION_BYTES = 16 * 1024**2
"""Largest JSON description read (a model's is a few kB)."""
MAX_DESCRIPTION_DEPTH = 32
"""Deepest nesting of lists and objects a description may have (a model's has 3 or 4 levels)."""

_FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")
"""Types a floating-point weight may be stored as (it is converted to the model's type on loading)."""
_TORCH_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                 torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
                 torch.bool: "BOOL"}
_DAMAGED = "the file is damaged or was not written by Denoiser: use another model file, or export the model again"
"""What a user can do about a model file that is not valid."""


@dataclass
class ModelInfo:
    """What a model file says about itself."""

    name: str
    family: str
    config: dict[str, Any]
    path: Path | None = None
    bundled: bool = False
    description: str = ""
    trained_on: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    validation: dict[str, Any] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        """What is written to the JSON file (no path, no bundled flag: those depend on where it lies)."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "family": self.family,
            "config": self.config,
            "description": self.description,
            "trained_on": self.trained_on,
            "training": self.training,
            "validation": self.validation,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any], path: Path | None, bundled: bool = False) -> ModelInfo:
        """Parse a JSON description; raises :class:`ModelLoadError` naming ``path`` when it is malformed."""
        try:
            version = data.get("format_version", 1)
            if not is_whole(version):
                raise ModelLoadError(path, f"not a valid model file: format_version is {short(version)}, not a whole "
                                           f"number; {_DAMAGED}")
            if version > FORMAT_VERSION:
                raise ModelLoadError(path, "written by a newer release of Denoiser; update the app to load it")
            family = data["family"]
            if not isinstance(family, str) or family not in families():
                raise ModelLoadError(path, f"unknown model family {short(family)} (known: {', '.join(families())})")
            return cls(
                name=str(data.get("name") or (path.stem if path else "model")),
                family=family,
                config=dict(data.get("config") or {}),
                path=path,
                bundled=bundled,
                description=str(data.get("description", "")),
                trained_on=str(data.get("trained_on", "")),
                training=dict(data.get("training") or {}),
                validation=dict(data.get("validation") or {}),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise ModelLoadError(path, f"not a valid model file: its description is malformed ({first_line(err)}); "
                                       f"{_DAMAGED}") from err

    def to_json_text(self) -> str:
        """:meth:`to_json_dict` as the text written to the JSON file and into the safetensors header."""
        return json.dumps(self.to_json_dict(), indent=2, sort_keys=True)


def save_model(model: Autoencoder, path: str | Path, info: ModelInfo | None = None) -> Path:
    """Write ``model`` to ``path`` (``.safetensors``; the JSON goes beside it). Returns the weights path.

    Both files are written atomically; an existing model at that path is replaced only as a whole.
    """
    path = Path(path)
    if path.suffix != WEIGHTS_SUFFIX:
        path = path.with_name(path.name + WEIGHTS_SUFFIX)
    info = info or ModelInfo(name=path.stem, family=model.family, config={})
    info.family = model.family
    info.config = model.config.to_dict()
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, weights_bytes(tensors, info))
    write_description(path, info)
    info.path = path
    return path


def weights_bytes(tensors: dict[str, Tensor], info: ModelInfo, metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file holding ``tensors``, with ``info`` as the description in its header (the header's other
    ``metadata`` entries kept), so that the file alone is enough to import."""
    return safetensors_to_bytes(tensors, metadata={**(metadata or {}), HEADER_KEY: info.to_json_text()})


def write_description(weights: Path, info: ModelInfo) -> None:
    """Write ``info`` atomically as the JSON beside the weights file ``weights`` (creating its folder)."""
    weights.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(weights.with_suffix(".json"), (info.to_json_text() + "\n").encode())


def _refuse_unsafe(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelLoadError(
            path,
            "pickle-based model files are refused because loading them can run arbitrary code; "
            "convert the weights to .safetensors",
        )
    if path.suffix.lower() != WEIGHTS_SUFFIX:
        raise ModelLoadError(path, f"not a model file (expected {WEIGHTS_SUFFIX})")


def read_info(path: str | Path, bundled: bool = False) -> ModelInfo:
    """The description of the model at ``path`` (sidecar JSON, else the safetensors header).

    Raises :class:`ModelLoadError` naming the file (the sidecar when that is what is wrong) for every problem.
    """
    path = Path(path)
    _refuse_unsafe(path)
    if not path.is_file():
        raise ModelLoadError(path, "no such model file")
    sidecar = path.with_suffix(".json")
    if sidecar.is_file():
        where = sidecar
        try:
            if sidecar.stat().st_size > MAX_DESCRIPTION_BYTES:
                raise ModelLoadError(sidecar, f"not a valid model file: its description is larger than "
                                              f"{MAX_DESCRIPTION_BYTES // 1024**2} MB; {_DAMAGED}")
            text: str | bytes = sidecar.read_bytes()
        except OSError as err:
            raise ModelLoadError(sidecar, f"cannot read the model description ({reason(err)})") from err
    else:
        where = path
        text = read_header(path, _DAMAGED).metadata.get(HEADER_KEY, "")
        if not text:
            raise ModelLoadError(path, "safetensors file has no Denoiser description (family, config)")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        what = "nested too deeply" if isinstance(err, RecursionError) else first_line(err)
        raise ModelLoadError(where, f"not a valid model file: its description is not valid JSON ({what}); "
                                    f"{_DAMAGED}") from err
    if not isinstance(data, dict):
        raise ModelLoadError(where, f"not a valid model file: its description is not a JSON object; {_DAMAGED}")
    if _depth(data) > MAX_DESCRIPTION_DEPTH:
        raise ModelLoadError(where, f"not a valid model file: its description is nested more than "
                                    f"{MAX_DESCRIPTION_DEPTH} levels deep; {_DAMAGED}")
    return ModelInfo.from_json_dict(data, path, bundled)


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in the JSON value ``value`` (counted without recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > MAX_DESCRIPTION_DEPTH:
                break
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_weights(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Every tensor in the safetensors file ``path`` and its header's metadata; raises :class:`ModelLoadError`.

    Loads everything: check the file first (:func:`read_header`, :func:`load_model_file` does) when it may be
    large or untrusted.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as err:
        raise ModelLoadError(path, f"not a valid safetensors file, corrupt or truncated ({first_line(err)}); "
                                   f"{_DAMAGED}") from err
    return tensors, metadata


@contextmanager
def _as_model_file_problem(path: Path) -> Iterator[None]:
    """Turn anything but the engine's own errors into a :class:`ModelLoadError` naming ``path``: a model file is
    untrusted input, and whatever it holds must end in a message, never a traceback."""
    try:
        yield
    except DenoiserError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, RecursionError) as err:
        raise ModelLoadError(path, f"not a valid model file ({type(err).__name__}: {first_line(err)}); "
                                   f"{_DAMAGED}") from err


def _build(path: Path, info: ModelInfo, device: str | None = None) -> Autoencoder:
    """The model ``info`` describes, on ``device`` (``"meta"``: shapes only, nothing allocated)."""
    try:
        if device is None:
            return create_model(info.family, info.config)
        with torch.device(device):
            return create_model(info.family, info.config)
    except (ConfigError, UnknownNameError, TypeError, ValueError, OverflowError) as err:
        raise ModelLoadError(path, f"not a valid model file: its configuration is invalid ({first_line(err)}); "
                                   f"{_DAMAGED}") from err
    except RuntimeError as err:
        if device != "meta":  # a real build of a checked configuration: out of memory, say; not the file's fault
            raise
        raise ModelLoadError(path, f"not a valid model file: its configuration is invalid ({first_line(err)}); "
                                   f"{_DAMAGED}") from err


def check_header(path: Path, info: ModelInfo, header: WeightsHeader) -> None:
    """Refuse a file whose tensors (names, shapes, types) are not those its configuration calls for, or that
    holds (or whose configuration asks for) more than :data:`MAX_WEIGHT_BYTES` of weights.

    Nothing is allocated: the expected tensors come from the model built on the ``meta`` device.
    """
    limit = f"the {size_text(MAX_WEIGHT_BYTES)} a Denoiser model may have"
    if header.data_bytes > MAX_WEIGHT_BYTES:
        raise ModelLoadError(path, f"not a valid model file: it holds {size_text(header.data_bytes)} of weights, "
                                   f"more than {limit}")
    expected = _build(path, info, "meta").state_dict()
    wanted = sum(value.numel() * value.element_size() for value in expected.values())
    if wanted > MAX_WEIGHT_BYTES:
        raise ModelLoadError(path, f"not a valid model file: its configuration describes "
                                   f"{size_text(wanted)} of weights, more than {limit}")
    mismatch = f"weights do not match the {info.family} configuration"
    missing = sorted(set(expected) - set(header.tensors))
    unexpected = sorted(set(header.tensors) - set(expected))
    if missing or unexpected:
        parts = [f"{label}: {', '.join(short(n, 60) for n in names[:3])}" + ("..." if len(names) > 3 else "")
                 for label, names in (("missing", missing), ("unexpected", unexpected)) if names]
        raise ModelLoadError(path, f"{mismatch} ({'; '.join(parts)}); {_DAMAGED}")
    for name, value in expected.items():
        entry = header.tensors[name]
        if entry.shape != tuple(value.shape):
            raise ModelLoadError(path, f"{mismatch} ({name}: shape {list(entry.shape)} in the file, "
                                       f"{list(value.shape)} expected); {_DAMAGED}")
        kind = _TORCH_DTYPES.get(value.dtype)
        fits = entry.dtype in _FLOAT_DTYPES if value.is_floating_point() else entry.dtype == kind
        if not fits:
            raise ModelLoadError(path, f"{mismatch} ({name}: type {entry.dtype} in the file, {kind} expected); "
                                       f"{_DAMAGED}")


def load_model_file(path: str | Path, bundled: bool = False) -> tuple[Autoencoder, ModelInfo]:
    """Rebuild the model stored at ``path`` and load its weights (strictly). Never unpickles.

    In order: the description is read; the safetensors header is checked against the tensors the configuration
    calls for (:func:`check_header`: nothing allocated yet, so a description asking for a huge network costs
    nothing); the weights are read and refused if any is NaN or infinite; the model is built and loaded.
    Raises :class:`ModelLoadError` naming the file for every problem, and never returns a half-loaded model.
    """
    path = Path(path)
    with _as_model_file_problem(path):
        info = read_info(path, bundled)
        check_header(path, info, read_header(path, _DAMAGED))
        state, _header = read_weights(path)
        refuse_non_finite(path, state)
        model = _build(path, info)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()
            detail = "; ".join(line.strip() for line in first[:3])
            raise ModelLoadError(path, f"weights do not match the {info.family} configuration ({detail})") from err
    model.eval()
    return model, info
