"""Reading a photo into an :class:`~denoiser.io.image.Image`: formats Pillow does not decode (camera RAW, HEIF,
float TIFF) go to the direct reader that claims them; everything else is identified and fully decoded by Pillow
(format by content, decompression-bomb guard, truncated files caught), then pixels and metadata come from the
backend the table names for its format and bit depth. Last, the pixels are turned upright.

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
from denoiser.io.backends import DIRECT_READERS, DirectReader, Source, backend_for, stored_bit_depth
from denoiser.io.formats import FORMAT_NAMES, FORMATS, format_info
from denoiser.io.image import Image
from denoiser.io.metadata import ORIENTATION_TAG, Metadata, apply_orientation, valid_orientation

__all__ = ["direct_reader_for", "open_file", "open_lazily", "read_image"]

# Restricting Pillow to these decoders keeps exotic (and less hardened) plugins away from untrusted files.
# Its JPEG decoder also opens MPO files (JPEGs from cameras that embed a second picture) and reports "MPO".
_PIL_FORMATS = ["PNG", "JPEG", "TIFF", "WEBP", "BMP", *(["AVIF"] if format_info("AVIF").available else [])]


def read_image(path: str | Path, *, max_pixels: int | None = None) -> Image:
    """Read an image file of any format in :data:`~denoiser.io.formats.FORMAT_TABLE` into an :class:`Image`.

    Grey, RGB and RGBA pass through (grey+alpha and palette-with-transparency become RGBA, palette RGB,
    bilevel grey, CMYK RGB); 16-bit files keep all 16 bits, float TIFFs their float values. Camera RAW files
    are developed (camera white balance, sRGB) into 16-bit pixels. The EXIF orientation is applied to the pixels
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
        reader = direct_reader_for(path, header, handle)
        if reader is not None:
            return _read_directly(path, handle, reader, limit)
        handle.seek(0)
        im, tiff_orientation = _open_with_pillow(path, handle, limit)
        with im:
            try:
                return _decode(path, handle, header, im, tiff_orientation)
            except DenoiserError:
                raise
            except Exception as exc:  # conversions of odd files: still a typed error, never a traceback
                raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc


def direct_reader_for(path: Path, header: bytes, handle: BinaryIO) -> DirectReader | None:
    """The direct reader that claims the file (RAW, HEIF, float TIFF...), or None for Pillow's formats.

    A claimed file of a format whose library is missing raises ImageReadError saying what to install.
    """
    for reader in DIRECT_READERS:
        try:
            claimed = reader.claims(path, header, handle)
        except Exception:  # a damaged file that merely looks like this format: let the next reader try
            claimed = False
        if claimed:
            info = format_info(reader.format)
            if not info.available:
                raise ImageReadError(path, f"{info.label} files cannot be read here: {info.missing()}")
            return reader
    return None


def _read_directly(path: Path, handle: BinaryIO, reader: DirectReader, limit: int | None) -> Image:
    handle.seek(0)
    try:
        pixels, metadata = reader.read(path, handle, limit)
        return _image(path, reader.format, pixels, metadata)  # here too: odd data may give pixels of odd shape
    except DenoiserError:
        raise
    except Exception as exc:  # the format's library failing on odd data: still a typed error naming the file
        label = format_info(reader.format).label
        raise ImageReadError(path, f"damaged or unreadable {label} file: {reason(exc)}") from exc


def _image(path: Path, fmt: str, pixels: np.ndarray, metadata: Metadata) -> Image:
    """The Image of stored ``pixels`` turned upright, with the metadata to keep."""
    return Image(
        pixels=np.ascontiguousarray(apply_orientation(pixels, metadata.orientation)),
        format=fmt,
        exif=metadata.exif,
        icc_profile=metadata.icc,
        source=Path(os.path.abspath(path)),
    )


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
    if backend.read_pixels is None or backend.read_metadata is None:  # a write-only row: not a layout Pillow reads
        raise ImageReadError(path, f"unsupported pixel format: {fmt} {depth}-bit through Pillow")
    metadata = backend.read_metadata(source)  # first: TIFF sub-directories are read from the open file
    return _image(path, fmt, backend.read_pixels(source), metadata)


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
    """The format a file holds, read from its content (``PNG``, ``JPEG``, ``TIFF``, ``HEIF``... and ``RAW`` for
    camera RAW extensions), whatever its extension says; only the header is read. Raises ImageReadError naming
    the file when it is not a supported image."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            reader = direct_reader_for(path, handle.read(32), handle)
            if reader is not None:
                return reader.format
            handle.seek(0)
            im = open_lazily(path, handle)
            return "JPEG" if im.format == "MPO" else str(im.format)
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {reason(exc)}") from exc
