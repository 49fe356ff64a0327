"""The file dialogs' filters, from the engine's formats table: what Open offers (every format this install reads,
all images first, then one filter per format) and what Save As offers (one filter per format it writes)."""

from __future__ import annotations

from denoiser.io.formats import FORMAT_TABLE, SUPPORTED_EXTENSIONS, WRITABLE_EXTENSIONS, FormatInfo

LOSSY_FORMATS = ("JPEG", "WEBP", "HEIF", "AVIF")
"""Formats written with a quality setting (WebP at 100 is lossless)."""


def patterns(extensions: list[str]) -> str:
    """``*.nef *.NEF ...``: both letter cases, as cameras name files in capitals and some desktops' file dialogs
    match case-sensitively."""
    return " ".join(f"*{ext} *{ext.upper()}" for ext in extensions)


def _filter(info: FormatInfo, extensions: list[str]) -> str:
    """``Camera RAW (*.nef *.NEF ...)``: the table's label with its first letter in capitals, as a dialog's
    filters read."""
    return f"{info.label[:1].upper()}{info.label[1:]} ({patterns(extensions)})"


def open_filters() -> list[str]:
    """The Open dialog's filters: all readable images, then each available format."""
    rows = [_filter(info, list(info.extensions)) for info in FORMAT_TABLE if info.available]
    return [f"Images ({patterns(list(SUPPORTED_EXTENSIONS))})", *rows]


def save_filters() -> dict[str, str]:
    """The Save As dialog's filters keyed by format, one per writable format with all its extensions
    (``JPEG (*.jpg *.jpeg ...)``)."""
    return {info.name: _filter(info, [e for e in info.extensions if e in WRITABLE_EXTENSIONS])
            for info in FORMAT_TABLE if info.available and info.writable}
