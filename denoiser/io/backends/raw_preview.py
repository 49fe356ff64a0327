"""A RAW file's embedded preview (JPEG or bitmap) as a fast, upright thumbnail, so that browsing RAW files does
not develop each one; and the preview JPEG itself, whose EXIF raw_exif.py may read.

Which way up a preview is: its own EXIF orientation when it has one other than 1, otherwise the RAW's (LibRaw's
flip), except for a preview the camera already stored turned.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image as PILImage

from denoiser.io.backends.raw_libraw import developed_size, libraw_source, opened
from denoiser.io.metadata import ORIENTATION_TAG, apply_orientation

if TYPE_CHECKING:
    import rawpy

__all__ = ["preview_jpeg", "thumbnail"]

# LibRaw's flip (sizes.flip: bit 1 mirror left-right, bit 2 mirror top-bottom, bit 4 transpose) as EXIF orientation.
_ORIENTATION_OF_FLIP = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}
_TRANSPOSING = frozenset({5, 6, 7, 8})


def thumbnail(path: Path, max_side: int) -> np.ndarray | None:
    """The RAW file's embedded preview (JPEG or bitmap) as upright uint8 RGB, its longer side at most ``max_side``.

    None when the whole file must be developed instead: no preview embedded, one LibRaw cannot extract or Pillow
    cannot decode, one smaller than half of what was asked for (and than half the picture), or a file LibRaw
    cannot open at all (developing it then raises the ImageReadError that says what is wrong). Never raises.
    """
    try:
        with opened(libraw_source(path)) as raw:
            return _upright_preview(raw, max_side)
    except Exception:  # no preview, a damaged one, or no RAW file: the full read says what is wrong
        return None


def preview_jpeg(raw: rawpy.RawPy) -> bytes | None:
    """The embedded preview's bytes when it is a JPEG, else None (LibRaw's error when there is none)."""
    import rawpy

    preview = raw.extract_thumb()
    return preview.data if preview.format == rawpy.ThumbFormat.JPEG else None


def _upright_preview(raw: rawpy.RawPy, max_side: int) -> np.ndarray | None:
    """The embedded preview shrunk and turned upright; None when it is too small to stand in for the picture."""
    import rawpy

    preview = raw.extract_thumb()
    if preview.format == rawpy.ThumbFormat.JPEG:
        im = PILImage.open(io.BytesIO(preview.data), formats=["JPEG"])
        own_orientation = _orientation_in(im)
        stored_size = im.size
        im.draft("RGB", (2 * max_side, 2 * max_side))  # decode at 1/2, 1/4 or 1/8 scale where that suffices
    else:
        im = PILImage.fromarray(_bitmap_as_uint8(np.asarray(preview.data)))
        own_orientation = None
        stored_size = im.size
    developed = developed_size(raw.sizes)
    if max(stored_size) < min(max_side, max(developed)) / 2:
        return None
    im = im.convert("RGB")
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), PILImage.Resampling.BICUBIC)
    orientation = _preview_orientation(stored_size, own_orientation, int(raw.sizes.flip), developed)
    return np.ascontiguousarray(apply_orientation(np.asarray(im), orientation))


def _orientation_in(im: PILImage.Image) -> int | None:
    """The preview JPEG's own EXIF orientation (None when it has none, or an invalid one)."""
    try:
        value = im.getexif().get(ORIENTATION_TAG)
    except Exception:  # malformed EXIF: as if there were none
        return None
    return value if isinstance(value, int) and 1 <= value <= 8 else None


def _bitmap_as_uint8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint16:
        pixels = (pixels.astype(np.uint32) * 255 + 32767) // 65535
    pixels = pixels.astype(np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return pixels


def _preview_orientation(stored_size: tuple[int, int], own: int | None, flip: int,
                         developed: tuple[int, int]) -> int:
    """The EXIF orientation that turns the preview upright.

    A preview's own orientation tag, when it has one other than 1, describes its pixels (LibRaw puts an EXIF block
    with the RAW's orientation in front of a JPEG preview that has none); otherwise they are stored as the sensor
    reads out, like the RAW data, and the RAW's orientation applies. A preview the camera already stored turned
    (tall while the sensor reads out wide, or the other way round) gets no quarter turn again.
    """
    orientation = own if own not in (None, 1) else _ORIENTATION_OF_FLIP.get(flip, 1)
    if orientation in _TRANSPOSING:
        preview_wide = stored_size[0] > stored_size[1]
        sensor_wide = developed[0] > developed[1]
        if stored_size[0] != stored_size[1] and developed[0] != developed[1] and preview_wide != sensor_wide:
            return 1
    return int(orientation)
