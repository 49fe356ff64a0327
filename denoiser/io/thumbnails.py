"""Small upright 8-bit RGB previews of image files, made fast (reduced-scale JPEG decoding, shrinking first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from denoiser.errors import DenoiserError, ImageReadError, reason
from denoiser.io.backends.pillow import pixels_from_pillow
from denoiser.io.backends.tiff16 import tiff_bit_depth
from denoiser.io.image import Image, convert_depth, from_float
from denoiser.io.metadata import ORIENTATION_TAG, apply_orientation, valid_orientation
from denoiser.io.reading import direct_reader_for, open_file, open_lazily, read_image

__all__ = ["read_thumbnail"]

_THUMBNAIL_BACKGROUND = (128, 128, 128, 255)  # mid-grey under transparent pixels: reads on light and dark


def read_thumbnail(path: str | Path, max_side: int = 160) -> np.ndarray:
    """A small uint8 RGB (H x W x 3) preview of an image file, upright, its longer side at most ``max_side``.

    Fast where it can be: JPEGs are decoded at reduced scale (Pillow's ``draft``) and everything is shrunk
    with ``thumbnail`` before any other conversion. The EXIF orientation is applied; the aspect ratio is
    kept (an image already small enough keeps its size). Grey becomes RGB, 16-bit files are rounded to
    8 bits (16-bit TIFFs are decoded as :func:`read_image` does), transparent pixels are composited on
    mid-grey. Pillow's decompression-bomb guard applies, as for :func:`read_image`. Camera RAW files show their
    embedded preview where they have one; other formats Pillow does not decode (HEIF, float TIFF) are read whole
    and shrunk.

    Raises ImageReadError naming the file for every problem (missing, a folder, not an image, truncated,
    an unsupported pixel format...); ValueError when ``max_side`` is below 1.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    path = Path(path)
    handle = open_file(path)  # closed by the with-block right below
    with handle:
        try:
            header = handle.read(32)
        except OSError as exc:
            raise ImageReadError(path, f"cannot read: {reason(exc)}") from exc
        reader = direct_reader_for(path, header, handle)
        if reader is not None:
            preview = reader.thumbnail(path, max_side) if reader.thumbnail is not None else None
            if preview is None:
                preview = _thumbnail_pixels(_shrink(_from_pixels(_preview_pixels(read_image(path))), max_side), 1)
            return preview
        handle.seek(0)
        im = open_lazily(path, handle)
        with im:
            try:
                if im.format == "TIFF" and tiff_bit_depth(path, im) == 16:
                    # Pillow decodes some 16-bit TIFF layouts wrongly; read them as read_image does.
                    small = _shrink(_from_pixels(convert_depth(read_image(path).pixels, 8)), max_side)
                    orientation = 1  # read_image has turned the pixels upright already
                else:
                    small, orientation = _pillow_thumbnail(path, im, max_side)
                return _thumbnail_pixels(small, orientation)
            except DenoiserError:
                raise
            except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError... on bad data
                if "truncated" in str(exc):
                    raise ImageReadError(path, "the file is truncated (incomplete download or copy?)") from exc
                raise ImageReadError(path, f"damaged or unreadable image data: {reason(exc)}") from exc


def _pillow_thumbnail(path: Path, im: PILImage.Image, max_side: int) -> tuple[PILImage.Image, int]:
    """The shrunk image in mode L, RGB or RGBA, and the EXIF orientation still to apply to it."""
    # JPEG only: decode at 1/2, 1/4 or 1/8 scale, keeping twice the target size for a clean final resize.
    im.draft(None, (2 * max_side, 2 * max_side))
    im.load()
    try:
        # Read after the decode: Pillow turns TIFF pixels upright while decoding and deletes the tag then.
        orientation = valid_orientation(im.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # malformed EXIF: show the pixels as stored rather than nothing
        orientation = 1
    if im.mode in ("L", "RGB", "RGBA"):
        return _shrink(im, max_side), orientation
    if im.mode == "I" and im.format == "PNG":  # 16-bit grey PNG in older Pillow versions
        pixels = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., np.newaxis]
    else:
        pixels = pixels_from_pillow(path, im)
    return _shrink(_from_pixels(convert_depth(pixels, 8)), max_side), orientation


def _preview_pixels(image: Image) -> np.ndarray:
    """8-bit pixels of ``image`` (float ones scaled by their value range, as the viewer shows them)."""
    if image.bit_depth != 32:
        return convert_depth(image.pixels, 8)
    colour = from_float(image.color_pixels(), 8)
    alpha = image.alpha()
    return colour if alpha is None else np.concatenate([colour, from_float(np.clip(alpha, 0, 1), 8)], axis=2)


def _from_pixels(pixels: np.ndarray) -> PILImage.Image:
    """8-bit H x W x (1, 3 or 4) pixels as a Pillow image in mode L, RGB or RGBA."""
    return PILImage.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels))


def _shrink(im: PILImage.Image, max_side: int) -> PILImage.Image:
    if max(im.size) > max_side:
        im.thumbnail((max_side, max_side), PILImage.Resampling.BICUBIC)  # resamples alpha premultiplied
    return im


def _thumbnail_pixels(im: PILImage.Image, orientation: int) -> np.ndarray:
    """An L, RGB or RGBA image as upright uint8 RGB pixels, alpha composited on mid-grey."""
    if im.mode == "RGBA":
        background = PILImage.new("RGBA", im.size, _THUMBNAIL_BACKGROUND)
        im = PILImage.alpha_composite(background, im)
    pixels = np.asarray(im.convert("RGB"))
    return np.ascontiguousarray(apply_orientation(pixels, orientation))
