"""Writing a TIFF through tifffile with a photo's metadata: grey, RGB or RGBA (unassociated alpha), zlib, the ICC
profile, the EXIF text tags and (appended after tifffile wrote the file) the Exif and GPS sub-directories. The 16-bit
and float TIFF backends both write this way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from denoiser.io.exif_ifd import append_exif_subdirectories
from denoiser.io.metadata import Metadata, tiff16_text_tags

__all__ = ["write_tiff"]


def write_tiff(path: Path, pixels: np.ndarray, metadata: Metadata, predictor: int | None = None) -> None:
    """Write H x W x C ``pixels`` (C in 1, 3, 4; any dtype tifffile holds) with ``metadata`` to ``path``."""
    import tifffile  # here, not at the top: only TIFF writes need it, and it loads imagecodecs

    channels = pixels.shape[2]
    tifffile.imwrite(
        path,
        pixels[..., 0] if channels == 1 else pixels,
        photometric="minisblack" if channels == 1 else "rgb",
        planarconfig=None if channels == 1 else "contig",
        extrasamples=["unassalpha"] if channels == 4 else None,
        compression="zlib",
        predictor=predictor,
        iccprofile=metadata.icc or None,
        extratags=tiff16_text_tags(metadata.exif),
        metadata=None,  # no tifffile JSON in ImageDescription
        software=False,
    )
    append_exif_subdirectories(path, metadata.exif)
