"""The table that picks a backend for a (format, bit depth): one backend per format family.

Adding a format or a depth is one backend module and one row in :data:`BACKENDS` (plus its row in
:data:`denoiser.io.formats.FORMAT_TABLE`, and a row in :data:`_DEPTH_PROBES` when the format comes in several
depths). Formats Pillow cannot open are read by the :data:`DIRECT_READERS`, tried first.
"""

from __future__ import annotations

from collections.abc import Callable

from denoiser.errors import UnknownNameError
from denoiser.io.backends.base import Backend, DirectReader, Source
from denoiser.io.backends.heif import HEIF, HEIF_READER
from denoiser.io.backends.pillow import PILLOW
from denoiser.io.backends.png16 import PNG16, png_bit_depth
from denoiser.io.backends.raw import RAW_READER
from denoiser.io.backends.tiff16 import TIFF16, tiff_bit_depth
from denoiser.io.backends.tiff_float import FLOAT_TIFF_READER, TIFF_FLOAT

__all__ = [
    "BACKENDS",
    "DIRECT_READERS",
    "Backend",
    "DirectReader",
    "Source",
    "backend_for",
    "has_backend",
    "stored_bit_depth",
]

BACKENDS: dict[tuple[str, int], Backend] = {
    ("PNG", 8): PILLOW,
    ("PNG", 16): PNG16,
    ("JPEG", 8): PILLOW,
    ("TIFF", 8): PILLOW,
    ("TIFF", 16): TIFF16,
    ("TIFF", 32): TIFF_FLOAT,
    ("WEBP", 8): PILLOW,
    ("BMP", 8): PILLOW,
    ("HEIF", 8): HEIF,
    ("HEIF", 16): HEIF,
    ("AVIF", 8): PILLOW,
}

DIRECT_READERS: tuple[DirectReader, ...] = (RAW_READER, HEIF_READER, FLOAT_TIFF_READER)
"""Readers for what Pillow does not decode, tried in this order before Pillow (RAW first: most RAW formats are
TIFF inside, and a float TIFF reader would otherwise look at them)."""

# The bit depth (8 or 16) a file of a format that comes in several depths holds; other formats hold 8.
_DEPTH_PROBES: dict[str, Callable[[Source], int]] = {
    "PNG": lambda source: png_bit_depth(source.header),
    "TIFF": lambda source: tiff_bit_depth(source.path, source.pillow),
}


def stored_bit_depth(source: Source) -> int:
    """8 or 16: the bit depth of the file ``source`` (ImageReadError naming it for layouts no backend reads)."""
    probe = _DEPTH_PROBES.get(source.format)
    return 8 if probe is None else probe(source)


def has_backend(fmt: str, bit_depth: int) -> bool:
    """Whether a backend reads and writes ``fmt`` (Pillow's format name) at ``bit_depth``."""
    return (fmt, bit_depth) in BACKENDS


def backend_for(fmt: str, bit_depth: int) -> Backend:
    """The backend for ``fmt`` at ``bit_depth``; UnknownNameError naming the combination and the known ones."""
    try:
        return BACKENDS[(fmt, bit_depth)]
    except KeyError:
        known = [f"{name} {depth}-bit" for name, depth in BACKENDS]
        raise UnknownNameError("image format and bit depth", f"{fmt} {bit_depth}-bit", known) from None
