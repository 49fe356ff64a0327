"""Writing an :class:`~denoiser.io.image.Image`: pick the format from the extension and the backend from the
table, keep or drop metadata, and write atomically without ever replacing an input.

Every failure is an :class:`~denoiser.errors.ImageWriteError` naming the file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from denoiser.errors import DenoiserError, ImageWriteError, reason
from denoiser.io.atomic import atomic_write
from denoiser.io.backends import backend_for, has_backend
from denoiser.io.formats import RAW_EXTENSIONS, WRITABLE_EXTENSIONS, format_info
from denoiser.io.image import Image, convert_depth
from denoiser.io.metadata import Metadata

__all__ = ["same_file", "write_image"]


def write_image(
    path: str | Path,
    image: Image,
    *,
    quality: int = 95,
    keep_metadata: bool = True,
    bit_depth: int | None = None,
    protected: Iterable[str | Path] = (),
    overwrite: bool = False,
    before_place: Callable[[Path], None] | None = None,
) -> Path:
    """Write ``image`` to ``path`` atomically, in the format its extension names; return the path written.

    - Formats: PNG, JPEG, TIFF, WebP, BMP, HEIC and AVIF (where this install has them); never camera RAW.
      ``quality`` (1-100) applies to JPEG, WebP, HEIC and AVIF; WebP and HEIC at 100 are written lossless, AVIF
      at 100 near-lossless. 16-bit pixels go into HEIC as 10 bits.
    - Bit depth: kept by default, ``bit_depth=8|16|32`` forces one (32: float, TIFF only). A format that
      cannot hold the depth gets the deepest it holds: 16-bit into JPEG, WebP or BMP gives 8 bits, rounded
      (value * 255 / 65535), never cut; float into PNG gives 16 bits, clipped to 0-1.
    - Alpha: kept, except by JPEG, which cannot hold it and drops it. (Pillow writes RGBA BMPs but reads
      them back as RGB.)
    - Metadata (``keep_metadata``): EXIF and ICC profile are written to PNG, JPEG, WebP, TIFF, HEIC and AVIF;
      BMP holds neither.
    - Safety: never replaces ``image.source`` or any path in ``protected``, even with ``overwrite=True``;
      an existing file is only replaced with ``overwrite=True``. Missing folders are created.

    ``before_place`` is called with the encoded temporary file just before it takes the name ``path``.

    Raises ImageWriteError naming the file for every problem (unknown extension, would overwrite an input,
    already exists, disk errors...).
    """
    target = Path(path)
    fmt = WRITABLE_EXTENSIONS.get(target.suffix.lower())
    if fmt is None:
        if target.suffix.lower() in RAW_EXTENSIONS:
            raise ImageWriteError(target, "camera RAW files are never written; write the result as TIFF (.tif), "
                                          "which keeps 16 bits")
        known = ", ".join(WRITABLE_EXTENSIONS)
        raise ImageWriteError(target, f"unknown image extension {target.suffix!r}; known: {known}")
    if bit_depth not in (None, 8, 16, 32):
        raise ImageWriteError(target, f"bit depth must be 8, 16 or 32, not {bit_depth}")
    if not 1 <= quality <= 100:
        raise ImageWriteError(target, f"quality must be between 1 and 100, not {quality}")
    _check_target(target, image, protected, overwrite)

    depth = _depth_written(fmt, bit_depth or image.bit_depth)
    backend = backend_for(fmt, depth)
    pixels = convert_depth(image.pixels, depth)
    metadata = Metadata(image.exif, image.icc_profile) if keep_metadata else Metadata()

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(target, f"cannot create folder {target.parent}: {reason(exc)}") from exc
    try:
        with atomic_write(target, replace=overwrite, before_place=before_place) as temporary:
            backend.write(temporary, pixels, fmt, quality, metadata)
    except FileExistsError as exc:  # the name was taken while the image was encoded
        raise ImageWriteError(target, "already exists (overwriting was not allowed)") from exc
    except DenoiserError:
        raise
    except Exception as exc:  # OSError (disk full, permissions), encoder errors: all become typed errors
        raise ImageWriteError(target, f"could not write: {reason(exc)}") from exc
    return target


def what_writing_loses(image: Image, path: str | Path, bit_depth: int | None = None) -> list[str]:
    """What writing ``image`` to ``path`` (in the format its extension names, at ``bit_depth`` as
    :func:`write_image` takes it) loses beyond rounding, in words: float values outside 0-1 clipped by a format
    without float, an alpha channel dropped by JPEG. Empty when nothing is lost (or the extension is unknown)."""
    fmt = WRITABLE_EXTENSIONS.get(Path(path).suffix.lower())
    if fmt is None:
        return []
    lost = []
    if image.bit_depth == 32 and _depth_written(fmt, bit_depth or 32) != 32:
        values = image.color_values()
        outside = float(np.mean((values < 0) | (values > 1)))
        if outside > 0:
            lost.append(f"{outside:.1%} of its values lie outside 0-1 and were clipped to that range "
                        f"({fmt} at {_depth_written(fmt, bit_depth or 32)} bits holds no others)")
    if image.has_alpha and fmt == "JPEG":
        lost.append("its transparency (alpha channel) was dropped: JPEG cannot hold one")
    return lost


def _depth_written(fmt: str, wanted: int) -> int:
    """``wanted`` when ``fmt`` holds it, else the deepest depth below it that the format holds (8 at least)."""
    held = [depth for depth in format_info(fmt).writes if depth <= wanted and has_backend(fmt, depth)]
    return max(held, default=8)


def _check_target(target: Path, image: Image, protected: Iterable[str | Path], overwrite: bool) -> None:
    inputs = [Path(p) for p in protected]
    if image.source is not None:
        inputs.append(image.source)
    for source in inputs:
        if same_file(target, source):
            raise ImageWriteError(
                target, f"would overwrite the input {source.name}; choose another output name or folder"
            )
    if target.is_dir():
        raise ImageWriteError(target, "is a folder")
    if target.exists() and not overwrite:
        raise ImageWriteError(target, "already exists (overwriting was not allowed)")


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (hard links and case-insensitive file systems included)."""
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):  # catches hard links and case-insensitive file systems
            return True
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
