"""Converting between uint8 numpy arrays and QImages, the one place where pixels cross into Qt.

``array_to_qimage`` always copies: a QImage built on a numpy buffer does not keep that buffer alive, so a
view that outlived its array would show freed memory. The copy is made by Qt from a C-contiguous array, so
slices, transposes and other strided views are safe to pass in.
"""

from __future__ import annotations

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
