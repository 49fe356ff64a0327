"""The formats table (issue 15): what is read and written, extensions, what a RAW result is written as, what a
missing library means, and ``denoiser formats``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from denoiser.batch import BatchSettings
from denoiser.batch.naming import output_path_for
from denoiser.cli import main
from denoiser.errors import ImageReadError, ImageWriteError
from denoiser.io import Image, find_images, identify_format, read_image, write_image
from denoiser.io import reading as reading_module
from denoiser.io.formats import (
    FORMAT_TABLE,
    RAW_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    WRITABLE_EXTENSIONS,
    FormatInfo,
    format_info,
    output_format_of,
    result_extension,
)


def test_raw_is_read_never_written_and_its_results_are_tiff() -> None:
    assert all(SUPPORTED_EXTENSIONS[ext] == "RAW" for ext in (".dng", ".cr2", ".cr3", ".nef", ".arw", ".raf"))
    assert not any(ext in WRITABLE_EXTENSIONS for ext in RAW_EXTENSIONS)
    assert output_format_of("RAW") == "TIFF" and output_format_of("HEIF") == "HEIF"
    assert result_extension(Path("IMG_0001.CR2")) == ".tif"
    assert result_extension(Path("x.heic")) == ".heic" and result_extension(Path("x.JPG")) == ".JPG"


def test_phone_and_scientific_formats_are_listed() -> None:
    assert SUPPORTED_EXTENSIONS[".heic"] == "HEIF" and WRITABLE_EXTENSIONS[".heic"] == "HEIF"
    assert 32 in format_info("TIFF").reads and 32 in format_info("TIFF").writes
    assert {info.name for info in FORMAT_TABLE} >= {"PNG", "JPEG", "TIFF", "WEBP", "BMP", "HEIF", "AVIF", "RAW"}


def test_a_missing_library_makes_a_format_unavailable_and_says_what_to_install() -> None:
    missing = FormatInfo("HEIF", "HEIC/HEIF", (".heic",), (8,), (8,), package="pillow-heif",
                         module="no_such_module_for_this_test")
    assert not missing.available
    assert "pip install pillow-heif" in missing.missing()
    assert format_info("PNG").available and format_info("PNG").missing() == ""


def test_a_file_of_an_unavailable_format_says_what_to_install(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "IMG_0001.NEF"
    raw.write_bytes(b"II*\x00" + bytes(60))
    unavailable = dataclasses.replace(format_info("RAW"), module="no_such_module_for_this_test")
    monkeypatch.setattr(reading_module, "format_info", lambda name: unavailable if name == "RAW" else
                        format_info(name))
    with pytest.raises(ImageReadError) as caught:
        read_image(raw)
    assert "IMG_0001.NEF" in str(caught.value) and "pip install rawpy" in str(caught.value)


def test_raw_files_are_found_in_folders_and_identified_by_extension(tmp_path: Path) -> None:
    for name in ("a.CR2", "b.nef", "c.dng", "d.heic", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_images([tmp_path])] == ["a.CR2", "b.nef", "c.dng", "d.heic"]
    assert identify_format(tmp_path / "b.nef") == "RAW"


def test_a_raw_file_is_never_written(tmp_path: Path) -> None:
    image = Image(np.zeros((4, 4, 3), np.uint16), format="RAW")
    with pytest.raises(ImageWriteError) as caught:
        write_image(tmp_path / "out.dng", image)
    assert "never written" in str(caught.value) and "out.dng" in str(caught.value)
    assert not (tmp_path / "out.dng").exists()


def test_the_batch_writes_a_raw_photo_as_tiff_when_keeping_the_format(tmp_path: Path) -> None:
    settings = BatchSettings(inputs=[tmp_path], output=tmp_path / "out")
    source = tmp_path / "IMG_0001.CR2"
    assert output_path_for(source, tmp_path / "out", settings, real_format="RAW").name == "IMG_0001_denoised.tif"
    assert output_path_for(tmp_path / "x.heic", tmp_path / "out", settings, real_format="HEIF").suffix == ".heic"
    heic = BatchSettings(inputs=[tmp_path], output=tmp_path / "out", format="heif")
    assert output_path_for(source, tmp_path / "out", heic, real_format="RAW").suffix == ".heic"


def test_float_pixels_written_to_integer_formats_take_the_deepest_depth_they_hold(tmp_path: Path) -> None:
    image = Image(np.array([[[-0.5, 0.25, 2.0]]], np.float32))
    png = read_image(write_image(tmp_path / "x.png", image))
    assert png.bit_depth == 16 and png.pixels.tolist() == [[[0, 16384, 65535]]]
    jpeg = read_image(write_image(tmp_path / "x.jpg", image))
    assert jpeg.bit_depth == 8


def test_formats_command_lists_what_is_read_and_written(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    table = capsys.readouterr().out
    assert "camera RAW" in table and "never (results: TIFF)" in table and ".cr3" in table
    assert "HEIC/HEIF" in table and "8/16-bit, float" in table
    assert main(["formats", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["RAW"]["writes"] == [] and rows["RAW"]["written_as"] == "TIFF" and rows["RAW"]["available"]
    assert rows["TIFF"]["reads"] == [8, 16, 32]
