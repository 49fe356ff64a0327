"""Output file names: the name pattern, the batch's sub-folders, and ``-2``, ``-3``... when a name is taken."""

from __future__ import annotations

from pathlib import Path

from denoiser.batch.settings import DenoiseSettings
from denoiser.errors import DenoiserError


def output_path_for(source: Path, out_dir: Path, settings: DenoiseSettings, relative_to: Path | None = None) -> Path:
    """Where the result of ``source`` goes before collisions are resolved: same sub-folder, new name."""
    sub = source.parent.relative_to(relative_to) if relative_to is not None else Path()
    try:
        name = settings.pattern.format(stem=source.stem)
    except (KeyError, IndexError, ValueError) as err:
        raise DenoiserError(f"output name pattern {settings.pattern!r} is invalid ({err}); use {{stem}}") from err
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise DenoiserError(f"output name pattern {settings.pattern!r} gives an invalid name {name!r}")
    return out_dir / sub / f"{name}{settings.extension_for(source)}"


def unique_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path`` itself if free, else ``stem-2``, ``stem-3``... Existing files (inputs included) and the
    resolved paths in ``taken`` count as used."""
    taken = taken or set()
    candidate, number = path, 1
    while candidate.exists() or candidate.resolve() in taken:
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate
