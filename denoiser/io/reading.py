"""Reading a photo into an :class:`~denoiser.io.image.Image`: open the file, let Pillow identify and fully decode
it (format by content, decompression-bomb guard, truncated files caught), then take pixels and metadata from the
backend the table names for its format and bit depth, and turn the pixels upright.

Every failure is an :class:`~denoiser.errors.ImageReadError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from denoiser.errors import DenoiserError, ImageReadError, UnknownNameError, reason
from denoiser.io.backends import Source, backend_for, stored_bit_depth
from denoiser.io.discovery import FORMAT_NAMES, FORMATS
from denoiser.io.image import Image
from denoiser.io.metadata import ORIENTATION_TAG, apply_orientation, valid_orientation

__all__ = ["open_file", "open_lazily", "read_image"]

# Restricting Pillow to these decoders keeps exotic (and less hardened) plugins away from untrusted files.
# Its JPEG decoder also opens MPO files (JPEGs from cameras that embed a second picture) and reports "MPO".
_PIL_FORMATS = ["PNG", "JPEG", "TIFF", "WEBP", "BMP"]


def read_image(path: str | Path, *, max_pixels: int | None = None) -> Image:
    """Read a PNG, JPEG, TIFF, WebP or BMP file into an :class:`Image`.

    Grey, RGB and RGBA pass through (grey+alpha and palette-with-transparency become RGBA, palette RGB,
    bilevel grey, CMYK RGB); 16-bit files keep all 16 bits. The EXIF orientation is applied to the pixels
    and reset to 1 in the kept EXIF. Images with more than ``max_pixels`` pixels (default: Pillow's
    ``PIL.Image.MAX_IMAGE_PIXELS``) are refused; Pillow's own guard stays on, so a larger ``max_pixels``
    than Pillow's limit does not lift it.

    Raises ImageReadError naming the file for every problem: missing, a folder, unreadable, not an image,
    truncated or damaged, an unsupported pixel format, or too many pixels.
    """
    path = Path(path)
    limit = PILImage.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    handle = open_file(path)  # closed by the with-block right below
    with handle:
        try:
            header = handle.read(32)
            handle.seek(0)
        except OSError as exc:
            raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc
        im, tiff_orientation = _open_with_pillow(path, handle, limit)
        with im:
            try:
                return _decode(path, handle, header, im, tiff_orientation)
            except DenoiserError:
                raise
            except Exception as exc:  # conversions of odd files: still a typed error, never a traceback
                raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc


def _open_with_pillow(path: Path, handle: BinaryIO, limit: int | None) -> tuple[PILImage.Image, int]:
    """The opened and fully decoded Pillow image, and (for TIFF) the EXIF orientation before decoding."""
    im = open_lazily(path, handle)
    width, height = im.size
    if limit is not None and width * height > limit:
        im.close()
        raise ImageReadError(path, f"too many pixels: {width} x {height} = {width * height} (limit {limit})")
    # Pillow turns TIFF pixels upright while decoding and then deletes the tag; the 16-bit backend, which
    # decodes the pixels again with tifffile, still needs to know the orientation.
    tiff_orientation = 1
    if im.format == "TIFF":
        with contextlib.suppress(Exception):
            tiff_orientation = valid_orientation(im.tag_v2.get(ORIENTATION_TAG, 1))
    try:
        im.load()  # force the full decode here, where a truncated file becomes a typed error
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, struct.error... on bad data
        im.close()
        if "truncated" in str(exc):
            raise ImageReadError(path, "the file is truncated (incomplete download or copy?)") from exc
        raise ImageReadError(path, f"damaged or unreadable image data: {reason(exc)}") from exc
    return im, tiff_orientation


def _decode(path: Path, handle: BinaryIO, header: bytes, im: PILImage.Image, tiff_orientation: int) -> Image:
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    if fmt not in FORMATS:
        raise ImageReadError(path, f"unsupported format {im.format}; supported: {FORMAT_NAMES}")
    source = Source(path, handle, header, im, fmt, tiff_orientation)
    depth = stored_bit_depth(source)
    try:
        backend = backend_for(fmt, depth)
    except UnknownNameError as err:
        raise ImageReadError(path, f"unsupported pixel format: {err}") from None
    metadata = backend.read_metadata(source)  # first: TIFF sub-directories are read from the open file
    pixels = apply_orientation(backend.read_pixels(source), metadata.orientation)
    return Image(
        pixels=np.ascontiguousarray(pixels),
        format=fmt,
        exif=metadata.exif,
        icc_profile=metadata.icc,
        source=Path(os.path.abspath(path)),
    )


def open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, or an ImageReadError saying why not (a folder, missing, no permission...)."""
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied (the file cannot be read)") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {reason(exc)}") from exc


def open_lazily(path: Path, handle: BinaryIO) -> PILImage.Image:
    """The Pillow image with its header parsed but its pixels not yet decoded (so ``draft`` still works).

    Pillow only warns between its limit and twice its limit; turning the warning into an exception makes sure
    a would-be decompression bomb is refused rather than logged. (catch_warnings is process-wide state, but it
    is only held for the header parse, not the decode.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            return PILImage.open(handle, formats=_PIL_FORMATS)
        except UnidentifiedImageError:
            raise ImageReadError(
                path, f"not an image file, or not in a supported format ({FORMAT_NAMES})"
            ) from None
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            count = f"{found.group(1)} pixels" if found else "more than allowed"
            raise ImageReadError(
                path,
                f"too many pixels: {count} (limit {PILImage.MAX_IMAGE_PIXELS}); refusing a possible "
                "decompression bomb",
            ) from None
        except Exception as exc:  # a damaged header can raise almost anything from inside a plugin
            raise ImageReadError(path, f"damaged or unreadable image: {reason(exc)}") from exc


def identify_format(path: str | Path) -> str:
    """The format a file holds, read from its content (``PNG``, ``JPEG``, ``TIFF``, ``WEBP``, ``BMP``), whatever
    its extension says; only the header is read. Raises ImageReadError naming the file when it is not a
    supported image."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            im = open_lazily(path, handle)
            return "JPEG" if im.format == "MPO" else str(im.format)
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {reason(exc)}") from exc
