"""Tests of the noise-map input: one or two channels (luminance and colour), per-pixel maps through tiled
inference, and widening a one-channel model without changing what it computes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from whole_image import denoise_whole

from denoiser.errors import DenoiserError
from denoiser.inference import TileSettings, denoise_array
from denoiser.models import config_class, create_model, families
from denoiser.models.blocks import combined_level, noise_map
from denoiser.models.widen import with_colour_noise_input


def tiny(family: str, noise_channels: int = 1, channels: int = 3, seed: int = 0):
    names = {f.name for f in dataclasses.fields(config_class(family))}
    wanted = {"channels": channels, "widths": (4, 8, 16), "blocks": 0, "latent_channels": 8,
              "noise_channels": noise_channels}
    torch.manual_seed(seed)
    return create_model(family, {k: v for k, v in wanted.items() if k in names}).eval()


def photo(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y, 0.5 + 0.3 * x * y], axis=2)
    return (base + rng.normal(0, 0.08, base.shape)).astype(np.float32)


def test_noise_map_shapes_and_conversions() -> None:
    like = torch.zeros(2, 3, 5, 7)
    assert noise_map(0.1, like, 2).shape == (2, 2, 5, 7)
    assert torch.all(noise_map(0.1, like, 2) == 0.1)
    two = torch.stack([torch.full((5, 7), 0.3), torch.full((5, 7), 0.6)])[None].expand(2, -1, -1, -1)
    one = noise_map(two, like, 1)
    assert one.shape == (2, 1, 5, 7)
    assert torch.allclose(one, torch.tensor(np.sqrt((0.3**2 + 2 * 0.6**2) / 3), dtype=torch.float32))
    grey = noise_map(two, torch.zeros(2, 1, 5, 7), 1)
    assert torch.allclose(grey, torch.tensor(0.3))  # a grey image's noise is all luminance
    with pytest.raises(ValueError):
        noise_map(torch.zeros(2, 3, 5, 7), like, 2)


def test_combined_level_of_equal_levels_is_that_level() -> None:
    level = torch.full((1, 2, 3, 3), 0.2)
    assert torch.allclose(combined_level(level), torch.full((1, 1, 3, 3), 0.2))


@pytest.mark.parametrize("family", families())
def test_two_channel_models_read_both_channels(family: str) -> None:
    model = tiny(family, noise_channels=2)
    x = torch.rand(1, 3, 32, 32)
    same = model(x, torch.full((1, 2, 32, 32), 0.1))
    assert torch.allclose(same, model(x, 0.1), atol=1e-6)
    luminance_only = torch.cat([torch.full((1, 1, 32, 32), 0.1), torch.zeros(1, 1, 32, 32)], dim=1)
    assert not torch.allclose(same, model(x, luminance_only), atol=1e-6)


@pytest.mark.parametrize("family", families())
def test_widened_model_computes_what_the_original_did_at_equal_levels(family: str) -> None:
    original = tiny(family)
    widened = with_colour_noise_input(original)
    assert widened.config.noise_channels == 2
    x = torch.rand(2, 3, 32, 32)
    for level in (0.0, 0.05, 0.2):
        assert torch.allclose(widened(x, level), original(x, level), atol=1e-5)
    apart = torch.cat([torch.full((2, 1, 32, 32), 0.2), torch.zeros(2, 1, 32, 32)], dim=1)
    assert not torch.allclose(widened(x, apart), original(x, 0.2), atol=1e-4)
    with pytest.raises(DenoiserError):
        with_colour_noise_input(widened)


def test_constant_map_equals_the_number() -> None:
    model = tiny("unet")
    image = photo()
    scalar = denoise_array(image, model, 20.0, device="cpu")
    mapped = denoise_array(image, model, np.full(image.shape[:2], 20.0, np.float32), device="cpu")
    np.testing.assert_allclose(mapped, scalar, atol=1e-6)


@pytest.mark.parametrize("passes", [1, 4])
def test_varying_two_channel_map_tiles_exactly(passes: int) -> None:
    model = tiny("unet", noise_channels=2)
    image = photo(72, 88)
    levels = np.zeros((72, 88, 2), np.float32)
    levels[:, :, 0] = np.linspace(0, 50, 88)[None, :]
    levels[:, :, 1] = np.linspace(40, 5, 72)[:, None]
    tiled = denoise_array(image, model, levels, tiles=TileSettings(tile=48, overlap=24, passes=passes), device="cpu")
    if passes == 1:
        np.testing.assert_allclose(tiled, denoise_whole(image, model, levels), atol=1e-5)
    flat = denoise_array(image, model, 25.0, tiles=TileSettings(tile=48, overlap=24, passes=passes), device="cpu")
    assert np.abs(tiled - flat).max() > 1e-3  # the map, not one number, reached the model


def test_a_quarter_resolution_map_tiles_exactly_and_acts_like_its_full_size_copy() -> None:
    from denoiser.tiling import sample_map

    model = tiny("unet", noise_channels=2)
    image = photo(72, 88)
    quarter = np.stack(np.meshgrid(np.linspace(5, 40, 22), np.linspace(30, 10, 18)), axis=2).astype(np.float32)
    tiled = denoise_array(image, model, quarter, tiles=TileSettings(tile=48, overlap=24), device="cpu")
    np.testing.assert_allclose(tiled, denoise_whole(image, model, quarter), atol=1e-5)
    full = sample_map(quarter, 72, 88, 0, 0, 72, 88)
    np.testing.assert_allclose(denoise_whole(image, model, full), denoise_whole(image, model, quarter), atol=1e-4)


def test_map_of_the_wrong_size_names_the_shapes() -> None:
    model = tiny("unet")
    with pytest.raises(DenoiserError, match="noise map"):
        denoise_array(photo(), model, np.zeros((10, 10, 2), np.float32), device="cpu")
