"""What every backend is: the opened file it reads from (:class:`Source`) and its three functions
(:class:`Backend`): stored pixels, metadata, and writing pixels with metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image as PILImage

from denoiser.errors import ImageReadError
from denoiser.io.metadata import Metadata, icc_profile, read_exif

__all__ = ["Backend", "Source", "grey_alpha_to_rgba", "plain_metadata"]


@dataclass(frozen=True)
class Source:
    """An image file being read: opened, identified and fully decoded once by Pillow (which checks it is whole).

    ``header`` is the file's first bytes; ``tiff_orientation`` a TIFF's EXIF orientation as read before Pillow
    applied (and deleted) it, 1 for other formats.
    """

    path: Path
    handle: BinaryIO
    header: bytes
    pillow: PILImage.Image
    format: str
    tiff_orientation: int = 1


@dataclass(frozen=True)
class Backend:
    """One decoder/encoder for a family of formats and bit depths, looked up in :data:`~denoiser.io.backends.BACKENDS`.

    - ``read_pixels(source)``: the pixels as stored (H x W x C, C in 1, 3, 4, uint8 or uint16), not yet upright;
      raises ImageReadError naming the file for pixel formats it cannot hold.
    - ``read_metadata(source)``: EXIF (orientation reset to 1), ICC profile valid for those pixels, and the
      orientation still to apply to them.
    - ``write(path, pixels, format, quality, metadata)``: encode ``pixels`` (already at the backend's bit depth)
      and whatever of ``metadata`` the format holds to ``path``; any exception means failure.
    """

    name: str
    read_pixels: Callable[[Source], np.ndarray]
    read_metadata: Callable[[Source], Metadata]
    write: Callable[[Path, np.ndarray, str, int, Metadata], None]


def grey_alpha_to_rgba(path: Path, pixels: np.ndarray) -> np.ndarray:
    """H x W x 2 grey+alpha as RGBA (an Image has no grey+alpha layout); other channel counts are refused."""
    if pixels.shape[2] != 2:
        raise ImageReadError(path, f"unsupported pixel format: {pixels.shape[2]} channels")
    grey, alpha = pixels[..., :1], pixels[..., 1:]
    return np.concatenate([grey, grey, grey, alpha], axis=2)


def plain_metadata(source: Source) -> Metadata:
    """EXIF, orientation and ICC profile as Pillow read them: what the 16-bit backends keep."""
    exif, orientation = read_exif(source.pillow, source.format, source.tiff_orientation)
    return Metadata(exif, icc_profile(source.pillow), orientation)

