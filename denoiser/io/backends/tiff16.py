"""The 16-bit TIFF backend: pixels through tifffile (Pillow cuts 16-bit colour to 8 bits and misreads some
layouts); the ICC profile and EXIF text tags travel as TIFF tags, the Exif and GPS sub-directories are appended
after tifffile has written the file (it cannot write them itself)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from denoiser.errors import ImageReadError, reason
from denoiser.io.backends.base import Backend, Source, grey_alpha_to_rgba, plain_metadata
from denoiser.io.backends.tifffile_writer import write_tiff
from denoiser.io.metadata import Metadata

__all__ = ["TIFF16", "tiff_bit_depth"]

_BITS_PER_SAMPLE_TAG = 258


def tiff_bit_depth(path: Path, im: PILImage.Image) -> int:
    """16 when a TIFF opened by Pillow has 16-bit samples, else 8; mixed sample sizes are refused."""
    bits = getattr(im, "tag_v2", {}).get(_BITS_PER_SAMPLE_TAG, 8)
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    if 16 in bits and set(bits) != {16}:
        raise ImageReadError(path, f"unsupported pixel format: mixed bits per sample {bits}")
    return 16 if 16 in bits else 8


def _read_pixels(source: Source) -> np.ndarray:
    import tifffile  # here, not at the top: only 16-bit TIFFs need it, and it loads imagecodecs

    path, handle = source.path, source.handle
    try:
        handle.seek(0)
        with tifffile.TiffFile(handle) as tif:
            page = tif.pages[0]
            photometric = int(page.photometric)
            axes = page.axes
            pixels = page.asarray()
    except Exception as exc:
        raise ImageReadError(path, f"cannot decode 16-bit TIFF: {reason(exc)}") from exc
    if pixels.dtype.kind != "u" or pixels.dtype.itemsize != 2:
        raise ImageReadError(path, f"unsupported pixel format: 16-bit {pixels.dtype.name} samples")
    pixels = pixels.astype(np.uint16, copy=False)  # big-endian files come back as '>u2'
    if pixels.ndim == 3 and axes.startswith("S"):
        pixels = np.moveaxis(pixels, 0, -1)  # planar (one plane per channel) layout
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 3:
        raise ImageReadError(path, f"unsupported TIFF layout: axes {axes!r}, shape {pixels.shape}")
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels = 65535 - pixels  # 0 means white in these files
        photometric = tifffile.PHOTOMETRIC.MINISBLACK
    channels = pixels.shape[2]
    if photometric == tifffile.PHOTOMETRIC.MINISBLACK and channels in (1, 2):
        return pixels if channels == 1 else grey_alpha_to_rgba(path, pixels)
    if photometric == tifffile.PHOTOMETRIC.RGB and channels in (3, 4):
        return pixels
    name = tifffile.PHOTOMETRIC(photometric).name if photometric in tifffile.PHOTOMETRIC else photometric
    raise ImageReadError(path, f"unsupported pixel format: 16-bit {name} TIFF with {channels} channels")


def _write(path: Path, pixels: np.ndarray, fmt: str, quality: int, metadata: Metadata) -> None:
    write_tiff(path, pixels, metadata)


TIFF16 = Backend("tifffile 16-bit TIFF", _read_pixels, plain_metadata, _write)
