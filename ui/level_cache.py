"""The display levels of the images a viewer shows: per image, a copy in the raster engine's fastest format and
a cached pyramid of smoothly halved copies, so that a fitted 12-megapixel photo neither shimmers with aliasing nor
costs a full-size rescale on every paint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage


def _display_copy(image: QImage) -> QImage:
    """``image`` in the format the raster engine draws fastest (no-op when it already is)."""
    fmt = QImage.Format.Format_ARGB32_Premultiplied if image.hasAlphaChannel() else QImage.Format.Format_RGB32
    return image if image.format() == fmt else image.convertToFormat(fmt)


class LevelCache:
    """Per shown image: a display-format copy and, made on first need, smoothly halved copies of it.

    Drawing below 100 % starts from the smallest level that still has at least one pixel per device pixel, so
    the smooth (bilinear) draw never skips source pixels (no aliasing) and never reads a 12-megapixel original
    to paint a thumbnail-sized view. Entries are keyed by ``QImage.cacheKey`` and pruned with :meth:`keep`.
    """

    def __init__(self) -> None:
        self._levels: dict[int, list[QImage]] = {}

    def put(self, image: QImage, levels: list[QImage]) -> None:
        """Use ``levels`` (from :func:`ui.qimage.display_levels_of`) for ``image``."""
        self._levels[image.cacheKey()] = list(levels)

    def keep(self, images: Iterable[QImage | None]) -> None:
        """Forget every image but these."""
        keys = {image.cacheKey() for image in images if image is not None}
        self._levels = {key: levels for key, levels in self._levels.items() if key in keys}

    def levels_of(self, image: QImage) -> list[QImage]:
        """A copy of the list of the levels made so far for ``image`` (at least its display-format copy)."""
        return list(self._levels.get(image.cacheKey(), [_display_copy(image)]))

    def level(self, image: QImage, zoom: float) -> tuple[QImage, float, float]:
        """The image to draw at ``zoom`` and its x and y scale relative to ``image``."""
        levels = self._levels.get(image.cacheKey())
        if levels is None:
            levels = self._levels[image.cacheKey()] = [_display_copy(image)]
        wanted = max(0, math.floor(-math.log2(zoom) + 1e-9)) if zoom < 1.0 else 0
        while len(levels) <= wanted and min(levels[-1].width(), levels[-1].height()) > 1:
            last = levels[-1]
            levels.append(last.scaled((last.width() + 1) // 2, (last.height() + 1) // 2,
                                      Qt.AspectRatioMode.IgnoreAspectRatio,
                                      Qt.TransformationMode.SmoothTransformation))
        chosen = levels[min(wanted, len(levels) - 1)]
        return chosen, chosen.width() / image.width(), chosen.height() / image.height()
