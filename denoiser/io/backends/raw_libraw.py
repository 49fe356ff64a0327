"""Opening a RAW file with LibRaw (rawpy), shared by developing it (raw.py) and its preview (raw_preview.py): the
file as LibRaw takes it, opened and closed again, and the size of the picture LibRaw develops from it. rawpy is
imported only when a file is opened, so the rest works without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import rawpy

__all__ = ["developed_size", "libraw_source", "opened"]


class _InMemory:
    """A file's bytes as rawpy reads a file object (whole, with one ``read()``), without another copy."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self) -> bytes:
        return self.data


def libraw_source(path: Path) -> str | _InMemory:
    """The path as LibRaw opens it (reading only the parts it needs), or the file's bytes for a path rawpy cannot
    pass on (one that is not valid UTF-8)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return _InMemory(path.read_bytes())
    return str(path)


@contextlib.contextmanager
def opened(source: str | _InMemory) -> Iterator[rawpy.RawPy]:
    """The RAW file ``source`` (a :func:`libraw_source`) opened with LibRaw, closed again on leaving."""
    import rawpy  # here: the package is optional, and claims_raw must work without it

    raw = rawpy.imread(source)  # type: ignore[arg-type]  # rawpy reads any object with read()
    try:
        yield raw
    finally:
        raw.close()


def developed_size(sizes: rawpy.ImageSizes) -> tuple[int, int]:
    """Width and height of the developed picture before turning it upright (LibRaw stretches non-square pixels)."""
    width, height, aspect = int(sizes.width), int(sizes.height), float(sizes.pixel_aspect or 1.0)
    if aspect < 1:
        height = int(height / aspect + 0.5)
    elif aspect > 1:
        width = int(width * aspect + 0.5)
    return width, height
