"""Small DNG files for the RAW tests, written by hand (no RAW sample can be downloaded, and tifffile cannot write
an Exif sub-IFD): a 16-bit Bayer mosaic with the tags LibRaw needs to develop it, an Exif sub-IFD, and optionally
an embedded JPEG preview in a SubIFD, as cameras and Adobe's converter store theirs.

The colour set-up is chosen so that the developed colours are predictable: ``ColorMatrix1`` is the XYZ -> linear
sRGB matrix, which makes the camera's RGB linear sRGB; the mosaic is made from a linear sRGB scene multiplied by
the as-shot neutral (what a camera with that white balance records of it), so that a developed grey stays grey
when, and only when, the camera's white balance is used.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

__all__ = ["BLACK", "WHITE", "Box", "Camera", "Colour", "mosaic_of", "scene_of_patches", "write_dng"]

BLACK = 256
WHITE = 16383
# XYZ (D65) -> linear sRGB: as ColorMatrix1 it makes the camera's own RGB linear sRGB.
XYZ_TO_SRGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)

_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10
_SIZES = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _UNDEFINED: 1, _SRATIONAL: 8}


@dataclass(frozen=True)
class Camera:
    """What the DNG says about the camera and the shot; None leaves a tag out."""

    make: str | None = "Testmaker"
    model: str | None = "Testmaker TM-1"
    orientation: int = 1
    as_shot_neutral: tuple[float, float, float] = (0.5, 1.0, 0.8)
    iso: int | None = 1600
    exposure_time: Fraction | None = Fraction(1, 250)
    f_number: Fraction | None = Fraction(28, 10)
    focal_length: Fraction | None = Fraction(50)
    lens_model: str | None = "Test 50mm F2.8"
    date_taken: str | None = "2024:05:01 12:34:56"


Box = tuple[int, int, int, int]
"""A rectangle: top, bottom, left, right (bottom and right excluded)."""
Colour = tuple[float, float, float]


def scene_of_patches(height: int, width: int, patches: list[tuple[Box, Colour]],
                     background: Colour = (0.18, 0.18, 0.18)) -> np.ndarray:
    """A linear sRGB scene (H x W x 3, 0..1) of a flat ``background`` with flat rectangular ``patches``."""
    scene = np.empty((height, width, 3))
    scene[:] = background
    for (top, bottom, left, right), colour in patches:
        scene[top:bottom, left:right] = colour
    return scene


def mosaic_of(scene: np.ndarray, neutral: tuple[float, float, float]) -> np.ndarray:
    """The RGGB mosaic (uint16, BLACK..WHITE) a camera with as-shot ``neutral`` records of the linear ``scene``."""
    camera = scene * np.asarray(neutral)  # the camera's raw response to the scene under that light
    height, width = scene.shape[:2]
    channel = np.empty((height, width), dtype=int)
    channel[0::2, 0::2], channel[0::2, 1::2], channel[1::2, 0::2], channel[1::2, 1::2] = 0, 1, 1, 2
    values = np.take_along_axis(camera, channel[..., np.newaxis], axis=2)[..., 0]
    return np.round(BLACK + np.clip(values, 0, 1) * (WHITE - BLACK)).astype(np.uint16)


def _rational(value: float | Fraction) -> tuple[int, int]:
    fraction = Fraction(value).limit_denominator(1_000_000)
    return fraction.numerator, fraction.denominator


def _entry_bytes(kind: int, values: object) -> tuple[int, bytes]:
    """(count, little-endian value bytes) of one entry."""
    if kind == _ASCII:
        data = str(values).encode("ascii") + b"\x00"
        return len(data), data
    if kind == _UNDEFINED or (kind == _BYTE and isinstance(values, bytes)):
        data = bytes(values)  # type: ignore[arg-type]
        return len(data), data
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    if kind in (_RATIONAL, _SRATIONAL):
        code = "i" if kind == _SRATIONAL else "I"
        data = b"".join(struct.pack("<" + 2 * code, *_rational(item)) for item in items)
    else:
        code = {_BYTE: "B", _SHORT: "H", _LONG: "I"}[kind]
        data = struct.pack("<" + code * len(items), *items)
    return len(items), data


class _TiffBuilder:
    """A little-endian classic TIFF laid out as cameras do: directories first, then the picture data they point at
    (so that a truncated file loses picture data, not its directories). Offsets to data appended later are
    patched into the directories with :meth:`patch_long`."""

    def __init__(self) -> None:
        self.data = bytearray(b"II*\x00\x00\x00\x00\x00")

    def blob(self, data: bytes) -> int:
        """Append ``data`` on a word boundary; its offset."""
        if len(self.data) % 2:
            self.data += b"\x00"
        offset = len(self.data)
        self.data += data
        return offset

    def directory(self, entries: list[tuple[int, int, object]]) -> int:
        """Append a directory (entries sorted by tag; values too long for an entry placed after it); its offset."""
        entries = sorted(entries, key=lambda entry: entry[0])
        encoded = [(tag, kind, *_entry_bytes(kind, values)) for tag, kind, values in entries]
        start = self.blob(b"")
        values_at = start + 2 + 12 * len(encoded) + 4
        table, tail = bytearray(struct.pack("<H", len(encoded))), bytearray()
        for tag, kind, count, data in encoded:
            if len(data) <= 4:
                field_bytes = data.ljust(4, b"\x00")
            else:
                if len(tail) % 2:
                    tail += b"\x00"
                field_bytes = struct.pack("<I", values_at + len(tail))
                tail += data
            table += struct.pack("<HHI", tag, kind, count) + field_bytes
        table += struct.pack("<I", 0)
        self.data += table + tail
        return start

    def patch_long(self, directory: int, tag: int, value: int) -> None:
        """Set the one-LONG entry ``tag`` of the directory at offset ``directory`` to ``value``."""
        (count,) = struct.unpack_from("<H", self.data, directory)
        for index in range(count):
            at = directory + 2 + 12 * index
            if struct.unpack_from("<H", self.data, at)[0] == tag:
                struct.pack_into("<I", self.data, at + 8, value)
                return
        raise KeyError(tag)

    def set_first_directory(self, offset: int) -> None:
        struct.pack_into("<I", self.data, 4, offset)


def _exif_entries(camera: Camera) -> list[tuple[int, int, object]]:
    entries: list[tuple[int, int, object]] = [(0x9000, _UNDEFINED, b"0231")]
    if camera.exposure_time is not None:
        entries.append((0x829A, _RATIONAL, camera.exposure_time))
    if camera.f_number is not None:
        entries.append((0x829D, _RATIONAL, camera.f_number))
    if camera.iso is not None:
        entries.append((0x8827, _SHORT, camera.iso))
    if camera.date_taken is not None:
        entries.append((0x9003, _ASCII, camera.date_taken))
    if camera.focal_length is not None:
        entries.append((0x920A, _RATIONAL, camera.focal_length))
    if camera.lens_model is not None:
        entries.append((0xA434, _ASCII, camera.lens_model))
    return entries


def write_dng(path: Path, mosaic: np.ndarray, camera: Camera = Camera(), preview: bytes | np.ndarray | None = None
              ) -> Path:
    """Write the RGGB ``mosaic`` (uint16 H x W) as a DNG LibRaw develops. A ``preview`` (JPEG bytes, or uint8
    RGB pixels stored uncompressed) is embedded in a SubIFD as cameras and Adobe's converter store theirs: as the
    sensor reads out, whatever the orientation."""
    height, width = mosaic.shape
    builder = _TiffBuilder()
    exif_at = builder.directory(_exif_entries(camera))
    entries: list[tuple[int, int, object]] = [
        (254, _LONG, 0),
        (256, _LONG, width),
        (257, _LONG, height),
        (258, _SHORT, 16),
        (259, _SHORT, 1),
        (262, _SHORT, 32803),
        (273, _LONG, 0),  # patched below
        (274, _SHORT, camera.orientation),
        (277, _SHORT, 1),
        (278, _LONG, height),
        (279, _LONG, mosaic.size * 2),
        (284, _SHORT, 1),
        (33421, _SHORT, (2, 2)),
        (33422, _BYTE, bytes((0, 1, 1, 2))),
        (0x8769, _LONG, exif_at),
        (50706, _BYTE, bytes((1, 4, 0, 0))),
        (50708, _ASCII, f"{camera.make or ''} {camera.model or ''}".strip() or "Unknown"),
        (50714, _SHORT, BLACK),
        (50717, _SHORT, WHITE),
        (50721, _SRATIONAL, [value for row in XYZ_TO_SRGB for value in row]),
        (50728, _RATIONAL, list(camera.as_shot_neutral)),
        (50778, _SHORT, 21),  # D65
    ]
    if camera.make is not None:
        entries.append((271, _ASCII, camera.make))
    if camera.model is not None:
        entries.append((272, _ASCII, camera.model))
    if camera.date_taken is not None:
        entries.append((306, _ASCII, camera.date_taken))
    preview_at, preview_bytes = None, b""
    if preview is not None:
        preview_bytes, preview_entries = _preview_directory(preview)
        preview_at = builder.directory(preview_entries)
        entries.append((330, _LONG, preview_at))
    ifd0 = builder.directory(entries)
    builder.set_first_directory(ifd0)
    if preview_at is not None:
        builder.patch_long(preview_at, 273, builder.blob(preview_bytes))
    builder.patch_long(ifd0, 273, builder.blob(np.ascontiguousarray(mosaic, dtype="<u2").tobytes()))
    path.write_bytes(bytes(builder.data))
    return path


def _preview_directory(preview: bytes | np.ndarray) -> tuple[bytes, list[tuple[int, int, object]]]:
    """The stored bytes of a preview and its directory entries (strip offset patched in later)."""
    if isinstance(preview, bytes):
        with PILImage.open(io.BytesIO(preview)) as im:
            (width, height), data, compression, photometric = im.size, preview, 7, 6  # JPEG, YCbCr
    else:
        height, width = preview.shape[:2]
        data, compression, photometric = np.ascontiguousarray(preview, dtype=np.uint8).tobytes(), 1, 2  # RGB
    return data, [
        (254, _LONG, 1),
        (256, _LONG, width),
        (257, _LONG, height),
        (258, _SHORT, (8, 8, 8)),
        (259, _SHORT, compression),
        (262, _SHORT, photometric),
        (273, _LONG, 0),
        (277, _SHORT, 3),
        (278, _LONG, height),
        (279, _LONG, len(data)),
        (284, _SHORT, 1),
    ]
