"""What the command-line tests share: a tiny model saved as a file, as a user's own model would be."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from denoiser.modelfile import save_model
from denoiser.models import create_model


@pytest.fixture
def tiny_model_file(tmp_path: Path) -> Path:
    """A tiny U-Net (seeded) saved under ``tmp_path/models``: the CLI runs it in a fraction of a second."""
    torch.manual_seed(0)
    return save_model(create_model("unet", {"widths": [4, 8], "blocks": 1}), tmp_path / "models" / "tiny.safetensors")
