"""A loaded model's fingerprint: what makes two models the same, wherever their files lie.

A batch's manifest records it to tell a rerun with another model (or another version of one), Ray workers check it
before they denoise, and an exported ONNX graph is cached under it and carries it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING

from denoiser.exported import ExportedModel

if TYPE_CHECKING:
    from denoiser.models import Autoencoder


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
