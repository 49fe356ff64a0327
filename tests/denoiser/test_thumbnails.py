"""read_thumbnail: small upright RGB previews of every supported kind of file, and typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.errors import ImageReadError
from denoiser.io import Image, read_thumbnail, write_image

RED = (255, 0, 0)
BLUE = (0, 0, 255)


def halves(width: int, height: int) -> np.ndarray:
    """An RGB picture whose left half is red and right half blue."""
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    return pixels


def test_longer_side_is_bounded_and_aspect_kept(tmp_path: Path) -> None:
    path = tmp_path / "wide.jpg"
    PILImage.fromarray(halves(640, 400)).save(path, quality=90)
    thumb = read_thumbnail(path, max_side=64)
    assert thumb.dtype == np.uint8 and thumb.ndim == 3 and thumb.shape[2] == 3
    assert thumb.shape[1] == 64
    assert abs(thumb.shape[0] - 40) <= 1  # 640 x 400 is 8:5
    assert thumb.flags.c_contiguous
    default = read_thumbnail(path)
    assert max(default.shape[:2]) == 160


def test_small_image_keeps_its_size(tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    PILImage.fromarray(halves(20, 10)).save(path)
    thumb = read_thumbnail(path, max_side=160)
    assert thumb.shape == (10, 20, 3)
    assert tuple(thumb[5, 2]) == RED and tuple(thumb[5, 17]) == BLUE


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    im = PILImage.fromarray(halves(120, 60))
    exif = im.getexif()
    exif[0x0112] = 6  # stored sideways: shown turned 90 degrees clockwise, so the left half ends up on top
    im.save(path, quality=95, exif=exif)
    thumb = read_thumbnail(path, max_side=40)
    assert thumb.shape[:2] == (40, 20)
    top, bottom = thumb[5, 10].astype(int), thumb[34, 10].astype(int)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_grey_image_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "grey.png"
    PILImage.fromarray(np.full((30, 50), 77, np.uint8), mode="L").save(path)
    thumb = read_thumbnail(path, max_side=25)
    assert thumb.shape == (15, 25, 3)
    assert np.all(thumb == 77)


def test_transparency_is_composited_on_mid_grey(tmp_path: Path) -> None:
    pixels = np.zeros((10, 20, 4), np.uint8)
    pixels[:, :10] = (255, 0, 0, 255)  # opaque red
    pixels[:, 10:] = (0, 255, 0, 0)  # fully transparent green
    path = tmp_path / "alpha.png"
    PILImage.fromarray(pixels, mode="RGBA").save(path)
    thumb = read_thumbnail(path)
    assert thumb.shape == (10, 20, 3)
    assert tuple(thumb[5, 2]) == RED
    assert tuple(thumb[5, 17]) == (128, 128, 128)


@pytest.mark.parametrize("channels", [1, 3])
def test_sixteen_bit_png(tmp_path: Path, channels: int) -> None:
    path = tmp_path / f"deep{channels}.png"
    write_image(path, Image(np.full((12, 24, channels), 40000, np.uint16)))
    thumb = read_thumbnail(path, max_side=12)
    assert thumb.shape == (6, 12, 3)
    assert np.all(np.abs(thumb.astype(int) - 40000 * 255 // 65535) <= 1)


def test_sixteen_bit_tiff(tmp_path: Path) -> None:
    path = tmp_path / "deep.tif"
    pixels = np.zeros((8, 16, 3), np.uint16)
    pixels[..., 1] = 65535
    write_image(path, Image(pixels))
    thumb = read_thumbnail(path)
    assert thumb.shape == (8, 16, 3)
    assert np.all(thumb == (0, 255, 0))


def test_broken_file_raises_naming_it(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"this is not a picture")
    with pytest.raises(ImageReadError, match="broken.png"):
        read_thumbnail(broken)
    truncated = tmp_path / "truncated.png"
    PILImage.fromarray(halves(64, 64)).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.raises(ImageReadError, match="truncated.png"):
        read_thumbnail(truncated)
    with pytest.raises(ImageReadError, match="missing.jpg"):
        read_thumbnail(tmp_path / "missing.jpg")
    with pytest.raises(ValueError):
        read_thumbnail(broken, max_side=0)


def test_a_float_tiff_beyond_0_1_is_previewed_on_its_own_scale_not_clipped_white(tmp_path: Path) -> None:
    ramp = np.repeat(np.linspace(0.0, 4000.0, 64, dtype=np.float32)[None, :, None], 16, axis=0)
    path = write_image(tmp_path / "counts.tif", Image(np.repeat(ramp, 3, axis=2)))
    preview = read_thumbnail(path, max_side=64)
    row = preview[8, :, 0].astype(int)
    assert row[0] < 10 and row[-1] > 245 and 100 < row[32] < 160  # a ramp, as the viewer shows it
