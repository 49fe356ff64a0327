"""The Pillow backend: 8-bit PNG, JPEG, TIFF, WebP, BMP and AVIF (and the odd 16-bit grey layout Pillow keeps
whole).

Pillow reads every mode a photo is likely to come in; they are turned into grey, RGB or RGBA here.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from PIL import ImageCms, features

from denoiser.errors import ImageReadError
from denoiser.io.backends.base import Backend, Source
from denoiser.io.metadata import (
    EXIF_IFD_TAG,
    GPS_IFD_TAG,
    ORIENTATION_TAG,
    Metadata,
    exif_for_tiff,
    icc_profile,
    read_exif,
)

__all__ = ["PILLOW", "pixels_from_pillow"]

_JPEG_MAX_EXIF = 65533  # one APP1 segment; Pillow refuses longer EXIF blocks


def _read_pixels(source: Source) -> np.ndarray:
    return pixels_from_pillow(source.path, source.pillow)


def _read_metadata(source: Source) -> Metadata:
    im = source.pillow
    exif, orientation = read_exif(im, source.format, source.tiff_orientation)
    if source.format == "TIFF" and ORIENTATION_TAG not in im.tag_v2:
        orientation = 1  # Pillow has already turned these pixels upright while decoding them
    # CMYK pixels are converted to sRGB (see _cmyk_to_rgb): their CMYK profile would be wrong for the result.
    icc = None if im.mode == "CMYK" else icc_profile(im)
    return Metadata(exif, icc, orientation)


def pixels_from_pillow(path: Path, im: PILImage.Image) -> np.ndarray:
    """8-bit (and Pillow-native 16-bit grey) pixels of a decoded image as H x W x C, C in (1, 3, 4)."""
    mode = im.mode
    if mode in ("L", "RGB") and "transparency" in im.info:
        im = im.convert("RGBA")  # a PNG's transparent colour (tRNS) becomes the alpha it stands for
    elif mode in ("L", "RGB", "RGBA"):
        pass
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    elif mode == "P":
        transparent = getattr(im, "has_transparency_data", "transparency" in im.info)  # Pillow < 10.1
        im = im.convert("RGBA" if transparent else "RGB")
    elif mode in ("RGBX", "YCbCr"):
        im = im.convert("RGB")
    elif mode == "CMYK":
        im = _cmyk_to_rgb(im, icc_profile(im))
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.array(im).astype(np.uint16)[..., np.newaxis]
    else:
        raise ImageReadError(path, f"unsupported pixel format: {_describe_mode(mode)}")
    pixels = np.array(im)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    return pixels


def _describe_mode(mode: str) -> str:
    known = {
        "F": "32-bit floating-point pixels",
        "I": "32-bit integer pixels",
        "LAB": "CIE L*a*b* pixels",
        "HSV": "HSV pixels",
    }
    return f"{known.get(mode, 'pixels')} (Pillow mode {mode!r})"


def _cmyk_to_rgb(im: PILImage.Image, icc: bytes | None) -> PILImage.Image:
    # The CMYK profile is used for the conversion (when it works) and then dropped: the result is plain sRGB.
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if converted is not None:
                return converted
        except Exception:  # a broken profile: the naive conversion below still gives a picture
            pass
    return im.convert("RGB")


def _write(path: Path, pixels: np.ndarray, fmt: str, quality: int, metadata: Metadata) -> None:
    if fmt == "JPEG" and pixels.shape[2] == 4:
        pixels = pixels[..., :3]  # JPEG cannot hold alpha
    exif, icc = (None, None) if fmt == "BMP" else (metadata.exif, metadata.icc)  # BMP holds neither
    im = PILImage.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels))
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        # Full-resolution chroma at high quality: halving it would blur away the colour detail just cleaned.
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if exif is not None and len(exif) > _JPEG_MAX_EXIF:
            exif = None  # does not fit in a JPEG; the picture matters more than its EXIF
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality >= 100, exact=quality >= 100)
    elif fmt == "AVIF":
        # Full-resolution chroma at high quality, as for JPEG; grey keeps Pillow's chroma-free 4:0:0. Pillow
        # offers no lossless AVIF (it would need RGB stored without YCbCr conversion): 100 is near-lossless.
        options["quality"] = quality
        if pixels.shape[2] != 1:
            options["subsampling"] = "4:4:4" if quality >= 90 else "4:2:0"
    if fmt == "TIFF":
        tiff_exif = exif_for_tiff(exif) if exif else None
        if tiff_exif is not None:
            options["exif"] = tiff_exif
        # Compression goes through libtiff, which cannot write the Exif/GPS sub-directories (it fails and
        # prints to stderr); a photo's EXIF outweighs the file size, so such files are left uncompressed.
        if features.check("libtiff") and not (
            tiff_exif is not None and {EXIF_IFD_TAG, GPS_IFD_TAG} & set(tiff_exif)
        ):
            options["compression"] = "tiff_adobe_deflate"
    elif exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    im.save(path, format=fmt, **options)


PILLOW = Backend("Pillow", _read_pixels, _read_metadata, _write)
