"""``denoiser formats``: what this install reads and writes, and what to install for the formats it cannot."""

from __future__ import annotations

import argparse
import json
from typing import Any

from denoiser.cli_common import EXIT_OK
from denoiser.io.formats import FORMAT_TABLE, FormatInfo, output_format_of


def add_formats_parser(commands: argparse._SubParsersAction) -> None:
    """``denoiser formats [--json]``."""
    formats = commands.add_parser("formats", help="list the image formats this install reads and writes",
                                  description="The image formats this install reads and writes, their bit depths "
                                              "and extensions, and what to install for any that are missing.")
    formats.add_argument("--json", action="store_true", help="print JSON")


def depths_text(depths: tuple[int, ...]) -> str:
    """``(8, 16, 32)`` as ``8/16-bit, float``."""
    whole = [str(d) for d in depths if d != 32]
    parts = [f"{'/'.join(whole)}-bit"] if whole else []
    return ", ".join(parts + (["float"] if 32 in depths else []))


def format_row(info: FormatInfo) -> dict[str, Any]:
    """One format as plain JSON values."""
    return {
        "format": info.label,
        "name": info.name,
        "available": info.available,
        "missing": info.missing(),
        "reads": list(info.reads),
        "writes": list(info.written_bits),
        "written_as": output_format_of(info.name),
        "extensions": list(info.extensions),
    }


def _writes_text(info: FormatInfo) -> str:
    if info.writable:
        return depths_text(info.written_bits)
    return f"never (results: {output_format_of(info.name)})"


def cmd_formats(args: argparse.Namespace) -> int:
    """Print the formats table (or JSON)."""
    if args.json:
        print(json.dumps([format_row(info) for info in FORMAT_TABLE], indent=2))
        return EXIT_OK
    print(f"{'Format':<11} {'Reads':<16} {'Writes':<22} Extensions")
    for info in FORMAT_TABLE:
        if info.available:
            reads, writes = depths_text(info.reads), _writes_text(info)
        else:
            reads, writes = "unavailable", info.missing()
        extensions = " ".join(info.extensions)
        print(f"{info.label:<11} {reads:<16} {writes:<22} {extensions}")
    return EXIT_OK
