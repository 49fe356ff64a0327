"""Output file names: the name pattern, the batch's sub-folders, the real format's extension, and ``-2``,
``-3``... when a name is taken."""

from __future__ import annotations

import os
from pathlib import Path

from denoiser.batch.settings import DenoiseSettings, check_pattern, output_name
from denoiser.errors import ImageWriteError
from denoiser.io.formats import SUPPORTED_EXTENSIONS, WRITABLE_EXTENSIONS, output_format_of

NAME_LIMIT = 255
"""The longest file name, in bytes, that common file systems (ext4, APFS, NTFS, exFAT) accept."""


def extension_of_format(real_format: str) -> str:
    """The usual extension results of a ``real_format`` file are written with (``PNG`` -> ``.png``, camera
    ``RAW`` -> ``.tif``)."""
    written = output_format_of(real_format)
    return next(ext for ext, fmt in WRITABLE_EXTENSIONS.items() if fmt == written)


def output_path_for(source: Path, out_dir: Path, settings: DenoiseSettings, relative_to: Path | None = None,
                    real_format: str | None = None) -> Path:
    """Where the result of ``source`` goes before collisions are resolved: same sub-folder, new name.

    With the output format ``same``, the extension is the input's own, unless ``real_format`` (what the file
    holds, read from its content) says otherwise: a PNG named ``.jpg`` gives a ``.png``, never a lossy JPEG.
    """
    check_pattern(settings.pattern)
    sub = source.parent.relative_to(relative_to) if relative_to is not None else Path()
    name = output_name(settings.pattern, source.stem)  # refuses a bad name a stem still gives (a file "..png")
    extension = settings.extension_for(source)
    if settings.format == "same" and real_format is not None \
            and SUPPORTED_EXTENSIONS.get(extension.lower()) != output_format_of(real_format):
        extension = extension_of_format(real_format)
    return out_dir / sub / f"{name}{extension}"


def check_name_length(path: Path) -> None:
    """Refuse an output name longer than file systems allow, naming it, before any work is spent on it."""
    size = len(os.fsencode(path.name))
    if size > NAME_LIMIT:
        raise ImageWriteError(path, f"the output name is {size} bytes long, more than file systems allow "
                                    f"({NAME_LIMIT}); use a shorter --name pattern or rename the photo")


def unique_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path`` itself if free, else ``stem-2``, ``stem-3``... Existing files (inputs included) and the
    resolved paths in ``taken`` count as used."""
    taken = taken or set()
    candidate, number = path, 1
    while candidate.exists() or candidate.resolve() in taken:
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate
