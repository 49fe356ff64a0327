"""32-bit float TIFF: read in every layout other programs write, written back as float with the values kept
exactly (outside 0-1 too), refused with a message for what cannot be an image, and denoised without clipping."""

from __future__ import annotations

import importlib.util
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image as PILImage
from PIL import ImageCms, TiffImagePlugin

from denoiser.batch.settings import DenoiseSettings
from denoiser.batch.single import denoise_image
from denoiser.errors import ImageReadError
from denoiser.io import Image, from_float, read_image, write_image
from denoiser.io.backends import BACKENDS, DIRECT_READERS
from denoiser.io.backends.tiff_float import FLOAT_TIFF_READER, TIFF_FLOAT, claims_float_tiff
from denoiser.io.metadata import exif_facts
from denoiser.io.reading import identify_format
from denoiser.models import create_model

HAS_IMAGECODECS = importlib.util.find_spec("imagecodecs") is not None
LZW, DEFLATE = 5, 8
NO_PREDICTOR, FLOAT_PREDICTOR = 1, 3


def values(channels: int = 3, height: int = 3, width: int = 4) -> np.ndarray:
    """Float32 H x W x C that no integer format holds: negative, far above 1, and fractions."""
    out = np.random.default_rng(channels).normal(0.5, 300.0, (height, width, channels)).astype(np.float32)
    out.flat[:4] = [-0.5, 1234.5, 0.1, 1.0]
    return out


def as_read(written: np.ndarray) -> np.ndarray:
    """What read_image should give for what a test wrote: H x W x C float32."""
    pixels = written.astype(np.float32)
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def write_tiff(path: Path, data: np.ndarray, **options: Any) -> Path:
    tifffile.imwrite(path, data, metadata=None, **options)
    return path


GREY, RGB, RGBA = values(1)[..., 0], values(3), values(4)
GREY_ALPHA = values(2)
LAYOUTS: dict[str, tuple[np.ndarray, dict[str, Any], np.ndarray]] = {
    "grey": (GREY, {"photometric": "minisblack"}, as_read(GREY)),
    "rgb": (RGB, {"photometric": "rgb"}, RGB),
    "rgba": (RGBA, {"photometric": "rgb", "extrasamples": ["unassalpha"]}, RGBA),
    "grey+alpha": (GREY_ALPHA, {"photometric": "minisblack", "extrasamples": ["unassalpha"]},
                   GREY_ALPHA[..., [0, 0, 0, 1]]),
    "rgb planar": (np.moveaxis(RGB, -1, 0), {"photometric": "rgb", "planarconfig": "separate"}, RGB),
    "rgba planar": (np.moveaxis(RGBA, -1, 0), {"photometric": "rgb", "planarconfig": "separate",
                                                "extrasamples": ["unassalpha"]}, RGBA),
    "rgb big-endian": (RGB, {"photometric": "rgb", "byteorder": ">"}, RGB),
    "rgb zlib bigtiff tiled": (values(3, 20, 18), {"photometric": "rgb", "compression": "zlib", "bigtiff": True,
                                                   "tile": (16, 16)}, values(3, 20, 18)),
    "rgb float16": (RGB.astype(np.float16), {"photometric": "rgb"}, RGB.astype(np.float16).astype(np.float32)),
    "rgb float64": (RGB / np.float64(3), {"photometric": "rgb"}, (RGB / np.float64(3)).astype(np.float32)),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_float_tiffs_read_and_write_back_exactly(tmp_path: Path, layout: str) -> None:
    data, options, expected = LAYOUTS[layout]
    image = read_image(write_tiff(tmp_path / "in.tif", data, **options))
    assert (image.format, image.bit_depth, image.pixels.dtype) == ("TIFF", 32, np.float32)
    np.testing.assert_array_equal(image.pixels, expected)
    again = read_image(write_image(tmp_path / "out.tif", image))
    assert again.bit_depth == 32
    np.testing.assert_array_equal(again.pixels, expected)
    assert again.value_range == image.value_range


def test_a_float_tiff_is_written_compressed_losslessly_with_unassociated_alpha(tmp_path: Path) -> None:
    path = write_image(tmp_path / "out.tif", Image(RGBA))
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        assert (int(page.sampleformat), page.bitspersample, int(page.compression)) == (3, 32, DEFLATE)
        assert int(page.predictor) == (FLOAT_PREDICTOR if HAS_IMAGECODECS else NO_PREDICTOR)
        assert [int(kind) for kind in page.extrasamples] == [int(tifffile.EXTRASAMPLE.UNASSALPHA)]
        assert page.tags.valueof(305) is None and page.tags.valueof(270) is None  # no "tifffile.py", no JSON
    np.testing.assert_array_equal(read_image(path).pixels, RGBA)


def float_predicted(rows: np.ndarray) -> bytes:
    """TIFF's floating-point predictor (TIFF Technical Note 3) for one-sample rows: each row's bytes regrouped
    most significant first, then differenced byte by byte."""
    out = []
    for row in rows.astype(">f4"):
        grouped = row.view(np.uint8).reshape(-1, 4).T.reshape(-1)
        out.append(np.diff(grouped, prepend=np.uint8(0)).astype(np.uint8).tobytes())
    return b"".join(out)


def lzw_literals(data: bytes) -> bytes:
    """A valid TIFF LZW stream that codes every byte as itself: 9-bit codes, with a Clear code every 250 bytes so
    the table never grows to 10-bit codes."""
    codes: list[int] = []
    for start in range(0, len(data), 250):
        codes += [256, *data[start : start + 250]]
    codes.append(257)
    bits = "".join(f"{code:09b}" for code in codes)
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def handmade_grey_tiff(path: Path, grey: np.ndarray, compression: int, predictor: int) -> Path:
    """A one-strip little-endian float32 grey TIFF, compressed as other programs do it (tifffile here cannot write
    LZW or the floating-point predictor without imagecodecs)."""
    height, width = grey.shape
    strip = float_predicted(grey) if predictor == FLOAT_PREDICTOR else grey.astype("<f4").tobytes()
    strip = {LZW: lzw_literals, DEFLATE: zlib.compress}.get(compression, bytes)(strip)
    short, long = 3, 4
    entries = [(256, long, width), (257, long, height), (258, short, 32), (259, short, compression),
               (262, short, 1), (273, long, 0), (277, short, 1), (278, long, height), (279, long, len(strip)),
               (317, short, predictor), (339, short, 3)]
    data_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = data_offset if tag == 273 else value
        ifd += struct.pack("<HHI", tag, kind, 1) + struct.pack("<HH" if kind == short else "<I", *(
            (value, 0) if kind == short else (value,)))
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + strip)
    return path


@pytest.mark.parametrize(("compression", "predictor"), [(DEFLATE, NO_PREDICTOR), (DEFLATE, FLOAT_PREDICTOR),
                                                        (LZW, NO_PREDICTOR), (LZW, FLOAT_PREDICTOR)])
def test_compressed_float_tiffs_of_other_programs(tmp_path: Path, compression: int, predictor: int) -> None:
    grey = values(1, 5, 7)[..., 0]
    path = handmade_grey_tiff(tmp_path / "other.tif", grey, compression, predictor)
    needs_imagecodecs = compression == LZW or predictor == FLOAT_PREDICTOR
    if needs_imagecodecs and not HAS_IMAGECODECS:
        with pytest.raises(ImageReadError) as caught:
            read_image(path)
        message = str(caught.value)
        assert "other.tif" in message and "pip install imagecodecs" in message
        assert ("LZW compression" in message) == (compression == LZW)
        assert ("floating-point predictor" in message) == (predictor == FLOAT_PREDICTOR)
    else:
        np.testing.assert_array_equal(read_image(path).pixels, as_read(grey))


def test_nan_and_infinite_values_are_refused_and_counted(tmp_path: Path) -> None:
    data = RGB.copy()
    data[0, 0, 0] = data[1, 2, 1] = np.nan
    data[2, 3, 2], data[0, 1, 0] = np.inf, -np.inf
    with pytest.raises(ImageReadError) as caught:
        read_image(write_tiff(tmp_path / "holes.tif", data, photometric="rgb"))
    message = str(caught.value)
    assert "holes.tif" in message and "float TIFF with 2 NaN values and 2 infinite values" in message
    only_nan = GREY.copy()
    only_nan[1, 1] = np.nan
    with pytest.raises(ImageReadError, match="float TIFF with 1 NaN value: "):
        read_image(write_tiff(tmp_path / "one.tif", only_nan))


def test_float64_values_beyond_float32_are_refused(tmp_path: Path) -> None:
    data = GREY.astype(np.float64)
    data[0, 0] = 1e300
    with pytest.raises(ImageReadError, match=r"huge\.tif: float TIFF with 1 value beyond the 32-bit float range"):
        read_image(write_tiff(tmp_path / "huge.tif", data))


def test_orientation_is_applied_and_metadata_kept(tmp_path: Path) -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = write_tiff(tmp_path / "turned.tif", RGB, photometric="rgb", iccprofile=profile,
                      extratags=[(274, 3, 1, 6, True), (271, 2, 0, "TestCam", True), (33432, 2, 0, "(c) Me", True)])
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, np.rot90(RGB, -1))  # orientation 6: turned clockwise
    assert image.icc_profile == profile
    exif = PILImage.Exif()
    exif.load(image.exif)
    assert (exif.get(271), exif.get(33432), exif.get(274)) == ("TestCam", "(c) Me", 1)
    assert 273 not in exif and 339 not in exif  # the file's layout tags are not photo metadata
    again = read_image(write_image(tmp_path / "out.tif", image))
    np.testing.assert_array_equal(again.pixels, image.pixels)  # upright, and not turned a second time
    assert again.icc_profile == profile and exif_facts(again.exif) == [("Camera", "TestCam")]


def test_the_exif_sub_directory_of_a_float_tiff_is_read(tmp_path: Path) -> None:
    exif = PILImage.Exif()
    exif[271], exif[274] = "Nikon D850", 8
    exif.get_ifd(0x8769)[33434] = TiffImagePlugin.IFDRational(1, 250)  # ExposureTime
    exif.get_ifd(0x8769)[34855] = 800  # ISO
    PILImage.fromarray(GREY).save(tmp_path / "pillow.tif", exif=exif.tobytes())  # Pillow writes grey float TIFFs
    image = read_image(tmp_path / "pillow.tif")
    np.testing.assert_array_equal(image.pixels, np.rot90(as_read(GREY), 1))  # orientation 8
    assert exif_facts(image.exif) == [("Camera", "Nikon D850"), ("ISO", "800"), ("Exposure", "1/250 s")]


def test_each_tiff_depth_goes_to_its_own_reader(tmp_path: Path) -> None:
    assert FLOAT_TIFF_READER in DIRECT_READERS and BACKENDS[("TIFF", 32)] is TIFF_FLOAT
    grey = np.arange(12, dtype=np.float32).reshape(3, 4) / 11
    for depth, pixels in ((8, from_float(grey, 8)), (16, from_float(grey, 16)), (32, grey)):
        path = write_tiff(tmp_path / f"{depth}.tif", pixels)
        with open(path, "rb") as handle:
            claimed = claims_float_tiff(path, handle.read(32), handle)
        image = read_image(path)
        assert (claimed, image.bit_depth, image.format, identify_format(path)) == (depth == 32, depth, "TIFF", "TIFF")
        np.testing.assert_array_equal(image.pixels, as_read(pixels))


def test_the_float_backend_is_for_writing_only() -> None:
    assert TIFF_FLOAT.read_pixels is None and TIFF_FLOAT.read_metadata is None  # the direct reader reads them


@pytest.mark.parametrize(("data", "options", "expected"), [
    (RGB[..., 0] + 1j, {}, "COMPLEXIEEEFP samples"),
    (RGB, {"photometric": "minisblack", "planarconfig": "contig"}, "MINISBLACK float TIFF with 3 channels"),
    (np.stack([RGB, RGB]), {"photometric": "rgb", "volumetric": True}, "3-D float volume"),
])
def test_what_is_not_a_picture_is_refused_saying_what(tmp_path: Path, data: np.ndarray, options: dict[str, Any],
                                                     expected: str) -> None:
    path = write_tiff(tmp_path / "odd.tif", data.astype(np.complex64 if np.iscomplexobj(data) else np.float32),
                      **options)
    assert identify_format(path) == "TIFF"
    with pytest.raises(ImageReadError, match=r"odd\.tif: unsupported") as caught:
        read_image(path)
    assert expected in str(caught.value)


def test_damaged_and_oversized_float_tiffs_are_refused(tmp_path: Path) -> None:
    whole = write_tiff(tmp_path / "whole.tif", values(3, 40, 40), photometric="rgb").read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.tif: damaged or unreadable float TIFF"):
        read_image(cut)
    # The size is refused before any decoding: the truncated data is never looked at.
    with pytest.raises(ImageReadError, match=r"cut\.tif: too many pixels: 40 x 40 = 1600 \(limit 1000\)"):
        read_image(cut, max_pixels=1000)


def test_a_float_tiff_saved_as_png_or_jpeg_is_clipped_to_0_1(tmp_path: Path) -> None:
    data = np.zeros((8, 8, 3), np.float32)
    data[:, :4], data[:, 4:] = -0.5, 1234.5
    data[0, 0] = 0.25
    image = read_image(write_tiff(tmp_path / "in.tif", data, photometric="rgb"))
    png = read_image(write_image(tmp_path / "out.png", image))
    expected = np.where(data < 0, 0, 65535).astype(np.uint16)
    expected[0, 0] = 16384  # 0.25 * 65535, rounded
    assert png.bit_depth == 16
    np.testing.assert_array_equal(png.pixels, expected)
    jpeg = read_image(write_image(tmp_path / "out.jpg", image))
    assert (jpeg.bit_depth, jpeg.channels) == (8, 3)
    assert np.abs(jpeg.pixels.astype(int) - (expected >> 8).astype(int)).mean() < 8


def test_a_float_tiff_with_values_up_to_4000_is_denoised_as_float(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ramp = np.linspace(0.0, 4000.0, 24, dtype=np.float32)[np.newaxis, :, np.newaxis]
    data = np.clip(ramp + rng.normal(0.0, 40.0, (24, 24, 3)), 0.0, 4000.0).astype(np.float32)
    image = read_image(write_tiff(tmp_path / "science.tif", data, photometric="rgb"))
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 1})
    result = denoise_image(image, model, DenoiseSettings(strength=10.0, device="cpu")).image
    assert (result.pixels.dtype, result.pixels.shape) == (np.float32, data.shape)
    low, high = image.value_range
    assert low <= result.pixels.min() and result.pixels.max() <= high
    assert result.pixels.max() > 100.0  # scaled back to the photo's values, not clipped to 0-1
    assert not np.array_equal(result.pixels, image.pixels)
    saved = read_image(write_image(tmp_path / "science_denoised.tif", result))
    np.testing.assert_array_equal(saved.pixels, result.pixels)
