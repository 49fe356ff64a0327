"""Tests for denoiser.io.backends: the (format, bit depth) table drives reading and writing, unknown
combinations are named, and every row round-trips its format."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from denoiser.errors import ImageReadError, UnknownNameError
from denoiser.io import FORMATS, SUPPORTED_EXTENSIONS, Image, read_image, write_image
from denoiser.io.backends import BACKENDS, Backend, backend_for, has_backend
from denoiser.io.formats import FORMAT_TABLE

EXTENSION = {fmt: ext for ext, fmt in reversed(SUPPORTED_EXTENSIONS.items())}  # the first extension of each
LOSSY = {"JPEG", "HEIF", "AVIF"}


def pixels(depth: int) -> np.ndarray:
    rng = np.random.default_rng(depth)
    if depth == 32:
        return rng.uniform(-2.0, 3.0, (10, 14, 3)).astype(np.float32)
    top = 255 if depth == 8 else 65535
    return rng.integers(0, top + 1, (10, 14, 3), dtype=np.uint8 if depth == 8 else np.uint16)


def test_unknown_combination_names_it_and_the_known_ones() -> None:
    with pytest.raises(UnknownNameError) as caught:
        backend_for("JPEG", 16)
    message = str(caught.value)
    assert "JPEG 16-bit" in message and "PNG 16-bit" in message and "TIFF 8-bit" in message
    assert not has_backend("JPEG", 16) and has_backend("TIFF", 16)


def test_every_written_format_has_a_backend_for_each_depth_it_writes() -> None:
    # write_image falls back to the deepest depth a format holds, so each depth the table names needs a backend,
    # and a format that is written needs an 8-bit one.
    expected = {(info.name, depth) for info in FORMAT_TABLE if info.available for depth in info.writes}
    assert set(BACKENDS) == expected
    assert "RAW" in FORMATS and not any(fmt == "RAW" for fmt, _ in BACKENDS)  # a RAW file is never written


@pytest.mark.parametrize(("fmt", "depth"), sorted(BACKENDS))
def test_every_row_round_trips_its_format(tmp_path: Path, fmt: str, depth: int) -> None:
    original = pixels(depth)
    written = write_image(tmp_path / f"out{EXTENSION[fmt]}", Image(original), quality=100)
    back = read_image(written)
    assert (back.format, back.bit_depth, back.channels) == (fmt, depth, 3)
    if fmt in LOSSY:
        step = 257 if depth == 16 else 1  # 16-bit HEIC holds 10 bits
        assert np.abs(back.pixels.astype(int) - original.astype(int)).mean() < 8 * step
    else:
        np.testing.assert_array_equal(back.pixels, original)


def test_reading_and_writing_go_through_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = BACKENDS[("PNG", 16)]

    def spy(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return function(*args, **kwargs)

        return wrapped

    spied = Backend("spy", spy("read_pixels", real.read_pixels), spy("read_metadata", real.read_metadata),
                    spy("write", real.write))
    monkeypatch.setitem(BACKENDS, ("PNG", 16), spied)
    path = write_image(tmp_path / "spied.png", Image(pixels(16)))
    np.testing.assert_array_equal(read_image(path).pixels, pixels(16))
    assert calls == ["write", "read_metadata", "read_pixels"]


def test_a_missing_row_is_a_named_read_error_and_writes_fall_back_to_8_bits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_image(tmp_path / "deep.tif", Image(pixels(16)))
    monkeypatch.delitem(BACKENDS, ("TIFF", 16))
    with pytest.raises(ImageReadError, match="TIFF 16-bit") as caught:
        read_image(path)
    assert caught.value.path == path
    shallow = write_image(tmp_path / "shallow.tif", Image(pixels(16)), bit_depth=16)
    assert read_image(shallow).bit_depth == 8


def test_backends_are_plain_records() -> None:
    for backend in set(BACKENDS.values()):
        assert dataclasses.is_dataclass(backend) and backend.name
        assert callable(backend.write)
        readers = (backend.read_pixels, backend.read_metadata)  # both, or neither for a write-only row
        assert all(callable(f) for f in readers) or readers == (None, None)


CODEC_LIBRARIES = ("cv2", "tifffile", "imagecodecs", "rawpy", "pillow_heif")
"""What the backends decode and encode with: loaded when a file of their format is read or written, not before."""


def loaded_after(code: str) -> list[str]:
    """The codec libraries a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {CODEC_LIBRARIES!r} if m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=root)
    assert result.returncode == 0, result.stderr
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_importing_the_io_package_and_asking_the_command_for_help_load_no_codec_library(tmp_path: Path) -> None:
    assert loaded_after("import denoiser.io") == []
    answer = ("import contextlib, io\nfrom denoiser.cli import main\n"
              "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main({argv!r})")
    for argv in (["--help"], ["--version"], ["denoise", "--help"], ["train", "--help"], ["models", "--help"]):
        assert loaded_after(answer.format(argv=argv)) == [], argv
    # ...and they come when their format is read: a 16-bit PNG (OpenCV) and a 16-bit TIFF (tifffile).
    wide = Image(pixels(16))
    write_image(tmp_path / "wide.png", wide)
    write_image(tmp_path / "wide.tif", wide)
    assert loaded_after(f"from denoiser.io import read_image\nread_image({str(tmp_path / 'wide.png')!r})") == ["cv2"]
    assert "tifffile" in loaded_after(f"from denoiser.io import read_image\nread_image({str(tmp_path / 'wide.tif')!r})")


def test_a_png_transparent_colour_is_read_as_alpha_and_kept(tmp_path: Path) -> None:
    """An RGB PNG whose transparent colour is given by a tRNS chunk lost its transparency in the result."""
    from PIL import Image as PILImage

    from denoiser.io import read_image, write_image

    pixels = np.full((8, 10, 3), 200, np.uint8)
    pixels[2:5, 3:7] = (0, 0, 0)  # the transparent colour
    PILImage.fromarray(pixels).save(tmp_path / "keyed.png", transparency=(0, 0, 0))
    image = read_image(tmp_path / "keyed.png")
    assert image.has_alpha
    expected_alpha = np.where((pixels == 0).all(axis=2), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(image.alpha()[..., 0], expected_alpha)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "out.png", image)).alpha()[..., 0],
                                  expected_alpha)
