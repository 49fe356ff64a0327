"""The EXIF of the picture developed from a RAW file, gathered from the file itself, since rawpy exposes little of
it: the TIFF directories most RAW formats are built on (DNG, CR2, NEF, ARW, PEF, ORF, RW2...), a CR3's CMT boxes,
the embedded JPEG preview's EXIF (RAF and others), and what LibRaw decoded (ISO, shutter, aperture, focal length,
lens, time), each filling what the ones before lacked. Missing or malformed metadata never fails a read.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from PIL import Image as PILImage
from PIL.TiffImagePlugin import IFDRational

from denoiser.io.metadata import EXIF_IFD_TAG, GPS_IFD_TAG, ORIENTATION_TAG

if TYPE_CHECKING:
    import rawpy

__all__ = ["CR3_BRAND", "TIFF_LIKE_HEADERS", "Tags", "raw_exif", "tags_of_libraw"]

# What a photographer expects to travel with the picture: IFD0 and the Exif sub-IFD (the GPS sub-IFD travels
# whole). Tags describing the RAW file's layout, maker notes (whose offsets break when moved) and thumbnails stay.
_MAKE, _MODEL, _DATETIME, _ARTIST, _COPYRIGHT = 0x010F, 0x0110, 0x0132, 0x013B, 0x8298
_EXPOSURE_TIME, _F_NUMBER, _ISO, _DATE_TAKEN = 0x829A, 0x829D, 0x8827, 0x9003
_FOCAL_LENGTH, _LENS_MAKE, _LENS_MODEL, _COLOR_SPACE = 0x920A, 0xA433, 0xA434, 0xA001
_IFD0_TAGS = (_MAKE, _MODEL, _DATETIME, _ARTIST, _COPYRIGHT)
_EXIF_TAGS = (
    _EXPOSURE_TIME, _F_NUMBER, 0x8822, _ISO,  # ExposureProgram
    _DATE_TAKEN, 0x9004, 0x9010, 0x9011, 0x9012,  # DateTimeDigitized, OffsetTime, -Original, -Digitized
    0x9204, 0x9205, 0x9207, 0x9209, _FOCAL_LENGTH,  # ExposureBias, MaxAperture, MeteringMode, Flash
    0x9291, 0xA402, 0xA403, 0xA405,  # SubSecTimeOriginal, ExposureMode, WhiteBalance, FocalLengthIn35mmFilm
    0xA431, 0xA432, _LENS_MAKE, _LENS_MODEL, 0xA435,  # BodySerialNumber, LensSpecification, LensSerialNumber
)
# Without these a photographer would miss something; the embedded preview is looked at when one is missing.
_CORE_TAGS = ((0, _MAKE), (0, _MODEL), (EXIF_IFD_TAG, _ISO), (EXIF_IFD_TAG, _EXPOSURE_TIME),
              (EXIF_IFD_TAG, _DATE_TAKEN))
_SRGB = 1

Tags = dict[int, dict[int, Any]]
"""EXIF values by directory: 0 (IFD0), EXIF_IFD_TAG and GPS_IFD_TAG, each tag -> value as Pillow holds it."""

# TIFF headers of RAW formats built on TIFF, some with their own magic number (ORF, RW2), as a plain TIFF header.
TIFF_LIKE_HEADERS = {b"II*\x00": b"II*\x00", b"MM\x00*": b"MM\x00*", b"IIRO": b"II*\x00", b"IIRS": b"II*\x00",
                     b"MMOR": b"MM\x00*", b"IIU\x00": b"II*\x00"}
CR3_BRAND = b"crx "  # a Canon CR3 is an ISO media file of this brand (ftyp box)
_CR3_BOXES = {b"CMT1": 0, b"CMT2": EXIF_IFD_TAG, b"CMT4": GPS_IFD_TAG}
_CR3_SEARCH_LIMIT = 1 << 20  # the CMT boxes sit in the movie header at the start of the file


def raw_exif(data: bytes, libraw_tags: Tags | None = None, preview: Callable[[], bytes | None] | None = None
             ) -> bytes | None:
    """The EXIF block (``Exif\\0\\0`` header, as Image.exif holds it) for the picture developed from the RAW file
    ``data``: the camera's tags from the file's TIFF directories or a CR3's CMT boxes, then from the embedded
    ``preview`` JPEG (called only when make, model, ISO, exposure time or date taken are still missing), then
    ``libraw_tags``; orientation 1 and colour space sRGB, since the developed pixels are upright sRGB. (A preview
    JPEG that has no EXIF of its own comes from LibRaw with a small one LibRaw wrote: its make and model then.)
    None when nothing is known; never raises."""
    tags: Tags = {0: {}, EXIF_IFD_TAG: {}, GPS_IFD_TAG: {}}
    for source in (_tiff_tags, _cr3_tags):
        _fill(tags, _safely(source, data))
    if preview is not None and any(tag not in tags[ifd] for ifd, tag in _CORE_TAGS):
        jpeg = _safely(preview)
        if jpeg:
            _fill(tags, _safely(_jpeg_tags, jpeg))
    _fill(tags, libraw_tags or {})
    if not any(tags.values()):
        return None
    tags[0][ORIENTATION_TAG] = 1
    tags[EXIF_IFD_TAG][_COLOR_SPACE] = _SRGB
    return _exif_block(tags)


def tags_of_libraw(raw: rawpy.RawPy) -> Tags:
    """What LibRaw decoded of the shot (from maker notes too), as EXIF values; unknown values left out."""
    exif: dict[int, Any] = {}
    with contextlib.suppress(Exception):
        other = raw.other
        if other.iso_speed > 0:
            exif[_ISO] = int(round(other.iso_speed))
        if other.shutter_speed > 0:
            exif[_EXPOSURE_TIME] = _exposure_rational(float(other.shutter_speed))
        if other.aperture > 0:
            exif[_F_NUMBER] = _rational(round(float(other.aperture), 1))
        if other.focal_length > 0:
            exif[_FOCAL_LENGTH] = _rational(round(float(other.focal_length), 1))
        if other.timestamp.year >= 1980:  # 0 (the epoch) when unknown
            exif[_DATE_TAKEN] = other.timestamp.strftime("%Y:%m:%d %H:%M:%S")
    with contextlib.suppress(Exception):
        lens = raw.lens
        if lens.model.strip():
            exif[_LENS_MODEL] = lens.model.strip()
        if lens.make.strip():
            exif[_LENS_MAKE] = lens.make.strip()
    return {EXIF_IFD_TAG: exif}


def _exposure_rational(seconds: float) -> IFDRational:
    """An exposure time as cameras write it: 1/250 rather than the float LibRaw holds (0.004000000189...)."""
    if seconds < 1:
        denominator = round(1 / seconds)
        if abs(1 / denominator - seconds) <= 0.01 * seconds:
            return IFDRational(1, denominator)
    return _rational(seconds)


def _rational(value: float) -> IFDRational:
    fraction = Fraction(value).limit_denominator(10_000)
    return IFDRational(fraction.numerator, fraction.denominator)


def _safely(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)``, or None when it raises: a source of metadata failing never fails the read."""
    try:
        return function(*args)
    except Exception:
        return None


def _fill(tags: Tags, more: Tags | None) -> None:
    """Add the values of ``more`` that ``tags`` does not have yet."""
    for ifd, values in (more or {}).items():
        target = tags.setdefault(ifd, {})
        for tag, value in values.items():
            target.setdefault(tag, value)


def _tiff_tags(data: bytes) -> Tags | None:
    """The photo-describing tags of a TIFF-based RAW file (IFD0, its Exif and GPS sub-directories)."""
    tiff_header = TIFF_LIKE_HEADERS.get(data[:4])
    if tiff_header is None:
        return None
    return _tags_of_exif(_load_exif(tiff_header + data[4:]))


def _cr3_tags(data: bytes) -> Tags | None:
    """A Canon CR3's tags: its CMT1 box holds IFD0, CMT2 the Exif directory and CMT4 GPS, each a small TIFF."""
    if data[4:8] != b"ftyp" or data[8:12] != CR3_BRAND:
        return None
    head = data[:_CR3_SEARCH_LIMIT]
    tags: Tags = {}
    for name, ifd in _CR3_BOXES.items():
        at = head.find(name)
        if at < 4:
            continue
        (size,) = struct.unpack_from(">I", head, at - 4)
        body = data[at + 4 : at - 4 + size]
        directory = _safely(_load_exif, body)
        if directory is None:
            continue
        wanted = _IFD0_TAGS if ifd == 0 else _EXIF_TAGS if ifd == EXIF_IFD_TAG else None
        tags[ifd] = _chosen(dict(directory), wanted)
    return tags


def _jpeg_tags(jpeg: bytes) -> Tags | None:
    """The photo-describing tags of the EXIF of a JPEG (a RAW file's embedded preview)."""
    with PILImage.open(io.BytesIO(jpeg), formats=["JPEG"]) as im:
        return _tags_of_exif(im.getexif())


def _load_exif(tiff: bytes) -> PILImage.Exif:
    exif = PILImage.Exif()
    exif.load(tiff)
    return exif


def _tags_of_exif(exif: PILImage.Exif) -> Tags:
    tags: Tags = {0: _chosen(dict(exif), _IFD0_TAGS)}
    tags[EXIF_IFD_TAG] = _chosen(_safely(lambda: dict(exif.get_ifd(EXIF_IFD_TAG))) or {}, _EXIF_TAGS)
    tags[GPS_IFD_TAG] = _chosen(_safely(lambda: dict(exif.get_ifd(GPS_IFD_TAG))) or {}, None)
    return tags


def _chosen(values: dict[int, Any], wanted: tuple[int, ...] | None) -> dict[int, Any]:
    """The ``wanted`` tags (all when None) whose values are meaningful: text not blank, numbers not zero."""
    chosen = {}
    for tag, value in values.items():
        if wanted is not None and tag not in wanted:
            continue
        cleaned = _meaningful(value)
        if cleaned is not None:
            chosen[tag] = cleaned
    return chosen


def _meaningful(value: Any) -> Any:
    """``value`` as it can be written back (text trimmed of padding), or None for blank text or a zero rational
    (how cameras write "unknown"), or something that is no EXIF value."""
    if isinstance(value, bytes):
        return value or None
    if isinstance(value, str):
        text = value.replace("\x00", "").strip()
        return text or None
    if isinstance(value, IFDRational):
        return None if value.denominator == 0 or value == 0 else value
    if isinstance(value, int):
        return value
    if isinstance(value, tuple) and value and all(isinstance(item, (int, IFDRational)) for item in value):
        return value
    return None


def _exif_block(tags: Tags) -> bytes | None:
    """``tags`` written as an EXIF block; values Pillow cannot write are dropped one by one."""
    for ifd, values in tags.items():
        for tag in list(values):
            if not _writable(ifd, tag, values[tag]):
                del values[tag]
    exif = PILImage.Exif()
    exif.update(tags[0])
    for ifd in (EXIF_IFD_TAG, GPS_IFD_TAG):
        if tags.get(ifd):
            exif[ifd] = tags[ifd]
    return _safely(exif.tobytes)


def _writable(ifd: int, tag: int, value: Any) -> bool:
    exif = PILImage.Exif()
    if ifd == 0:
        exif[tag] = value
    else:
        exif[ifd] = {tag: value}
    return _safely(exif.tobytes) is not None
