"""16-bit TIFFs keep a photo's whole EXIF: the Exif sub-IFD (ISO, exposure, aperture, lens, date taken) and GPS,
as read back by the project's reader, Pillow and tifffile; malformed EXIF never costs the picture."""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL.TiffImagePlugin import IFDRational

from denoiser.io import Image, read_image, write_image
from denoiser.io.metadata import exif_facts

EXIF_IFD, GPS_IFD, INTEROP_IFD = 0x8769, 0x8825, 0xA005
MAKE, MODEL, ORIENTATION = 271, 272, 274
ISO, EXPOSURE_TIME, F_NUMBER, FOCAL_LENGTH = 0x8827, 0x829A, 0x829D, 0x920A
LENS_MODEL, DATE_TAKEN, MAKER_NOTE = 0xA434, 0x9003, 0x927C
GPS_LATITUDE_REF, GPS_LATITUDE = 1, 2

PHOTO_VALUES = {
    ISO: 3200,
    EXPOSURE_TIME: 1 / 250,
    F_NUMBER: 2.8,
    FOCAL_LENGTH: 50.0,
    LENS_MODEL: "RF24-105mm F4 L IS USM",
    DATE_TAKEN: "2024:05:01 12:34:56",
}
GPS_VALUES = {GPS_LATITUDE_REF: "N", GPS_LATITUDE: (52.0, 22.0, 12.34)}
CHANNELS = {"grey": 1, "rgb": 3, "rgba": 4}


def camera_exif(endian: str = ">", maker_note: bytes | None = None, orientation: int = 6) -> bytes:
    """A camera-like EXIF block: make, model, an orientation, the Exif sub-IFD and GPS (Pillow's own writer)."""
    exif = PILImage.Exif()
    exif.endian = endian
    exif[MAKE] = "Canon"
    exif[MODEL] = "Canon EOS R5"
    exif[ORIENTATION] = orientation
    sub = exif.get_ifd(EXIF_IFD)
    sub[ISO] = 3200
    sub[EXPOSURE_TIME] = IFDRational(1, 250)
    sub[F_NUMBER] = IFDRational(28, 10)
    sub[FOCAL_LENGTH] = IFDRational(50, 1)
    sub[LENS_MODEL] = PHOTO_VALUES[LENS_MODEL]
    sub[DATE_TAKEN] = PHOTO_VALUES[DATE_TAKEN]
    if maker_note is not None:
        sub[MAKER_NOTE] = maker_note
    gps = exif.get_ifd(GPS_IFD)
    gps[GPS_LATITUDE_REF] = "N"
    gps[GPS_LATITUDE] = (IFDRational(52, 1), IFDRational(22, 1), IFDRational(1234, 100))
    return exif.tobytes()


def photo(channels: int, seed: int = 0) -> np.ndarray:
    """Random 16-bit pixels with a non-square shape, so a stray rotation or a lost low byte shows."""
    return np.random.default_rng(seed).integers(0, 65536, (12, 20, channels), dtype=np.uint16)


def write_tiff16(tmp_path: Path, pixels: np.ndarray, exif: bytes) -> Path:
    return write_image(tmp_path / "out.tif", Image(pixels, format="TIFF", exif=exif))


def parse_exif(raw: bytes | None) -> PILImage.Exif:
    assert raw is not None
    exif = PILImage.Exif()
    exif.load(raw)
    return exif


def assert_photo_values(sub: dict[int, object]) -> None:
    for tag, expected in PHOTO_VALUES.items():
        value = sub[tag]
        if isinstance(expected, float):
            assert float(value) == pytest.approx(expected), hex(tag)  # type: ignore[arg-type]
        else:
            assert value == expected, hex(tag)


def assert_gps_values(gps: dict[int, object]) -> None:
    assert gps[GPS_LATITUDE_REF] == "N"
    assert tuple(float(part) for part in gps[GPS_LATITUDE]) == pytest.approx(GPS_VALUES[GPS_LATITUDE])  # type: ignore[union-attr]


@pytest.mark.parametrize("channels", CHANNELS.values(), ids=CHANNELS.keys())
def test_the_project_reader_gets_the_exif_and_gps_sub_ifds_back(tmp_path: Path, channels: int) -> None:
    pixels = photo(channels)
    image = read_image(write_tiff16(tmp_path, pixels, camera_exif()))
    assert image.bit_depth == 16
    np.testing.assert_array_equal(image.pixels, pixels)  # stored upright: the orientation was not carried
    exif = parse_exif(image.exif)
    assert exif[MAKE] == "Canon" and exif[MODEL] == "Canon EOS R5"
    assert exif.get(ORIENTATION, 1) == 1
    assert_photo_values(exif.get_ifd(EXIF_IFD))
    assert_gps_values(exif.get_ifd(GPS_IFD))
    facts = dict(exif_facts(image.exif))
    assert (facts["ISO"], facts["Exposure"], facts["Aperture"]) == ("3200", "1/250 s", "f/2.8")


@pytest.mark.parametrize("channels", CHANNELS.values(), ids=CHANNELS.keys())
def test_pillow_reads_the_exif_and_gps_sub_ifds(tmp_path: Path, channels: int) -> None:
    path = write_tiff16(tmp_path, photo(channels), camera_exif())
    with PILImage.open(path) as im:
        exif = im.getexif()
        assert im.tag_v2[258][0] == 16  # BitsPerSample
        assert exif.get(ORIENTATION, 1) == 1
        assert_photo_values(exif.get_ifd(EXIF_IFD))
        assert_gps_values(exif.get_ifd(GPS_IFD))


@pytest.mark.parametrize("channels", CHANNELS.values(), ids=CHANNELS.keys())
def test_tifffile_reads_the_sub_ifds_of_a_valid_tiff(
    tmp_path: Path, channels: int, caplog: pytest.LogCaptureFixture
) -> None:
    pixels = photo(channels)
    path = write_tiff16(tmp_path, pixels, camera_exif())
    with caplog.at_level(logging.WARNING, logger="tifffile"), tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        stored = page.asarray()
        tags = page.tags
        sub, gps = tags["ExifTag"].value, tags["GPSTag"].value
        orientation = tags["Orientation"].value if "Orientation" in tags else 1
    assert not caplog.records, [record.getMessage() for record in caplog.records]
    np.testing.assert_array_equal(stored.reshape(pixels.shape), pixels)
    assert int(orientation) == 1
    assert sub["ISOSpeedRatings"] == 3200
    assert sub["ExposureTime"] == (1, 250)
    assert sub["FNumber"][0] / sub["FNumber"][1] == pytest.approx(2.8)
    assert sub["FocalLength"] == (50, 1)
    assert sub["LensModel"] == PHOTO_VALUES[LENS_MODEL]
    assert sub["DateTimeOriginal"] == PHOTO_VALUES[DATE_TAKEN]
    assert gps["GPSLatitudeRef"] == "N"
    assert gps["GPSLatitude"] == (52, 1, 22, 1, 617, 50)


@pytest.mark.parametrize("endian", ["<", ">"], ids=["little-endian", "big-endian"])
def test_either_byte_order_of_the_source_exif_is_kept(tmp_path: Path, endian: str) -> None:
    raw = camera_exif(endian)
    assert raw[6:8] == (b"II" if endian == "<" else b"MM")
    path = write_tiff16(tmp_path, photo(3), raw)
    with PILImage.open(path) as im:
        exif = im.getexif()
        assert_photo_values(exif.get_ifd(EXIF_IFD))
        assert_gps_values(exif.get_ifd(GPS_IFD))


def test_a_big_maker_note_is_kept_byte_for_byte(tmp_path: Path) -> None:
    maker_note = np.random.default_rng(1).integers(0, 256, 60_000, dtype=np.uint8).tobytes()
    path = write_tiff16(tmp_path, photo(3), camera_exif(maker_note=maker_note))
    with PILImage.open(path) as im:
        sub = im.getexif().get_ifd(EXIF_IFD)
        assert sub[MAKER_NOTE] == maker_note
        assert_photo_values(sub)
    image = read_image(path)
    assert parse_exif(image.exif).get_ifd(EXIF_IFD)[MAKER_NOTE] == maker_note


def test_the_interoperability_ifd_inside_the_exif_ifd_is_kept(tmp_path: Path) -> None:
    exif = parse_exif(camera_exif())
    exif.get_ifd(EXIF_IFD)[INTEROP_IFD] = {1: "R98"}  # InteroperabilityIndex
    path = write_tiff16(tmp_path, photo(3), exif.tobytes())
    with PILImage.open(path) as im:
        written = im.getexif()
        assert_photo_values(written.get_ifd(EXIF_IFD))
        assert written.get_ifd(INTEROP_IFD) == {1: "R98"}


# ----------------------------------------------------------------------------------------------------------
# Malformed EXIF: what can be read is kept, the rest dropped, the picture always written
# ----------------------------------------------------------------------------------------------------------

SHORT, LONG, RATIONAL, UNDEFINED = 3, 4, 5, 7
ISO_ENTRY = (ISO, SHORT, 1, struct.pack("<HH", 3200, 0))


def hand_made_exif(exif_entries: list[tuple[int, int, int, bytes]], gps_offset: int | None = None) -> bytes:
    """A little-endian EXIF block: IFD0 points at an Exif IFD made of the given raw entries (tag, type, count,
    four value-or-offset bytes), and at ``gps_offset`` when given; the Exif IFD starts at offset 38."""
    ifd0 = [(EXIF_IFD, LONG, 1, struct.pack("<I", 38))]
    if gps_offset is not None:
        ifd0.append((GPS_IFD, LONG, 1, struct.pack("<I", gps_offset)))
    ifd0 += [(0xFFFF, UNDEFINED, 4, b"pad!")] * (2 - len(ifd0))  # keep IFD0 two entries long: 8 + 2 + 24 + 4 = 38

    def directory(entries: list[tuple[int, int, int, bytes]]) -> bytes:
        packed = b"".join(struct.pack("<HHI", tag, kind, count) + field for tag, kind, count, field in entries)
        return struct.pack("<H", len(entries)) + packed + struct.pack("<I", 0)

    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + directory(ifd0) + directory(exif_entries)


MALFORMED = {
    "value past the end": hand_made_exif([ISO_ENTRY, (MAKER_NOTE, UNDEFINED, 5000, struct.pack("<I", 0xFFFF0000))]),
    "unknown field type": hand_made_exif([ISO_ENTRY, (LENS_MODEL, 99, 3, b"abc\x00")]),
    "absurd count": hand_made_exif([ISO_ENTRY, (EXPOSURE_TIME, RATIONAL, 0xFFFFFFFF, struct.pack("<I", 40))]),
    "interop loops back": hand_made_exif([ISO_ENTRY, (INTEROP_IFD, LONG, 1, struct.pack("<I", 38))]),
    "GPS pointer out of range": hand_made_exif([ISO_ENTRY], gps_offset=10**9),
    "GPS pointer at the header": hand_made_exif([ISO_ENTRY], gps_offset=0),
    "repeated, unsorted tags": hand_made_exif([ISO_ENTRY, (0x829A, SHORT, 1, b"\x01\x00\x00\x00"), ISO_ENTRY]),
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_exif_keeps_the_picture_and_what_can_be_read(tmp_path: Path, raw: bytes) -> None:
    pixels = photo(3)
    path = write_tiff16(tmp_path, pixels, raw)
    image = read_image(path)
    assert image.bit_depth == 16
    np.testing.assert_array_equal(image.pixels, pixels)
    with PILImage.open(path) as im:
        assert im.getexif().get_ifd(EXIF_IFD)[ISO] == 3200
    assert parse_exif(image.exif).get_ifd(EXIF_IFD)[ISO] == 3200


def test_a_writers_layout_note_is_not_carried_but_a_real_description_is(tmp_path: Path) -> None:
    """tifffile notes an array's shape in ImageDescription; carried into a result turned upright (360 x 500 from
    500 x 360) it no longer matched the pixels, and every later read warned about it."""
    pixels = (np.arange(20 * 30 * 3) % 65536).astype(np.uint16).reshape(20, 30, 3)
    noted = tmp_path / "noted.tif"
    tifffile.imwrite(noted, pixels, photometric="rgb", extratags=[(274, "H", 1, 6, True)])  # orientation 6
    described = tmp_path / "described.tif"
    tifffile.imwrite(described, pixels, photometric="rgb", description="Harbour at dawn", metadata=None)
    for source, expected in ((noted, None), (described, "Harbour at dawn")):
        out = write_image(tmp_path / f"{source.stem}-out.tif", read_image(source))
        with tifffile.TiffFile(out) as written:
            tag = written.pages[0].tags.get(270)
            assert (tag.value if tag is not None else None) == expected
