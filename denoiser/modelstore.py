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
import shutil
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import platformdirs
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_to_bytes

from denoiser.config import ConfigError
from denoiser.errors import DenoiserError, ModelLoadError, ModelNameError, UnknownNameError
from denoiser.io import atomic_write_bytes
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


def _make_readable(temp: str) -> None:
    """mkstemp makes files owner-only; a model is a normal document, readable as the umask allows."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temp, 0o666 & ~umask)


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, payload)


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
                info = read_info(weights, bundled)
            except DenoiserError:
                continue
            # A library model is looked up by its file name: list it under that, whatever its JSON says.
            info.name = weights.stem
            found.append(info)
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


MAX_NAME_LENGTH = 64
"""Longest model name: a name is typed, listed in narrow tables and becomes a file name on every system."""
_SEPARATORS = "/\\"
_NOT_ON_WINDOWS = ':*?"<>|'
"""Characters Windows refuses in file names: a model saved elsewhere must still copy there."""


def validate_model_name(name: str) -> str:
    """``name`` when it can name a model in the library; else :class:`ModelNameError` saying which rule it breaks.

    The one rule for every name a user gives a model (``denoiser train --name``, ``models rename``/``import``,
    the app's save and rename): the name becomes ``NAME.safetensors`` directly inside the library, so it holds no
    path separator and no ``..``, is not ``.``, does not start with a dot (hidden files), has no control
    characters and no spaces at either end (names that cannot be typed back), holds none of the characters
    Windows refuses, is 1 to :data:`MAX_NAME_LENGTH` characters long, is not ``default`` (the bundled model's
    name) and does not end in ``.safetensors``/``.json`` (a file name given instead of a name).
    """
    reason = ""
    if not isinstance(name, str) or not name:
        reason = "a name cannot be empty"
    elif len(name) > MAX_NAME_LENGTH:
        reason = f"a name is at most {MAX_NAME_LENGTH} characters long (this one has {len(name)})"
    elif any(ch in name for ch in _SEPARATORS):
        reason = "a name cannot contain a path separator (/ or \\)"
    elif name == "." or ".." in name:
        reason = "a name cannot be '.' or contain '..'"
    elif name.startswith("."):
        reason = "a name cannot start with a dot"
    elif any(unicodedata.category(ch) == "Cc" for ch in name):
        reason = "a name cannot contain control characters (tabs, line breaks...)"
    elif name != name.strip():
        reason = "a name cannot start or end with a space"
    elif any(ch in name for ch in _NOT_ON_WINDOWS):
        reason = f"a name cannot contain any of {' '.join(_NOT_ON_WINDOWS)}"
    elif name == DEFAULT_MODEL:
        reason = f"{DEFAULT_MODEL!r} is the bundled model's name"
    elif name.lower().endswith((WEIGHTS_SUFFIX, ".json")):
        reason = "give the name without a file extension"
    if reason:
        raise ModelNameError(f"invalid model name {name!r}: {reason}")
    return name


def new_model_path(name: str) -> Path:
    """Where a new library model called ``name`` goes; raises when the name is invalid or already taken."""
    weights = user_models_dir() / f"{validate_model_name(name)}{WEIGHTS_SUFFIX}"
    if weights.exists():
        raise DenoiserError(f"a model named {name!r} already exists in your library ({weights}); choose another name")
    return weights


def save_to_library(model: Autoencoder, name: str, info: ModelInfo | None = None) -> Path:
    """Save ``model`` into the user's library as ``name`` (see :func:`validate_model_name`); returns its path.

    An existing library model of that name is never replaced: that raises, as does an invalid name.
    """
    path = new_model_path(name)
    info = info or ModelInfo(name=name, family=model.family, config={})
    info.name = name
    return save_model(model, path, info)


def describe(info: ModelInfo) -> str:
    """One line about a model for listings."""
    where = "bundled" if info.bundled else str(info.path)
    psnr = info.validation.get("psnr")
    figure = f", validation PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else ""
    return f"{info.name}: {info.family}{figure} ({where})"


# --- managing the library: info, rename, remove, import, export ------------------------------------------------


def _library_names() -> list[str]:
    folder = user_models_dir()
    return sorted(path.stem for path in folder.glob(f"*{WEIGHTS_SUFFIX}")) if folder.is_dir() else []


def _description_text(info: ModelInfo) -> str:
    # The same text save_model writes, so a renamed or imported model's JSON looks like a saved one's.
    return json.dumps(info.to_json_dict(), indent=2, sort_keys=True)


def library_model_path(name: str) -> Path:
    """The weights file of the library model ``name``; bundled models and unknown names raise.

    Raises :class:`DenoiserError` for ``default`` or a bundled model, :class:`ModelNameError` for a path or any
    other name :func:`validate_model_name` refuses (unless a library file has exactly that stem, say one copied in
    by hand, so that whatever is listed can be managed), and :class:`UnknownNameError` (listing the library's
    names) when there is no such library model.
    """
    if name == DEFAULT_MODEL:
        raise DenoiserError(f"{name!r} is the bundled model; only models in your library can be changed")
    if name not in _library_names():
        validate_model_name(name)  # never a path: "../x" or "a/b" must not reach a file outside the library
    weights = user_models_dir() / f"{name}{WEIGHTS_SUFFIX}"
    if weights.is_file():
        return weights
    if (bundled_models_dir() / f"{name}{WEIGHTS_SUFFIX}").is_file():
        raise DenoiserError(f"{name!r} is a bundled model; only models in your library can be changed")
    raise UnknownNameError("library model", name, _library_names())


def model_info(name_or_path: str | Path) -> ModelInfo:
    """Like :func:`read_info`, but for ``default``, a library or bundled name, or a path."""
    path, bundled = resolve_model_path(name_or_path)
    info = read_info(path, bundled)
    if bundled and path.stem == DEFAULT_MODEL:  # as load_model names it, whatever its JSON says
        info.name = DEFAULT_MODEL
    return info


def model_size_bytes(info: ModelInfo) -> int:
    """Size in bytes of the model's weights file (the JSON beside it is a few hundred bytes more)."""
    if info.path is None:
        raise DenoiserError(f"model {info.name!r} has no file, so it has no size")
    try:
        return info.path.stat().st_size
    except OSError as err:
        raise ModelLoadError(info.path, f"cannot read the model file ({err.strerror or err})") from err


def rename_model(old: str, new: str) -> Path:
    """Rename the library model ``old`` to ``new``; returns the new weights path.

    The new JSON is written first, then the weights are moved, then the old JSON is removed: a crash at
    any point leaves every weights file with a description (at worst an orphan JSON, which is ignored).
    """
    old_weights = library_model_path(old)
    validate_model_name(new)
    if new == old:
        raise DenoiserError(f"model {old!r} is already called {new!r}")
    folder = old_weights.parent
    new_weights = folder / f"{new}{WEIGHTS_SUFFIX}"
    if new_weights.exists():
        raise DenoiserError(f"cannot rename {old!r}: a model named {new!r} is already in your library ({new_weights})")
    info = read_info(old_weights)
    info.name = new
    new_json = new_weights.with_suffix(".json")
    _atomic_write_bytes(new_json, (_description_text(info) + "\n").encode())
    try:
        os.replace(old_weights, new_weights)
    except OSError as err:
        new_json.unlink(missing_ok=True)
        raise DenoiserError(f"cannot rename {old_weights} to {new_weights.name}: {err.strerror or err}") from err
    try:
        old_weights.with_suffix(".json").unlink(missing_ok=True)
    except OSError:  # the rename is done; a stale JSON without weights is never listed
        pass
    return new_weights


def remove_model(name: str) -> None:
    """Delete the library model ``name`` (both files); bundled models cannot be removed.

    The weights go first so that an interruption leaves at most an orphan JSON, which nothing lists.
    """
    weights = library_model_path(name)
    try:
        weights.unlink()
        weights.with_suffix(".json").unlink(missing_ok=True)
    except OSError as err:
        raise DenoiserError(f"cannot remove model {name!r} ({weights}): {err.strerror or err}") from err


def _write_new_file(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Create ``path`` atomically through ``write(binary_file)``; never replaces an existing file.

    ``os.link`` of the finished temp file fails if ``path`` appeared meanwhile, so a file created by
    someone else between our check and our write is never clobbered; where the file system has no hard
    links we fall back to check-then-replace.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        _make_readable(temp)
        try:
            os.link(temp, path)
        except FileExistsError as err:
            raise DenoiserError(f"{path} already exists; it was not overwritten") from err
        except OSError:
            if path.exists():
                raise DenoiserError(f"{path} already exists; it was not overwritten") from None
            os.replace(temp, path)
    finally:
        Path(temp).unlink(missing_ok=True)


def import_model(path: str | Path, name: str | None = None) -> ModelInfo:
    """Copy the model file ``path`` (``.safetensors``) into the library, as ``name``; returns its description.

    The file is fully loaded first (which refuses pickles, corrupt, truncated and mismatched files with a
    :class:`ModelLoadError` naming it), so nothing lands in the library unless it loads. The name defaults
    to the file's stem, else the name in its description. The description comes from the JSON beside the
    file when there is one, else from the safetensors header; the library copy gets its own JSON.
    """
    source = Path(path).expanduser()
    _model, info = load_model_file(source)
    if name is not None:
        validate_model_name(name)
    else:
        for candidate in (source.stem, info.name):
            try:
                validate_model_name(candidate)
            except DenoiserError:
                continue
            name = candidate
            break
        else:
            raise DenoiserError(f"{source}: cannot name the model after the file; choose a name with --name NAME")
    target = user_models_dir() / f"{name}{WEIGHTS_SUFFIX}"
    if target.exists():
        raise DenoiserError(
            f"cannot import {source}: a model named {name!r} is already in your library; "
            "choose another name with --name NAME (or remove or rename the existing one)"
        )
    info.name = name
    sidecar = target.with_suffix(".json")
    _atomic_write_bytes(sidecar, (_description_text(info) + "\n").encode())  # description first, weights second
    try:
        with open(source, "rb") as src:
            _write_new_file(target, lambda out: shutil.copyfileobj(src, out, 1 << 20))
    except BaseException as err:
        if not target.exists():
            sidecar.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise ModelLoadError(source, f"cannot copy into the library ({err.strerror or err})") from err
        raise
    return read_info(target)


def export_model(name: str, destination: str | Path) -> Path:
    """Write the model ``name`` as one self-contained ``.safetensors`` file; returns its path.

    ``destination`` is a folder (the file is ``NAME.safetensors`` inside it) or a file path ending in
    ``.safetensors``. The model's description travels in the file's header, so the file alone imports.
    An existing file is never overwritten, and neither is a JSON of the same stem beside it tolerated,
    since readers would take that JSON as the exported model's description.
    """
    source, bundled = resolve_model_path(name)
    _model, info = load_model_file(source, bundled)  # never export a model that would not load
    if bundled and source.stem == DEFAULT_MODEL:
        info.name = DEFAULT_MODEL
    dest = Path(destination).expanduser()
    if dest.is_dir():
        dest = dest / f"{source.stem}{WEIGHTS_SUFFIX}"  # the name it is known by: library stem, "default"
    elif dest.suffix.lower() != WEIGHTS_SUFFIX:
        raise DenoiserError(f"{dest}: export needs an existing folder or a file name ending in {WEIGHTS_SUFFIX}")
    if dest.exists():
        raise DenoiserError(f"{dest} already exists; it was not overwritten")
    if dest.with_suffix(".json").exists():
        raise DenoiserError(
            f"{dest.with_suffix('.json')} already exists and would be read as the exported model's description; "
            "export to another name or folder"
        )
    try:
        with safe_open(str(source), framework="pt") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ModelLoadError(source, f"not a valid safetensors file, corrupt or truncated ({err})") from err
    metadata[HEADER_KEY] = _description_text(info)  # the sidecar may be newer than the header (renames)
    payload = safetensors_to_bytes(tensors, metadata=metadata)
    try:
        _write_new_file(dest, lambda out: out.write(payload))
    except OSError as err:
        raise DenoiserError(f"cannot write {dest}: {err.strerror or err}") from err
    return dest
