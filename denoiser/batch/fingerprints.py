"""The SHA-256 of a file's bytes: how a manifest knows an input (and an output a killed run left) again; a model's
fingerprint is :mod:`denoiser.model_identity`'s."""

from __future__ import annotations

import hashlib
from pathlib import Path

from denoiser.errors import ImageReadError


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex; raises ImageReadError naming the file when it cannot be read."""
    path = Path(path)
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as err:
        raise ImageReadError(path, f"cannot read: {err.strerror or err}") from err
    return digest.hexdigest()
