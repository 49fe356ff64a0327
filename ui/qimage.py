"""Converting between uint8 numpy arrays and QImages, the one place where pixels cross into Qt; and the display
levels a viewer draws from (the display-format image and its halved copies), made with numpy.

``array_to_qimage`` always copies: a QImage built on a numpy buffer does not keep that buffer alive, so a
view that outlived its array would show freed memory. The copy is made by Qt from a C-contiguous array, so
slices, transposes and other strided views are safe to pass in.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from PySide6.QtGui import QImage

# Channels -> the QImage format holding them byte for byte (one byte per channel, no padding per pixel).
_FORMATS = {
    1: QImage.Format.Format_Grayscale8,
    3: QImage.Format.Format_RGB888,
    4: QImage.Format.Format_RGBA8888,
}


def array_to_qimage(array: np.ndarray) -> QImage:
    """A QImage that owns a copy of ``array``: uint8 H x W (grey), H x W x 1, H x W x 3 (RGB) or H x W x 4 (RGBA).

    Raises ValueError for any other dtype or shape, or an empty image.
    """
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 numpy array, got {getattr(array, 'dtype', type(array).__name__)}")
    if array.ndim == 2:
        channels = 1
    elif array.ndim == 3 and array.shape[2] in _FORMATS:
        channels = array.shape[2]
    else:
        raise ValueError(f"expected H x W or H x W x 1/3/4, got shape {array.shape}")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"cannot show an empty image of shape {array.shape}")
    # Rows must be packed for QImage's (data, bytes_per_line) constructor; a strided view is packed here.
    data = np.ascontiguousarray(array.reshape(height, width, channels))
    view = QImage(data.data, width, height, data.strides[0], _FORMATS[channels])
    # copy() while ``data`` is still referenced: afterwards the QImage owns its pixels.
    return view.copy()


def qimage_to_array(image: QImage, alpha: bool = False) -> np.ndarray:
    """The pixels of ``image`` as a new uint8 H x W x 3 RGB array (H x W x 4 RGBA with ``alpha=True``).

    Raises ValueError for a null image.
    """
    if image.isNull():
        raise ValueError("cannot convert a null QImage")
    channels = 4 if alpha else 3
    converted = image.convertToFormat(QImage.Format.Format_RGBA8888 if alpha else QImage.Format.Format_RGB888)
    height, width, stride = converted.height(), converted.width(), converted.bytesPerLine()
    # Qt pads each row to 4 bytes: read whole rows, then drop the padding.
    rows = np.frombuffer(converted.constBits(), dtype=np.uint8, count=stride * height).reshape(height, stride)
    return rows[:, : width * channels].reshape(height, width, channels).copy()


def _blank_rgb32(height: int, width: int) -> tuple[QImage, np.ndarray]:
    """A new ``Format_RGB32`` QImage and a writable H x W x 4 byte view of its pixels (valid while it lives)."""
    image = QImage(width, height, QImage.Format.Format_RGB32)
    stride = image.bytesPerLine()
    rows = np.frombuffer(image.bits(), np.uint8, count=stride * height).reshape(height, stride)
    return image, rows[:, : width * 4].reshape(height, width, 4)


def _rgb32_view(image: QImage) -> np.ndarray:
    """A read-only H x W x 4 byte view of a ``Format_RGB32`` image's pixels (valid while it lives)."""
    height, width, stride = image.height(), image.width(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=stride * height).reshape(height, stride)
    return rows[:, : width * 4].reshape(height, width, 4)


def _write_rgb32(out: np.ndarray, array: np.ndarray) -> None:
    """Write uint8 H x W grey or H x W x 3 RGB pixels into ``out``, H x W x 4 bytes of ``Format_RGB32``
    (0xffRRGGBB words in the machine's byte order)."""
    colour = array if array.ndim == 3 else array[:, :, None]
    blue, green, red, alpha = (0, 1, 2, 3) if sys.byteorder == "little" else (3, 2, 1, 0)
    out[:, :, red] = colour[:, :, 0]
    out[:, :, green] = colour[:, :, 1 if colour.shape[2] == 3 else 0]
    out[:, :, blue] = colour[:, :, 2 if colour.shape[2] == 3 else 0]
    out[:, :, alpha] = 255


def _halve_into(source: np.ndarray, out: np.ndarray) -> None:
    """Write ``source`` (H x W x 4 bytes) at half the size, rounded up, into ``out``: each pixel the mean of the
    (up to) four it covers, the last row and column repeated where the size is odd."""
    height, width = source.shape[:2]
    if height % 2 or width % 2:
        source = np.pad(source, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    total = source[0::2, 0::2].astype(np.uint16)
    total += source[1::2, 0::2]
    total += source[0::2, 1::2]
    total += source[1::2, 1::2]
    total += 2
    total >>= 2
    out[...] = total


def _levels(image: QImage, pixels: np.ndarray, smallest: int) -> list[QImage]:
    """``image`` (``Format_RGB32``, its bytes ``pixels``) and its halved copies down to ``smallest`` pixels."""
    levels = [image]
    while min(pixels.shape[:2]) > smallest:
        half, half_pixels = _blank_rgb32((pixels.shape[0] + 1) // 2, (pixels.shape[1] + 1) // 2)
        _halve_into(pixels, half_pixels)
        levels.append(half)
        pixels = half_pixels
    return levels


def _check_pixels(array: np.ndarray) -> None:
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or not (
            array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"expected uint8 H x W or H x W x 3 pixels, got {getattr(array, 'shape', array)}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"cannot show an empty image of shape {array.shape}")


def display_levels_of(array: np.ndarray, smallest: int = 128) -> list[QImage]:
    """The display-format (``Format_RGB32``) image of ``array`` (uint8 H x W grey or H x W x 3 RGB) and its
    halved copies down to ``smallest`` pixels on the shorter side, as the viewer would make them of a QImage
    with Qt.

    Written by numpy straight into the QImages' memory, which lets other threads run meanwhile: Qt's own
    conversion, scaling and copying of a 12-megapixel photo each hold Python's lock for tens of milliseconds,
    which the GUI thread would wait out.
    """
    _check_pixels(array)
    image, pixels = _blank_rgb32(*array.shape[:2])
    _write_rgb32(pixels, array)
    return _levels(image, pixels, smallest)


def pasted_levels(base: QImage | Sequence[QImage], patch: np.ndarray, left: int, top: int,
                  smallest: int = 128) -> list[QImage]:
    """:func:`display_levels_of` a copy of ``base`` with ``patch`` (uint8 grey or RGB pixels) written at
    (``left``, ``top``); the patch must lie inside ``base``.

    ``base`` is an image, or its display levels (the image and its halved copies, as shown now): then each level is
    copied and only the part the patch covers is halved again, so a patch costs about its own size plus a copy of
    the levels, not a pass over the whole photo."""
    _check_pixels(patch)
    given = [base] if isinstance(base, QImage) else list(base)
    image, pixels = _rgb32_copy(given[0])
    _write_rgb32(pixels[top : top + patch.shape[0], left : left + patch.shape[1]], patch)
    levels, rows, columns = [image], (top, top + patch.shape[0]), (left, left + patch.shape[1])
    whole = False
    while min(pixels.shape[:2]) > smallest:
        size = ((pixels.shape[0] + 1) // 2, (pixels.shape[1] + 1) // 2)
        ready = given[len(levels)] if len(levels) < len(given) else None
        rows, columns = (rows[0] // 2, (rows[1] + 1) // 2), (columns[0] // 2, (columns[1] + 1) // 2)
        if ready is not None and (ready.height(), ready.width()) == size and not whole:
            half, half_pixels = _rgb32_copy(ready)
            _halve_into(pixels[2 * rows[0] : 2 * rows[1], 2 * columns[0] : 2 * columns[1]],
                        half_pixels[rows[0] : rows[1], columns[0] : columns[1]])
        else:
            half, half_pixels = _blank_rgb32(*size)
            _halve_into(pixels, half_pixels)
            whole = True  # the levels below are halved from this one, whole
        levels.append(half)
        pixels = half_pixels
    return levels


def _rgb32_copy(image: QImage) -> tuple[QImage, np.ndarray]:
    """A new ``Format_RGB32`` copy of ``image`` and a writable H x W x 4 byte view of its pixels."""
    if image.format() != QImage.Format.Format_RGB32:
        image = image.convertToFormat(QImage.Format.Format_RGB32)
    copy, pixels = _blank_rgb32(image.height(), image.width())
    pixels[...] = _rgb32_view(image)
    return copy, pixels


def enlarged_levels(small: np.ndarray, step: int, height: int, width: int, smallest: int = 128) -> list[QImage]:
    """:func:`display_levels_of` ``small`` (uint8 grey or RGB pixels) enlarged ``step`` times, each pixel a
    ``step`` x ``step`` block, cut to ``height`` x ``width``: a photo composed at screen scale, at its own size."""
    _check_pixels(small)
    colour = small if small.ndim == 3 else small[:, :, None]
    blocks = np.broadcast_to(colour[:, None, :, None, :], (colour.shape[0], step, colour.shape[1], step,
                                                           colour.shape[2]))
    enlarged = np.ascontiguousarray(blocks).reshape(colour.shape[0] * step, colour.shape[1] * step, -1)
    enlarged = enlarged[:height, :width]
    return display_levels_of(enlarged if small.ndim == 3 else enlarged[:, :, 0], smallest)
