"""Carrying an EXIF block's Exif and GPS sub-directories into a classic TIFF written without them.

tifffile refuses to write the ExifIFD (34665) and GPSInfo (34853) pointer tags, so the 16-bit TIFF backend
writes the picture first and then calls :func:`append_exif_subdirectories`: the sub-directories are copied
entry by entry from the EXIF block (types kept, values converted to the file's byte order), appended to the
file together with a copy of its first IFD that points at them, and the header is switched to that copy
last. The old first IFD is left in the file unreferenced (a few hundred bytes); its values stay in use.

Malformed EXIF never fails the write: an entry that cannot be read is dropped, a sub-directory with nothing
readable is left out, and a block that cannot be parsed at all adds nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from denoiser.io.metadata import EXIF_HEADER, EXIF_IFD_TAG, GPS_IFD_TAG

__all__ = ["SubDirectory", "append_exif_subdirectories", "read_subdirectories"]

INTEROP_IFD_TAG = 0xA005
_LONG = 4
_IFD_TYPE = 13
# Bytes per value, and per byte-swapped unit (a RATIONAL is two LONGs), of the classic TIFF field types.
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_SWAP_UNITS = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 1, 7: 1, 8: 2, 9: 4, 10: 4, 11: 4, 12: 8, 13: 4}
# Sub-directories that may sit inside another one, by the directory that holds them.
_NESTED = {EXIF_IFD_TAG: (INTEROP_IFD_TAG,)}
_CLASSIC_TIFF_LIMIT = 2**32 - 1


@dataclass(frozen=True)
class _Entry:
    """One directory entry: its value bytes already in the target byte order, or a nested directory."""

    tag: int
    kind: int
    count: int
    data: bytes = b""
    child: SubDirectory | None = None


@dataclass(frozen=True)
class SubDirectory:
    """A sub-directory read out of an EXIF block: its pointer tag in IFD0 and its entries, sorted by tag."""

    tag: int
    entries: tuple[_Entry, ...]


class _Block:
    """A bare TIFF-structured EXIF block with bounds-checked reads in its byte order."""

    def __init__(self, raw: bytes) -> None:
        data = raw[len(EXIF_HEADER) :] if raw.startswith(EXIF_HEADER) else raw
        order = {b"II": "<", b"MM": ">"}.get(data[:2])
        if order is None or struct.unpack_from(order + "H", data, 2)[0] != 42:
            raise ValueError("not a classic TIFF-structured EXIF block")
        self.data = data
        self.order = order

    def unpack(self, fmt: str, offset: int) -> tuple[int, ...]:
        """Values at ``offset`` (struct format without byte order); struct.error when out of bounds."""
        if offset < 0:
            raise struct.error("negative offset")
        return struct.unpack_from(self.order + fmt, self.data, offset)

    def value_bytes(self, entry_offset: int, size: int) -> bytes:
        """The ``size`` value bytes of the entry at ``entry_offset``: inline, or where its offset points."""
        if size <= 4:
            return self.data[entry_offset + 8 : entry_offset + 8 + size]
        (start,) = self.unpack("I", entry_offset + 8)
        if start + size > len(self.data):
            raise struct.error("value runs past the end of the EXIF block")
        return self.data[start : start + size]

    def directory_entries(self, offset: int) -> list[tuple[int, int, int, int]]:
        """(tag, type, count, entry offset) of each entry of the directory at ``offset``."""
        (count,) = self.unpack("H", offset)
        if offset + 2 + 12 * count > len(self.data):
            raise struct.error("directory runs past the end of the EXIF block")
        entries = []
        for index in range(count):
            at = offset + 2 + 12 * index
            tag, kind, number = self.unpack("HHI", at)
            entries.append((tag, kind, number, at))
        return entries


def read_subdirectories(raw: bytes | None, target_order: str = "<") -> list[SubDirectory]:
    """The Exif and GPS sub-directories of the EXIF block ``raw`` (``Exif\\0\\0`` header optional), with values
    converted to ``target_order`` ('<' or '>'); entries that cannot be read are dropped, never raised."""
    if not raw:
        return []
    try:
        block = _Block(raw)
        (ifd0,) = block.unpack("I", 4)
        pointers = {tag: at for tag, _, _, at in block.directory_entries(ifd0)}
    except (ValueError, struct.error):
        return []
    found = []
    for tag in (EXIF_IFD_TAG, GPS_IFD_TAG):
        if tag in pointers:
            directory = _read_directory(block, tag, pointers[tag], target_order, seen={ifd0})
            if directory is not None:
                found.append(directory)
    return found


def _read_directory(
    block: _Block, tag: int, pointer_entry: int, target_order: str, seen: set[int]
) -> SubDirectory | None:
    """The directory the pointer entry at ``pointer_entry`` names; None when it is unreadable or empty."""
    try:
        _, kind, count = block.unpack("HHI", pointer_entry)
        (offset,) = block.unpack("I", pointer_entry + 8)
        if kind not in (_LONG, _IFD_TYPE) or count != 1 or offset in seen:
            return None
        listed = block.directory_entries(offset)
    except struct.error:
        return None
    seen = seen | {offset}
    entries: dict[int, _Entry] = {}
    for entry_tag, kind, count, at in listed:
        if entry_tag in entries or entry_tag in (EXIF_IFD_TAG, GPS_IFD_TAG):
            continue  # a repeated tag, or a pointer that belongs in IFD0
        if entry_tag in _NESTED.get(tag, ()):
            child = _read_directory(block, entry_tag, at, target_order, seen)
            if child is not None:
                entries[entry_tag] = _Entry(entry_tag, _LONG, 1, child=child)
            continue
        entry = _read_entry(block, entry_tag, kind, count, at, target_order)
        if entry is not None:
            entries[entry_tag] = entry
    if not entries:
        return None
    return SubDirectory(tag, tuple(entries[key] for key in sorted(entries)))


def _read_entry(block: _Block, tag: int, kind: int, count: int, at: int, target_order: str) -> _Entry | None:
    """A plain value entry copied in ``target_order``; None for unknown types, offsets that would not survive the
    move (IFD-typed values) or values that run past the block."""
    if kind not in _TYPE_SIZES or kind == _IFD_TYPE:
        return None
    size = _TYPE_SIZES[kind] * count
    try:
        data = block.value_bytes(at, size)
    except struct.error:
        return None
    if len(data) != size:
        return None
    if block.order != target_order:
        data = _swap_bytes(data, _SWAP_UNITS[kind])
    return _Entry(tag, kind, count, data)


def _swap_bytes(data: bytes, unit: int) -> bytes:
    """``data`` with the bytes of every ``unit``-byte value reversed (little <-> big endian)."""
    if unit == 1:
        return data
    swapped = bytearray(len(data))
    for index in range(unit):
        swapped[index::unit] = data[unit - 1 - index :: unit]
    return bytes(swapped)


def _aligned(offset: int) -> int:
    """``offset`` rounded up to the word boundary TIFF requires for directories and values."""
    return offset + (offset & 1)


def _place(tail: bytearray, tail_at: int, data: bytes) -> int:
    """Append ``data`` to ``tail`` (which starts at file offset ``tail_at``) on a word boundary; its offset."""
    start = _aligned(tail_at + len(tail))
    tail += bytes(start - tail_at - len(tail)) + data
    return start


def _serialise(directory: SubDirectory, offset: int, order: str) -> bytes:
    """``directory`` as TIFF directory bytes to be placed at file ``offset``: its entry table, then the values
    too long to sit in an entry and the nested directories, every offset in it absolute."""
    tail_at = offset + 2 + 12 * len(directory.entries) + 4
    tail = bytearray()
    table = bytearray(struct.pack(order + "H", len(directory.entries)))
    for entry in directory.entries:
        if entry.child is not None:
            child_at = _aligned(tail_at + len(tail))
            field = struct.pack(order + "I", _place(tail, tail_at, _serialise(entry.child, child_at, order)))
        elif len(entry.data) <= 4:
            field = entry.data.ljust(4, b"\x00")
        else:
            field = struct.pack(order + "I", _place(tail, tail_at, entry.data))
        table += struct.pack(order + "HHI", entry.tag, entry.kind, entry.count) + field
    table += struct.pack(order + "I", 0)  # no next directory
    return bytes(table + tail)


@dataclass(frozen=True)
class _FirstDirectory:
    """A classic TIFF file's byte order, its first directory's raw entries and its next-directory offset."""

    order: str
    entries: list[bytes]
    next_offset: int


def _read_first_directory(path: Path) -> _FirstDirectory | None:
    """The first directory of the classic TIFF at ``path``; None for BigTIFF or a header this cannot follow."""
    with open(path, "rb") as handle:
        header = handle.read(8)
        order = {b"II": "<", b"MM": ">"}.get(header[:2])
        if order is None or len(header) < 8 or struct.unpack(order + "H", header[2:4])[0] != 42:
            return None
        (offset,) = struct.unpack(order + "I", header[4:8])
        handle.seek(offset)
        raw_count = handle.read(2)
        if len(raw_count) < 2:
            return None
        (count,) = struct.unpack(order + "H", raw_count)
        table = handle.read(12 * count + 4)
    if len(table) < 12 * count + 4:
        return None
    entries = [table[12 * index : 12 * index + 12] for index in range(count)]
    (next_offset,) = struct.unpack(order + "I", table[-4:])
    return _FirstDirectory(order, entries, next_offset)


def _first_directory_with_pointers(first: _FirstDirectory, pointers: dict[int, int]) -> bytes:
    """The first directory's bytes with ``pointers`` (tag -> sub-directory offset) sorted into its entries; it
    holds no values of its own (every offset in it is absolute), so it can be placed anywhere."""
    order = first.order
    entries = {_entry_tag(first, raw): raw for raw in first.entries}
    for tag, target in pointers.items():
        entries[tag] = struct.pack(order + "HHII", tag, _LONG, 1, target)
    table = struct.pack(order + "H", len(entries)) + b"".join(entries[tag] for tag in sorted(entries))
    return table + struct.pack(order + "I", first.next_offset)


def _entry_tag(first: _FirstDirectory, raw: bytes) -> int:
    """The tag of one raw entry of the first directory."""
    return int(struct.unpack(first.order + "H", raw[:2])[0])


def append_exif_subdirectories(path: Path, raw: bytes | None) -> bool:
    """Append the Exif and GPS sub-directories of the EXIF block ``raw`` to the classic TIFF at ``path`` and
    point its first directory at them; True when something was added.

    Nothing is added (and the file is untouched) for no or unreadable EXIF, a BigTIFF, a file whose first
    directory already has such pointers, or one that would outgrow classic TIFF's 4 GiB offsets. OSError from
    the file itself propagates.
    """
    first = _read_first_directory(path)
    if first is None:
        return False
    present = {_entry_tag(first, entry) for entry in first.entries}
    directories = [d for d in read_subdirectories(raw, first.order) if d.tag not in present]
    if not directories:
        return False
    end = path.stat().st_size
    first_at = _aligned(end)
    tail_at = first_at + 2 + 12 * (len(first.entries) + len(directories)) + 4
    tail = bytearray()
    pointers = {}
    for directory in directories:
        directory_at = _aligned(tail_at + len(tail))
        pointers[directory.tag] = _place(tail, tail_at, _serialise(directory, directory_at, first.order))
    if tail_at + len(tail) > _CLASSIC_TIFF_LIMIT:
        return False
    appended = bytes(first_at - end) + _first_directory_with_pointers(first, pointers) + tail
    with open(path, "r+b") as handle:
        handle.seek(end)
        handle.write(appended)
        handle.flush()
        handle.seek(4)
        handle.write(struct.pack(first.order + "I", first_at))  # last: until now readers see the old directory
    return True
