"""What makes a manifest entry comparable: the SHA-256 of an input's bytes and the fingerprint of a loaded model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.errors import ImageReadError
from denoiser.exported import ExportedModel

if TYPE_CHECKING:
    from denoiser.models import Autoencoder


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


def model_fingerprint(model: Autoencoder | ExportedModel) -> str:
    """``sha256:`` + hex SHA-256 of the model's family, its config (canonical JSON) and every weight tensor.

    Computed from the loaded model rather than its file, so it is the same for a model wherever its file
    lies (renamed, imported, exported) and changes with any retraining. Each tensor contributes its name,
    dtype, shape and raw bytes, in name order; a few megabytes of weights hash in milliseconds. An exported model
    carries the fingerprint its torch model had when it was exported.
    """
    if isinstance(model, ExportedModel):
        return model.fingerprint
    import torch

    digest = hashlib.sha256()
    config = model.config.to_dict() if hasattr(model.config, "to_dict") else dataclasses.asdict(model.config)
    digest.update(json.dumps({"family": model.family, "config": config}, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"\n{name}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"sha256:{digest.hexdigest()}"
