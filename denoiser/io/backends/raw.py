"""Camera RAW through rawpy (LibRaw): every format LibRaw reads, developed with the camera's white balance into
16-bit sRGB, with the camera's EXIF (make, model, ISO, exposure, aperture, focal length, lens, date taken: gathered
by raw_exif.py); and the embedded preview as a fast thumbnail (raw_preview.py). Never written: a result of a RAW
file is a 16-bit TIFF (or what the user asks for). This module is the RAW reader: which files it claims, opening
and developing them, and LibRaw's errors in a user's words.

How a RAW is developed (:data:`DEVELOP_SETTINGS`): as the camera exposed it (no automatic brightening), in the
camera's as-shot white balance, demosaiced with AHD (LibRaw's default: fast and well tried), into sRGB primaries
with the sRGB tone curve, 16 bits per channel. Clipped highlights stay white (LibRaw's highlight clipping, with
its white level lowered to where the sensor really saturated), not pink. LibRaw turns the picture upright itself
(the camera's orientation), so the pixels returned are upright and the EXIF orientation is 1.
"""

from __future__ import annotations

import contextlib
import io
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from denoiser.errors import ImageReadError, reason
from denoiser.io.backends.base import DirectReader
from denoiser.io.backends.raw_exif import CR3_BRAND, TIFF_LIKE_HEADERS, raw_exif, tags_of_libraw
from denoiser.io.backends.raw_libraw import developed_size, libraw_source, opened
from denoiser.io.backends.raw_preview import preview_jpeg, thumbnail
from denoiser.io.formats import RAW_EXTENSIONS
from denoiser.io.metadata import Metadata

if TYPE_CHECKING:
    import rawpy

__all__ = ["DEVELOP_SETTINGS", "RAW_READER", "claims_raw"]

DEVELOP_SETTINGS: dict[str, Any] = {
    "demosaic_algorithm": "AHD",  # a rawpy.DemosaicAlgorithm name (X-Trans sensors get LibRaw's own method)
    "use_camera_wb": True,  # the white balance the photographer shot with (daylight where the file has none)
    "use_auto_wb": False,
    "output_color": "sRGB",  # a rawpy.ColorSpace name
    "output_bps": 16,
    "gamma": (2.4, 12.92),  # the sRGB tone curve (rawpy's default is BT.709's)
    "no_auto_bright": True,  # the camera's exposure, not stretched so that 1% of the pixels clip
    "highlight_mode": "Clip",  # a rawpy.HighlightMode name: clipped highlights white, not pink
    "adjust_maximum_thr": 0.75,  # LibRaw's default: white level at the real saturation when highlights clip
    "bright": 1.0,
    "four_color_rgb": False,
    "half_size": False,
    "median_filter_passes": 0,  # no smoothing: denoising is this program's job
}
"""The rawpy ``postprocess`` parameters every RAW file is developed with (enum values by name)."""

# Where other RAW formats LibRaw reads say what they are: Fujifilm RAF, Canon CRW, Minolta MRW, Sigma X3F, Phase One.
_OTHER_RAW_MAGIC = ((0, b"FUJIFILM"), (6, b"HEAPCCDR"), (0, b"\x00MRM"), (0, b"FOVb"), (0, b"IIII"))


def claims_raw(path: Path, header: bytes, handle: BinaryIO) -> bool:
    """RAW files are known by their extension: most are TIFF inside, which Pillow would open as their thumbnail."""
    return path.suffix.lower() in RAW_EXTENSIONS


def _read(path: Path, handle: BinaryIO, max_pixels: int | None) -> tuple[np.ndarray, Metadata]:
    """The developed, upright 16-bit RGB pixels of the RAW file and its EXIF (orientation 1).

    LibRaw opens the file by its path and reads only what it needs, so a huge file that is no RAW, or holds too
    many pixels, is refused before it is read; the metadata is gathered from the whole file once it is developed.
    """
    if _file_size(path, handle) == 0:
        raise ImageReadError(path, "the file is empty")
    with _libraw_errors(path, handle), opened(libraw_source(path)) as raw:
        _refuse_too_many_pixels(path, raw, max_pixels)
        pixels = _develop(raw)
        exif = raw_exif(_whole_file(path, handle), tags_of_libraw(raw), lambda: preview_jpeg(raw))
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
        raise ImageReadError(path, f"unsupported RAW layout: developed into an array of shape {pixels.shape}")
    return pixels, Metadata(exif=exif, icc=None, orientation=1)


# --- LibRaw -------------------------------------------------------------------------------------------------------


def _file_size(path: Path, handle: BinaryIO) -> int:
    try:
        return handle.seek(0, io.SEEK_END)
    except OSError as exc:
        raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc


def _whole_file(path: Path, handle: BinaryIO) -> bytes:
    try:
        handle.seek(0)
        return handle.read()
    except OSError as exc:
        raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc


@contextlib.contextmanager
def _libraw_errors(path: Path, handle: BinaryIO) -> Iterator[None]:
    """LibRaw's errors (and running out of memory) as ImageReadError naming the file and saying what is wrong;
    the open file ``handle`` is looked at to tell a truncated RAW from something else."""
    import rawpy

    try:
        yield
    except rawpy.LibRawFileUnsupportedError as exc:
        if _cut_short(handle):
            raise ImageReadError(path, "damaged or truncated RAW file") from exc
        raise ImageReadError(path, "RAW from an unsupported camera, or not a RAW file") from exc
    except rawpy.LibRawIOError as exc:  # LibRaw ran out of file: a truncated RAW, or a tiny file of something else
        if not _starts_like_raw(handle):
            raise ImageReadError(path, "RAW from an unsupported camera, or not a RAW file") from exc
        raise ImageReadError(path, "damaged or truncated RAW file") from exc
    except (rawpy.LibRawDataError, rawpy.LibRawBadCropError) as exc:
        raise ImageReadError(path, "damaged or truncated RAW file") from exc
    except (rawpy.LibRawUnsufficientMemoryError, rawpy.LibRawMemPoolOverflowError, MemoryError) as exc:
        raise ImageReadError(path, "not enough memory to develop this RAW file") from exc
    except rawpy.LibRawTooBigError as exc:
        raise ImageReadError(path, "the RAW picture is too large for LibRaw to develop") from exc
    except rawpy.LibRawNotImplementedError as exc:
        raise ImageReadError(path, "this RAW file's data encoding is not supported by LibRaw") from exc
    except rawpy.LibRawRequestForNonexistentImageError as exc:
        raise ImageReadError(path, "the RAW file holds no picture") from exc
    except rawpy.LibRawError as exc:
        raise ImageReadError(path, f"cannot develop this RAW file: {_libraw_message(exc)}") from exc
    except OSError as exc:  # rawpy opening a path
        raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc


def _libraw_message(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return text or type(exc).__name__


def _starts_like_raw(handle: BinaryIO) -> bool:
    """Whether the file begins as a TIFF-based RAW, a CR3, RAF, CRW, MRW, X3F or IIQ file does."""
    try:
        handle.seek(0)
        head = handle.read(16)
    except OSError:
        return True  # cannot tell: say what LibRaw said
    return (head[:4] in TIFF_LIKE_HEADERS or head[4:12] == b"ftyp" + CR3_BRAND
            or any(head[at : at + len(magic)] == magic for at, magic in _OTHER_RAW_MAGIC))


def _cut_short(handle: BinaryIO) -> bool:
    """Whether the file is TIFF-based and its first directory lies (partly) past its end: truncated."""
    try:
        size = handle.seek(0, io.SEEK_END)
        handle.seek(0)
        header = handle.read(8)
        order = {b"I": "<", b"M": ">"}.get(header[:1])
        if order is None or header[:4] not in TIFF_LIKE_HEADERS or len(header) < 8:
            return False
        (first,) = struct.unpack_from(order + "I", header, 4)
        if first + 2 > size:
            return True
        handle.seek(first)
        (count,) = struct.unpack(order + "H", handle.read(2))
        return first + 2 + 12 * count > size
    except (OSError, struct.error):
        return False


def _refuse_too_many_pixels(path: Path, raw: rawpy.RawPy, max_pixels: int | None) -> None:
    width, height = developed_size(raw.sizes)
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(path, f"too many pixels: {width} x {height} = {width * height} (limit {max_pixels})")


def _develop(raw: rawpy.RawPy) -> np.ndarray:
    import rawpy

    settings = dict(DEVELOP_SETTINGS)
    settings["demosaic_algorithm"] = rawpy.DemosaicAlgorithm[settings["demosaic_algorithm"]]
    settings["output_color"] = rawpy.ColorSpace[settings["output_color"]]
    settings["highlight_mode"] = rawpy.HighlightMode[settings["highlight_mode"]]
    return np.asarray(raw.postprocess(rawpy.Params(**settings)))


RAW_READER = DirectReader("RAW", claims_raw, _read, thumbnail)
