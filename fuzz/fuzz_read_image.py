"""Fuzz target for atheris (libFuzzer for Python): :func:`denoiser.io.read_image` on arbitrary bytes.

Every input is written to a file and read. A finding is any exception other than
:class:`~denoiser.errors.ImageReadError` (atheris reports it with the input that caused it), a crash in a native
decoder, an input that runs past ``-timeout``, or memory beyond ``-rss_limit_mb``. See ``docs/fuzzing.md``::

    pip install atheris
    python fuzz/fuzz_read_image.py --write-seeds fuzz/corpus/images      # small valid files to start from
    python fuzz/fuzz_read_image.py fuzz/corpus/images -max_total_time=3600 -timeout=20 -rss_limit_mb=2048

Importing this module needs neither atheris nor a fuzzing run: ``check`` is what the tests call on the seeds.
"""

from __future__ import annotations

import functools
import io
import sys
import tempfile
from pathlib import Path

PIXEL_LIMIT = 16_000_000
"""Pillow's decompression-bomb limit while fuzzing (its default is 89 million pixels): a tampered header may then
ask for at most about 100 MB, so ``-rss_limit_mb`` finds real leaks and bombs rather than large legal images."""



@functools.lru_cache(maxsize=1)
def _folder() -> Path:
    """A private temporary folder the inputs are written into (made on first use, not on import)."""
    return Path(tempfile.mkdtemp(prefix="denoiser-fuzz-"))


def seeds() -> dict[str, bytes]:
    """Small valid files of every format and bit depth :func:`~denoiser.io.read_image` takes."""
    import cv2
    import numpy as np
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    deep = rng.integers(0, 65536, (6, 8, 3), dtype=np.uint16)

    def encoded(pixels: np.ndarray, fmt: str, **options: object) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, fmt, **options)
        return buffer.getvalue()

    tiff16 = io.BytesIO()
    tifffile.imwrite(tiff16, deep, photometric="rgb", compression="zlib")
    exif = Image.Exif()
    exif[0x0112] = 6  # an orientation to apply
    return {
        "rgb.png": encoded(rgb, "PNG"),
        "rgba.png": encoded(rng.integers(0, 256, (6, 8, 4), dtype=np.uint8), "PNG"),
        "grey.png": encoded(rgb[:, :, 0], "PNG"),
        "rgb16.png": cv2.imencode(".png", deep)[1].tobytes(),
        "rgb.jpg": encoded(rgb, "JPEG", quality=90, exif=exif.tobytes()),
        "rgb.tif": encoded(rgb, "TIFF"),
        "lzw.tif": encoded(rgb, "TIFF", compression="tiff_lzw"),
        "rgb16.tif": tiff16.getvalue(),
        "rgb.bmp": encoded(rgb, "BMP"),
        "rgb.webp": encoded(rgb, "WEBP", lossless=True),
    }


def check(data: bytes, folder: Path | None = None) -> None:
    """Read ``data`` as an image file (written into ``folder``, default a private temporary one): it must give an
    image or an ImageReadError naming the file; anything else raises, which atheris reports as a finding."""
    from denoiser.errors import ImageReadError
    from denoiser.io import read_image

    path = (folder or _folder()) / "input"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except ImageReadError as err:
        if err.path != path:
            raise AssertionError(f"the error names {err.path}, not the file read") from err
        return
    if image.pixels.ndim != 3 or image.pixels.shape[2] not in (1, 3, 4):
        raise AssertionError(f"unexpected pixel layout {image.pixels.shape}")


def write_seeds(folder: Path) -> None:
    """Write :func:`seeds` into ``folder`` (a corpus to start fuzzing from)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in seeds().items():
        (folder / name).write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    """``--write-seeds FOLDER``, or fuzz with libFuzzer's arguments (a corpus folder, ``-max_total_time``...)."""
    argv = list(sys.argv if argv is None else argv)
    if len(argv) == 3 and argv[1] == "--write-seeds":
        write_seeds(Path(argv[2]))
        return
    import warnings

    import atheris  # only needed to fuzz: pip install atheris

    warnings.simplefilter("ignore")  # Pillow warns about the damage it reads past; exceptions are what count
    with atheris.instrument_imports():
        import denoiser.io  # noqa: F401  (instrumented, with Pillow's Python plugins it imports)
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = PIXEL_LIMIT
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
