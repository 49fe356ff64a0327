"""The 16-bit PNG backend: pixels through OpenCV (Pillow cuts 16-bit colour to 8 bits), metadata as PNG chunks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from denoiser.errors import ImageReadError, reason
from denoiser.io.backends.base import Backend, Source, grey_alpha_to_rgba, plain_metadata
from denoiser.io.metadata import EXIF_HEADER, Metadata

__all__ = ["PNG16", "png_bit_depth"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bit_depth(header: bytes) -> int:
    """16 when the IHDR chunk in ``header`` (a PNG's first 32 bytes) says 16 bits per sample, else 8 (1-8 bits)."""
    if header.startswith(_PNG_SIGNATURE) and header[12:16] == b"IHDR" and len(header) > 24 and header[24] == 16:
        return 16
    return 8


def _read_pixels(source: Source) -> np.ndarray:
    import cv2  # here, not at the top: OpenCV takes a while to load, and only 16-bit PNGs need it

    path, handle = source.path, source.handle
    try:
        handle.seek(0)
        data = np.frombuffer(handle.read(), dtype=np.uint8)
        # IMREAD_UNCHANGED keeps 16 bits and alpha and does not apply EXIF orientation (done by the caller).
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except Exception as exc:
        raise ImageReadError(path, f"cannot decode 16-bit PNG: {reason(exc)}") from exc
    if decoded is None or decoded.dtype != np.uint16:
        raise ImageReadError(path, "cannot decode 16-bit PNG")
    if decoded.ndim == 2:
        return decoded[..., np.newaxis]
    if decoded.shape[2] == 3:
        return decoded[..., ::-1]
    if decoded.shape[2] == 4:
        return decoded[..., [2, 1, 0, 3]]
    return grey_alpha_to_rgba(path, decoded)


def _write(path: Path, pixels: np.ndarray, fmt: str, quality: int, metadata: Metadata) -> None:
    import cv2

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
    if metadata.icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(metadata.icc)))
    exif = metadata.exif
    if exif:
        bare = exif[len(EXIF_HEADER) :] if exif.startswith(EXIF_HEADER) else exif  # PNG wants no header
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


PNG16 = Backend("OpenCV 16-bit PNG", _read_pixels, plain_metadata, _write)
