"""Reading and writing photos without losing what matters: bit depth, alpha, EXIF and colour profile.

One job per module:

- :mod:`~denoiser.io.image`: the :class:`Image` type and the one uint <-> float (and 8 <-> 16-bit) conversion
- :mod:`~denoiser.io.discovery`: supported formats and extensions, finding image files
- :mod:`~denoiser.io.metadata`: EXIF, ICC profile, orientation
- :mod:`~denoiser.io.orientation`: the eight flips and quarter turns (EXIF orientations, the self-ensemble's passes)
- :mod:`~denoiser.io.backends`: one backend per format family (Pillow; OpenCV for 16-bit PNG; tifffile for
  16-bit TIFF), chosen from a table keyed by (format, bit depth); a backend imports its codec library (OpenCV,
  tifffile, rawpy) only when it decodes or encodes, so ``import denoiser.io`` stays quick
- :mod:`~denoiser.io.reading`, :mod:`~denoiser.io.writing`: :func:`read_image` and :func:`write_image`
- :mod:`~denoiser.io.atomic`: atomic writes (temporary file, fsync, rename), used for every file the engine writes
- :mod:`~denoiser.io.thumbnails`: quick previews

Every failure is a typed error naming the file (:class:`~denoiser.errors.ImageReadError`,
:class:`~denoiser.errors.ImageWriteError`); every write goes through :func:`atomic_write`, so a failed or
interrupted write never leaves a partial file, and a write never replaces one of its inputs.
"""

from __future__ import annotations

from denoiser.io.atomic import atomic_write, atomic_write_bytes, sync_folder
from denoiser.io.discovery import FORMATS, SUPPORTED_EXTENSIONS, find_images, is_image_path
from denoiser.io.image import Image, convert_depth, from_float, to_float
from denoiser.io.reading import identify_format, read_image
from denoiser.io.thumbnails import read_thumbnail
from denoiser.io.writing import what_writing_loses, write_image

__all__ = [
    "FORMATS",
    "SUPPORTED_EXTENSIONS",
    "Image",
    "atomic_write",
    "atomic_write_bytes",
    "convert_depth",
    "find_images",
    "identify_format",
    "from_float",
    "is_image_path",
    "read_image",
    "read_thumbnail",
    "sync_folder",
    "to_float",
    "what_writing_loses",
    "write_image",
]
