"""Reading and writing photos without losing what matters: bit depth, alpha, EXIF and colour profile.

Pillow opens every file first (format detection by content, EXIF, ICC profile, decompression-bomb guard and
a full decode that catches truncated files). Pillow silently cuts 16-bit colour to 8 bits, so the pixels of
16-bit PNG files come from OpenCV and those of 16-bit TIFF files from tifffile instead.

Every failure is a typed error naming the file (:class:`~denoiser.errors.ImageReadError`,
:class:`~denoiser.errors.ImageWriteError`); every write goes through :func:`atomic_write`, so a failed or
interrupted write never leaves a partial file, and a write never replaces one of its inputs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import struct
import warnings
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, UnidentifiedImageError, features

from denoiser.errors import DenoiserError, ImageReadError, ImageWriteError, UnknownNameError

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "Image",
    "atomic_write",
    "find_images",
    "from_float",
    "is_image_path",
    "read_image",
    "to_float",
    "write_image",
]

SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".webp": "WEBP",
    ".bmp": "BMP",
}

_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
_FORMAT_NAMES = "PNG, JPEG, TIFF, WebP, BMP"
# Restricting Pillow to these decoders keeps exotic (and less hardened) plugins away from untrusted files.
# Its JPEG decoder also opens MPO files (JPEGs from cameras that embed a second picture) and reports "MPO".
_PIL_FORMATS = ["PNG", "JPEG", "TIFF", "WEBP", "BMP"]
_SIXTEEN_BIT_FORMATS = ("PNG", "TIFF")

_ORIENTATION_TAG = 0x0112
_EXIF_IFD_TAG = 0x8769
_GPS_IFD_TAG = 0x8825
# EXIF tags that describe the photo rather than the TIFF file's layout: only these travel from a TIFF's own
# tags into Image.exif and from Image.exif into a TIFF, so strip offsets or sample formats never leak.
# (Resolution is left out too: TIFF writers set it themselves.)
_TIFF_METADATA_TAGS = frozenset({270, 271, 272, 274, 305, 306, 315, 33432, _EXIF_IFD_TAG, _GPS_IFD_TAG})
# The subset tifffile can write as plain text tags on 16-bit TIFFs.
_TIFF_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 33432)
_EXIF_HEADER = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_MAX_EXIF = 65533  # one APP1 segment; Pillow refuses longer EXIF blocks

# numpy equivalents of PIL.ImageOps.exif_transpose for EXIF orientations 2..8 (H x W x C arrays).
_ORIENTATION_FIXES = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@dataclass(eq=False)
class Image:
    """Pixels plus the metadata a denoised copy should keep.

    ``pixels`` is H x W x C with C in (1, 3, 4) and dtype uint8 or uint16 (a 2-D array is taken as grey).
    ``format`` is the format the image was read from; ``exif`` is the raw EXIF block (orientation already
    applied to the pixels and reset to 1); ``icc_profile`` the embedded colour profile; ``source`` the file.
    """

    pixels: np.ndarray
    format: str = "PNG"
    exif: bytes | None = None
    icc_profile: bytes | None = None
    source: Path | None = None

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels)
        if pixels.ndim == 2:
            pixels = pixels[..., np.newaxis]
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
            raise ValueError(f"pixels must be H x W x C with C in (1, 3, 4), got shape {pixels.shape}")
        if pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"pixels must be uint8 or uint16, got {pixels.dtype}")
        self.pixels = pixels
        if self.format not in _FORMATS:
            raise UnknownNameError("image format", self.format, _FORMATS)
        if self.source is not None:
            self.source = Path(self.source)

    def __repr__(self) -> str:
        return (
            f"Image({self.width}x{self.height}x{self.channels} {self.pixels.dtype}, format={self.format!r}, "
            f"exif={'yes' if self.exif else 'no'}, icc={'yes' if self.icc_profile else 'no'}, "
            f"source={self.source!r})"
        )

    @property
    def height(self) -> int:
        """Number of pixel rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Number of pixel columns."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """1 (grey), 3 (RGB) or 4 (RGBA)."""
        return int(self.pixels.shape[2])

    @property
    def bit_depth(self) -> int:
        """Bits per channel: 8 or 16."""
        return 16 if self.pixels.dtype == np.uint16 else 8

    @property
    def has_alpha(self) -> bool:
        """True for RGBA images (grey+alpha files are read as RGBA)."""
        return self.channels == 4

    def color(self) -> np.ndarray:
        """The colour channels as float32 H x W x (1 or 3) in [0, 1], alpha dropped: what a model sees."""
        return to_float(self.color_pixels())

    def color_pixels(self) -> np.ndarray:
        """The colour channels in the image's own dtype (a view, no copy), alpha dropped."""
        return self.pixels[..., :3] if self.has_alpha else self.pixels

    def alpha(self) -> np.ndarray | None:
        """The alpha channel as H x W x 1 in the image's own dtype, or None without alpha."""
        return self.pixels[..., 3:4].copy() if self.has_alpha else None

    def with_color(self, color: np.ndarray) -> Image:
        """A new Image whose colour comes from a float [0, 1] array; alpha, bit depth and metadata are kept.

        ``color`` must match :meth:`color`'s shape (a 2-D array is accepted for grey). Values are rounded
        and clipped to the bit depth's range; the alpha channel is copied bit for bit.
        """
        color = np.asarray(color)
        if color.ndim == 2:
            color = color[..., np.newaxis]
        expected = (self.height, self.width, 3 if self.has_alpha else self.channels)
        if color.shape != expected:
            raise ValueError(f"colour array has shape {color.shape}, expected {expected}")
        pixels = from_float(color, self.bit_depth)
        if self.has_alpha:
            pixels = np.concatenate([pixels, self.pixels[..., 3:4]], axis=2)
        return dataclasses.replace(self, pixels=pixels)


# ----------------------------------------------------------------------------------------------------------
# Small helpers other modules use
# ----------------------------------------------------------------------------------------------------------


def to_float(pixels: np.ndarray) -> np.ndarray:
    """uint8 or uint16 pixels as float32 in [0, 1]; float pixels (already 0-1) as float32, not copied if they are."""
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        top = 255.0
    elif pixels.dtype == np.uint16:
        top = 65535.0
    elif np.issubdtype(pixels.dtype, np.floating):
        return pixels.astype(np.float32, copy=False)
    else:
        raise ValueError(f"expected uint8, uint16 or float pixels, got {pixels.dtype}")
    out = pixels.astype(np.float32)
    out /= top
    return out


def from_float(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """A float array in [0, 1] as uint8 (``bit_depth=8``) or uint16 (16) pixels, rounded and clipped.

    NaN becomes 0 so a misbehaving model cannot produce undefined integer values.
    """
    if bit_depth not in (8, 16):
        raise ValueError(f"bit depth must be 8 or 16, not {bit_depth}")
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected a float array in [0, 1], got {array.dtype}")
    if array.ndim == 0:
        return from_float(array.reshape(1), bit_depth).reshape(())
    top = np.float32(255.0 if bit_depth == 8 else 65535.0)
    out = np.empty(array.shape, dtype=np.uint8 if bit_depth == 8 else np.uint16)
    # Row bands keep the float temporaries small: a whole 24-megapixel photo would need two 288 MB copies.
    band = max(1, (1 << 22) // max(1, int(np.prod(array.shape[1:]))))
    for top_row in range(0, max(1, array.shape[0]), band):
        rows = slice(top_row, top_row + band)
        scaled = np.nan_to_num(array[rows].astype(np.float32) * top, nan=0.0)
        np.rint(scaled, out=scaled)
        np.clip(scaled, 0.0, top, out=scaled)
        out[rows] = scaled
    return out


def is_image_path(path: str | Path) -> bool:
    """True when the file name ends in a supported image extension (any letter case)."""
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def find_images(paths: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """The image files named by ``paths`` (files and folders), sorted, each once.

    Folders are searched for files with a supported extension, into sub-folders when ``recursive``;
    hidden files and folders (leading dot, e.g. :func:`atomic_write`'s temporaries) are skipped.
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
            raise ImageReadError(folder, f"cannot list folder: {_reason(err)}") from err

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


# ----------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------


def read_image(path: str | Path, *, max_pixels: int | None = None) -> Image:
    """Read a PNG, JPEG, TIFF, WebP or BMP file into an :class:`Image`.

    Grey, RGB and RGBA pass through (grey+alpha and palette-with-transparency become RGBA, palette RGB,
    bilevel grey, CMYK RGB); 16-bit files keep all 16 bits. The EXIF orientation is applied to the pixels
    and reset to 1 in the kept EXIF. Images with more than ``max_pixels`` pixels (default: Pillow's
    ``PIL.Image.MAX_IMAGE_PIXELS``) are refused; Pillow's own guard stays on, so a larger ``max_pixels``
    than Pillow's limit does not lift it.

    Raises ImageReadError naming the file for every problem: missing, a folder, unreadable, not an image,
    truncated or damaged, an unsupported pixel format, or too many pixels.
    """
    path = Path(path)
    limit = PILImage.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    handle = _open_file(path)  # closed by the with-block right below
    with handle:
        try:
            header = handle.read(32)
            handle.seek(0)
        except OSError as exc:
            raise ImageReadError(path, f"cannot read: {_reason(exc)}") from exc
        im, tiff_orientation = _open_with_pillow(path, handle, limit)
        with im:
            try:
                return _decode(path, handle, header, im, tiff_orientation)
            except DenoiserError:
                raise
            except Exception as exc:  # conversions of odd files: still a typed error, never a traceback
                raise ImageReadError(path, f"cannot read: {_reason(exc)}") from exc


def _open_with_pillow(path: Path, handle: BinaryIO, limit: int | None) -> tuple[PILImage.Image, int]:
    """The opened and fully decoded Pillow image, and (for TIFF) the EXIF orientation before decoding."""
    im = _open_lazily(path, handle)
    width, height = im.size
    if limit is not None and width * height > limit:
        im.close()
        raise ImageReadError(path, f"too many pixels: {width} x {height} = {width * height} (limit {limit})")
    # Pillow turns TIFF pixels upright while decoding and then deletes the tag; the 16-bit path, which
    # decodes the pixels again with tifffile, still needs to know the orientation.
    tiff_orientation = 1
    if im.format == "TIFF":
        with contextlib.suppress(Exception):
            tiff_orientation = _valid_orientation(im.tag_v2.get(_ORIENTATION_TAG, 1))
    try:
        im.load()  # force the full decode here, where a truncated file becomes a typed error
    except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError, struct.error... on bad data
        im.close()
        if "truncated" in str(exc):
            raise ImageReadError(path, "the file is truncated (incomplete download or copy?)") from exc
        raise ImageReadError(path, f"damaged or unreadable image data: {_reason(exc)}") from exc
    return im, tiff_orientation


def _decode(path: Path, handle: BinaryIO, header: bytes, im: PILImage.Image, tiff_orientation: int) -> Image:
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    if fmt not in _FORMATS:
        raise ImageReadError(path, f"unsupported format {im.format}; supported: {_FORMAT_NAMES}")
    icc: bytes | None = im.info.get("icc_profile") or None
    exif, orientation = _read_exif(im, fmt, tiff_orientation)
    if fmt == "PNG" and _png_bit_depth(header) == 16:
        pixels = _read_png16(path, handle)
    elif fmt == "TIFF" and _tiff_bit_depth(path, im) == 16:
        pixels = _read_tiff16(path, handle)
    else:
        pixels, icc = _pixels_from_pillow(path, im, icc)
        if fmt == "TIFF" and _ORIENTATION_TAG not in im.tag_v2:
            orientation = 1  # Pillow has already turned these pixels upright (see _open_with_pillow)
    fix = _ORIENTATION_FIXES.get(orientation)
    if fix is not None:
        pixels = fix(pixels)
    return Image(
        pixels=np.ascontiguousarray(pixels),
        format=fmt,
        exif=exif,
        icc_profile=icc,
        source=Path(os.path.abspath(path)),
    )


def _pixels_from_pillow(path: Path, im: PILImage.Image, icc: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """8-bit (and Pillow-native 16-bit grey) pixels as H x W x C, plus the ICC profile valid for them."""
    mode = im.mode
    if mode in ("L", "RGB", "RGBA"):
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
        im, icc = _cmyk_to_rgb(im, icc)
    elif mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.array(im).astype(np.uint16)[..., np.newaxis], icc
    else:
        raise ImageReadError(path, f"unsupported pixel format: {_describe_mode(mode)}")
    pixels = np.array(im)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    return pixels, icc


def _describe_mode(mode: str) -> str:
    known = {
        "F": "32-bit floating-point pixels",
        "I": "32-bit integer pixels",
        "LAB": "CIE L*a*b* pixels",
        "HSV": "HSV pixels",
    }
    return f"{known.get(mode, 'pixels')} (Pillow mode {mode!r})"


def _cmyk_to_rgb(im: PILImage.Image, icc: bytes | None) -> tuple[PILImage.Image, bytes | None]:
    # A CMYK profile would be wrong for the RGB result, so it is used for the conversion (when it works)
    # and then dropped: the result is plain sRGB either way.
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(BytesIO(icc))
            converted = ImageCms.profileToProfile(
                im, source, ImageCms.createProfile("sRGB"), outputMode="RGB"
            )
            if converted is not None:
                return converted, None
        except Exception:  # a broken profile: the naive conversion below still gives a picture
            pass
    return im.convert("RGB"), None


def _png_bit_depth(header: bytes) -> int:
    if header.startswith(_PNG_SIGNATURE) and header[12:16] == b"IHDR" and len(header) > 24:
        return header[24]
    return 8


def _tiff_bit_depth(path: Path, im: PILImage.Image) -> int:
    bits = getattr(im, "tag_v2", {}).get(258, 8)
    bits = tuple(bits) if isinstance(bits, (tuple, list)) else (bits,)
    if 16 in bits and set(bits) != {16}:
        raise ImageReadError(path, f"unsupported pixel format: mixed bits per sample {bits}")
    return 16 if 16 in bits else 8


def _read_png16(path: Path, handle: BinaryIO) -> np.ndarray:
    try:
        handle.seek(0)
        data = np.frombuffer(handle.read(), dtype=np.uint8)
        # IMREAD_UNCHANGED keeps 16 bits and alpha and does not apply EXIF orientation (done by the caller).
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except Exception as exc:
        raise ImageReadError(path, f"cannot decode 16-bit PNG: {_reason(exc)}") from exc
    if decoded is None or decoded.dtype != np.uint16:
        raise ImageReadError(path, "cannot decode 16-bit PNG")
    if decoded.ndim == 2:
        return decoded[..., np.newaxis]
    if decoded.shape[2] == 3:
        return decoded[..., ::-1]
    if decoded.shape[2] == 4:
        return decoded[..., [2, 1, 0, 3]]
    return _grey_alpha_to_rgba(path, decoded)


def _read_tiff16(path: Path, handle: BinaryIO) -> np.ndarray:
    try:
        handle.seek(0)
        with tifffile.TiffFile(handle) as tif:
            page = tif.pages[0]
            photometric = int(page.photometric)
            axes = page.axes
            pixels = page.asarray()
    except Exception as exc:
        raise ImageReadError(path, f"cannot decode 16-bit TIFF: {_reason(exc)}") from exc
    if pixels.dtype.kind != "u" or pixels.dtype.itemsize != 2:
        raise ImageReadError(path, f"unsupported pixel format: 16-bit {pixels.dtype.name} samples")
    pixels = pixels.astype(np.uint16, copy=False)  # big-endian files come back as '>u2'
    if pixels.ndim == 3 and axes.startswith("S"):
        pixels = np.moveaxis(pixels, 0, -1)  # planar (one plane per channel) layout
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    if pixels.ndim != 3:
        raise ImageReadError(path, f"unsupported TIFF layout: axes {axes!r}, shape {pixels.shape}")
    if photometric == tifffile.PHOTOMETRIC.MINISWHITE:
        pixels = 65535 - pixels  # 0 means white in these files
        photometric = tifffile.PHOTOMETRIC.MINISBLACK
    channels = pixels.shape[2]
    if photometric == tifffile.PHOTOMETRIC.MINISBLACK and channels in (1, 2):
        return pixels if channels == 1 else _grey_alpha_to_rgba(path, pixels)
    if photometric == tifffile.PHOTOMETRIC.RGB and channels in (3, 4):
        return pixels
    name = tifffile.PHOTOMETRIC(photometric).name if photometric in tifffile.PHOTOMETRIC else photometric
    raise ImageReadError(path, f"unsupported pixel format: 16-bit {name} TIFF with {channels} channels")


def _grey_alpha_to_rgba(path: Path, pixels: np.ndarray) -> np.ndarray:
    if pixels.shape[2] != 2:
        raise ImageReadError(path, f"unsupported pixel format: {pixels.shape[2]} channels")
    grey, alpha = pixels[..., :1], pixels[..., 1:]
    return np.concatenate([grey, grey, grey, alpha], axis=2)


# ----------------------------------------------------------------------------------------------------------
# EXIF
# ----------------------------------------------------------------------------------------------------------


def _read_exif(im: PILImage.Image, fmt: str, tiff_orientation: int) -> tuple[bytes | None, int]:
    """The EXIF block to keep (orientation reset to 1) and the orientation to apply to the pixels."""
    try:
        exif = im.getexif()
        orientation = _valid_orientation(exif.get(_ORIENTATION_TAG, 1))
        if fmt == "TIFF":
            orientation = tiff_orientation
            if orientation != 1:
                exif[_ORIENTATION_TAG] = 1  # Pillow deleted the tag when it applied it; say "upright" instead
            # A TIFF's EXIF is its own tag directory; keep only the tags that describe the photo.
            raw = _metadata_only(exif)
        else:
            raw = im.info.get("exif") or (exif.tobytes() if len(exif) else None)
            if raw is not None and not raw.startswith(_EXIF_HEADER):
                raw = _EXIF_HEADER + raw  # WebP stores it bare; Pillow's JPEG writer needs the header
            if raw is not None and orientation != 1:
                raw = _reset_orientation(raw)
    except Exception:  # malformed EXIF: better to open the photo without it than not at all
        return None, tiff_orientation if fmt == "TIFF" else 1
    return raw or None, orientation


def _valid_orientation(value: object) -> int:
    return value if isinstance(value, int) and value in _ORIENTATION_FIXES else 1


def _metadata_only(exif: PILImage.Exif) -> bytes | None:
    """The photo-describing tags of ``exif`` (sub-IFDs included) as an EXIF block, orientation set to 1."""
    for tag in (_EXIF_IFD_TAG, _GPS_IFD_TAG):
        if tag in exif:
            exif.get_ifd(tag)  # load sub-directories while the file is still open
    for tag in list(exif):
        if tag not in _TIFF_METADATA_TAGS:
            del exif[tag]
    if not len(exif):
        return None
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1
    return exif.tobytes()


def _reset_orientation(raw: bytes) -> bytes | None:
    """``raw`` with its orientation tag set to 1, patched in place so every other byte stays as it was."""
    try:
        data = bytearray(raw)
        base = len(_EXIF_HEADER) if raw.startswith(_EXIF_HEADER) else 0
        order = {b"II": "<", b"MM": ">"}[bytes(data[base : base + 2])]
        (ifd,) = struct.unpack_from(order + "I", data, base + 4)
        (count,) = struct.unpack_from(order + "H", data, base + ifd)
        for index in range(count):
            entry = base + ifd + 2 + 12 * index
            tag, kind, number = struct.unpack_from(order + "HHI", data, entry)
            if tag == _ORIENTATION_TAG and kind == 3 and number == 1:
                struct.pack_into(order + "H", data, entry + 8, 1)
                return bytes(data)
    except (KeyError, struct.error):
        pass
    # Unusual layout: let Pillow rewrite the block; drop it rather than keep a tag that rotates twice.
    try:
        exif = PILImage.Exif()
        exif.load(raw)
        exif[_ORIENTATION_TAG] = 1
        return exif.tobytes()
    except Exception:  # the caller copes with no EXIF
        return None


def _exif_for_tiff(raw: bytes) -> PILImage.Exif | None:
    try:
        exif = PILImage.Exif()
        exif.load(raw)
        return exif if _metadata_only(exif) else None
    except Exception:  # unreadable EXIF is simply not copied; the picture still gets written
        return None


def _tiff16_text_tags(raw: bytes | None) -> list[tuple[int, int, int, str, bool]]:
    """EXIF text tags (camera, date, copyright...) as tifffile extratags; the Exif sub-IFD cannot go along."""
    if not raw:
        return []
    try:
        exif = PILImage.Exif()
        exif.load(raw)
    except Exception:  # unreadable EXIF is simply not copied
        return []
    tags = []
    for tag in _TIFF_TEXT_TAGS:
        value = exif.get(tag)
        if isinstance(value, str) and value and value.isascii():
            tags.append((tag, 2, 0, value, True))
    return tags


# ----------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------


def write_image(
    path: str | Path,
    image: Image,
    *,
    quality: int = 95,
    keep_metadata: bool = True,
    bit_depth: int | None = None,
    protected: Iterable[str | Path] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``image`` to ``path`` atomically, in the format its extension names; return the path written.

    - Formats: PNG, JPEG, TIFF, WebP, BMP. ``quality`` (1-100) applies to JPEG and WebP; WebP at 100 is
      written lossless.
    - Bit depth: kept by default, ``bit_depth=8|16`` forces one. JPEG, WebP and BMP cannot hold 16 bits:
      they get 8 bits, rounded (value * 255 / 65535), never cut.
    - Alpha: kept, except by JPEG, which cannot hold it and drops it. (Pillow writes RGBA BMPs but reads
      them back as RGB.)
    - Metadata (``keep_metadata``): EXIF and ICC profile are written to PNG, JPEG, WebP and TIFF; BMP holds
      neither. 16-bit TIFFs keep the ICC profile and EXIF text tags (camera, date...), not the Exif sub-IFD.
    - Safety: never replaces ``image.source`` or any path in ``protected``, even with ``overwrite=True``;
      an existing file is only replaced with ``overwrite=True``. Missing folders are created.

    Raises ImageWriteError naming the file for every problem (unknown extension, would overwrite an input,
    already exists, disk errors...).
    """
    target = Path(path)
    fmt = SUPPORTED_EXTENSIONS.get(target.suffix.lower())
    if fmt is None:
        known = ", ".join(SUPPORTED_EXTENSIONS)
        raise ImageWriteError(target, f"unknown image extension {target.suffix!r}; known: {known}")
    if bit_depth not in (None, 8, 16):
        raise ImageWriteError(target, f"bit depth must be 8 or 16, not {bit_depth}")
    if not 1 <= quality <= 100:
        raise ImageWriteError(target, f"quality must be between 1 and 100, not {quality}")
    _check_target(target, image, protected, overwrite)

    depth = bit_depth or image.bit_depth
    if fmt not in _SIXTEEN_BIT_FORMATS:
        depth = 8
    pixels = _convert_depth(image.pixels, depth)
    if fmt == "JPEG" and pixels.shape[2] == 4:
        pixels = pixels[..., :3]
    exif = image.exif if keep_metadata and fmt != "BMP" else None
    icc = image.icc_profile if keep_metadata and fmt != "BMP" else None

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageWriteError(target, f"cannot create folder {target.parent}: {_reason(exc)}") from exc
    try:
        with atomic_write(target) as temporary:
            if depth == 16 and fmt == "PNG":
                _write_png16(temporary, pixels, exif, icc)
            elif depth == 16:
                _write_tiff16(temporary, pixels, exif, icc)
            else:
                _write_with_pillow(temporary, pixels, fmt, quality, exif, icc)
    except DenoiserError:
        raise
    except Exception as exc:  # OSError (disk full, permissions), encoder errors: all become typed errors
        raise ImageWriteError(target, f"could not write: {_reason(exc)}") from exc
    return target


def _check_target(target: Path, image: Image, protected: Iterable[str | Path], overwrite: bool) -> None:
    inputs = [Path(p) for p in protected]
    if image.source is not None:
        inputs.append(image.source)
    for source in inputs:
        if _same_file(target, source):
            raise ImageWriteError(
                target, f"would overwrite the input {source.name}; choose another output name or folder"
            )
    if target.is_dir():
        raise ImageWriteError(target, "is a folder")
    if target.exists() and not overwrite:
        raise ImageWriteError(target, "already exists (overwriting was not allowed)")


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if os.path.samefile(a, b):  # catches hard links and case-insensitive file systems
            return True
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def _convert_depth(pixels: np.ndarray, depth: int) -> np.ndarray:
    if depth == 8 and pixels.dtype == np.uint16:
        # Round to nearest (x * 255 / 65535) in integers; dropping the low byte would bias everything dark.
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if depth == 16 and pixels.dtype == np.uint8:
        return pixels.astype(np.uint16) * 257
    return pixels


def _write_with_pillow(
    path: Path, pixels: np.ndarray, fmt: str, quality: int, exif: bytes | None, icc: bytes | None
) -> None:
    im = PILImage.fromarray(np.ascontiguousarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels))
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        # Full-resolution chroma at high quality: halving it would blur away the colour detail just cleaned.
        options.update(quality=quality, subsampling=0 if quality >= 90 else 2)
        if exif is not None and len(exif) > _JPEG_MAX_EXIF:
            exif = None  # does not fit in a JPEG; the picture matters more than its EXIF
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality >= 100, exact=quality >= 100)
    if fmt == "TIFF":
        tiff_exif = _exif_for_tiff(exif) if exif else None
        if tiff_exif is not None:
            options["exif"] = tiff_exif
        # Compression goes through libtiff, which cannot write the Exif/GPS sub-directories (it fails and
        # prints to stderr); a photo's EXIF outweighs the file size, so such files are left uncompressed.
        if features.check("libtiff") and not (
            tiff_exif is not None and {_EXIF_IFD_TAG, _GPS_IFD_TAG} & set(tiff_exif)
        ):
            options["compression"] = "tiff_adobe_deflate"
    elif exif:
        options["exif"] = exif
    if icc:
        options["icc_profile"] = icc
    im.save(path, format=fmt, **options)


def _write_png16(path: Path, pixels: np.ndarray, exif: bytes | None, icc: bytes | None) -> None:
    if pixels.shape[2] == 1:
        bgr = pixels[..., 0]
    elif pixels.shape[2] == 3:
        bgr = pixels[..., ::-1]
    else:
        bgr = pixels[..., [2, 1, 0, 3]]
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(bgr))
    if not ok:
        raise OSError("OpenCV could not encode the 16-bit PNG")
    chunks = []
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if exif:
        bare = exif[len(_EXIF_HEADER) :] if exif.startswith(_EXIF_HEADER) else exif  # PNG wants no header
        chunks.append(_png_chunk(b"eXIf", bare))
    data = _insert_after_ihdr(encoded.tobytes(), b"".join(chunks))
    with open(path, "wb") as out:
        out.write(data)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _insert_after_ihdr(png: bytes, chunks: bytes) -> bytes:
    # iCCP has to precede IDAT; right after IHDR is always a valid place for both chunks.
    if not png.startswith(_PNG_SIGNATURE) or png[12:16] != b"IHDR":
        raise OSError("unexpected PNG stream from the encoder")
    (length,) = struct.unpack_from(">I", png, 8)
    end = 8 + 12 + length
    return png[:end] + chunks + png[end:]


def _write_tiff16(path: Path, pixels: np.ndarray, exif: bytes | None, icc: bytes | None) -> None:
    grey = pixels.shape[2] == 1
    tifffile.imwrite(
        path,
        pixels[..., 0] if grey else pixels,
        photometric="minisblack" if grey else "rgb",
        extrasamples=["unassalpha"] if pixels.shape[2] == 4 else None,
        compression="zlib",
        iccprofile=icc or None,
        extratags=_tiff16_text_tags(exif),
        metadata=None,  # no tifffile JSON in ImageDescription
        software=False,
    )


@contextmanager
def atomic_write(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` in one step.

    The temporary file is hidden (``.name.tmp-XXXX.ext``) and keeps the real extension so encoders pick the
    right format. If the block raises, the temporary file is deleted and the exception propagates: no
    partial file is ever left at ``path`` or beside it. The parent folder must exist.
    """
    target = Path(path)
    temporary = _create_temporary(target)
    try:
        yield temporary
        if target.exists():
            with contextlib.suppress(OSError):
                shutil.copymode(target, temporary)  # replacing a file should not change who can read it
        _flush_to_disk(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def _create_temporary(target: Path) -> Path:
    stem = target.stem[:100]  # stay well inside file-name length limits
    for _ in range(100):
        candidate = target.parent / f".{stem}.tmp-{secrets.token_hex(4)}{target.suffix}"
        try:
            # O_EXCL claims the name; mode 0o666 lets the umask decide, as for any new file
            # (tempfile.mkstemp would make every output private to its owner).
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name beside {target}")


def _flush_to_disk(path: Path) -> None:
    # Without fsync a crash right after os.replace can leave an empty file where the photo should be.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


# ----------------------------------------------------------------------------------------------------------
# Thumbnails
# ----------------------------------------------------------------------------------------------------------

__all__.append("read_thumbnail")

_THUMBNAIL_BACKGROUND = (128, 128, 128, 255)  # mid-grey under transparent pixels: reads on light and dark


def read_thumbnail(path: str | Path, max_side: int = 160) -> np.ndarray:
    """A small uint8 RGB (H x W x 3) preview of an image file, upright, its longer side at most ``max_side``.

    Fast where it can be: JPEGs are decoded at reduced scale (Pillow's ``draft``) and everything is shrunk
    with ``thumbnail`` before any other conversion. The EXIF orientation is applied; the aspect ratio is
    kept (an image already small enough keeps its size). Grey becomes RGB, 16-bit files are shown by their
    top 8 bits (16-bit TIFFs are decoded as :func:`read_image` does), transparent pixels are composited on
    mid-grey. Pillow's decompression-bomb guard applies, as for :func:`read_image`.

    Raises ImageReadError naming the file for every problem (missing, a folder, not an image, truncated,
    an unsupported pixel format...); ValueError when ``max_side`` is below 1.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1, not {max_side}")
    path = Path(path)
    handle = _open_file(path)  # closed by the with-block right below
    with handle:
        im = _open_lazily(path, handle)
        with im:
            try:
                if im.format == "TIFF" and _tiff_bit_depth(path, im) == 16:
                    # Pillow decodes some 16-bit TIFF layouts wrongly; read them as read_image does.
                    small = _shrink(_from_pixels(_convert_depth(read_image(path).pixels, 8)), max_side)
                    orientation = 1  # read_image has turned the pixels upright already
                else:
                    small, orientation = _pillow_thumbnail(path, im, max_side)
                return _thumbnail_pixels(small, orientation)
            except DenoiserError:
                raise
            except Exception as exc:  # decoders raise OSError, ValueError, SyntaxError... on bad data
                if "truncated" in str(exc):
                    raise ImageReadError(path, "the file is truncated (incomplete download or copy?)") from exc
                raise ImageReadError(path, f"damaged or unreadable image data: {_reason(exc)}") from exc


def _open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, or an ImageReadError saying why not (a folder, missing, no permission...)."""
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise ImageReadError(path, "no such file") from None
    except PermissionError:
        raise ImageReadError(path, "permission denied (the file cannot be read)") from None
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {_reason(exc)}") from exc


def _open_lazily(path: Path, handle: BinaryIO) -> PILImage.Image:
    """The Pillow image with its header parsed but its pixels not yet decoded (so ``draft`` still works).

    Pillow only warns between its limit and twice its limit; turning the warning into an exception makes sure
    a would-be decompression bomb is refused rather than logged. (catch_warnings is process-wide state, but it
    is only held for the header parse, not the decode.)
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            return PILImage.open(handle, formats=_PIL_FORMATS)
        except UnidentifiedImageError:
            raise ImageReadError(
                path, f"not an image file, or not in a supported format ({_FORMAT_NAMES})"
            ) from None
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning) as exc:
            found = re.search(r"\((\d+) pixels\)", str(exc))
            count = f"{found.group(1)} pixels" if found else "more than allowed"
            raise ImageReadError(
                path,
                f"too many pixels: {count} (limit {PILImage.MAX_IMAGE_PIXELS}); refusing a possible "
                "decompression bomb",
            ) from None
        except Exception as exc:  # a damaged header can raise almost anything from inside a plugin
            raise ImageReadError(path, f"damaged or unreadable image: {_reason(exc)}") from exc


def _pillow_thumbnail(path: Path, im: PILImage.Image, max_side: int) -> tuple[PILImage.Image, int]:
    """The shrunk image in mode L, RGB or RGBA, and the EXIF orientation still to apply to it."""
    # JPEG only: decode at 1/2, 1/4 or 1/8 scale, keeping twice the target size for a clean final resize.
    im.draft(None, (2 * max_side, 2 * max_side))
    im.load()
    try:
        # Read after the decode: Pillow turns TIFF pixels upright while decoding and deletes the tag then.
        orientation = _valid_orientation(im.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # malformed EXIF: show the pixels as stored rather than nothing
        orientation = 1
    if im.mode in ("L", "RGB", "RGBA"):
        return _shrink(im, max_side), orientation
    if im.mode == "I" and im.format == "PNG":  # 16-bit grey PNG in older Pillow versions
        pixels = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)[..., np.newaxis]
    else:
        pixels, _ = _pixels_from_pillow(path, im, im.info.get("icc_profile") or None)
    return _shrink(_from_pixels(_convert_depth(pixels, 8)), max_side), orientation


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
    fix = _ORIENTATION_FIXES.get(orientation)
    if fix is not None:
        pixels = fix(pixels)
    return np.ascontiguousarray(pixels)
