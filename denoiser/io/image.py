"""The :class:`Image` type and the one place pixels change representation: uint8/uint16 <-> float 0-1 and
8 <-> 16 <-> 32 (float) bits. Every other module converts through :func:`to_float`, :func:`from_float` and
:func:`convert_depth`, so rounding and scaling are the same everywhere."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoiser.errors import UnknownNameError
from denoiser.io.formats import FORMATS

__all__ = ["GREY_TOLERANCE", "Image", "convert_depth", "from_float", "to_float"]

GREY_TOLERANCE = 2
"""Channels this close (in 8-bit levels) everywhere make a colour picture grey: JPEG's rounding of a grey picture
moves them by one or two."""


@dataclass(eq=False)
class Image:
    """Pixels plus the metadata a denoised copy should keep.

    ``pixels`` is H x W x C with C in (1, 3, 4) and dtype uint8, uint16 or float32 (a 2-D array is taken as
    grey). Float pixels (32-bit float TIFF: scientific and HDR work) may hold any finite values, outside 0-1 too;
    the model sees them scaled into 0-1 by :attr:`value_range` and results are scaled back.
    ``format`` is the format the image was read from; ``exif`` is the raw EXIF block (orientation already
    applied to the pixels and reset to 1); ``icc_profile`` the embedded colour profile; ``source`` the file.
    """

    pixels: np.ndarray
    format: str = "PNG"
    exif: bytes | None = None
    icc_profile: bytes | None = None
    source: Path | None = None
    _grey_in_color: bool | None = dataclasses.field(default=None, init=False, repr=False)
    """:meth:`is_grey_in_color`'s answer once asked (pixels are not changed in place; a changed copy asks again)."""

    def __post_init__(self) -> None:
        pixels = np.asarray(self.pixels)
        if pixels.ndim == 2:
            pixels = pixels[..., np.newaxis]
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4):
            raise ValueError(f"pixels must be H x W x C with C in (1, 3, 4), got shape {pixels.shape}")
        if pixels.dtype not in (np.uint8, np.uint16, np.float32):
            raise ValueError(f"pixels must be uint8, uint16 or float32, got {pixels.dtype}")
        self.pixels = pixels
        if self.format not in FORMATS:
            raise UnknownNameError("image format", self.format, FORMATS)
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
        """Bits per channel: 8, 16, or 32 for float."""
        return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(self.pixels.dtype, 32)

    @property
    def value_range(self) -> tuple[float, float]:
        """The values the model's 0-1 stands for: (0, 1) for integer pixels and for float pixels within 0-1;
        float pixels beyond it widen it to their (finite) minimum and maximum."""
        if self.bit_depth != 32 or self.pixels.size == 0:
            return 0.0, 1.0
        colour = self.color_values()
        low, high = float(colour.min()), float(colour.max())
        if not (np.isfinite(low) and np.isfinite(high)):  # readers refuse these; a made-up image may hold them
            finite = colour[np.isfinite(colour)]
            if finite.size == 0:
                return 0.0, 1.0
            low, high = float(finite.min()), float(finite.max())
        return min(0.0, low), max(1.0, high)

    @property
    def has_alpha(self) -> bool:
        """True for RGBA images (grey+alpha files are read as RGBA)."""
        return self.channels == 4

    def color(self) -> np.ndarray:
        """The colour channels as float32 H x W x (1 or 3) in [0, 1], alpha dropped: what a model sees."""
        return to_float(self.color_pixels(), copy=True)

    def color_pixels(self) -> np.ndarray:
        """The colour channels as the model takes them, alpha dropped: integer pixels in their own dtype (a view,
        no copy), float pixels scaled into 0-1 by :attr:`value_range` (a view when it is 0-1 already)."""
        colour = self.color_values()
        low, high = self.value_range
        if (low, high) == (0.0, 1.0):
            return colour
        return ((colour - np.float32(low)) / np.float32(high - low)).astype(np.float32, copy=False)

    def is_grey_in_color(self) -> bool:
        """True for a grey picture stored as colour: three channels within :data:`GREY_TOLERANCE` of one another
        everywhere (a black-and-white photo saved as RGB, a grey+alpha file read as RGBA)."""
        if self._grey_in_color is None:
            self._grey_in_color = self.color_values().shape[2] == 3 and self._channels_agree()
        return self._grey_in_color

    def _channels_agree(self) -> bool:
        colour = self.color_pixels()
        tolerance = GREY_TOLERANCE * (65535 / 255 if colour.dtype == np.uint16 else 1 if colour.dtype == np.uint8
                                      else 1 / 255)
        # A sparse look first (most colour photos fail it there), then every row, a few megapixels at a time: a
        # float copy of a whole 24-megapixel photo would take 288 MB.
        step = max(1, 4_000_000 // max(1, colour.shape[1]))
        blocks = [colour[::17], *(colour[top:top + step] for top in range(0, colour.shape[0], step))]
        for block in blocks:
            sample = block.astype(np.float32)
            spread = np.maximum(np.abs(sample[..., 0] - sample[..., 1]), np.abs(sample[..., 1] - sample[..., 2]))
            if spread.max(initial=0.0) > tolerance:
                return False
        return True

    def model_pixels(self) -> np.ndarray:
        """What the model and the noise reading take: :meth:`color_pixels`, or for a grey picture stored as colour
        (:meth:`is_grey_in_color`) their mean as one grey channel, so that it is denoised as grey and comes back
        grey, not with colour blotches; :meth:`with_color` takes the one-channel result back."""
        colour = self.color_pixels()
        if not self.is_grey_in_color():
            return colour
        grey = colour.astype(np.float32).mean(axis=2, keepdims=True)
        return grey if colour.dtype.kind == "f" else np.round(grey).astype(colour.dtype)

    def color_values(self) -> np.ndarray:
        """The colour channels as stored (a view), alpha dropped: float pixels in their own range."""
        return self.pixels[..., :3] if self.has_alpha else self.pixels

    def alpha(self) -> np.ndarray | None:
        """The alpha channel as H x W x 1 in the image's own dtype, or None without alpha."""
        return self.pixels[..., 3:4].copy() if self.has_alpha else None

    def with_color(self, color: np.ndarray) -> Image:
        """A new Image whose colour comes from a float [0, 1] array; alpha, bit depth and metadata are kept.

        ``color`` must match :meth:`color`'s shape (a 2-D array is accepted for grey, and one channel for a colour
        image: grey in all three, as :meth:`model_pixels` gives). Values are rounded
        and clipped to the bit depth's range (float images: scaled back to :attr:`value_range`, not clipped);
        the alpha channel is copied bit for bit.
        """
        color = np.asarray(color)
        if color.ndim == 2:
            color = color[..., np.newaxis]
        expected = (self.height, self.width, 3 if self.has_alpha else self.channels)
        if color.shape[2] == 1 and expected[2] == 3:  # a grey result of model_pixels(): grey again in every channel
            color = np.repeat(color, 3, axis=2)
        if color.shape != expected:
            raise ValueError(f"colour array has shape {color.shape}, expected {expected}")
        if self.bit_depth == 32:
            low, high = self.value_range
            pixels = np.asarray(color, dtype=np.float32) * np.float32(high - low) + np.float32(low)
        else:
            pixels = from_float(color, self.bit_depth)
        if self.has_alpha:
            pixels = np.concatenate([pixels, self.pixels[..., 3:4]], axis=2)
        return dataclasses.replace(self, pixels=pixels)


def to_float(pixels: np.ndarray, *, copy: bool = False) -> np.ndarray:
    """uint8 or uint16 pixels as float32 in [0, 1]; float pixels (already 0-1) as float32.

    Float32 input comes back as it is unless ``copy`` (for callers that write into the result). Any shape.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        top = 255.0
    elif pixels.dtype == np.uint16:
        top = 65535.0
    elif np.issubdtype(pixels.dtype, np.floating):
        return pixels.astype(np.float32, copy=copy)
    else:
        raise ValueError(f"expected uint8, uint16 or float pixels, got {pixels.dtype}")
    out = pixels.astype(np.float32)
    out /= top
    return out


def from_float(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """A float array in [0, 1] as uint8 (``bit_depth=8``) or uint16 (16) pixels, rounded and clipped, or as
    float32 (32, values kept as they are). Any shape.

    The scaling is done in float32 (float64 input is cast first). NaN becomes 0 so a misbehaving model
    cannot produce undefined integer values.
    """
    if bit_depth not in (8, 16, 32):
        raise ValueError(f"bit depth must be 8, 16 or 32, not {bit_depth}")
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"expected a float array in [0, 1], got {array.dtype}")
    if bit_depth == 32:
        return array.astype(np.float32)
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


def convert_depth(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """uint8/uint16/float32 ``pixels`` at ``bit_depth`` (8, 16 or 32 for float); returned as they are when already
    there.

    16 -> 8 rounds to nearest (x * 255 / 65535); 8 -> 16 is exact (x * 257, so 255 becomes 65535); integers to
    float give 0-1; float to integers clips to 0-1 first (the integer formats cannot hold more).
    """
    if pixels.dtype == np.float32 and bit_depth != 32:
        return from_float(pixels, bit_depth)
    if bit_depth == 32:
        return to_float(pixels)
    if bit_depth == 8 and pixels.dtype == np.uint16:
        # Round to nearest in integers; dropping the low byte would bias everything dark.
        return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if bit_depth == 16 and pixels.dtype == np.uint8:
        return pixels.astype(np.uint16) * 257
    return pixels
