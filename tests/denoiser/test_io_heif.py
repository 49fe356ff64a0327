"""HEIC/HEIF through pillow-heif and AVIF through Pillow: files written here (by pillow-heif, Pillow or
write_image) are read back by read_image with their pixels, bit depth, alpha, EXIF, ICC profile and orientation;
broken files give an ImageReadError naming the file."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ExifTags, ImageCms, features
from PIL import Image as PILImage

from denoiser.errors import ImageReadError, ImageWriteError
from denoiser.io import Image, identify_format, read_image, write_image
from denoiser.io.backends.heif import tile_size

pillow_heif = pytest.importorskip("pillow_heif")
needs_avif = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")

ORIENTATION, MAKE, MODEL = ExifTags.Base.Orientation, ExifTags.Base.Make, ExifTags.Base.Model
ISO = ExifTags.Base.ISOSpeedRatings
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
LOSSLESS = {"quality": -1, "chroma": 444, "matrix_coefficients": 0}  # pillow-heif's exact settings
HEIGHT, WIDTH = 32, 48


def exif_block(orientation: int = 1) -> bytes:
    exif = PILImage.Exif()
    exif[MAKE], exif[MODEL], exif[ORIENTATION] = "Canon", "EOS R5", orientation
    exif.get_ifd(ExifTags.IFD.Exif)[ISO] = 3200
    return exif.tobytes()


def exif_tags(raw: bytes | None) -> dict[str, Any]:
    assert raw is not None and raw.startswith(b"Exif\x00\x00")  # the form read_image gives for JPEG
    exif = PILImage.Exif()
    exif.load(raw)
    iso = exif.get_ifd(ExifTags.IFD.Exif).get(ISO)
    return {"make": exif.get(MAKE), "model": exif.get(MODEL), "iso": iso, "orientation": exif.get(ORIENTATION)}


def gradient(channels: int = 3) -> np.ndarray:
    """A smooth 8-bit picture (lossy coding keeps it close)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    planes = [x * 5, y * 7, (x + y) * 2, 255 - x * 4][:channels]
    return np.stack(planes, axis=-1).astype(np.uint8)


def noise(dtype: type, channels: int = 3, top: int = 255, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, top + 1, (HEIGHT, WIDTH, channels)).astype(dtype)


def heic(path: Path, mode: str, pixels: np.ndarray, **options: Any) -> Path:
    """``pixels`` (H x W or H x W x C) written by pillow-heif in ``mode`` with save ``options``."""
    height, width = pixels.shape[:2]
    pillow_heif.from_bytes(mode, (width, height), np.ascontiguousarray(pixels).tobytes()).save(path, **options)
    return path


def heif_bit_depth(path: Path) -> int:
    return int(pillow_heif.open_heif(path, convert_hdr_to_8bit=False).info["bit_depth"])


def to_16(values: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.rint(values.astype(np.float64) * 65535 / top).astype(np.uint16)


def on_10_bit_grid(values: np.ndarray) -> np.ndarray:
    """16-bit values as the nearest 10-bit value, scaled back to 16 bits."""
    return to_16(np.rint(values.astype(np.float64) * 1023 / 65535), 10)


def assert_close(back: np.ndarray, original: np.ndarray, mean: float, worst: float) -> None:
    difference = np.abs(back.astype(np.float64) - original.astype(np.float64))
    assert difference.mean() < mean and difference.max() < worst, (difference.mean(), difference.max())


# --- reading HEIC written by pillow-heif -------------------------------------------------------------------------


def test_8_bit_heic_reads_with_its_pixels_exif_and_icc_profile(tmp_path: Path) -> None:
    original = gradient()
    path = heic(tmp_path / "photo.heic", "RGB", original, quality=90, exif=exif_block(), icc_profile=SRGB)
    assert identify_format(path) == "HEIF"
    image = read_image(path)
    assert (image.format, image.pixels.dtype, image.pixels.shape) == ("HEIF", np.uint8, (HEIGHT, WIDTH, 3))
    assert_close(image.pixels, original, mean=2, worst=16)
    assert exif_tags(image.exif) == {"make": "Canon", "model": "EOS R5", "iso": 3200, "orientation": 1}
    assert image.icc_profile == SRGB
    assert image.source == path


def test_lossless_8_bit_heic_reads_exactly(tmp_path: Path) -> None:
    original = noise(np.uint8)
    image = read_image(heic(tmp_path / "exact.heic", "RGB", original, **LOSSLESS))
    np.testing.assert_array_equal(image.pixels, original)


def test_10_bit_heic_from_16_bit_data_reads_as_16_bit(tmp_path: Path) -> None:
    original = gradient().astype(np.uint16) * 257
    path = heic(tmp_path / "deep.heic", "RGB;16", original, quality=90)
    assert heif_bit_depth(path) == 10
    image = read_image(path)
    assert (image.pixels.dtype, image.pixels.shape) == (np.uint16, (HEIGHT, WIDTH, 3))
    assert_close(image.pixels, original, mean=2 * 257, worst=16 * 257)


@pytest.mark.parametrize("bits", [10, 12])
def test_10_and_12_bit_samples_fill_the_whole_16_bit_range(tmp_path: Path, bits: int) -> None:
    stored = noise(np.uint16, top=(1 << bits) - 1)
    stored[0, :2] = [[0, 0, 0], [(1 << bits) - 1] * 3]
    path = heic(tmp_path / f"b{bits}.heic", f"RGB;{bits}", stored, bit_depth=bits, **LOSSLESS)
    assert heif_bit_depth(path) == bits
    pixels = read_image(path).pixels
    np.testing.assert_array_equal(pixels, to_16(stored, bits))
    assert pixels[0, 1].tolist() == [65535] * 3  # full scale is 65535, not 65535 - 63 (a plain shift)


def test_rgba_heic_keeps_its_alpha(tmp_path: Path) -> None:
    original = noise(np.uint8, channels=4)
    np.testing.assert_array_equal(read_image(heic(tmp_path / "rgba.heic", "RGBA", original, **LOSSLESS)).pixels,
                                  original)
    lossy = read_image(heic(tmp_path / "lossy.heic", "RGBA", gradient(4), quality=90)).pixels
    assert lossy.shape == (HEIGHT, WIDTH, 4)
    assert_close(lossy, gradient(4), mean=2, worst=16)


def test_premultiplied_alpha_is_undone(tmp_path: Path) -> None:
    straight = noise(np.uint8, channels=4)
    straight[..., 3] = 255 - (straight[..., 3] // 2)  # alpha 128-255: dividing by it is exact to 1 level
    premultiplied = straight.copy()
    premultiplied[..., :3] = np.rint(straight[..., :3] * (straight[..., 3:] / 255))
    pixels = read_image(heic(tmp_path / "pre.heic", "RGBa", premultiplied, **LOSSLESS)).pixels
    np.testing.assert_array_equal(pixels[..., 3], straight[..., 3])
    assert np.abs(pixels[..., :3].astype(int) - straight[..., :3]).max() <= 1


@pytest.mark.parametrize(("mode", "bits"), [("L", 8), ("L;10", 10)])
def test_grey_heic_reads_as_one_channel(tmp_path: Path, mode: str, bits: int) -> None:
    stored = noise(np.uint8 if bits == 8 else np.uint16, channels=1, top=(1 << bits) - 1)[..., 0]
    options = dict(LOSSLESS, bit_depth=bits) if bits > 8 else LOSSLESS
    pixels = read_image(heic(tmp_path / "grey.heic", mode, stored, **options)).pixels
    expected = stored if bits == 8 else to_16(stored, bits)
    np.testing.assert_array_equal(pixels, expected[..., np.newaxis])


@pytest.mark.parametrize("tile", [0, 16], ids=["one picture", "tiles"])
def test_rotated_heic_comes_out_upright_once(tmp_path: Path, tile: int) -> None:
    # As a phone writes it: pixels stored sideways (in tiles), an irot box turning them, the EXIF orientation
    # saying the same.
    stored = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    stored[:8, :8] = 255  # a white block in the stored top-left corner
    path = heic(tmp_path / "sideways.heic", "RGB", stored, exif=exif_block(orientation=6), tile_size=tile,
                **LOSSLESS)
    image = read_image(path)
    np.testing.assert_array_equal(image.pixels, np.rot90(stored, -1))  # turned 90 degrees clockwise, once
    assert exif_tags(image.exif) == {"make": "Canon", "model": "EOS R5", "iso": 3200, "orientation": 1}


def test_the_primary_image_of_several_is_read(tmp_path: Path) -> None:
    heif = pillow_heif.from_bytes("RGB", (8, 6), np.zeros((6, 8, 3), np.uint8).tobytes())
    heif.add_frombytes("RGB", (WIDTH, HEIGHT), gradient().tobytes())
    heif.save(tmp_path / "two.heic", primary_index=1, **LOSSLESS)
    np.testing.assert_array_equal(read_image(tmp_path / "two.heic").pixels, gradient())


def test_too_many_pixels_are_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = heic(tmp_path / "big.heic", "RGB", gradient(), quality=50)

    def no_decoding(self: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(pillow_heif.heif.BaseImage, "load", no_decoding)
    with pytest.raises(ImageReadError, match=r"big\.heic.*too many pixels: 48 x 32 = 1536 \(limit 1000\)"):
        read_image(path, max_pixels=1000)


# --- broken files -------------------------------------------------------------------------------------------------


def _box(kind: bytes, payload: bytes, full: bool = False) -> bytes:
    payload = (b"\x00\x00\x00\x00" if full else b"") + payload
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def heif_without_images() -> bytes:
    """A well-formed HEIF container whose meta box lists no item: the primary item it names does not exist."""
    ftyp = _box(b"ftyp", b"heic" + b"\x00" * 4 + b"mif1heic")
    meta = _box(b"meta", b"".join([
        _box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 13, full=True),
        _box(b"pitm", b"\x00\x01", full=True),
        _box(b"iinf", b"\x00\x00", full=True),
        _box(b"iloc", b"\x44\x40\x00\x00", full=True),
        _box(b"iprp", _box(b"ipco", b"") + _box(b"ipma", b"\x00" * 4, full=True)),
    ]), full=True)
    return ftyp + meta


def test_heic_with_no_image_is_named(tmp_path: Path) -> None:
    path = tmp_path / "empty.heic"
    path.write_bytes(heif_without_images())
    assert identify_format(path) == "HEIF"
    with pytest.raises(ImageReadError, match=r"empty\.heic.*no readable image in this HEIC/HEIF file"):
        read_image(path)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.97])
def test_truncated_heic_is_named(tmp_path: Path, keep: float) -> None:
    whole = heic(tmp_path / "whole.heic", "RGB", noise(np.uint8), quality=90, exif=exif_block()).read_bytes()
    path = tmp_path / "cut.heic"
    path.write_bytes(whole[: int(len(whole) * keep)])
    with pytest.raises(ImageReadError, match=r"cut\.heic.*truncated"):
        read_image(path)


def test_damaged_heic_says_so(tmp_path: Path) -> None:
    path = tmp_path / "damaged.heic"
    hdlr = _box(b"hdlr", b"\x00" * 4 + b"pict" + b"\x00" * 13, full=True)
    path.write_bytes(_box(b"ftyp", b"heic" + b"\x00" * 4 + b"mif1heic") + _box(b"meta", hdlr, full=True))
    with pytest.raises(ImageReadError, match=r"damaged\.heic.*damaged or unreadable HEIC/HEIF file: .*'iinf'"):
        read_image(path)


def test_garbage_named_heic_is_not_an_image(tmp_path: Path) -> None:
    # Guards claims_heif: a file without a HEIF header goes to Pillow, which says what it is.
    path = tmp_path / "garbage.heic"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    with pytest.raises(ImageReadError, match=r"garbage\.heic.*not an image file"):
        read_image(path)


# --- writing HEIC with write_image --------------------------------------------------------------------------------


def test_8_bit_round_trip_keeps_pixels_exif_and_icc(tmp_path: Path) -> None:
    image = Image(gradient(), exif=exif_block(), icc_profile=SRGB)
    back = read_image(write_image(tmp_path / "out.heic", image, quality=95))
    assert (back.format, back.pixels.dtype, heif_bit_depth(tmp_path / "out.heic")) == ("HEIF", np.uint8, 8)
    assert_close(back.pixels, image.pixels, mean=2, worst=16)
    assert exif_tags(back.exif) == {"make": "Canon", "model": "EOS R5", "iso": 3200, "orientation": 1}
    assert back.icc_profile == SRGB


def test_quality_100_is_lossless_and_lower_quality_smaller(tmp_path: Path) -> None:
    image = Image(noise(np.uint8))
    exact = write_image(tmp_path / "exact.heic", image, quality=100)
    np.testing.assert_array_equal(read_image(exact).pixels, image.pixels)
    small = write_image(tmp_path / "small.heic", image, quality=30)
    assert small.stat().st_size < exact.stat().st_size / 2


def test_16_bit_is_written_as_10_bit_rounded_to_nearest(tmp_path: Path) -> None:
    original = noise(np.uint16, top=65535)
    written = write_image(tmp_path / "deep.heic", Image(original, exif=exif_block()), quality=100)
    assert heif_bit_depth(written) == 10
    back = read_image(written)
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, on_10_bit_grid(original))  # nearest, not truncated
    assert exif_tags(back.exif)["iso"] == 3200
    lossy = read_image(write_image(tmp_path / "lossy.heic", Image(gradient().astype(np.uint16) * 257))).pixels
    assert_close(lossy, gradient().astype(np.uint16) * 257, mean=2 * 257, worst=16 * 257)


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("channels", [1, 4])
def test_grey_and_rgba_are_written_as_such(tmp_path: Path, depth: int, channels: int) -> None:
    original = noise(np.uint8, channels=channels)
    if depth == 16:
        original = on_10_bit_grid(original.astype(np.uint16) * 257)
    back = read_image(write_image(tmp_path / "out.heic", Image(original), quality=100))
    np.testing.assert_array_equal(back.pixels, original)


def test_pictures_are_written_in_tiles_as_phones_write_them(tmp_path: Path) -> None:
    original = np.tile(gradient(), (1, 23, 1))[:, :1100]  # wider than two 512-pixel tiles
    written = write_image(tmp_path / "wide.heic", Image(original, icc_profile=SRGB), quality=100)
    tiling = pillow_heif.open_heif(written).info["tiling"]
    assert (tiling["tile_width"], tiling["num_columns"], tiling["num_rows"]) == (512, 3, 1)
    back = read_image(written)
    np.testing.assert_array_equal(back.pixels, original)
    assert back.icc_profile == SRGB


def test_huge_pictures_get_bigger_tiles_to_stay_within_heif_limits() -> None:
    assert tile_size(4032, 3024) == 512 and tile_size(9000, 6000) == 512  # 8 x 6 and 18 x 12 tiles
    assert tile_size(16000, 16000) == 1024  # 32 x 32 tiles of 512 would pass libheif's 1000 items
    assert tile_size(200_000, 100) == 1024  # 391 tiles of 512 in a row would pass its 256 a side


def test_alpha_too_large_for_one_hevc_picture_is_refused_before_encoding(tmp_path: Path) -> None:
    # pillow-heif never tiles pictures with alpha, and a single HEVC picture this large cannot be decoded.
    huge = Image(np.zeros((5000, 7200, 4), np.uint8))  # 36 megapixels; zeros are not even allocated
    with pytest.raises(ImageWriteError, match=r"huge\.heic.*HEIC cannot hold a picture with transparency"):
        write_image(tmp_path / "huge.heic", huge)
    assert list(tmp_path.iterdir()) == []


def test_exif_orientation_is_reset_when_writing_upright_pixels(tmp_path: Path) -> None:
    # An EXIF block still saying "rotate" must not make pillow-heif add an irot box to pixels that are upright.
    original = noise(np.uint8)
    back = read_image(write_image(tmp_path / "out.heic", Image(original, exif=exif_block(orientation=6)),
                                  quality=100))
    np.testing.assert_array_equal(back.pixels, original)
    assert exif_tags(back.exif)["orientation"] == 1


# --- AVIF through Pillow ------------------------------------------------------------------------------------------


@needs_avif
def test_avif_round_trip_keeps_pixels_exif_and_icc(tmp_path: Path) -> None:
    image = Image(noise(np.uint8), exif=exif_block(), icc_profile=SRGB)
    written = write_image(tmp_path / "out.avif", image, quality=100)
    assert identify_format(written) == "AVIF"
    back = read_image(written)
    assert (back.format, back.pixels.dtype, back.pixels.shape) == ("AVIF", np.uint8, (HEIGHT, WIDTH, 3))
    assert_close(back.pixels, image.pixels, mean=2, worst=8)  # colour noise survives: full-resolution chroma
    assert exif_tags(back.exif) == {"make": "Canon", "model": "EOS R5", "iso": 3200, "orientation": None}
    assert back.icc_profile == SRGB
    small = write_image(tmp_path / "small.avif", image, quality=30)
    assert small.stat().st_size < written.stat().st_size / 2


@needs_avif
@pytest.mark.parametrize("channels", [1, 4])
def test_avif_keeps_grey_and_alpha(tmp_path: Path, channels: int) -> None:
    original = gradient(4)[..., :channels] if channels == 4 else gradient(1)
    back = read_image(write_image(tmp_path / "out.avif", Image(original), quality=95))
    assert back.pixels.shape == (HEIGHT, WIDTH, channels)
    assert_close(back.pixels, original, mean=2, worst=16)


@needs_avif
def test_avif_written_by_pillow_reads_upright_with_exif_and_icc(tmp_path: Path) -> None:
    stored = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    stored[:8, :8] = 255
    path = tmp_path / "sideways.avif"
    PILImage.fromarray(stored).save(path, quality=100, subsampling="4:4:4", exif=exif_block(orientation=6),
                                    icc_profile=SRGB)
    image = read_image(path)
    assert (image.format, image.pixels.dtype) == ("AVIF", np.uint8)
    assert_close(image.pixels, np.rot90(stored, -1), mean=2, worst=32)  # turned 90 degrees clockwise, once
    assert exif_tags(image.exif) == {"make": "Canon", "model": "EOS R5", "iso": 3200, "orientation": 1}
    assert image.icc_profile == SRGB


@needs_avif
def test_avif_whose_major_brand_is_generic_is_read_as_avif(tmp_path: Path) -> None:
    # Some writers put the generic HEIF brand first and "avif" among the compatible ones: still Pillow's AVIF.
    path = tmp_path / "generic.avif"
    PILImage.fromarray(gradient()).save(path, quality=90)
    data = bytearray(path.read_bytes())
    assert data[8:12] == b"avif" and b"mif1" in data[16:32]
    data[8:12] = b"mif1"
    path.write_bytes(bytes(data))
    assert identify_format(path) == "AVIF"
    assert_close(read_image(path).pixels, gradient(), mean=2, worst=16)
