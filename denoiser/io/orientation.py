"""The eight ways an image can lie (the flips and quarter turns of a rectangle: the dihedral group of order 8), as
numpy views on H x W x C arrays, numbered as EXIF numbers its orientations.

:data:`UPRIGHT` turns stored pixels upright for an EXIF orientation (as ``PIL.ImageOps.exif_transpose`` does),
which reading photos and thumbnails use; the self-ensemble of :mod:`denoiser.inference` turns an image each way of
:data:`ENSEMBLE_ORDER` and back again with :func:`inverse_of`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["ENSEMBLE_ORDER", "UPRIGHT", "Turn", "inverse_of"]

Turn = Callable[[np.ndarray], np.ndarray]
"""One flip or turn: an H x W x C array in, a view of it out."""

UPRIGHT: dict[int, Turn] = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # turned half round
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),  # a quarter turn clockwise
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],  # mirrored along the other diagonal
    8: lambda a: np.rot90(a, 1),  # a quarter turn anticlockwise
}
"""EXIF orientation (1-8) -> what turns pixels stored that way upright."""

_INVERSE = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
"""Each orientation's inverse: the flips and the half turn undo themselves, the two quarter turns each other."""

ENSEMBLE_ORDER: tuple[int, ...] = (1, 2, 4, 3, 5, 8, 6, 7)
"""The orientations the self-ensemble denoises in, the first k for k passes: as is, the flips and the half turn
(mirrors and rotations that keep the image's shape), then the four that swap height and width."""


def inverse_of(orientation: int) -> int:
    """The orientation that undoes ``orientation``: ``UPRIGHT[inverse_of(k)](UPRIGHT[k](a))`` is ``a``."""
    return _INVERSE[orientation]
