"""The model library: the bundled models and the user's own, found by name, and managing the user's.

Names resolve to files here (``default``, a library name, or a path: :func:`resolve_model_path`,
:func:`load_model`); :func:`validate_model_name` is the one rule for every name a user gives a model; a model
saved, renamed or imported into the library never replaces another; export writes one self-contained file.
What a model file holds and how it is read and written is :mod:`denoiser.modelfile`'s job.
"""

from __future__ import annotations

import os
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from denoiser.errors import DenoiserError, ModelLoadError, ModelNameError, UnknownNameError
from denoiser.io import atomic_write
from denoiser.modelfile import (
    WEIGHTS_SUFFIX,
    ModelInfo,
    load_model_file,
    read_info,
    read_weights,
    save_model,
    weights_bytes,
    write_description,
)
from denoiser.models import Autoencoder
from denoiser.resources import bundled_models_dir, user_data_dir

DEFAULT_MODEL = "default"


def user_models_dir() -> Path:
    """The user's model library (``$DENOISER_HOME/models`` when that variable is set, for tests)."""
    return user_data_dir() / "models"


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
    write_description(new_weights, info)
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
    """Create ``path`` atomically through ``write(binary_file)``; never replaces an existing file, even one that
    appears while it is written (:func:`~denoiser.io.atomic_write` with ``replace=False``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path, suffix=".tmp", replace=False) as temporary, open(temporary, "wb") as out:
            write(out)
    except FileExistsError as err:
        raise DenoiserError(f"{path} already exists; it was not overwritten") from err


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
    write_description(target, info)  # description first, weights second
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
    tensors, metadata = read_weights(source)
    payload = weights_bytes(tensors, info, metadata)  # the sidecar may be newer than the header (renames)
    try:
        _write_new_file(dest, lambda out: out.write(payload))
    except OSError as err:
        raise DenoiserError(f"cannot write {dest}: {err.strerror or err}") from err
    return dest
