"""HEIC/HEIF (the iPhone's default) through pillow-heif (libheif): read and written, 8 and 10/12-bit (held as
16-bit), EXIF and ICC profile kept.

Reading: libheif turns the pixels upright itself (the ``irot``/``imir`` boxes are what orients a HEIF; its EXIF
orientation only repeats them), so the EXIF orientation is reset to 1 and nothing is left to apply. Only the
primary image of a file is read. Writing: 8-bit pixels give an 8-bit HEIC, 16-bit ones a 10-bit HEIC (rounded
to the nearest 10-bit value), grey stays grey, alpha is kept; pictures go in 512-pixel tiles as phones write
them; quality 100 is lossless (4:4:4 with RGB stored as is), lower qualities give the 4:2:0 files phones write.
pillow-heif is imported only when a HEIF file is read or written, so the rest works without it.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image as PILImage

from denoiser.errors import ImageReadError
from denoiser.io.backends.base import Backend, DirectReader, grey_alpha_to_rgba
from denoiser.io.metadata import Metadata, read_exif

__all__ = ["HEIF", "HEIF_READER", "WRITTEN_BIT_DEPTH", "claims_heif", "tile_size"]

# Brands of HEIF files holding HEVC-coded images (ISO/IEC 23008-12); AVIF ("avif", "avis") is Pillow's.
_HEVC_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
# Brands any HEIF may carry, whatever codes its images: such a file is ours unless it says it is AVIF.
_GENERIC_BRANDS = frozenset({b"mif1", b"msf1", b"heif"})
_AV1_BRANDS = frozenset({b"avif", b"avis"})
_FTYP_MAX = 4096  # an ftyp box is a few dozen bytes; a longer one is not looked into further

WRITTEN_BIT_DEPTH = 10
"""The bit depth 16-bit pixels are written at: HEVC Main 10, which phones, macOS/iOS and Windows decode
(libheif also writes 12 bits, which many of them do not)."""

_LABEL = "HEIC/HEIF"
# libheif's words for a file that stops early, and for one with no image to show.
_TRUNCATED_SIGNS = ("end of file", "file size too small", "cannot read full", "insufficient input data")
_NO_IMAGE_SIGNS = ("'pitm'", "primary item")


def claims_heif(path: Path, header: bytes, handle: BinaryIO) -> bool:
    """An ISO base media file (``ftyp`` box first) with a HEVC HEIF brand, or a generic HEIF brand and no AVIF
    one (a generic file that says it is AVIF is left to Pillow)."""
    if header[4:8] != b"ftyp":
        return False
    major = header[8:12]
    if major in _HEVC_BRANDS:
        return True
    if major not in _GENERIC_BRANDS:
        return False
    brands = _compatible_brands(header, handle)
    return not (brands & _AV1_BRANDS) or bool(brands & _HEVC_BRANDS)


def _compatible_brands(header: bytes, handle: BinaryIO) -> set[bytes]:
    (size,) = struct.unpack(">I", header[:4])
    handle.seek(0)
    box = handle.read(min(size, _FTYP_MAX))
    return {box[start : start + 4] for start in range(16, len(box) - 3, 4)}


def _read(path: Path, handle: BinaryIO, max_pixels: int | None) -> tuple[np.ndarray, Metadata]:
    import pillow_heif

    try:
        heif = pillow_heif.open_heif(handle, convert_hdr_to_8bit=False, hdr_to_16bit=False)
    except Exception as exc:  # libheif raises ValueError, EOFError, SyntaxError, RuntimeError, OSError
        raise _read_error(path, exc) from exc
    if len(heif) == 0:
        raise ImageReadError(path, f"no image in this {_LABEL} file")
    image = heif[heif.primary_index]
    width, height = image.size
    if max_pixels is not None and width * height > max_pixels:
        raise ImageReadError(path, f"too many pixels: {width} x {height} = {width * height} (limit {max_pixels})")
    try:
        decoded = np.array(image)  # decodes the image, already turned upright by libheif
    except Exception as exc:
        raise _read_error(path, exc) from exc
    pixels = _pixels(path, decoded, image.mode)
    metadata = Metadata(exif=_upright_exif(image.info.get("exif")), icc=image.info.get("icc_profile") or None)
    return pixels, metadata


def _read_error(path: Path, exc: Exception) -> ImageReadError:
    """libheif's failure as a user reads it: truncated, no image, or damaged (with libheif's words)."""
    message = str(exc).strip() or type(exc).__name__
    lowered = message.lower()
    if any(sign in lowered for sign in _TRUNCATED_SIGNS):
        return ImageReadError(path, "the file is truncated (incomplete download or copy?)")
    if any(sign in lowered for sign in _NO_IMAGE_SIGNS):
        return ImageReadError(path, f"no readable image in this {_LABEL} file ({message})")
    return ImageReadError(path, f"damaged or unreadable {_LABEL} file: {message}")


def _pixels(path: Path, decoded: np.ndarray, mode: str) -> np.ndarray:
    """pillow-heif's decoded array (mode ``L``, ``RGB``, ``RGBA``, ``RGB;10``, ``I;12``...) as H x W x C, C in
    1, 3, 4: uint8 for 8-bit files, uint16 over the full 16-bit range for deeper ones, alpha not premultiplied."""
    pixels = decoded[..., np.newaxis] if decoded.ndim == 2 else decoded
    layout, _, depth = mode.partition(";")
    bits = int(depth) if depth.isdigit() else 8 * pixels.dtype.itemsize
    if pixels.dtype == np.uint16:
        pixels = _to_16_bits(pixels, bits)
    elif pixels.dtype != np.uint8:
        raise ImageReadError(path, f"unsupported pixel format: {_LABEL} pixels of type {pixels.dtype}")
    if layout.endswith("a"):  # RGBa, La: colour premultiplied by alpha
        pixels = _unpremultiply(pixels)
    if pixels.shape[2] == 2:
        pixels = grey_alpha_to_rgba(path, pixels)
    elif pixels.shape[2] not in (1, 3, 4):
        raise ImageReadError(path, f"unsupported pixel format: {pixels.shape[2]} channels")
    return pixels


def _to_16_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """``bits``-bit integer samples scaled to 0-65535, rounded to nearest (1023 becomes 65535 for 10 bits)."""
    top = (1 << bits) - 1
    # A lookup table: integer division over every sample of a large photo takes many seconds.
    table = np.full(65536, 65535, dtype=np.uint16)  # values above ``top`` (never decoded) saturate
    table[: top + 1] = (np.arange(top + 1, dtype=np.uint32) * 65535 + top // 2) // top
    return table[values]


def _from_16_bits(values: np.ndarray, bits: int) -> np.ndarray:
    """16-bit samples as ``bits``-bit ones, rounded to nearest: the inverse of :func:`_to_16_bits`."""
    top = (1 << bits) - 1
    table = ((np.arange(65536, dtype=np.uint32) * top + 32767) // 65535).astype(np.uint16)
    return table[values]


def _unpremultiply(pixels: np.ndarray) -> np.ndarray:
    """Colour divided by alpha (the last channel); fully transparent pixels get black."""
    top = float(np.iinfo(pixels.dtype).max)
    colour = pixels[..., :-1].astype(np.float32)
    alpha = pixels[..., -1:].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        straight = np.where(alpha > 0, colour * top / alpha, 0.0)
    colour_out = np.clip(np.rint(straight), 0, top).astype(pixels.dtype)
    return np.concatenate([colour_out, pixels[..., -1:]], axis=2)


def _upright_exif(raw: bytes | None) -> bytes | None:
    """A HEIF's EXIF block as :attr:`Image.exif <denoiser.io.image.Image.exif>` holds it: with the ``Exif\\0\\0``
    header, orientation reset to 1 (the pixels are upright), None when absent or unreadable.

    The block goes through :func:`~denoiser.io.metadata.read_exif`, the project's one place that resets the
    orientation, on a 1 x 1 Pillow image that only carries it.
    """
    if not raw:
        return None
    carrier = PILImage.new("L", (1, 1))
    carrier.info["exif"] = raw
    exif, _orientation = read_exif(carrier, "HEIF", 1)
    return exif


# Pictures are written as a grid of 512-pixel tiles, as phones write them: a single HEVC picture above HEVC's
# largest level (6.2) cannot be decoded (libde265 fails on one of 54 megapixels), and hardware decoders often
# stop lower. Bigger tiles keep huge images within libheif's 1000 items and 256 tiles a side; pillow-heif never tiles
# pictures with alpha, so those must fit in one HEVC picture.
_TILE_SIZES = (512, 1024, 2048, 4096)
_MAX_ITEMS = 1000 - 3  # libheif's limit when reading, less the grid itself, the EXIF block and some slack
_MAX_TILES_A_SIDE = 256
_HEVC_MAX_PICTURE = 35_651_584  # luma samples at HEVC level 6.2
_HEVC_MAX_SIDE = 16_888  # sqrt(8 x the above)

_MODES_8_BIT = {1: "L", 3: "RGB", 4: "RGBA"}
_MODES_DEEP = {channels: f"{mode};{WRITTEN_BIT_DEPTH}" for channels, mode in _MODES_8_BIT.items()}
# Lossless: every sample kept as is (x265's lossless mode, full-resolution chroma, RGB not turned into YCbCr).
_LOSSLESS = {"quality": -1, "chroma": 444, "color_primaries": 1, "transfer_characteristics": 13,
             "matrix_coefficients": 0, "full_range_flag": 1}


def _write(path: Path, pixels: np.ndarray, fmt: str, quality: int, metadata: Metadata) -> None:
    import pillow_heif

    height, width, channels = pixels.shape
    if channels == 4 and (width * height > _HEVC_MAX_PICTURE or max(width, height) > _HEVC_MAX_SIDE):
        raise ValueError(f"HEIC cannot hold a picture with transparency this large ({width} x {height}; at most "
                         f"{_HEVC_MAX_PICTURE // 1_000_000} megapixels); write PNG or TIFF instead")
    options: dict[str, Any] = dict(_LOSSLESS) if quality >= 100 else {"quality": quality}
    options["tile_size"] = tile_size(width, height)
    if pixels.dtype == np.uint16:
        mode = _MODES_DEEP[channels]
        data = _from_16_bits(pixels, WRITTEN_BIT_DEPTH)
        options["bit_depth"] = WRITTEN_BIT_DEPTH
    else:
        mode, data = _MODES_8_BIT[channels], pixels
    # The pixels are upright: an EXIF orientation other than 1 would make pillow-heif add an irot/imir box.
    exif = _upright_exif(metadata.exif)
    if exif is not None:
        options["exif"] = exif
    if metadata.icc:
        options["icc_profile"] = metadata.icc
    heif = pillow_heif.from_bytes(mode, (width, height), np.ascontiguousarray(data).tobytes())
    heif.save(path, **options)


def tile_size(width: int, height: int) -> int:
    """The side of the square tiles a ``width`` x ``height`` picture is written in: 512 as phones use, larger
    when 512-pixel tiles would be more than a HEIF reader accepts."""
    for size in _TILE_SIZES:
        columns, rows = -(-width // size), -(-height // size)
        if columns * rows <= _MAX_ITEMS and max(columns, rows) <= _MAX_TILES_A_SIDE:
            return size
    return _TILE_SIZES[-1]  # beyond any photo; pillow-heif says what is too large


HEIF_READER = DirectReader("HEIF", claims_heif, _read)
HEIF = Backend("pillow-heif HEIF", None, None, _write)  # read by the direct reader
