"""Save, load and list models: ``safetensors`` weights plus a JSON description, never a pickle.

A model is two files side by side, ``NAME.safetensors`` and ``NAME.json``; the JSON (family, config with its
version, what it was trained on, validation figures) is also stored in the safetensors header, so the
weights file alone is enough to import. Loading rebuilds the model through the registry and loads the
weights strictly: a corrupt, truncated or mismatched file raises :class:`ModelLoadError` naming the file,
and nothing half-loaded is ever returned.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_to_bytes

from denoiser.config import ConfigError
from denoiser.errors import DenoiserError, ModelLoadError, UnknownNameError
from denoiser.models import Autoencoder, create_model, families
from denoiser.resources import bundled_models_dir

WEIGHTS_SUFFIX = ".safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")
DEFAULT_MODEL = "default"
FORMAT_VERSION = 1
HEADER_KEY = "denoiser"


def user_models_dir() -> Path:
    """The user's model library (``$DENOISER_HOME/models`` when that variable is set, for tests)."""
    home = os.environ.get("DENOISER_HOME")
    base = Path(home) if home else Path(platformdirs.user_data_dir("denoiser", appauthor=False))
    return base / "models"


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
            if int(data.get("format_version", 1)) > FORMAT_VERSION:
                raise ModelLoadError(path, "written by a newer release of Denoiser; update the app to load it")
            family = str(data["family"])
            if family not in families():
                raise ModelLoadError(path, f"unknown model family {family!r} (known: {', '.join(families())})")
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
        except (KeyError, TypeError, ValueError) as err:
            raise ModelLoadError(path, f"model description is malformed ({err})") from err


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
    description = json.dumps(info.to_json_dict(), indent=2, sort_keys=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    _atomic_write_bytes(path, safetensors_to_bytes(tensors, metadata={HEADER_KEY: description}))
    _atomic_write_bytes(path.with_suffix(".json"), (description + "\n").encode())
    info.path = path
    return path


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
    """The description of the model at ``path`` (sidecar JSON, else the safetensors header)."""
    path = Path(path)
    _refuse_unsafe(path)
    if not path.is_file():
        raise ModelLoadError(path, "no such model file")
    sidecar = path.with_suffix(".json")
    try:
        if sidecar.is_file():
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        else:
            with safe_open(str(path), framework="pt") as handle:
                header = (handle.metadata() or {}).get(HEADER_KEY)
            if header is None:
                raise ModelLoadError(path, "safetensors file has no Denoiser description (family, config)")
            data = json.loads(header)
    except (SafetensorError, OSError) as err:
        raise ModelLoadError(path, f"not a valid safetensors file, corrupt or truncated ({err})") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = sidecar if sidecar.is_file() else path
        raise ModelLoadError(where, f"model description is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ModelLoadError(path, "model description is not a JSON object")
    return ModelInfo.from_json_dict(data, path, bundled)


def load_model_file(path: str | Path, bundled: bool = False) -> tuple[Autoencoder, ModelInfo]:
    """Rebuild the model stored at ``path`` and load its weights (strictly). Never unpickles."""
    path = Path(path)
    info = read_info(path, bundled)
    try:
        model = create_model(info.family, info.config)
    except (ConfigError, UnknownNameError, TypeError) as err:
        raise ModelLoadError(path, f"model configuration is invalid ({err})") from err
    try:
        with safe_open(str(path), framework="pt") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ModelLoadError(path, f"not a valid safetensors file, corrupt or truncated ({err})") from err
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = "; ".join(line.strip() for line in first[:3])
        raise ModelLoadError(path, f"weights do not match the {info.family} configuration ({detail})") from err
    model.eval()
    return model, info


def list_models() -> list[ModelInfo]:
    """Bundled models first, then the user's library; files that cannot be read are left out."""
    found: list[ModelInfo] = []
    for folder, bundled in ((bundled_models_dir(), True), (user_models_dir(), False)):
        if not folder.is_dir():
            continue
        for weights in sorted(folder.glob(f"*{WEIGHTS_SUFFIX}")):
            try:
                found.append(read_info(weights, bundled))
            except DenoiserError:
                continue
    return found


def resolve_model_path(spec: str | Path) -> tuple[Path, bool]:
    """Turn ``default``, a library name, or a file path into a weights path (and whether it is bundled)."""
    text = str(spec)
    if text == DEFAULT_MODEL:
        return bundled_models_dir() / f"{DEFAULT_MODEL}{WEIGHTS_SUFFIX}", True
    candidate = Path(text).expanduser()
    if os.sep in text or candidate.exists():
        return candidate, False
    for folder, bundled in ((user_models_dir(), False), (bundled_models_dir(), True)):
        weights = folder / f"{text}{WEIGHTS_SUFFIX}"
        if weights.is_file():
            return weights, bundled
    if candidate.suffix:  # after the library: a library name may hold a dot ("v1.2")
        return candidate, False
    known = [info.name for info in list_models()]
    raise UnknownNameError("model", text, known)


def load_model(spec: str | Path = DEFAULT_MODEL) -> tuple[Autoencoder, ModelInfo]:
    """Load a model by name (``default``, a library name) or by path."""
    path, bundled = resolve_model_path(spec)
    model, info = load_model_file(path, bundled)
    if bundled and path.stem == DEFAULT_MODEL:
        info.name = DEFAULT_MODEL
    return model, info


def save_to_library(model: Autoencoder, name: str, info: ModelInfo | None = None) -> Path:
    """Save into the user's library as ``name``; refuses names that would shadow ``default``."""
    if not name or name == DEFAULT_MODEL or any(ch in name for ch in '/\\:*?"<>|'):
        raise DenoiserError(f"invalid model name {name!r}")
    info = info or ModelInfo(name=name, family=model.family, config={})
    info.name = name
    return save_model(model, user_models_dir() / f"{name}{WEIGHTS_SUFFIX}", info)


def describe(info: ModelInfo) -> str:
    """One line about a model for listings."""
    where = "bundled" if info.bundled else str(info.path)
    psnr = info.validation.get("psnr")
    figure = f", validation PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else ""
    return f"{info.name}: {info.family}{figure} ({where})"
