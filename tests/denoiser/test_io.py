"""Tests for denoiser.io: round trips per format, bit depth and channels, metadata, errors, safe writes."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from denoiser.errors import ImageReadError, ImageWriteError, UnknownNameError
from denoiser.io import (
    SUPPORTED_EXTENSIONS,
    Image,
    atomic_write,
    atomic_write_bytes,
    convert_depth,
    find_images,
    from_float,
    is_image_path,
    read_image,
    sync_folder,
    to_float,
    write_image,
)

H, W = 12, 16
CHANNELS = {"grey": 1, "rgb": 3, "rgba": 4}


def noise(channels: int, depth: int, seed: int = 0, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    """Random pixels: every bit matters, so any truncation or channel mix-up shows."""
    dtype = np.uint8 if depth == 8 else np.uint16
    top = 255 if depth == 8 else 65535
    return np.random.default_rng(seed).integers(0, top + 1, (*shape, channels), dtype=dtype)


def smooth(channels: int, shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A gentle 8-bit gradient that lossy codecs reproduce closely."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w]
    planes = [40 + 3 * x, 60 + 2 * y, 200 - x - y, 100 + 2 * x + y]
    return np.stack(planes[:channels], axis=-1).clip(0, 255).astype(np.uint8)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def exif_block(orientation: int | None = None, make: str = "TestCam") -> bytes:
    exif = PILImage.Exif()
    exif[271] = make
    if orientation is not None:
        exif[274] = orientation
    exif.get_ifd(0x8769)[0x9003] = "2024:01:02 03:04:05"  # DateTimeOriginal, in the Exif sub-IFD
    return exif.tobytes()


def parse_exif(raw: bytes | None) -> PILImage.Exif:
    assert raw is not None
    exif = PILImage.Exif()
    exif.load(raw)
    return exif


# ----------------------------------------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [8, 16])
@pytest.mark.parametrize("kind", ["grey", "rgb", "rgba"])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_lossless_round_trip_keeps_every_bit(tmp_path: Path, ext: str, kind: str, depth: int) -> None:
    pixels = noise(CHANNELS[kind], depth)
    written = write_image(tmp_path / f"out{ext}", Image(pixels))
    back = read_image(written)
    assert back.pixels.dtype == pixels.dtype
    assert back.bit_depth == depth
    assert back.channels == CHANNELS[kind]
    assert back.format == SUPPORTED_EXTENSIONS[ext]
    np.testing.assert_array_equal(back.pixels, pixels)
    assert back.source == written


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff"])
def test_16bit_rgb_values_differing_only_in_low_byte_survive(tmp_path: Path, ext: str) -> None:
    # Every pixel has the same high byte 0x12; 8-bit truncation would make the whole image one colour.
    low = np.arange(H * W * 3, dtype=np.uint16).reshape(H, W, 3) % 256
    pixels = (0x1200 + low).astype(np.uint16)
    back = read_image(write_image(tmp_path / f"low{ext}", Image(pixels)))
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, pixels)


def test_16bit_rgb_written_by_other_tools_reads_exactly(tmp_path: Path) -> None:
    import cv2

    pixels = noise(3, 16, seed=3)
    cv2.imwrite(str(tmp_path / "cv.png"), pixels[..., ::-1])
    tifffile.imwrite(
        tmp_path / "planar.tif", np.moveaxis(pixels, -1, 0), photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(read_image(tmp_path / "cv.png").pixels, pixels)
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif").pixels, pixels)


def test_16bit_grey_alpha_png_becomes_rgba(tmp_path: Path) -> None:
    grey = noise(1, 16, seed=4)[..., 0]
    alpha = noise(1, 16, seed=5)[..., 0]
    rows = np.stack([grey, alpha], axis=-1).astype(">u2").reshape(H, W * 2)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", W, H, 16, 4, 0, 0, 0)  # colour type 4: grey + alpha
    png = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )
    (tmp_path / "ga16.png").write_bytes(png)
    back = read_image(tmp_path / "ga16.png")
    assert back.has_alpha and back.bit_depth == 16
    for c in range(3):
        np.testing.assert_array_equal(back.pixels[..., c], grey)
    np.testing.assert_array_equal(back.pixels[..., 3], alpha)


@pytest.mark.parametrize("kind", ["grey", "rgb"])
def test_bmp_round_trip(tmp_path: Path, kind: str) -> None:
    pixels = noise(CHANNELS[kind], 8)
    back = read_image(write_image(tmp_path / "out.bmp", Image(pixels)))
    assert back.format == "BMP"
    np.testing.assert_array_equal(back.pixels, pixels)


def test_bmp_gets_8_bits_rounded_and_colour_of_rgba(tmp_path: Path) -> None:
    pixels = noise(4, 16)
    back = read_image(write_image(tmp_path / "out.bmp", Image(pixels)))
    assert back.bit_depth == 8
    expected = np.floor(pixels[..., :3] * (255 / 65535) + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(back.pixels[..., :3], expected)


@pytest.mark.parametrize("kind", ["rgb", "rgba"])
def test_webp_quality_100_is_lossless(tmp_path: Path, kind: str) -> None:
    pixels = noise(CHANNELS[kind], 8)
    back = read_image(write_image(tmp_path / "out.webp", Image(pixels), quality=100))
    assert back.format == "WEBP"
    np.testing.assert_array_equal(back.pixels, pixels)


def test_webp_grey_comes_back_as_equal_rgb(tmp_path: Path) -> None:
    pixels = noise(1, 8)
    back = read_image(write_image(tmp_path / "grey.webp", Image(pixels), quality=100))
    for c in range(back.channels):
        np.testing.assert_array_equal(back.pixels[..., c], pixels[..., 0])


@pytest.mark.parametrize(
    ("ext", "kind"),
    [(".jpg", "grey"), (".jpg", "rgb"), (".jpeg", "rgb"), (".webp", "rgb"), (".webp", "rgba")],
)
def test_lossy_round_trip_is_close(tmp_path: Path, ext: str, kind: str) -> None:
    pixels = smooth(CHANNELS[kind])
    back = read_image(write_image(tmp_path / f"out{ext}", Image(pixels), quality=95))
    assert back.format == SUPPORTED_EXTENSIONS[ext]
    assert back.pixels.shape == pixels.shape
    colour = slice(0, 3)
    error = np.abs(back.pixels[..., colour].astype(int) - pixels[..., colour])
    assert error.mean() < 2.0 and error.max() <= 12
    if kind == "rgba":  # WebP compresses alpha losslessly
        np.testing.assert_array_equal(back.pixels[..., 3], pixels[..., 3])


def test_jpeg_drops_alpha(tmp_path: Path) -> None:
    pixels = smooth(4)
    back = read_image(write_image(tmp_path / "out.jpg", Image(pixels)))
    assert back.channels == 3 and not back.has_alpha
    assert np.abs(back.pixels.astype(int) - pixels[..., :3]).mean() < 2.0


def test_16bit_written_as_jpeg_rounds_instead_of_truncating(tmp_path: Path) -> None:
    # 257 * 100 + 200 is 100.78 in 8-bit units: rounding gives 101, dropping the low byte gives 100.
    pixels = np.full((16, 16, 1), 257 * 100 + 200, dtype=np.uint16)
    back = read_image(write_image(tmp_path / "flat.jpg", Image(pixels)))
    assert back.bit_depth == 8
    assert np.all(back.pixels == 101)


def test_forced_bit_depths(tmp_path: Path) -> None:
    pixels16 = noise(3, 16)
    down = read_image(write_image(tmp_path / "down.png", Image(pixels16), bit_depth=8))
    assert down.bit_depth == 8
    expected = ((pixels16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    np.testing.assert_array_equal(down.pixels, expected)

    pixels8 = noise(3, 8)
    up = read_image(write_image(tmp_path / "up.tif", Image(pixels8), bit_depth=16))
    assert up.bit_depth == 16
    np.testing.assert_array_equal(up.pixels, pixels8.astype(np.uint16) * 257)

    with pytest.raises(ImageWriteError, match="bit depth"):
        write_image(tmp_path / "bad.png", Image(pixels8), bit_depth=12)


# ----------------------------------------------------------------------------------------------------------
# Modes Pillow reports differently
# ----------------------------------------------------------------------------------------------------------


def test_grey_alpha_palette_and_bilevel_modes(tmp_path: Path) -> None:
    grey = noise(1, 8)[..., 0]
    alpha = noise(1, 8, seed=1)[..., 0]
    PILImage.fromarray(np.stack([grey, alpha], axis=-1), "LA").save(tmp_path / "la.png")
    la = read_image(tmp_path / "la.png")
    assert la.channels == 4
    np.testing.assert_array_equal(la.pixels[..., 0], grey)
    np.testing.assert_array_equal(la.pixels[..., 2], grey)
    np.testing.assert_array_equal(la.alpha()[..., 0], alpha)

    palette = PILImage.fromarray(smooth(3)).quantize(16)
    palette.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").channels == 3
    palette.save(tmp_path / "pt.png", transparency=0)
    with_transparency = read_image(tmp_path / "pt.png")
    assert with_transparency.channels == 4
    assert set(np.unique(with_transparency.pixels[..., 3])) <= {0, 255}

    bilevel = PILImage.fromarray(grey > 128)
    assert bilevel.mode == "1"
    bilevel.save(tmp_path / "bw.png")
    bw = read_image(tmp_path / "bw.png")
    assert bw.pixels.dtype == np.uint8 and bw.channels == 1
    np.testing.assert_array_equal(bw.pixels[..., 0], np.where(grey > 128, 255, 0))


def test_16bit_grey_png_from_pillow(tmp_path: Path) -> None:
    grey = noise(1, 16)[..., 0]
    PILImage.fromarray(grey).save(tmp_path / "g16.png")
    back = read_image(tmp_path / "g16.png")
    assert back.bit_depth == 16 and back.channels == 1
    np.testing.assert_array_equal(back.pixels[..., 0], grey)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    PILImage.new("CMYK", (W, H), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", quality=95)
    back = read_image(tmp_path / "cmyk.jpg")
    assert back.channels == 3
    assert back.pixels.min() >= 250  # no ink is white


# ----------------------------------------------------------------------------------------------------------
# Float conversion and the Image helpers
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "depth"), [(np.uint8, 8), (np.uint16, 16)])
def test_to_float_from_float_round_trip_every_value(dtype: type, depth: int) -> None:
    values = np.arange(2**depth, dtype=dtype)
    floats = to_float(values)
    assert floats.dtype == np.float32
    assert floats.min() == 0.0 and floats.max() == 1.0
    np.testing.assert_array_equal(from_float(floats, depth), values)


def test_from_float_rounds_clips_and_rejects_bad_input() -> None:
    out = from_float(np.array([-0.5, 0.0, 0.6 / 255, 0.49 / 255, 1.0, 7.0, np.nan]), 8)
    np.testing.assert_array_equal(out, [0, 0, 1, 0, 255, 255, 0])
    assert out.dtype == np.uint8
    assert from_float(np.array([1.0]), 16).dtype == np.uint16
    with pytest.raises(ValueError):
        from_float(np.array([0.5]), 12)
    with pytest.raises(ValueError):
        from_float(np.array([1, 2], dtype=np.uint8), 8)
    with pytest.raises(ValueError):
        to_float(np.zeros(3, dtype=np.int32))
    already = np.full(3, 0.5, dtype=np.float32)
    assert to_float(already) is already  # float pixels pass through without a copy


def test_to_float_copy_and_convert_depth() -> None:
    floats = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    assert to_float(floats) is floats
    copied = to_float(floats, copy=True)
    assert not np.shares_memory(copied, floats)
    np.testing.assert_array_equal(copied, floats)

    every8 = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(convert_depth(every8, 16), every8.astype(np.uint16) * 257)
    np.testing.assert_array_equal(convert_depth(convert_depth(every8, 16), 8), every8)
    sixteen = np.array([0, 128, 129, 32767, 65407, 65535], np.uint16)
    np.testing.assert_array_equal(convert_depth(sixteen, 8), np.round(sixteen / 65535 * 255).astype(np.uint8))
    assert convert_depth(every8, 8) is every8


def test_with_color_keeps_alpha_metadata_and_depth(tmp_path: Path) -> None:
    pixels = noise(4, 16)
    icc = srgb_profile()
    image = Image(pixels, format="TIFF", exif=exif_block(), icc_profile=icc, source=tmp_path / "in.tif")
    color = image.color()
    assert color.shape == (H, W, 3) and color.dtype == np.float32
    assert image.alpha().shape == (H, W, 1)

    darker = image.with_color(color * 0.5)
    np.testing.assert_array_equal(darker.pixels[..., 3], pixels[..., 3])
    np.testing.assert_array_equal(darker.pixels[..., :3], np.rint(pixels[..., :3] / 2).astype(np.uint16))
    assert (darker.format, darker.exif, darker.icc_profile, darker.source) == (
        image.format,
        image.exif,
        image.icc_profile,
        image.source,
    )
    assert darker.bit_depth == 16
    np.testing.assert_array_equal(image.pixels, pixels)  # the original is untouched

    back = read_image(write_image(tmp_path / "out.tif", darker))
    np.testing.assert_array_equal(back.pixels, darker.pixels)

    with pytest.raises(ValueError, match="shape"):
        image.with_color(np.zeros((H, W, 4), np.float32))


def test_image_properties_and_validation() -> None:
    grey = Image(np.zeros((H, W), np.uint8))
    assert (grey.height, grey.width, grey.channels, grey.bit_depth, grey.has_alpha) == (H, W, 1, 8, False)
    assert grey.alpha() is None
    assert grey.with_color(np.ones((H, W), np.float32)).pixels.max() == 255
    assert Image(np.zeros((H, W, 3), np.float32)).bit_depth == 32  # float TIFF
    with pytest.raises(ValueError):
        Image(np.zeros((H, W, 3), np.float64))
    with pytest.raises(ValueError):
        Image(np.zeros((H, W, 2), np.uint8))
    with pytest.raises(UnknownNameError):
        Image(np.zeros((H, W, 3), np.uint8), format="GIF")


# ----------------------------------------------------------------------------------------------------------
# Metadata: orientation, EXIF, ICC
# ----------------------------------------------------------------------------------------------------------


def test_jpeg_exif_orientation_is_applied_and_reset(tmp_path: Path) -> None:
    pixels = smooth(3)  # 48 x 64, landscape
    pixels[:8, :8] = 255  # a white mark in the top-left corner
    PILImage.fromarray(pixels).save(tmp_path / "rot.jpg", exif=exif_block(orientation=6), quality=95)
    image = read_image(tmp_path / "rot.jpg")
    assert (image.height, image.width) == (64, 48)  # orientation 6: turned a quarter clockwise
    reference = np.array(ImageOps.exif_transpose(PILImage.open(tmp_path / "rot.jpg")))
    np.testing.assert_array_equal(image.pixels, reference)
    assert image.pixels[:6, -6:].min() > 230  # the mark is now top-right
    exif = parse_exif(image.exif)
    assert exif[274] == 1 and exif[271] == "TestCam"
    assert exif.get_ifd(0x8769)[0x9003] == "2024:01:02 03:04:05"

    again = read_image(write_image(tmp_path / "out.jpg", image))
    assert (again.height, again.width) == (64, 48)  # no second turn


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_for_8_and_16_bit_png(tmp_path: Path, orientation: int) -> None:
    pixels = noise(3, 8, seed=orientation)
    PILImage.fromarray(pixels).save(tmp_path / "o8.png", exif=exif_block(orientation))
    reference = np.array(ImageOps.exif_transpose(PILImage.open(tmp_path / "o8.png")))
    np.testing.assert_array_equal(read_image(tmp_path / "o8.png").pixels, reference)

    wide = Image(pixels.astype(np.uint16) * 257, exif=exif_block(orientation))
    image16 = read_image(write_image(tmp_path / "o16.png", wide))
    np.testing.assert_array_equal(image16.pixels, reference.astype(np.uint16) * 257)
    assert parse_exif(image16.exif).get(274, 1) == 1


def test_the_orientation_table_is_the_dihedral_group_and_the_ensemble_walks_all_of_it() -> None:
    from denoiser.io.orientation import ENSEMBLE_ORDER, UPRIGHT, inverse_of

    array = np.arange(5 * 7 * 2).reshape(5, 7, 2)
    turned = {k: UPRIGHT[k](array) for k in UPRIGHT}
    assert len({a.tobytes() + bytes(a.shape) for a in turned.values()}) == 8  # eight different ways
    for k, a in turned.items():
        np.testing.assert_array_equal(UPRIGHT[inverse_of(k)](a), array)
        for j in UPRIGHT:  # closed: a turn of a turn is one of the eight
            assert any(np.array_equal(UPRIGHT[j](a), b) for b in turned.values()), (k, j)
    assert sorted(ENSEMBLE_ORDER) == sorted(UPRIGHT)
    # 1, 2 and 4 passes keep the shape (flips and the half turn); the four that swap height and width come last.
    assert all(turned[k].shape == array.shape for k in ENSEMBLE_ORDER[:4])
    assert all(turned[k].shape == (7, 5, 2) for k in ENSEMBLE_ORDER[4:])


@pytest.mark.parametrize("depth", [8, 16])
def test_tiff_orientation_applied_once(tmp_path: Path, depth: int) -> None:
    pixels = noise(3, depth, seed=2)
    tifffile.imwrite(tmp_path / "rot.tif", pixels, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    image = read_image(tmp_path / "rot.tif")
    np.testing.assert_array_equal(image.pixels, np.rot90(pixels, -1))
    assert parse_exif(image.exif)[274] == 1


@pytest.mark.parametrize(
    ("ext", "depth"),
    [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 8), (".tif", 16), (".webp", 8)],
)
def test_icc_profile_and_exif_survive_a_write(tmp_path: Path, ext: str, depth: int) -> None:
    icc = srgb_profile()
    image = Image(noise(3, depth), exif=exif_block(), icc_profile=icc)
    back = read_image(write_image(tmp_path / f"meta{ext}", image))
    assert back.icc_profile == icc
    exif = parse_exif(back.exif)
    assert exif[271] == "TestCam"
    assert exif.get_ifd(0x8769)[0x9003] == "2024:01:02 03:04:05"

    bare = read_image(write_image(tmp_path / f"bare{ext}", image, keep_metadata=False))
    assert bare.icc_profile is None and bare.exif is None


def test_tiff_exif_keeps_photo_tags_only(tmp_path: Path) -> None:
    PILImage.fromarray(noise(3, 8)).save(tmp_path / "cam.tif", exif=exif_block())
    image = read_image(tmp_path / "cam.tif")
    exif = parse_exif(image.exif)
    assert exif[271] == "TestCam"
    assert 273 not in exif and 256 not in exif  # strip offsets and width belong to the file, not the photo
    assert parse_exif(read_image(write_image(tmp_path / "cam.jpg", image)).exif)[271] == "TestCam"


def test_bmp_drops_metadata_silently(tmp_path: Path) -> None:
    image = Image(noise(3, 8), exif=exif_block(), icc_profile=srgb_profile())
    back = read_image(write_image(tmp_path / "out.bmp", image))
    assert back.icc_profile is None and back.exif is None


# ----------------------------------------------------------------------------------------------------------
# Read errors
# ----------------------------------------------------------------------------------------------------------


def _read_error(path: Path, **kwargs: object) -> str:
    with pytest.raises(ImageReadError) as caught:
        read_image(path, **kwargs)
    message = str(caught.value)
    assert path.name in message
    assert caught.value.path == path
    return message


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("this is not a picture")
    assert "not an image" in _read_error(tmp_path / "notes.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert "not an image" in _read_error(tmp_path / "empty.jpg")


def test_unsupported_format_is_refused(tmp_path: Path) -> None:
    PILImage.fromarray(noise(3, 8)).save(tmp_path / "anim.gif")
    assert "supported format" in _read_error(tmp_path / "anim.gif")


@pytest.mark.parametrize(("ext", "depth"), [(".png", 8), (".jpg", 8), (".png", 16)])
def test_truncated_file(tmp_path: Path, ext: str, depth: int) -> None:
    whole = write_image(tmp_path / f"whole{ext}", Image(noise(3, depth, shape=(48, 64))), quality=95)
    data = whole.read_bytes()
    cut = tmp_path / f"cut{ext}"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated" in _read_error(cut)


def test_too_many_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_image(tmp_path / "big.png", Image(noise(3, 8, shape=(16, 16))))
    message = _read_error(path, max_pixels=100)
    assert "too many pixels" in message and "16 x 16" in message and "100" in message
    assert read_image(path, max_pixels=256).width == 16

    # Pillow's own guard: a warning between its limit and twice that, an error above; both refuse.
    for pillow_limit in (200, 20):
        monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", pillow_limit)
        assert "too many pixels" in _read_error(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "no such file" in _read_error(tmp_path / "nowhere.png")
    (tmp_path / "folder.png").mkdir()
    assert "folder" in _read_error(tmp_path / "folder.png")


def test_unsupported_pixel_formats(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "complex.tif", np.zeros((H, W), np.complex64))
    assert "unsupported" in _read_error(tmp_path / "complex.tif")
    tifffile.imwrite(tmp_path / "int32.tif", np.zeros((H, W), np.int32))
    assert "unsupported" in _read_error(tmp_path / "int32.tif")
    tifffile.imwrite(tmp_path / "signed16.tif", np.zeros((H, W), np.int16))
    assert "unsupported" in _read_error(tmp_path / "signed16.tif")


def test_permission_denied_is_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import denoiser.io.reading

    path = write_image(tmp_path / "locked.png", Image(noise(3, 8)))

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # The module that opens image files; works even when tests run as root.
    monkeypatch.setattr(denoiser.io.reading, "open", refuse, raising=False)
    assert "permission denied" in _read_error(path)


@contextlib.contextmanager
def _effective_user(uid: int, gid: int) -> Iterator[None]:
    """Run the block with the effective user and group ``uid``/``gid`` (root's are set back after): file access is
    checked against them, so root can meet a permission error without a second process."""
    os.setegid(gid)
    try:
        os.seteuid(uid)
        try:
            yield
        finally:
            os.seteuid(0)
    finally:
        os.setegid(0)


@pytest.mark.skipif(os.name != "posix", reason="needs POSIX file permissions")
def test_unreadable_file(tmp_path: Path) -> None:
    """A file the user may not read is a typed error naming it. Root may read anything, so as root (CI) the read is
    made as ``nobody``, in a folder anyone may enter (pytest's own are root's alone)."""
    as_user: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext
    folder = tmp_path
    if os.geteuid() == 0:
        import pwd  # POSIX only, as this test

        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            pytest.skip("running as root, and there is no 'nobody' user to read as")
        folder = Path(tempfile.mkdtemp(prefix="denoiser-unreadable-"))
        folder.chmod(0o755)
        as_user = functools.partial(_effective_user, nobody.pw_uid, nobody.pw_gid)
    readable = write_image(folder / "open.png", Image(noise(3, 8)))
    path = write_image(folder / "secret.png", Image(noise(3, 8)))
    path.chmod(0)
    try:
        read_image(readable)  # anything read_image imports on first use is imported now, with every right
        with as_user():
            assert read_image(readable).pixels.shape == (H, W, 3)  # that user reads an ordinary file in the folder
            message = _read_error(path)
        assert "permission" in message.lower()
    finally:
        path.chmod(0o644)
        if folder != tmp_path:
            shutil.rmtree(folder)


# ----------------------------------------------------------------------------------------------------------
# Safe writes
# ----------------------------------------------------------------------------------------------------------


def test_unknown_extension_lists_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ImageWriteError) as caught:
        write_image(tmp_path / "out.gif", Image(noise(3, 8)))
    assert "out.gif" in str(caught.value) and ".png" in str(caught.value) and ".webp" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_never_overwrites_the_source_or_a_protected_path(tmp_path: Path) -> None:
    source = write_image(tmp_path / "photo.png", Image(noise(3, 8)))
    original = source.read_bytes()
    image = read_image(source)
    darker = image.with_color(image.color() * 0.5)

    for target in (source, tmp_path / "sub" / ".." / "photo.png"):
        with pytest.raises(ImageWriteError, match="would overwrite the input"):
            write_image(target, darker, overwrite=True)

    other = write_image(tmp_path / "other.png", Image(noise(3, 8, seed=9)))
    other_bytes = other.read_bytes()
    loose = Image(darker.pixels)  # no source: only `protected` stands in the way
    with pytest.raises(ImageWriteError, match="would overwrite the input"):
        write_image(str(other), loose, protected=[tmp_path / "other.png"], overwrite=True)

    if hasattr(os, "link"):
        os.link(source, tmp_path / "hardlink.png")
        with pytest.raises(ImageWriteError, match="would overwrite the input"):
            write_image(tmp_path / "hardlink.png", darker, overwrite=True)

    assert source.read_bytes() == original
    assert other.read_bytes() == other_bytes


def test_existing_target_needs_overwrite(tmp_path: Path) -> None:
    target = write_image(tmp_path / "out.png", Image(noise(3, 8)))
    before = target.read_bytes()
    with pytest.raises(ImageWriteError, match="already exists") as caught:
        write_image(target, Image(noise(3, 8, seed=1)))
    assert "out.png" in str(caught.value)
    assert target.read_bytes() == before

    replacement = noise(3, 8, seed=1)
    write_image(target, Image(replacement), overwrite=True)
    np.testing.assert_array_equal(read_image(target).pixels, replacement)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_creates_missing_folders_with_normal_permissions(tmp_path: Path) -> None:
    target = write_image(tmp_path / "a" / "b" / "out.png", Image(noise(1, 8)))
    assert target.is_file()
    if os.name == "posix":
        umask = os.umask(0)
        os.umask(umask)
        assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_encode_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: PILImage.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"\x89PNG half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", broken_save)
    out = tmp_path / "out"
    with pytest.raises(ImageWriteError, match="No space left on device") as caught:
        write_image(out / "photo.png", Image(noise(3, 8)))
    assert "photo.png" in str(caught.value)
    assert list(out.iterdir()) == []


def test_failed_overwrite_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = write_image(tmp_path / "photo.tif", Image(noise(3, 16)))
    before = target.read_bytes()

    def broken_imwrite(file: object, *args: object, **kwargs: object) -> None:
        Path(str(file)).write_bytes(b"II*\x00 partial")
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    with pytest.raises(ImageWriteError, match="Input/output error"):
        write_image(target, Image(noise(3, 16, seed=1)), overwrite=True)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.tif"]


def test_atomic_write(tmp_path: Path) -> None:
    target = tmp_path / "photo.jpeg"
    with atomic_write(target) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".photo.tmp-") and temporary.suffix == ".jpeg"
        assert not target.exists()
        temporary.write_bytes(b"new")
    assert target.read_bytes() == b"new"

    with pytest.raises(RuntimeError, match="boom"), atomic_write(target) as temporary:
        temporary.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["photo.jpeg"]


def test_atomic_write_bytes_syncs_the_folder_and_keeps_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import denoiser.io.atomic

    synced: list[Path] = []
    monkeypatch.setattr(denoiser.io.atomic, "sync_folder", synced.append)
    target = tmp_path / "model.safetensors"
    atomic_write_bytes(target, b"one")
    os.chmod(target, 0o600)
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert synced == [tmp_path, tmp_path]
    if os.name == "posix":
        assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]
    sync_folder(tmp_path / "missing")  # nothing to sync is not an error


def test_atomic_write_suffix_names_the_temporary(tmp_path: Path) -> None:
    with atomic_write(tmp_path / "model.safetensors", suffix=".tmp") as temporary:
        assert temporary.name.startswith(".model.tmp-") and temporary.suffix == ".tmp"
        temporary.write_bytes(b"x")
    assert (tmp_path / "model.safetensors").read_bytes() == b"x"


def test_atomic_write_without_replace_never_clobbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model.safetensors"
    with atomic_write(target, suffix=".tmp", replace=False) as temporary:
        temporary.write_bytes(b"first")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # the hard-linked temporary is gone

    with pytest.raises(FileExistsError), atomic_write(target, suffix=".tmp", replace=False) as temporary:
        temporary.write_bytes(b"second")
    other = tmp_path / "other.safetensors"
    with pytest.raises(FileExistsError), atomic_write(other, suffix=".tmp", replace=False) as temporary:
        temporary.write_bytes(b"mine")
        other.write_bytes(b"theirs")  # appears while ours is being written
    assert target.read_bytes() == b"first" and other.read_bytes() == b"theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "other.safetensors"]

    def no_hard_links(src: object, dst: object) -> None:
        raise OSError("hard links not supported")

    monkeypatch.setattr(os, "link", no_hard_links)  # e.g. FAT: check, then rename
    with pytest.raises(FileExistsError), atomic_write(target, suffix=".tmp", replace=False) as temporary:
        temporary.write_bytes(b"third")
    with atomic_write(tmp_path / "new.safetensors", suffix=".tmp", replace=False) as temporary:
        temporary.write_bytes(b"new")
    assert target.read_bytes() == b"first" and (tmp_path / "new.safetensors").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors", "new.safetensors", "other.safetensors"]


# ----------------------------------------------------------------------------------------------------------
# Finding images
# ----------------------------------------------------------------------------------------------------------


def test_is_image_path() -> None:
    assert is_image_path("a.PNG") and is_image_path(Path("b/c.JpEg")) and is_image_path("x.tiff")
    assert not is_image_path("notes.txt") and not is_image_path("png") and not is_image_path("a.gif")


def test_find_images(tmp_path: Path) -> None:
    for name in ["b.JPG", "a.png", "notes.txt", "sub/c.tif", "sub/deeper/d.webp", ".hidden/e.png", ".f.png"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (tmp_path / "folder.png").mkdir()  # a folder with an image-like name is not an image

    expected = [
        tmp_path / "a.png",
        tmp_path / "b.JPG",
        tmp_path / "sub/c.tif",
        tmp_path / "sub/deeper/d.webp",
    ]
    assert find_images([tmp_path]) == sorted(expected)
    assert find_images([str(tmp_path)], recursive=False) == [tmp_path / "a.png", tmp_path / "b.JPG"]
    assert find_images(tmp_path / "sub") == [tmp_path / "sub/c.tif", tmp_path / "sub/deeper/d.webp"]

    mixed = find_images(
        [tmp_path / "sub", tmp_path / "a.png", tmp_path / "notes.txt", tmp_path / "sub/c.tif"]
    )
    assert mixed == [tmp_path / "a.png", tmp_path / "sub/c.tif", tmp_path / "sub/deeper/d.webp"]

    with pytest.raises(ImageReadError, match="missing.png"):
        find_images([tmp_path / "a.png", tmp_path / "missing.png"])
