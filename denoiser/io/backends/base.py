"""What every backend is: the opened file it reads from (:class:`Source`) and its three functions
(:class:`Backend`): stored pixels, metadata, and writing pixels with metadata. Formats Pillow does not decode
(camera RAW, HEIF, float TIFF) are read by a :class:`DirectReader` instead, which recognises its files itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image as PILImage

from denoiser.errors import ImageReadError
from denoiser.io.metadata import Metadata, icc_profile, read_exif

__all__ = ["Backend", "DirectReader", "Source", "grey_alpha_to_rgba", "plain_metadata"]


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
    The two readers are None for a format a :class:`DirectReader` reads (HEIF, float TIFF): its row in the table
    is for writing only.
    - ``write(path, pixels, format, quality, metadata)``: encode ``pixels`` (already at the backend's bit depth)
      and whatever of ``metadata`` the format holds to ``path``; any exception means failure.
    """

    name: str
    read_pixels: Callable[[Source], np.ndarray] | None
    read_metadata: Callable[[Source], Metadata] | None
    write: Callable[[Path, np.ndarray, str, int, Metadata], None]


@dataclass(frozen=True)
class DirectReader:
    """A reader for a format Pillow does not decode, tried before Pillow, in the order of
    :data:`~denoiser.io.backends.DIRECT_READERS`.

    - ``claims(path, header, handle)``: whether the file is this reader's, from its name, its first 32 bytes
      (``header``) or a cheap look into the open ``handle`` (leave its position anywhere). Must not need the
      format's library, so that a file of a format whose library is missing still gets a message saying so.
    - ``read(path, handle, max_pixels)``: the pixels (H x W x C, C in 1, 3, 4; uint8, uint16 or float32), not yet
      upright, and the metadata (EXIF with orientation reset to 1, ICC profile, orientation still to apply).
      Images with more than ``max_pixels`` pixels (None: no limit) are refused before they are decoded. Every
      problem raises ImageReadError naming the file and what is wrong.
    - ``thumbnail(path, max_side)``: optional, a fast upright uint8 RGB preview, its longer side at most
      ``max_side`` (RAW: the embedded JPEG); it returns None for a file without a quick preview, and then the
      whole image is read and shrunk.
    """

    format: str
    claims: Callable[[Path, bytes, BinaryIO], bool]
    read: Callable[[Path, BinaryIO, int | None], tuple[np.ndarray, Metadata]]
    thumbnail: Callable[[Path, int], np.ndarray | None] | None = None


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

