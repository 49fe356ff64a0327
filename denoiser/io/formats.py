"""The formats this install reads and writes: one row per format family, its extensions, bit depths, the library
that decodes it and whether that library is present.

Everything else derives from :data:`FORMAT_TABLE`: the extensions folders are searched for, the Open and Save
dialogs' filters, the batch's output names, ``denoiser formats``. A format whose library is missing is listed as
unavailable (with the package to install) instead of breaking the app.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FORMATS",
    "FORMAT_NAMES",
    "FORMAT_TABLE",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "WRITABLE_EXTENSIONS",
    "FormatInfo",
    "format_info",
    "output_format_of",
    "result_extension",
    "unavailable_formats",
]

RAW_EXTENSIONS: tuple[str, ...] = (
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".raf", ".orf", ".rw2", ".rwl",
    ".pef", ".srw", ".x3f", ".3fr", ".fff", ".iiq", ".mos", ".mrw", ".erf", ".kdc", ".dcr", ".mef", ".raw",
)
"""Camera RAW extensions LibRaw reads (Adobe DNG, Canon, Nikon, Sony, Fujifilm, Olympus/OM, Panasonic/Leica,
Pentax, Samsung, Sigma, Hasselblad, Phase One, Leaf, Minolta, Epson, Kodak, Mamiya)."""


@dataclass(frozen=True)
class FormatInfo:
    """One format family: how files of it are named, what depths are read and written, what decodes it."""

    name: str
    """The name an :class:`~denoiser.io.image.Image` carries in ``format`` (Pillow's spelling where it has one)."""
    label: str
    """As people write it, for messages and dialogs."""
    extensions: tuple[str, ...]
    """Lower-case, with the dot; the first is the one results are written with."""
    reads: tuple[int, ...]
    """Bit depths read (32: float)."""
    writes: tuple[int, ...]
    """Bit depths written; empty for formats that are never written (RAW: a result is never a RAW file)."""
    package: str | None = None
    """The Python package needed beyond Pillow, tifffile and OpenCV (the pip name), None when always present."""
    module: str | None = None
    """The module whose presence makes the format available."""
    pillow_feature: str | None = None
    """A Pillow feature (``PIL.features.check``) the format needs, when Pillow itself decodes it."""
    written_as: str | None = None
    """For formats never written: the format results of such files are written in."""
    stored: tuple[int, ...] = ()
    """The bit depths the written files hold, where they differ from :attr:`writes` (the depths of the pixels
    written): HEIC holds 16-bit results as 10 bits. Empty when the same."""

    @property
    def written_bits(self) -> tuple[int, ...]:
        """The bit depths written files hold, as ``denoiser formats`` tells them."""
        return self.stored or self.writes

    @property
    def writable(self) -> bool:
        """Whether results can be written in this format."""
        return bool(self.writes)

    @property
    def available(self) -> bool:
        """Whether this install can read the format (its library is installed)."""
        return _available(self)

    def missing(self) -> str:
        """What to install to read the format ("" when it is available)."""
        if self.available:
            return ""
        if self.package:
            return f"needs the Python package {self.package} (pip install {self.package})"
        return f"this build of Pillow has no {self.pillow_feature} support"


@functools.cache
def _available(info: FormatInfo) -> bool:
    if info.module is not None and importlib.util.find_spec(info.module) is None:
        return False
    if info.pillow_feature is not None:
        from PIL import features  # imported here: checking a feature loads Pillow's plugin

        return bool(features.check(info.pillow_feature))
    return True


FORMAT_TABLE: tuple[FormatInfo, ...] = (
    FormatInfo("PNG", "PNG", (".png",), reads=(8, 16), writes=(8, 16)),
    FormatInfo("JPEG", "JPEG", (".jpg", ".jpeg"), reads=(8,), writes=(8,)),
    FormatInfo("TIFF", "TIFF", (".tif", ".tiff"), reads=(8, 16, 32), writes=(8, 16, 32)),
    FormatInfo("WEBP", "WebP", (".webp",), reads=(8,), writes=(8,)),
    FormatInfo("BMP", "BMP", (".bmp",), reads=(8,), writes=(8,)),
    FormatInfo("HEIF", "HEIC/HEIF", (".heic", ".heif", ".hif"), reads=(8, 16), writes=(8, 16),
               package="pillow-heif", module="pillow_heif", stored=(8, 10)),
    FormatInfo("AVIF", "AVIF", (".avif",), reads=(8,), writes=(8,), pillow_feature="avif"),
    FormatInfo("RAW", "camera RAW", RAW_EXTENSIONS, reads=(16,), writes=(), package="rawpy", module="rawpy",
               written_as="TIFF"),
)

FORMATS: tuple[str, ...] = tuple(info.name for info in FORMAT_TABLE)
"""Every format name an Image can carry, available here or not."""


def format_info(name: str) -> FormatInfo:
    """The table's row for the format ``name`` (KeyError for names not in it)."""
    for info in FORMAT_TABLE:
        if info.name == name:
            return info
    raise KeyError(name)


def output_format_of(name: str) -> str:
    """The format a result of a ``name`` file is written in when the output keeps the input's format."""
    info = format_info(name)
    return info.name if info.writable else str(info.written_as)


def result_extension(source: Path) -> str:
    """The extension a result of ``source`` takes when it keeps the input's format: the file's own, or for a
    format that is never written (camera RAW) the usual extension of the format results are written in."""
    info = next((row for row in FORMAT_TABLE if source.suffix.lower() in row.extensions), None)
    if info is None or info.writable:
        return source.suffix
    return format_info(output_format_of(info.name)).extensions[0]


def unavailable_formats() -> list[FormatInfo]:
    """The formats this install cannot read, each with :meth:`FormatInfo.missing` saying why."""
    return [info for info in FORMAT_TABLE if not info.available]


def _extensions(*, writable: bool) -> dict[str, str]:
    return {ext: info.name for info in FORMAT_TABLE if info.available and (info.writable or not writable)
            for ext in info.extensions}


SUPPORTED_EXTENSIONS: dict[str, str] = _extensions(writable=False)
"""Extension -> format name, for every format this install reads."""
WRITABLE_EXTENSIONS: dict[str, str] = _extensions(writable=True)
"""Extension -> format name, for every format this install writes."""
FORMAT_NAMES = ", ".join(info.label for info in FORMAT_TABLE if info.available)
"""The formats this install reads, as people write them, for messages."""
