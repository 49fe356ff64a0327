"""Fuzz target for atheris (libFuzzer for Python): :func:`denoiser.io.read_image` and
:func:`denoiser.io.read_thumbnail` on arbitrary files.

An input is a file and the extension it is read under: the first byte picks the extension from :data:`SUFFIXES`
(modulo their number), the rest is the file. The extension matters for camera RAW, which is recognised by it
(``.dng``, ``.nef``...); every other format by its content. Each input is written to a file, read, and made into a
thumbnail (what the folder pane does with every file in a folder). A finding is any exception other than
:class:`~denoiser.errors.ImageReadError` naming the file (atheris reports it with the input that caused it), a crash
in a native decoder (Pillow, libheif, dav1d, LibRaw, tifffile's codecs), an input that runs past ``-timeout``, or
memory beyond ``-rss_limit_mb``. See ``docs/fuzzing.md``::

    pip install atheris
    python fuzz/fuzz_read_image.py --write-seeds fuzz/corpus/images      # small valid files to start from
    python fuzz/fuzz_read_image.py fuzz/corpus/images -max_total_time=3600 -timeout=20 -rss_limit_mb=2048

Importing this module needs neither atheris nor a fuzzing run: :func:`seeds` are also what the property-based tests
(``tests/denoiser/test_fuzz.py``) damage, and ``check`` is what they call on the seeds.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import struct
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from denoiser.errors import ImageReadError

PIXEL_LIMIT = 16_000_000
"""Pillow's decompression-bomb limit while fuzzing (its default is 89 million pixels): a tampered header may then
ask for at most about 100 MB, so ``-rss_limit_mb`` finds real leaks and bombs rather than large legal images."""
SUFFIXES = (".png", ".jpg", ".tif", ".bmp", ".webp", ".heic", ".avif", ".dng")
"""The extensions an input's first byte picks from; new ones go at the end, so that existing corpora keep theirs."""
THUMBNAIL_SIDE = 160
"""The longest side of the thumbnails checked (read_thumbnail's default, what the folder pane shows)."""
PIXEL_TYPES = ("uint8", "uint16", "float32")
"""The pixel types an Image holds."""


@functools.lru_cache(maxsize=1)
def _folder() -> Path:
    """A private temporary folder the inputs are written into (made on first use, not on import)."""
    return Path(tempfile.mkdtemp(prefix="denoiser-fuzz-"))


def encode(suffix: str, data: bytes) -> bytes:
    """One fuzz input from a file's bytes and the extension (one of :data:`SUFFIXES`) it is read under."""
    return bytes([SUFFIXES.index(suffix)]) + data


def decode(data: bytes) -> tuple[str, bytes]:
    """The extension and the file's bytes an input stands for."""
    if not data:
        return SUFFIXES[0], b""
    return SUFFIXES[data[0] % len(SUFFIXES)], data[1:]


# --- seeds --------------------------------------------------------------------------------------------------------


def seeds() -> dict[str, bytes]:
    """Small valid files of every format and bit depth :func:`~denoiser.io.read_image` takes, by file name (whose
    extension is the one to read them under): PNG, JPEG, TIFF (8, 16 and 32-bit float), BMP, WebP, HEIC (8 and
    10-bit), AVIF and a DNG, each a few hundred bytes to a few kB. Formats this install cannot write are left out
    (HEIC without pillow-heif, AVIF without Pillow's AVIF support)."""
    import cv2
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (6, 8, 3), dtype=np.uint16)
    tiff16 = io.BytesIO()
    tifffile.imwrite(tiff16, deep, photometric="rgb", compression="zlib")
    found = {
        "rgb.png": _encoded(rgb, "PNG"),
        "rgba.png": _encoded(rng.integers(0, 256, (6, 8, 4), dtype=np.uint8), "PNG"),
        "grey.png": _encoded(rgb[:, :, 0], "PNG"),
        "rgb16.png": cv2.imencode(".png", deep)[1].tobytes(),
        "rgb.jpg": _encoded(rgb, "JPEG", quality=90, exif=_exif_turned()),
        "rgb.tif": _encoded(rgb, "TIFF"),
        "lzw.tif": _encoded(rgb, "TIFF", compression="tiff_lzw"),
        "rgb16.tif": tiff16.getvalue(),
        "rgb.bmp": _encoded(rgb, "BMP"),
        "rgb.webp": _encoded(rgb, "WEBP", lossless=True),
        **_float_tiffs(rng.normal(0.5, 0.4, (6, 8, 3)).astype(np.float32)),
        "mosaic.dng": dng(rng.integers(256, 16384, (24, 32), dtype=np.uint16),
                          _encoded(np.repeat(np.repeat(rgb, 2, axis=0), 2, axis=1), "JPEG", quality=50)),
    }
    if importlib.util.find_spec("pillow_heif") is not None:
        found.update(_heics(rgb, (deep >> 6).astype(np.uint16)))
    from PIL import features

    if features.check("avif"):
        found["rgb.avif"] = _encoded(rgb, "AVIF", quality=90, exif=_exif_turned())
    return found


def _encoded(pixels: object, fmt: str, **options: object) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def _exif_turned() -> bytes:
    """An EXIF block with orientation 6: a quarter turn for the reader to apply."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


def _float_tiffs(pixels: object) -> dict[str, bytes]:
    """32-bit float TIFFs: RGB zlib-compressed, and grey and RGB with the floating-point predictor (predictor 3,
    where this install's tifffile can write it: it needs imagecodecs), one of them turned by its orientation tag."""
    import numpy as np
    import tifffile

    rgb = np.asarray(pixels, dtype=np.float32)
    layouts = {"float-rgb.tif": (rgb, "rgb", None, 1)}
    if 3 in tifffile.TIFF.PREDICTORS:
        layouts["float-grey-predictor.tif"] = (rgb[..., 0], "minisblack", 3, 1)
        layouts["float-rgb-predictor.tif"] = (rgb, "rgb", 3, 6)
    found = {}
    for name, (samples, photometric, predictor, orientation) in layouts.items():
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, samples, photometric=photometric, compression="zlib", predictor=predictor,
                         metadata=None, extratags=[(0x0112, "H", 1, orientation, True)])
        found[name] = buffer.getvalue()
    return found


def _heics(rgb: object, ten_bit: object) -> dict[str, bytes]:
    """An 8-bit HEIC with EXIF (orientation 6, which pillow-heif stores as the rotation box libheif applies) and
    a 10-bit one, as pillow-heif writes them."""
    import numpy as np
    import pillow_heif

    found = {}
    for name, pixels, mode, options in (("rgb8.heic", rgb, "RGB", {"exif": _exif_turned()}),
                                        ("rgb10.heic", ten_bit, "RGB;10", {"bit_depth": 10})):
        samples = np.ascontiguousarray(pixels)
        heif = pillow_heif.from_bytes(mode, (samples.shape[1], samples.shape[0]), samples.tobytes())
        buffer = io.BytesIO()
        heif.save(buffer, quality=90, **options)
        found[name] = buffer.getvalue()
    return found


# A DNG, written by hand (tifffile cannot write an Exif sub-IFD). TIFF field types: their struct codes and sizes.
_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _SRATIONAL = 1, 2, 3, 4, 5, 10
_CODES = {_SHORT: "H", _LONG: "I", _RATIONAL: "I", _SRATIONAL: "i"}
_SIZES = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _SRATIONAL: 8}
_Entry = tuple[int, int, "bytes | tuple[int, ...]"]


def dng(mosaic: object, preview: bytes) -> bytes:
    """A small DNG LibRaw develops: the RGGB ``mosaic`` (uint16 H x W, black level 256, white 16383; LibRaw
    refuses pictures under 22 pixels a side), camera make and model, orientation 6, an Exif sub-IFD (exposure,
    ISO, date taken) and the JPEG ``preview`` in a SubIFD, as cameras store it. Directories first, then the data."""
    import numpy as np
    from PIL import Image

    height, width = np.shape(mosaic)
    data = np.ascontiguousarray(mosaic, dtype="<u2").tobytes()
    with Image.open(io.BytesIO(preview)) as im:
        preview_width, preview_height = im.size

    def directories(exif_at: int, preview_at: int, preview_data_at: int, mosaic_at: int) -> list[list[_Entry]]:
        raw = [(254, _LONG, (0,)), (256, _LONG, (width,)), (257, _LONG, (height,)), (258, _SHORT, (16,)),
               (259, _SHORT, (1,)), (262, _SHORT, (32803,)), (271, _ASCII, b"Fuzzmaker\0"),
               (272, _ASCII, b"FM-1\0"), (273, _LONG, (mosaic_at,)), (274, _SHORT, (6,)), (277, _SHORT, (1,)),
               (278, _LONG, (height,)), (279, _LONG, (len(data),)), (330, _LONG, (preview_at,)),
               (33421, _SHORT, (2, 2)), (33422, _BYTE, bytes((0, 1, 1, 2))), (34665, _LONG, (exif_at,)),
               (50706, _BYTE, bytes((1, 4, 0, 0))), (50708, _ASCII, b"Fuzzmaker FM-1\0"), (50714, _SHORT, (256,)),
               (50717, _SHORT, (16383,)), (50721, _SRATIONAL, (1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1)),
               (50728, _RATIONAL, (1, 2, 1, 1, 4, 5))]
        exif = [(33434, _RATIONAL, (1, 250)), (34855, _SHORT, (1600,)), (36867, _ASCII, b"2024:05:01 12:34:56\0")]
        thumb = [(254, _LONG, (1,)), (256, _LONG, (preview_width,)), (257, _LONG, (preview_height,)),
                 (258, _SHORT, (8, 8, 8)), (259, _SHORT, (7,)), (262, _SHORT, (6,)), (273, _LONG, (preview_data_at,)),
                 (277, _SHORT, (3,)), (278, _LONG, (preview_height,)), (279, _LONG, (len(preview),))]
        return [raw, exif, thumb]

    sizes = [len(_directory(entries, 0)) for entries in directories(0, 0, 0, 0)]
    starts = [8 + sum(sizes[:index]) for index in range(len(sizes))]
    preview_data_at = starts[-1] + sizes[-1]
    mosaic_at = preview_data_at + len(preview) + len(preview) % 2
    entries = directories(starts[1], starts[2], preview_data_at, mosaic_at)
    parts = [b"II*\0" + struct.pack("<I", starts[0])]
    parts += [_directory(table, start) for table, start in zip(entries, starts, strict=True)]
    return b"".join([*parts, preview, b"\0" * (len(preview) % 2), data])


def _directory(entries: list[_Entry], at: int) -> bytes:
    """A little-endian TIFF directory placed at offset ``at``: its entries sorted by tag, values longer than 4
    bytes right after it (on word boundaries), no next directory."""
    table, values = struct.pack("<H", len(entries)), b""
    values_at = at + 2 + 12 * len(entries) + 4
    for tag, kind, value in sorted(entries):
        packed = value if isinstance(value, bytes) else struct.pack(f"<{len(value)}{_CODES[kind]}", *value)
        if len(packed) <= 4:
            field = packed.ljust(4, b"\0")
        else:
            field = struct.pack("<I", values_at + len(values))
            values += packed + b"\0" * (len(packed) % 2)
        table += struct.pack("<HHI", tag, kind, len(packed) // _SIZES[kind]) + field
    return table + struct.pack("<I", 0) + values


# --- the check ----------------------------------------------------------------------------------------------------


def check(data: bytes, folder: Path | None = None) -> None:
    """Read the file ``data`` stands for (see :func:`decode`; written into ``folder``, default a private temporary
    one) and make its thumbnail: each must give an image (finite pixels in a known layout; an upright uint8 RGB
    thumbnail at most :data:`THUMBNAIL_SIDE` a side) or an ImageReadError naming the file; anything else raises,
    which atheris reports as a finding."""
    import numpy as np

    from denoiser.errors import ImageReadError
    from denoiser.io import read_image, read_thumbnail

    suffix, content = decode(data)
    path = (folder or _folder()) / f"input{suffix}"
    path.write_bytes(content)
    try:
        image = read_image(path)
    except ImageReadError as err:
        _check_names(err, path)
    else:
        pixels = image.pixels
        if pixels.ndim != 3 or pixels.shape[2] not in (1, 3, 4) or pixels.dtype.name not in PIXEL_TYPES:
            raise AssertionError(f"unexpected pixels: {pixels.dtype} {pixels.shape}")
        if pixels.dtype.kind == "f" and not bool(np.isfinite(pixels).all()):
            raise AssertionError("float pixels that are not all finite")
    try:
        thumbnail = read_thumbnail(path, THUMBNAIL_SIDE)
    except ImageReadError as err:
        _check_names(err, path)
    else:
        if thumbnail.dtype.name != "uint8" or thumbnail.ndim != 3 or thumbnail.shape[2] != 3:
            raise AssertionError(f"a thumbnail of {thumbnail.dtype} {thumbnail.shape}, not uint8 RGB")
        if max(thumbnail.shape[:2]) > THUMBNAIL_SIDE or min(thumbnail.shape[:2]) < 1:
            raise AssertionError(f"a thumbnail of {thumbnail.shape[1]} x {thumbnail.shape[0]} pixels")


def _check_names(err: ImageReadError, path: Path) -> None:
    if err.path != path or str(path) not in str(err):
        raise AssertionError(f"the error names {err.path}, not the file read") from err


def write_seeds(folder: Path) -> None:
    """Write :func:`seeds` into ``folder`` as fuzz inputs (each with its extension byte: see :func:`encode`), a
    corpus to start fuzzing from."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (folder / name).write_bytes(encode(Path(name).suffix, data))


def main(argv: list[str] | None = None) -> None:
    """``--write-seeds FOLDER``, or fuzz with libFuzzer's arguments (a corpus folder, ``-max_total_time``...)."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) == 3 and argv[1] == "--write-seeds":
        write_seeds(Path(argv[2]))
        return
    import logging
    import warnings

    import atheris  # only needed to fuzz: pip install atheris

    warnings.simplefilter("ignore")  # Pillow warns about the damage it reads past; exceptions are what count
    logging.getLogger("tifffile").disabled = True  # and tifffile logs it
    with atheris.instrument_imports():
        import denoiser.io  # noqa: F401  (instrumented, with Pillow's Python plugins it imports)
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = PIXEL_LIMIT
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
