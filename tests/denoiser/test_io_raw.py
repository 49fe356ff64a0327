"""Camera RAW files (small DNGs written by tests/denoiser/dng.py): developed as the camera shot them (its white
balance, its brightness, sRGB, 16 bits), upright, with the camera's EXIF; refused with a message naming the file
when damaged, not a RAW file or too large; their embedded preview as a quick, upright thumbnail."""

from __future__ import annotations

import io
import os
import struct
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from dng import BLACK, WHITE, Camera, mosaic_of, scene_of_patches, write_dng
from PIL import Image as PILImage
from PIL.TiffImagePlugin import IFDRational

from denoiser.errors import ImageReadError
from denoiser.io import identify_format, read_image, read_thumbnail, write_image
from denoiser.io.backends import raw_exif as exif_gathering
from denoiser.io.backends.raw_exif import raw_exif
from denoiser.io.backends.raw_preview import thumbnail
from denoiser.io.metadata import EXIF_IFD_TAG, GPS_IFD_TAG, apply_orientation, exif_facts

pytest.importorskip("rawpy")

HEIGHT, WIDTH = 64, 96
MAKE, MODEL, ORIENTATION, DATETIME = 0x010F, 0x0110, 0x0112, 0x0132
ISO, EXPOSURE_TIME, F_NUMBER, FOCAL_LENGTH = 0x8827, 0x829A, 0x829D, 0x920A
LENS_MODEL, DATE_TAKEN, COLOR_SPACE = 0xA434, 0x9003, 0xA001

RED, GREEN, BLUE = (0.5, 0.08, 0.08), (0.08, 0.5, 0.08), (0.08, 0.08, 0.5)
GREY = (0.18, 0.18, 0.18)
# Patch boxes (top, bottom, left, right) on the 64 x 96 sensor; the red one marks its top-left corner.
TOP_LEFT, TOP_MIDDLE, TOP_RIGHT = (4, 20, 4, 20), (4, 20, 40, 56), (4, 20, 76, 92)
BOTTOM_MIDDLE = (44, 60, 40, 56)
PATCHES = [(TOP_LEFT, RED), (TOP_MIDDLE, GREEN), (TOP_RIGHT, BLUE)]


def srgb16(linear: tuple[float, float, float] | float) -> np.ndarray:
    """Linear values through the sRGB tone curve, as 16-bit numbers."""
    x = np.asarray(linear, dtype=float)
    curve = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(np.maximum(x, 0), 1 / 2.4) - 0.055)
    return np.round(np.clip(curve, 0, 1) * 65535)


def centre(pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The mean colour of the middle of ``box`` (away from demosaicing at its edges)."""
    top, bottom, left, right = box
    return pixels[top + 4 : bottom - 4, left + 4 : right - 4].reshape(-1, pixels.shape[2]).mean(axis=0)


def reddest_corner(pixels: np.ndarray) -> str:
    """Which corner of ``pixels`` holds the red marker."""
    height, width = pixels.shape[:2]
    redness = pixels[..., 0].astype(float) - pixels[..., 1].astype(float)
    corners = {
        "top-left": redness[: height // 3, : width // 3],
        "top-right": redness[: height // 3, -(width // 3) :],
        "bottom-left": redness[-(height // 3) :, : width // 3],
        "bottom-right": redness[-(height // 3) :, -(width // 3) :],
    }
    return max(corners, key=lambda name: corners[name].mean())


def patches_dng(path: Path, camera: Camera | None = None, **preview: object) -> Path:
    """The red, green and blue patches on grey, as shot by ``camera`` (default: the helper's test camera)."""
    camera = camera or Camera()
    scene = scene_of_patches(HEIGHT, WIDTH, PATCHES, GREY)
    return write_dng(path, mosaic_of(scene, camera.as_shot_neutral), camera, **preview)  # type: ignore[arg-type]


def preview_pixels(size: tuple[int, int], marker: str = "top-left") -> np.ndarray:
    """A blue picture of ``size`` (width, height) with a red marker in one corner."""
    width, height = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:] = (40, 40, 200)
    rows = slice(0, height // 4) if marker.startswith("top") else slice(height - height // 4, height)
    columns = slice(0, width // 4) if marker.endswith("left") else slice(width - width // 4, width)
    pixels[rows, columns] = (230, 20, 20)
    return pixels


def jpeg(size: tuple[int, int], marker: str = "top-left", exif: bytes | None = None) -> bytes:
    """:func:`preview_pixels` as a JPEG; with ``exif``, that comes first, as in cameras' previews (LibRaw puts an
    EXIF block of its own in front of a preview that does not start with one)."""
    buffer = io.BytesIO()
    extra = {"exif": exif} if exif else {}
    PILImage.fromarray(preview_pixels(size, marker)).save(buffer, "JPEG", quality=90, **extra)
    data = buffer.getvalue()
    if exif and data[2:4] == b"\xff\xe0":  # drop the JFIF segment Pillow writes first
        data = data[:2] + data[4 + struct.unpack(">H", data[4:6])[0] :]
    return data


def exif_with_orientation(orientation: int) -> bytes:
    exif = PILImage.Exif()
    exif[ORIENTATION] = orientation
    return exif.tobytes()


def loaded(block: bytes | None) -> tuple[dict, dict]:
    """IFD0 and the Exif sub-IFD of an EXIF block."""
    assert block is not None
    exif = PILImage.Exif()
    exif.load(block)
    return dict(exif), dict(exif.get_ifd(EXIF_IFD_TAG))


# --- Developing ----------------------------------------------------------------------------------------------------


def test_a_dng_is_developed_into_16_bit_srgb_with_the_colours_of_the_scene(tmp_path: Path) -> None:
    image = read_image(patches_dng(tmp_path / "shot.dng"))
    assert image.format == "RAW"
    assert image.pixels.dtype == np.uint16
    assert image.pixels.shape == (HEIGHT, WIDTH, 3)
    assert image.bit_depth == 16
    assert image.source == (tmp_path / "shot.dng").resolve()
    for box, colour in [*PATCHES, (BOTTOM_MIDDLE, GREY)]:
        # LibRaw's matrix and tone curve are exact on flat patches: within 0.5% of the sRGB values.
        np.testing.assert_allclose(centre(image.pixels, box), srgb16(colour), atol=330)
    red, green, blue = (centre(image.pixels, box) for box in (TOP_LEFT, TOP_MIDDLE, TOP_RIGHT))
    assert red.argmax() == 0 and green.argmax() == 1 and blue.argmax() == 2


@pytest.mark.parametrize("neutral", [(0.5, 1.0, 0.8), (0.9, 1.0, 0.35)])
def test_grey_stays_grey_under_the_cameras_white_balance(tmp_path: Path, neutral: tuple[float, float, float]) -> None:
    camera = Camera(as_shot_neutral=neutral)
    scene = scene_of_patches(HEIGHT, WIDTH, [], GREY)
    mosaic = mosaic_of(scene, neutral)
    assert np.ptp(mosaic[:2, :2].astype(int)) > 1000  # the sensor itself does not record grey as grey
    pixels = read_image(write_dng(tmp_path / "grey.dng", mosaic, camera)).pixels
    middle = centre(pixels, (8, 56, 8, 88))
    assert np.ptp(middle) < 100, middle
    np.testing.assert_allclose(middle, srgb16(GREY), atol=330)


def test_the_cameras_brightness_is_kept_not_auto_brightened(tmp_path: Path) -> None:
    """A dark scene stays dark: no stretching so that the brightest pixels clip."""
    dark = (0.03, 0.03, 0.03)
    scene = scene_of_patches(HEIGHT, WIDTH, [], dark)
    pixels = read_image(write_dng(tmp_path / "dark.dng", mosaic_of(scene, Camera().as_shot_neutral))).pixels
    np.testing.assert_allclose(centre(pixels, (8, 56, 8, 88)), srgb16(dark), atol=330)
    assert pixels.max() < 0.3 * 65535


def test_highlights_where_the_sensor_saturated_come_out_white_not_pink(tmp_path: Path) -> None:
    """A sensor saturating below its stated white level clips all three channels at a level that white balance
    would turn magenta; the highlight is white all the same."""
    highlight = (40, 60, 8, 40)
    scene = scene_of_patches(HEIGHT, WIDTH, [(highlight, (4.0, 4.0, 4.0))], GREY)
    mosaic = np.minimum(mosaic_of(scene, Camera().as_shot_neutral), BLACK + 0.9 * (WHITE - BLACK)).astype(np.uint16)
    pixels = read_image(write_dng(tmp_path / "sun.dng", mosaic)).pixels
    red, green, blue = centre(pixels, highlight)
    assert min(red, green, blue) > 0.97 * 65535
    assert max(red, green, blue) - min(red, green, blue) < 0.01 * 65535


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_orientation_comes_out_upright_once(tmp_path: Path, orientation: int) -> None:
    scene = scene_of_patches(HEIGHT, WIDTH, PATCHES, GREY)
    mosaic = mosaic_of(scene, Camera().as_shot_neutral)
    stored = read_image(write_dng(tmp_path / "stored.dng", mosaic)).pixels
    image = read_image(write_dng(tmp_path / "turned.dng", mosaic, Camera(orientation=orientation)))
    np.testing.assert_array_equal(image.pixels, apply_orientation(stored, orientation))
    assert loaded(image.exif)[0][ORIENTATION] == 1


@pytest.mark.parametrize(("orientation", "corner"), [(1, "top-left"), (3, "bottom-right"), (6, "top-right"),
                                                     (8, "bottom-left")])
def test_the_sensors_top_left_lands_where_the_camera_was_held(tmp_path: Path, orientation: int, corner: str) -> None:
    pixels = read_image(patches_dng(tmp_path / "held.dng", Camera(orientation=orientation))).pixels
    assert pixels.shape[:2] == ((WIDTH, HEIGHT) if orientation in (6, 8) else (HEIGHT, WIDTH))
    assert reddest_corner(pixels) == corner


def test_a_raw_whose_name_is_not_utf8_is_read(tmp_path: Path) -> None:
    """rawpy passes paths to LibRaw as UTF-8; a name in another encoding (Linux allows any bytes) still works."""
    name = os.fsdecode(b"caf\xe9.dng")
    try:
        path = patches_dng(tmp_path / name, preview=jpeg((96, 64)))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system does not take such names")
    assert read_image(path).pixels.shape == (HEIGHT, WIDTH, 3)
    small = thumbnail(path, 160)
    assert small is not None and small.shape == (64, 96, 3)


# --- EXIF ----------------------------------------------------------------------------------------------------------


def test_the_cameras_exif_travels_with_the_developed_picture(tmp_path: Path) -> None:
    image = read_image(patches_dng(tmp_path / "exif.dng", Camera(orientation=6)))
    assert image.exif is not None and image.exif.startswith(b"Exif\x00\x00")  # the form a JPEG's EXIF has here
    main, sub = loaded(image.exif)
    assert main[MAKE] == "Testmaker"
    assert main[MODEL] == "Testmaker TM-1"
    assert main[ORIENTATION] == 1
    assert main[DATETIME] == "2024:05:01 12:34:56"
    assert sub[ISO] == 1600
    assert sub[EXPOSURE_TIME] == Fraction(1, 250)
    assert sub[F_NUMBER] == Fraction(28, 10)
    assert sub[FOCAL_LENGTH] == 50
    assert sub[LENS_MODEL] == "Test 50mm F2.8"
    assert sub[DATE_TAKEN] == "2024:05:01 12:34:56"
    assert sub[COLOR_SPACE] == 1  # the developed pixels are sRGB
    assert exif_facts(image.exif) == [
        ("Camera", "Testmaker TM-1"), ("Lens", "Test 50mm F2.8"), ("ISO", "1600"), ("Exposure", "1/250 s"),
        ("Aperture", "f/2.8"), ("Focal length", "50 mm"), ("Date", "2024-05-01 12:34:56"),
    ]


def test_missing_metadata_does_not_stop_a_read(tmp_path: Path) -> None:
    camera = Camera(make=None, model=None, iso=None, exposure_time=None, f_number=None, focal_length=None,
                    lens_model=None, date_taken=None)
    image = read_image(patches_dng(tmp_path / "bare.dng", camera))
    assert image.pixels.shape == (HEIGHT, WIDTH, 3)
    assert image.exif is None  # nothing known: no EXIF block rather than an empty one


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow, on the broken block
def test_a_broken_exif_directory_costs_its_values_not_the_rest(tmp_path: Path) -> None:
    """(LibRaw itself refuses a DNG whose Exif pointer leads nowhere, so this is the EXIF gathering alone.)"""
    data = bytearray(patches_dng(tmp_path / "broken.dng").read_bytes())
    _point_ifd0_entry(data, EXIF_IFD_TAG, len(data) + 1000)  # the Exif directory "lies" past the end of the file
    main, sub = loaded(raw_exif(bytes(data), {EXIF_IFD_TAG: {ISO: 400}}))
    assert (main[MODEL], sub[ISO]) == ("Testmaker TM-1", 400)


def test_metadata_that_cannot_be_gathered_does_not_stop_a_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    def broken(data: bytes) -> None:
        raise struct.error("unpack requires a buffer of 4 bytes")

    monkeypatch.setattr(exif_gathering, "_tiff_tags", broken)
    image = read_image(patches_dng(tmp_path / "shot.dng"))
    assert image.pixels.shape == (HEIGHT, WIDTH, 3)
    main, sub = loaded(image.exif)  # what LibRaw decoded is still there; the camera's name was only in the tags
    assert MAKE not in main
    assert (sub[ISO], sub[EXPOSURE_TIME], sub[LENS_MODEL]) == (1600, Fraction(1, 250), "Test 50mm F2.8")


def _point_ifd0_entry(data: bytearray, tag: int, value: int) -> None:
    (ifd0,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd0)
    for index in range(count):
        at = ifd0 + 2 + 12 * index
        if struct.unpack_from("<H", data, at)[0] == tag:
            struct.pack_into("<I", data, at + 8, value)
            return
    raise KeyError(tag)


def test_tiff_based_raws_with_their_own_magic_number_give_their_exif(tmp_path: Path) -> None:
    """Olympus (IIRO) and Panasonic (IIU) files are TIFF inside with another number in the header."""
    data = patches_dng(tmp_path / "shot.dng").read_bytes()
    for magic in (b"IIRO", b"IIU\x00"):
        main, sub = loaded(raw_exif(magic + data[4:]))
        assert (main[MAKE], sub[ISO]) == ("Testmaker", 1600)


def _box(name: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + name + body


def _tiff_of(values: dict[int, object]) -> bytes:
    exif = PILImage.Exif()
    exif.update(values)
    return exif.tobytes()[len(b"Exif\x00\x00") :]


def test_a_cr3s_exif_comes_from_its_cmt_boxes() -> None:
    cmt1 = _tiff_of({MAKE: "Canon", MODEL: "Canon EOS R5", DATETIME: "2024:05:01 12:00:00"})
    cmt2 = _tiff_of({ISO: 6400, EXPOSURE_TIME: IFDRational(1, 60), LENS_MODEL: "RF24-105mm F4 L IS USM"})
    cmt4 = _tiff_of({1: "N", 2: (IFDRational(52), IFDRational(22), IFDRational(1234, 100))})
    uuid = _box(b"uuid", bytes(16) + _box(b"CMT1", cmt1) + _box(b"CMT2", cmt2) + _box(b"CMT4", cmt4))
    cr3 = _box(b"ftyp", b"crx " + bytes(4)) + _box(b"moov", uuid) + bytes(100)
    block = raw_exif(cr3)
    main, sub = loaded(block)
    assert (main[MAKE], main[MODEL], main[ORIENTATION]) == ("Canon", "Canon EOS R5", 1)
    assert (sub[ISO], sub[EXPOSURE_TIME], sub[LENS_MODEL]) == (6400, Fraction(1, 60), "RF24-105mm F4 L IS USM")
    exif = PILImage.Exif()
    exif.load(block)
    assert exif.get_ifd(GPS_IFD_TAG)[1] == "N"


def test_formats_without_tiff_directories_take_the_exif_of_their_embedded_jpeg() -> None:
    """As Fujifilm's RAF: the embedded preview JPEG carries the camera's EXIF."""
    preview_exif = PILImage.Exif()
    preview_exif[MAKE], preview_exif[MODEL], preview_exif[ORIENTATION] = "FUJIFILM", "X-T5", 6
    preview_exif[EXIF_IFD_TAG] = {ISO: 800, DATE_TAKEN: "2024:06:01 08:00:00"}
    preview = jpeg((32, 24), exif=preview_exif.tobytes())
    main, sub = loaded(raw_exif(b"FUJIFILMCCD-RAW 0201" + bytes(100), preview=lambda: preview))
    assert (main[MAKE], main[MODEL], main[ORIENTATION], sub[ISO]) == ("FUJIFILM", "X-T5", 1, 800)


def test_tags_the_raw_lacks_are_taken_from_its_embedded_preview(tmp_path: Path) -> None:
    preview_exif = PILImage.Exif()
    preview_exif[MAKE], preview_exif[MODEL] = "Previewmaker", "PM-2"
    camera = Camera(make=None, model=None)
    image = read_image(patches_dng(tmp_path / "shot.dng", camera, preview=jpeg((96, 64), exif=preview_exif.tobytes())))
    main, sub = loaded(image.exif)
    assert (main[MAKE], main[MODEL], sub[ISO]) == ("Previewmaker", "PM-2", 1600)


def test_the_preview_is_not_looked_at_when_the_file_has_the_camera_tags(tmp_path: Path) -> None:
    data = patches_dng(tmp_path / "shot.dng").read_bytes()
    asked = []
    raw_exif(data, preview=lambda: asked.append(True) or None)  # type: ignore[func-returns-value]
    assert asked == []


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow, on the broken block
def test_what_libraw_decoded_fills_what_the_file_lacks() -> None:
    block = raw_exif(b"\x00" * 64, {EXIF_IFD_TAG: {ISO: 12800, LENS_MODEL: "Some lens"}})
    _, sub = loaded(block)
    assert (sub[ISO], sub[LENS_MODEL]) == (12800, "Some lens")
    assert raw_exif(b"\x00" * 64) is None
    assert raw_exif(b"II*\x00\xff\xff\xff\xff", preview=lambda: b"not a jpeg") is None  # broken: nothing, no error


# --- Refusals ------------------------------------------------------------------------------------------------------


def test_too_many_pixels_are_refused_before_developing(tmp_path: Path) -> None:
    path = patches_dng(tmp_path / "big.dng")
    assert read_image(path, max_pixels=HEIGHT * WIDTH).pixels.shape == (HEIGHT, WIDTH, 3)
    with pytest.raises(ImageReadError, match=r"too many pixels: 96 x 64 = 6144 \(limit 6143\)") as caught:
        read_image(path, max_pixels=HEIGHT * WIDTH - 1)
    assert caught.value.path == path


@pytest.mark.parametrize("cut", ["half", "directory"])
def test_a_truncated_raw_is_refused_as_damaged(tmp_path: Path, cut: str) -> None:
    data = patches_dng(tmp_path / "whole.dng").read_bytes()
    path = tmp_path / "cut.dng"
    path.write_bytes(data[: len(data) // 2] if cut == "half" else data[:100])
    with pytest.raises(ImageReadError) as caught:
        read_image(path)
    assert caught.value.path == path
    assert caught.value.problem == "damaged or truncated RAW file"
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(("name", "content"), [
    ("notes.nef", b"This is a text file, not a photo.\n" * 20),
    ("noise.dng", np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
])
def test_a_file_that_is_not_raw_is_refused_by_name(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert identify_format(path) == "RAW"  # claimed by its extension...
    with pytest.raises(ImageReadError) as caught:  # ...and then refused for what it holds
        read_image(path)
    assert caught.value.path == path
    assert caught.value.problem == "RAW from an unsupported camera, or not a RAW file"


def test_an_empty_raw_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.CR2"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="the file is empty"):
        read_image(path)


# --- Writing the result --------------------------------------------------------------------------------------------


def test_a_developed_raw_is_written_as_a_16_bit_tiff_and_read_back_unchanged(tmp_path: Path) -> None:
    image = read_image(patches_dng(tmp_path / "shot.dng", Camera(orientation=8)))
    written = write_image(tmp_path / "shot.tif", image)
    back = read_image(written)
    assert back.format == "TIFF"
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, image.pixels)
    main, _ = loaded(back.exif)
    assert (main[MAKE], main[MODEL]) == ("Testmaker", "Testmaker TM-1")
    assert main.get(ORIENTATION, 1) == 1


# --- Thumbnails ----------------------------------------------------------------------------------------------------


def test_the_embedded_preview_is_the_thumbnail(tmp_path: Path) -> None:
    path = patches_dng(tmp_path / "shot.dng", preview=jpeg((96, 64)))
    small = thumbnail(path, 160)
    assert small is not None
    assert small.dtype == np.uint8 and small.shape == (64, 96, 3)
    assert centre(small, BOTTOM_MIDDLE)[2] > 150  # the preview's blue, not the developed grey
    assert reddest_corner(small) == "top-left"
    np.testing.assert_array_equal(read_thumbnail(path, 160), small)  # what the thumbnail module shows


def test_a_large_preview_is_shrunk_to_the_size_asked_for(tmp_path: Path) -> None:
    path = patches_dng(tmp_path / "shot.dng", preview=jpeg((480, 320)))
    small = thumbnail(path, 60)
    assert small is not None and small.shape == (40, 60, 3)
    assert reddest_corner(small) == "top-left"


@pytest.mark.parametrize("kind", ["jpeg", "bitmap"])
@pytest.mark.parametrize(("orientation", "corner"), [(3, "bottom-right"), (6, "top-right"), (8, "bottom-left")])
def test_a_preview_stored_as_the_sensor_reads_is_turned_like_the_picture(
    tmp_path: Path, orientation: int, corner: str, kind: str
) -> None:
    preview = jpeg((96, 64)) if kind == "jpeg" else preview_pixels((96, 64))
    path = patches_dng(tmp_path / "shot.dng", Camera(orientation=orientation), preview=preview)
    small = thumbnail(path, 160)
    developed = read_image(path).pixels
    assert small is not None and small.shape[:2] == developed.shape[:2]
    assert reddest_corner(small) == reddest_corner(developed) == corner


def test_a_preview_the_camera_stored_upright_is_not_turned_again(tmp_path: Path) -> None:
    upright = jpeg((64, 96), marker="top-right")  # tall, as the picture is once turned (orientation 6)
    path = patches_dng(tmp_path / "shot.dng", Camera(orientation=6), preview=upright)
    small = thumbnail(path, 160)
    assert small is not None and small.shape == (96, 64, 3)
    assert reddest_corner(small) == "top-right"


def test_a_preview_with_its_own_orientation_is_turned_by_it_once(tmp_path: Path) -> None:
    tagged = jpeg((96, 64), exif=exif_with_orientation(6))
    path = patches_dng(tmp_path / "shot.dng", Camera(orientation=6), preview=tagged)
    small = thumbnail(path, 160)
    assert small is not None and small.shape == (96, 64, 3)
    assert reddest_corner(small) == "top-right"


def test_without_a_usable_preview_the_whole_raw_is_developed_for_the_thumbnail(tmp_path: Path) -> None:
    bare = patches_dng(tmp_path / "bare.dng")
    tiny = patches_dng(tmp_path / "tiny.dng", preview=jpeg((12, 8)))
    for path in (bare, tiny):
        assert thumbnail(path, 160) is None
        small = read_thumbnail(path, 160)  # developed instead: the grey scene, not the preview's blue
        assert small.shape == (64, 96, 3)
        assert np.ptp(centre(small, BOTTOM_MIDDLE)) < 8
        assert reddest_corner(small) == "top-left"


def test_a_file_libraw_cannot_open_has_no_preview_and_its_thumbnail_says_why(tmp_path: Path) -> None:
    path = tmp_path / "notes.arw"
    path.write_text("not a photo\n")
    assert thumbnail(path, 160) is None
    with pytest.raises(ImageReadError, match="not a RAW file"):
        read_thumbnail(path, 160)
