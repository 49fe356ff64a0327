"""Preview of the visible region: it matches the full result there, and is only used when it pays."""

from __future__ import annotations

import numpy as np
import torch

from denoiser.inference import TileSettings, denoise_array
from denoiser.models import create_model
from denoiser.preview import Region, denoise_region, paste_region, wants_preview


def test_region_matches_the_full_result() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8, 16], "blocks": 1})
    image = np.random.default_rng(1).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    full = denoise_array(image, model, 20, tiles=TileSettings(tile=512))
    region = Region(left=53, top=61, width=41, height=37)  # deliberately off the model's grid
    patch = denoise_region(image, model, 20, region)
    assert patch.shape == (37, 41, 3)
    np.testing.assert_allclose(patch, full[61:98, 53:94], atol=1e-4)


def test_region_is_clipped_to_the_image() -> None:
    assert Region(-5, 10, 20, 100).clipped(30, 50) == Region(0, 10, 15, 40)


def test_paste_region_writes_only_inside() -> None:
    base = np.zeros((6, 8, 3), np.uint8)
    out = paste_region(base, np.ones((2, 3, 3), np.float32), Region(2, 1, 3, 2))
    assert out.dtype == np.float32 and out.sum() == 18 and out[1:3, 2:5].min() == 1.0


def test_preview_only_for_large_partly_visible_photos() -> None:
    big = (3000, 4000, 3)
    assert wants_preview(big, Region(0, 0, 1000, 800))
    assert not wants_preview(big, Region(0, 0, 4000, 3000))  # everything visible: go straight to full
    assert not wants_preview((400, 600, 3), Region(0, 0, 100, 100))  # small photos are quick anyway
    assert not wants_preview(big, None)
