"""A grey picture stored as colour (a grey+alpha PNG, read as RGBA; a black-and-white photo saved as RGB) is
denoised as grey and comes back grey: through the colour model it came back with colour blotches of up to 11
levels between its channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from denoiser.batch import DenoiseSettings
from denoiser.batch.single import denoise_image
from denoiser.io import Image, read_image
from denoiser.models import create_model


@pytest.fixture(scope="module")
def colour_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("unet", {"widths": [4, 8], "blocks": 1, "channels": 3})


def noisy_grey(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A grey ramp with a bright square and white noise, uint8 H x W."""
    y, x = np.mgrid[0:height, 0:width]
    clean = 40 + 1.5 * x + 1.0 * y
    clean[10:30, 20:40] = 220
    noisy = clean + np.random.default_rng(seed).normal(0, 12, clean.shape)
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def channel_spread(pixels: np.ndarray) -> int:
    colour = pixels[..., :3].astype(int)
    return int(max(np.abs(colour[..., 0] - colour[..., 1]).max(), np.abs(colour[..., 1] - colour[..., 2]).max()))


def test_a_grey_and_alpha_png_comes_back_grey_with_its_alpha(tmp_path: Path, colour_model: torch.nn.Module) -> None:
    grey = noisy_grey()
    alpha = np.full(grey.shape, 255, np.uint8)
    alpha[:, :8] = 0
    path = tmp_path / "grey-alpha.png"
    PILImage.merge("LA", (PILImage.fromarray(grey), PILImage.fromarray(alpha))).save(path)
    image = read_image(path)
    assert image.channels == 4 and image.is_grey_in_color()
    result = denoise_image(image, colour_model, DenoiseSettings(strength=25.0)).image
    assert channel_spread(result.pixels) == 0
    np.testing.assert_array_equal(result.pixels[..., 3], alpha)
    assert np.abs(result.pixels[..., 0].astype(int) - grey).mean() > 1  # it was denoised, not passed through


def test_a_black_and_white_photo_saved_as_rgb_comes_back_grey(colour_model: torch.nn.Module) -> None:
    grey = noisy_grey(seed=1)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.int16)
    rgb[..., 2] += np.random.default_rng(2).integers(-1, 2, grey.shape)  # JPEG's rounding of a grey picture
    image = Image(np.clip(rgb, 0, 255).astype(np.uint8), format="JPEG")
    assert image.is_grey_in_color()
    assert image.model_pixels().shape == (48, 64, 1)
    result = denoise_image(image, colour_model, DenoiseSettings()).image
    assert result.pixels.shape == (48, 64, 3) and channel_spread(result.pixels) == 0


def test_a_colour_photo_stays_colour() -> None:
    rng = np.random.default_rng(3)
    pixels = np.repeat(noisy_grey()[..., None], 3, axis=2)
    pixels[30:40, 50:60, 0] = 250  # one red patch is enough
    image = Image(pixels, format="PNG")
    assert not image.is_grey_in_color()
    assert image.model_pixels().shape == (48, 64, 3)
    assert not Image(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), format="PNG").is_grey_in_color()


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_grey_in_colour_is_told_at_every_depth(dtype: type) -> None:
    grey = noisy_grey().astype(np.float32) / 255
    pixels = np.repeat(grey[..., None], 3, axis=2)
    if dtype == np.uint16:
        pixels = np.round(pixels * 65535).astype(np.uint16)
        pixels[..., 1] += 300  # more than two 8-bit levels apart: colour
        assert not Image(pixels, format="PNG").is_grey_in_color()
        pixels[..., 1] -= 300
    image = Image(pixels.astype(dtype), format="TIFF")
    assert image.is_grey_in_color()
    grey_result = image.with_color(np.full((48, 64, 1), 0.5, np.float32))
    assert channel_spread(grey_result.pixels.astype(np.float64) * 1000) == 0
