"""EXIF, ICC profile and orientation: reading them from an opened file, turning pixels upright, and the
subsets a format can hold when writing (a TIFF's photo-describing tags, tifffile's text tags; the sub-IFDs
tifffile cannot write are in :mod:`denoiser.io.exif_ifd`)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

from denoiser.io.orientation import UPRIGHT

__all__ = [
    "EXIF_HEADER",
    "EXIF_IFD_TAG",
    "GPS_IFD_TAG",
    "ORIENTATION_TAG",
    "Metadata",
    "apply_orientation",
    "exif_facts",
    "exif_for_tiff",
    "icc_profile",
    "read_exif",
    "tiff16_text_tags",
    "valid_orientation",
]

ORIENTATION_TAG = 0x0112
EXIF_IFD_TAG = 0x8769
GPS_IFD_TAG = 0x8825
# EXIF tags that describe the photo rather than the TIFF file's layout: only these travel from a TIFF's own
# tags into Image.exif and from Image.exif into a TIFF, so strip offsets or sample formats never leak.
# (Resolution is left out too: TIFF writers set it themselves.)
_TIFF_METADATA_TAGS = frozenset({270, 271, 272, 274, 305, 306, 315, 33432, EXIF_IFD_TAG, GPS_IFD_TAG})
IMAGE_DESCRIPTION_TAG = 270


def _describes_the_layout(description: object) -> bool:
    """Whether an ImageDescription is a writer's note of the array's layout (tifffile's ``{"shape": [...]}``,
    ImageJ's ``ImageJ=...``) rather than a description of the photo: a rotated or re-encoded result would carry a
    layout that no longer matches its pixels."""
    text = description.decode("latin-1", "replace") if isinstance(description, bytes) else str(description)
    return text.lstrip().startswith(('{"shape"', "ImageJ="))


# The subset tifffile can write as plain text tags on 16-bit TIFFs.
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
EXIF_HEADER = b"Exif\x00\x00"


@dataclass(frozen=True)
class Metadata:
    """What travels with the pixels: the raw EXIF block, the ICC profile, and (when reading) the EXIF
    orientation still to apply to the stored pixels (1: upright already)."""

    exif: bytes | None = None
    icc: bytes | None = None
    orientation: int = 1


def valid_orientation(value: object) -> int:
    """``value`` when it is an EXIF orientation this module can apply (2-8), else 1 (leave the pixels be)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value in UPRIGHT else 1


def apply_orientation(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """H x W x C ``pixels`` turned upright for EXIF ``orientation`` (a view; unchanged for 1 or unknown values)."""
    fix = UPRIGHT.get(orientation)
    return pixels if fix is None else fix(pixels)


def icc_profile(im: PILImage.Image) -> bytes | None:
    """The ICC profile Pillow found in the file, or None."""
    return im.info.get("icc_profile") or None


def read_exif(im: PILImage.Image, fmt: str, tiff_orientation: int) -> tuple[bytes | None, int]:
    """The EXIF block to keep (orientation reset to 1) and the orientation to apply to the pixels.

    ``tiff_orientation`` is a TIFF's orientation as read before Pillow decoded (and deleted) it.
    """
    try:
        exif = im.getexif()
        orientation = valid_orientation(exif.get(ORIENTATION_TAG, 1))
        if fmt == "TIFF":
            orientation = tiff_orientation
            if orientation != 1:
                exif[ORIENTATION_TAG] = 1  # Pillow deleted the tag when it applied it; say "upright" instead
            # A TIFF's EXIF is its own tag directory; keep only the tags that describe the photo.
            raw = _metadata_only(exif)
        else:
            raw = im.info.get("exif") or (exif.tobytes() if len(exif) else None)
            if raw is not None and not raw.startswith(EXIF_HEADER):
                raw = EXIF_HEADER + raw  # WebP stores it bare; Pillow's JPEG writer needs the header
            if raw is not None and orientation != 1:
                raw = _reset_orientation(raw)
    except Exception:  # malformed EXIF: better to open the photo without it than not at all
        return None, tiff_orientation if fmt == "TIFF" else 1
    return raw or None, orientation


def _metadata_only(exif: PILImage.Exif) -> bytes | None:
    """The photo-describing tags of ``exif`` (sub-IFDs included) as an EXIF block, orientation set to 1."""
    for tag in (EXIF_IFD_TAG, GPS_IFD_TAG):
        if tag in exif:
            exif.get_ifd(tag)  # load sub-directories while the file is still open
    for tag in list(exif):
        if tag not in _TIFF_METADATA_TAGS or (tag == IMAGE_DESCRIPTION_TAG and _describes_the_layout(exif[tag])):
            del exif[tag]
    if not len(exif):
        return None
    if ORIENTATION_TAG in exif:
        exif[ORIENTATION_TAG] = 1
    return exif.tobytes()


def _reset_orientation(raw: bytes) -> bytes | None:
    """``raw`` with its orientation tag set to 1, patched in place so every other byte stays as it was."""
    try:
        data = bytearray(raw)
        base = len(EXIF_HEADER) if raw.startswith(EXIF_HEADER) else 0
        order = {b"II": "<", b"MM": ">"}[bytes(data[base : base + 2])]
        (ifd,) = struct.unpack_from(order + "I", data, base + 4)
        (count,) = struct.unpack_from(order + "H", data, base + ifd)
        for index in range(count):
            entry = base + ifd + 2 + 12 * index
            tag, kind, number = struct.unpack_from(order + "HHI", data, entry)
            if tag == ORIENTATION_TAG and kind == 3 and number == 1:
                struct.pack_into(order + "H", data, entry + 8, 1)
                return bytes(data)
    except (KeyError, struct.error):
        pass
    # Unusual layout: let Pillow rewrite the block; drop it rather than keep a tag that rotates twice.
    try:
        exif = PILImage.Exif()
        exif.load(raw)
        exif[ORIENTATION_TAG] = 1
        return exif.tobytes()
    except Exception:  # the caller copes with no EXIF
        return None


def exif_for_tiff(raw: bytes) -> PILImage.Exif | None:
    """The photo-describing tags of the EXIF block ``raw``, ready for Pillow's TIFF writer; None when none."""
    try:
        exif = PILImage.Exif()
        exif.load(raw)
        return exif if _metadata_only(exif) else None
    except Exception:  # unreadable EXIF is simply not copied; the picture still gets written
        return None


def tiff16_text_tags(raw: bytes | None) -> list[tuple[int, int, int, str, bool]]:
    """EXIF text tags (camera, date, copyright...) as tifffile extratags. tifffile cannot write the Exif and GPS
    sub-IFDs: :func:`denoiser.io.exif_ifd.append_exif_subdirectories` adds them to the written file."""
    if not raw:
        return []
    try:
        exif = PILImage.Exif()
        exif.load(raw)
    except Exception:  # unreadable EXIF is simply not copied
        return []
    tags = []
    for tag in _TIFF_TEXT_TAGS:
        value = exif.get(tag)
        if isinstance(value, str) and value and value.isascii():
            tags.append((tag, 2, 0, value, True))
    return tags


# Photo-describing tags for people (exif_facts): IFD0 and the Exif sub-IFD.
_MAKE, _MODEL, _DATETIME = 271, 272, 306
_EXPOSURE_TIME, _F_NUMBER, _ISO, _DATETIME_ORIGINAL = 33434, 33437, 34855, 36867
_FOCAL_LENGTH, _FOCAL_LENGTH_35MM, _LENS_MAKE, _LENS_MODEL = 37386, 41989, 42035, 42036


def _number(value: object) -> float | None:
    """A float from an EXIF rational, integer or one-element tuple; None for anything else or a zero denominator."""
    if isinstance(value, (tuple, list)) and value:
        value = value[0]
    try:
        number = float(value)  # type: ignore[arg-type]  # IFDRational, int, float
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if np.isfinite(number) else None


def _text(value: object) -> str:
    """An EXIF text value, trimmed of padding and NULs ("" when it is not text)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.replace("\x00", "").strip() if isinstance(value, str) else ""


def _exposure(seconds: float) -> str:
    if seconds <= 0:
        return ""
    if seconds < 0.5:
        return f"1/{round(1 / seconds)} s"
    return f"{seconds:.1f}".rstrip("0").rstrip(".") + " s"


def exif_facts(raw: bytes | None) -> list[tuple[str, str]]:
    """What a photographer reads off the EXIF block ``raw``, as (label, text) pairs in a fixed order: Camera
    (make and model), Lens, ISO, Exposure (``1/250 s``), Aperture (``f/2.8``), Focal length (``50 mm``, with the
    35 mm equivalent when recorded) and Date (``2024-05-01 12:00:00``). Tags that are missing or unreadable are
    left out; no or broken EXIF gives an empty list (never raises)."""
    if not raw:
        return []
    try:
        exif = PILImage.Exif()
        exif.load(raw)
        main = dict(exif)
        sub = dict(exif.get_ifd(EXIF_IFD_TAG))
    except Exception:  # malformed EXIF: nothing to tell
        return []
    facts: list[tuple[str, str]] = []
    make, model = _text(main.get(_MAKE)), _text(main.get(_MODEL))
    if make and model.lower().startswith(make.lower().split()[0]):
        make = ""  # "Canon" + "Canon EOS R5" reads "Canon EOS R5"
    camera = " ".join(part for part in (make, model) if part)
    if camera:
        facts.append(("Camera", camera))
    lens = _text(sub.get(_LENS_MODEL)) or _text(sub.get(_LENS_MAKE))
    if lens:
        facts.append(("Lens", lens))
    iso = _number(sub.get(_ISO))
    if iso:
        facts.append(("ISO", f"{iso:.0f}"))
    exposure = _number(sub.get(_EXPOSURE_TIME))
    if exposure and _exposure(exposure):
        facts.append(("Exposure", _exposure(exposure)))
    f_number = _number(sub.get(_F_NUMBER))
    if f_number:
        facts.append(("Aperture", f"f/{f_number:.1f}".replace(".0", "")))
    focal = _number(sub.get(_FOCAL_LENGTH))
    if focal:
        equivalent = _number(sub.get(_FOCAL_LENGTH_35MM))
        extra = f" ({equivalent:.0f} mm equivalent)" if equivalent and round(equivalent) != round(focal) else ""
        facts.append(("Focal length", f"{focal:.0f} mm{extra}"))
    date = _text(sub.get(_DATETIME_ORIGINAL)) or _text(main.get(_DATETIME))
    if date:
        day, _, clock = date.partition(" ")
        facts.append(("Date", f"{day.replace(':', '-')} {clock}".strip()))
    return facts
