"""Preview of the visible region: it matches the full result there, and is only used when it pays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import denoiser.preview as preview_module
from denoiser.inference import TileSettings, denoise_array
from denoiser.models import create_model, families
from denoiser.preview import Region, crop_margin, denoise_region, denoise_visible_first, paste_region, wants_preview


def test_region_matches_the_full_result() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8, 16], "blocks": 1})
    image = np.random.default_rng(1).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    full = denoise_array(image, model, 20, tiles=TileSettings(tile=512))
    region = Region(left=53, top=61, width=41, height=37)  # deliberately off the model's grid
    patch = denoise_region(image, model, 20, region)
    assert patch.shape == (37, 41, 3)
    np.testing.assert_allclose(patch, full[61:98, 53:94], atol=1e-4)


def test_region_with_a_noise_map_matches_the_full_result() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8, 16], "blocks": 1, "noise_channels": 2})
    image = np.random.default_rng(1).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    levels = np.zeros((150, 170, 2), np.float32)
    levels[:, :, 0] = np.linspace(0, 60, 170)[None]
    levels[:, :, 1] = np.linspace(50, 5, 150)[:, None]
    full = denoise_array(image, model, levels, tiles=TileSettings(tile=512))
    region = Region(left=53, top=61, width=41, height=37)
    np.testing.assert_allclose(denoise_region(image, model, levels, region), full[61:98, 53:94], atol=1e-4)


def test_zoomed_out_preview_resizes_the_noise_map() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 1, "noise_channels": 2})
    y, x = np.mgrid[0:1300, 0:1400]
    image = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)
    levels = np.full((1300, 1400, 2), 10.0, np.float32)
    events = []
    full = denoise_visible_first(image, model, levels, Region(0, 0, 1400, 1300), zoom=0.25, on_progress=events.append)
    flat = denoise_visible_first(image, model, 10.0, Region(0, 0, 1400, 1300), zoom=0.25)
    (preview,) = [e.extra["preview"] for e in events if e.stage == "preview"]
    assert preview.shape == full.shape
    np.testing.assert_allclose(full, flat, atol=1e-5)


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


def test_zoomed_out_preview_is_full_size_and_close_to_the_full_result() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 1})
    y, x = np.mgrid[0:1300, 0:1400]
    image = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)  # 1.8 MP: "large"
    events = []
    full = denoise_visible_first(image, model, 10, Region(0, 0, 1400, 1300), zoom=0.25, on_progress=events.append)
    (preview,) = [e.extra["preview"] for e in events if e.stage == "preview"]
    assert events[0].message == "preview at screen resolution"
    assert preview.shape == full.shape == (1300, 1400, 3)
    assert np.abs(preview - full).mean() < 0.1  # the same picture, only softer


def test_no_preview_when_fully_visible_at_full_size() -> None:
    model = create_model("unet", {"widths": [4, 8], "blocks": 0})
    image = np.zeros((1300, 1400, 3), np.uint8)
    events = []
    denoise_visible_first(image, model, 10, Region(0, 0, 1400, 1300), zoom=1.0, on_progress=events.append)
    assert not [e for e in events if e.stage == "preview"]


@pytest.mark.parametrize("family", families())
def test_a_crop_grown_by_the_receptive_radius_gives_the_full_result(family: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The region's crop is grown by the receptive radius on the model's grid, not by the tiler's wider overlap,
    and its pixels still equal the whole run's, for every family."""
    torch.manual_seed(0)
    model = create_model(family, {"widths": [4, 8, 16], "blocks": 1}).eval()
    image = np.random.default_rng(1).integers(0, 256, (300, 330, 3), dtype=np.uint8)
    full = denoise_array(image, model, 20, tiles=TileSettings(tile=512))
    crops = []

    def recording(crop, *args, **kwargs):
        crops.append(crop.shape)
        return denoise_array(crop, *args, **kwargs)

    monkeypatch.setattr(preview_module, "denoise_array", recording)
    region = Region(left=133, top=121, width=41, height=37)  # the crop lies inside the photo on every side
    np.testing.assert_allclose(denoise_region(image, model, 20, region), full[121:158, 133:174], atol=1e-4)
    margin = crop_margin(model)
    assert model.receptive_radius <= margin < model.receptive_margin
    step = model.size_multiple
    top, left = (121 - margin) // step * step, (133 - margin) // step * step
    assert crops == [(158 + margin - top, 174 + margin - left, 3)]


def test_the_visible_region_preview_is_its_pixels_alone_and_where_they_go() -> None:
    """The region's preview is not pasted into a full-size copy of the photo: the event carries the region's
    pixels and the region, and they equal the full result there."""
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 1})
    y, x = np.mgrid[0:1300, 0:1400]
    image = np.stack([x % 256, y % 256, (x + y) % 256], axis=2).astype(np.uint8)  # 1.8 MP: "large"
    events = []
    region = Region(300, 200, 500, 400)
    full = denoise_visible_first(image, model, 10, region, zoom=1.0, on_progress=events.append)
    (event,) = [e for e in events if e.stage == "preview"]
    assert event.extra["region"] == region and event.extra["preview"].shape == (400, 500, 3)
    np.testing.assert_allclose(event.extra["preview"], full[200:600, 300:800], atol=1e-4)
