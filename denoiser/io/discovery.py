"""Which files are images (by extension, from :mod:`denoiser.io.formats`), and finding image files in folders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from denoiser.errors import ImageReadError, reason
from denoiser.io.formats import FORMAT_NAMES, FORMATS, SUPPORTED_EXTENSIONS

__all__ = ["FORMATS", "FORMAT_NAMES", "SUPPORTED_EXTENSIONS", "find_images", "is_image_path"]


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends in a supported image extension (any letter case)."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def find_images(paths: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """The image files named by ``paths`` (files and folders), sorted, each once.

    Folders are searched for files with a supported extension, into sub-folders when ``recursive``;
    hidden files and folders (leading dot, e.g. :func:`~denoiser.io.atomic_write`'s temporaries) are skipped.
    A named file that is not an image is skipped; a path that does not exist raises ImageReadError.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]  # a lone path string would otherwise be iterated character by character
    found: dict[Path, None] = {}
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found.update(dict.fromkeys(_images_in_folder(path, recursive)))
        elif path.is_file():
            if is_image_path(path):
                found[path] = None
        elif not path.exists():
            raise ImageReadError(path, "no such file or folder")
    return sorted(found)


def _images_in_folder(folder: Path, recursive: bool) -> Iterator[Path]:
    def fail(err: OSError) -> None:
        # Only the folder the user named is fatal; an unreadable sub-folder should not stop a batch.
        if Path(err.filename) == folder:
            raise ImageReadError(folder, f"cannot list folder: {reason(err)}") from err

    for root, dirs, files in os.walk(folder, onerror=fail):
        if recursive:
            dirs[:] = [d for d in dirs if not d.startswith(".")]
        else:
            dirs[:] = []
        for name in files:
            if not name.startswith(".") and is_image_path(name):
                candidate = Path(root) / name
                if candidate.is_file():
                    yield candidate
