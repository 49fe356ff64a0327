"""32-bit float TIFF (scientific and HDR work) through tifffile: grey, RGB and RGBA, any finite values (outside
0-1 too) read and written back as float."""

from __future__ import annotations

import importlib.util
import math
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image as PILImage

from denoiser.errors import ImageReadError, reason
from denoiser.io.backends.base import Backend, DirectReader, grey_alpha_to_rgba
from denoiser.io.backends.tifffile_writer import write_tiff
from denoiser.io.metadata import ORIENTATION_TAG, Metadata, exif_for_tiff, valid_orientation

if TYPE_CHECKING:  # tifffile is imported inside the functions: it loads imagecodecs, which a TIFF-less run never needs
    import tifffile

__all__ = ["FLOAT_TIFF_READER", "TIFF_FLOAT", "claims_float_tiff"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF, both byte orders
# TIFF SampleFormat values (tifffile's SAMPLEFORMAT): IEEEFP, COMPLEXINT, COMPLEXIEEEFP. Complex samples are claimed
# too, so that such a file is refused saying what it holds rather than as "not an image".
_IEEEFP = 3
_CLAIMED_SAMPLE_FORMATS = frozenset({_IEEEFP, 5, 6})
_ICC_TAG = 34675
_DESCRIPTION_TAG = 270
_FLOAT_PREDICTOR = 3
_PREDICTOR_NAMES = {2: "horizontal", _FLOAT_PREDICTOR: "floating-point"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def claims_float_tiff(path: Path, header: bytes, handle: BinaryIO) -> bool:
    """A TIFF whose first image holds floating-point samples (SampleFormat 3), or complex ones (refused on reading
    with a message saying so)."""
    if header[:4] not in _TIFF_MAGIC:
        return False
    import tifffile

    handle.seek(0)
    with tifffile.TiffFile(handle) as tif:
        return int(tif.pages.first.sampleformat) in _CLAIMED_SAMPLE_FORMATS


def _read(path: Path, handle: BinaryIO, max_pixels: int | None) -> tuple[np.ndarray, Metadata]:
    """The first image's samples as float32 H x W x C (not yet upright) and its metadata."""
    import tifffile

    handle.seek(0)
    with tifffile.TiffFile(handle) as tif:
        page = tif.pages.first
        _check_sample_format(path, page)
        _check_size(path, page, max_pixels)
        layout = _layout(path, page)
        _check_segments(path, page)
        _check_decodable(path, page)
        try:
            samples = page.asarray()
        except Exception as exc:  # truncated strips, corrupt compressed data...
            raise ImageReadError(path, f"damaged or unreadable float TIFF: {reason(exc)}") from exc
        metadata = Metadata(_photo_exif(handle, tif), _icc_profile(page), _orientation(page))
    pixels = _as_float32(path, samples)
    _refuse_non_finite(path, pixels)
    if page.axes.startswith("S"):
        pixels = np.moveaxis(pixels, 0, -1)  # planar layout: one plane per channel
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if layout == "grey+alpha":
        pixels = grey_alpha_to_rgba(path, pixels)
    return pixels, metadata


def _check_sample_format(path: Path, page: tifffile.TiffPage) -> None:
    import tifffile

    if int(page.sampleformat) != _IEEEFP:
        name = _enum_name(tifffile.SAMPLEFORMAT, page.sampleformat)
        raise ImageReadError(path, f"unsupported pixel format: TIFF with {name} samples (complex numbers are not "
                                   "an image the denoiser can work on)")


def _check_size(path: Path, page: tifffile.TiffPage, max_pixels: int | None) -> None:
    width, height, depth = int(page.imagewidth), int(page.imagelength), int(page.imagedepth)
    if width < 1 or height < 1:  # tifffile then decodes an empty 1-D array
        raise ImageReadError(path, f"damaged float TIFF: it says its picture is {width} x {height} pixels")
    if depth > 1:
        raise ImageReadError(path, f"unsupported TIFF layout: a 3-D float volume ({depth} slices of "
                                   f"{width} x {height}), not a picture")
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(path, f"too many pixels: {width} x {height} = {width * height} (limit {max_pixels})")


def _layout(path: Path, page: tifffile.TiffPage) -> str:
    """``grey``, ``grey+alpha``, ``rgb`` or ``rgba``: what the page's samples are, from its tags."""
    from tifffile import PHOTOMETRIC

    photometric, samples = int(page.photometric), int(page.samplesperpixel)
    layouts = {
        (PHOTOMETRIC.MINISBLACK, 1): "grey",
        (PHOTOMETRIC.MINISBLACK, 2): "grey+alpha",
        (PHOTOMETRIC.RGB, 3): "rgb",
        (PHOTOMETRIC.RGB, 4): "rgba",
    }
    layout = layouts.get((photometric, samples))
    if layout is None:
        name = _enum_name(PHOTOMETRIC, photometric)
        raise ImageReadError(path, f"unsupported pixel format: {name} float TIFF with {samples} channels "
                                   "(grey, grey+alpha, RGB and RGBA are read)")
    return layout


def _check_segments(path: Path, page: tifffile.TiffPage) -> None:
    """Refuse a page that lists fewer strips (or tiles) than its size needs: tifffile would go through every
    missing one, and a header of a few hundred bytes can ask for millions (minutes and gigabytes)."""
    needed = math.prod(page.chunked)
    listed = min(len(page.dataoffsets), len(page.databytecounts))
    if listed < needed:
        kind = "tiles" if page.is_tiled else "strips"
        raise ImageReadError(path, f"damaged float TIFF: it lists {listed} of the {needed} {kind} its picture needs")


def _check_decodable(path: Path, page: tifffile.TiffPage) -> None:
    """Refuse, before decoding, a compression or predictor this install's tifffile cannot undo."""
    import tifffile

    missing = []
    if page.compression not in tifffile.TIFF.DECOMPRESSORS:
        missing.append(f"{_enum_name(tifffile.COMPRESSION, page.compression)} compression")
    if page.predictor not in tifffile.TIFF.UNPREDICTORS:
        predictor = int(page.predictor)
        missing.append(f"the {_PREDICTOR_NAMES.get(predictor, f'number {predictor}')} predictor")
    if not missing:
        return
    what = " and ".join(missing)
    if importlib.util.find_spec("imagecodecs") is None:
        raise ImageReadError(path, f"float TIFF with {what} cannot be decoded here: needs the Python package "
                                   "imagecodecs (pip install imagecodecs)")
    raise ImageReadError(path, f"unsupported float TIFF: {what} cannot be decoded")


def _enum_name(kind: type[IntEnum], value: int) -> str:
    """The tag value's name in tifffile's enum ``kind`` (``LZW``, ``RGB``...), or its number."""
    try:
        return kind(int(value)).name
    except ValueError:
        return f"number {int(value)}"


def _as_float32(path: Path, samples: np.ndarray) -> np.ndarray:
    """float16/32/64 samples as native float32; float64 values float32 cannot hold are refused."""
    if samples.dtype.kind != "f":
        raise ImageReadError(path, f"unsupported pixel format: {samples.dtype.name} samples in a float TIFF")
    if samples.dtype.itemsize > 4:
        too_large = int(np.count_nonzero(np.isfinite(samples) & (np.abs(samples) > _FLOAT32_MAX)))
        if too_large:
            raise ImageReadError(path, f"float TIFF with {_count(too_large, 'value')} beyond the 32-bit float "
                                       f"range (+-{_FLOAT32_MAX:.3g}), which the denoiser works in")
    return samples.astype(np.float32, copy=False)  # also native byte order: big-endian files come as '>f4'


def _refuse_non_finite(path: Path, pixels: np.ndarray) -> None:
    if np.isfinite(pixels).all():
        return
    counts = [(int(np.count_nonzero(np.isnan(pixels))), "NaN value"),
              (int(np.count_nonzero(np.isinf(pixels))), "infinite value")]
    found = " and ".join(_count(count, noun) for count, noun in counts if count)
    raise ImageReadError(path, f"float TIFF with {found}: only finite numbers can be denoised")


def _count(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _icc_profile(page: tifffile.TiffPage) -> bytes | None:
    value = page.tags.valueof(_ICC_TAG)
    return bytes(value) if isinstance(value, (bytes, bytearray, np.ndarray)) and len(value) else None


def _orientation(page: tifffile.TiffPage) -> int:
    try:
        return valid_orientation(int(page.tags.valueof(ORIENTATION_TAG, 1)))
    except (TypeError, ValueError):  # a malformed tag: leave the pixels as stored
        return 1


def _photo_exif(handle: BinaryIO, tif: tifffile.TiffFile) -> bytes | None:
    """The photo-describing tags of the first IFD (camera, date, copyright..., the Exif and GPS sub-IFDs) as an
    EXIF block with orientation 1, read by Pillow from the open file (it cannot decode float RGB pixels, but
    reads their tags); None when there are none or they are unreadable."""
    try:
        exif = PILImage.Exif()
        exif.endian = tif.byteorder
        exif.bigtiff = tif.is_bigtiff
        exif.load_from_fp(handle, tif.pages.first.offset)
        if tif.is_shaped or tif.is_imagej:
            exif.pop(_DESCRIPTION_TAG, None)  # the writing library's layout notes, not a photo description
        kept = exif_for_tiff(exif.tobytes())  # also loads the sub-IFDs, while the file is open
        return kept.tobytes() if kept is not None else None
    except Exception:  # malformed tags: better to open the picture without them than not at all
        return None


def _write(path: Path, pixels: np.ndarray, fmt: str, quality: int, metadata: Metadata) -> None:
    """Float32 grey, RGB or RGBA (unassociated alpha), zlib-compressed (with the floating-point predictor where
    tifffile can encode it), ICC profile and EXIF kept."""
    import tifffile

    predictor = _FLOAT_PREDICTOR if _FLOAT_PREDICTOR in tifffile.TIFF.PREDICTORS else None
    write_tiff(path, np.asarray(pixels, dtype=np.float32), metadata, predictor)


FLOAT_TIFF_READER = DirectReader("TIFF", claims_float_tiff, _read)
TIFF_FLOAT = Backend("tifffile float TIFF", None, None, _write)  # read by the direct reader
