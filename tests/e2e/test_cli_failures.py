"""Failures the command line must name before or while it works (issue 13, findings 7 and 8): a device this
machine lacks, a full disk, an output name too long, a name pattern with fields it does not document, and a
photo whose extension lies about its format."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import denoiser.io.writing as writing
from denoiser.batch import Manifest
from denoiser.cli import main


def photo(path: Path, seed: int = 0, fmt: str | None = None) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path, format=fmt)
    return path


def denoise(*args: str) -> int:
    return main(["denoise", *args])


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_device_is_said_once_before_the_model_loads(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: --device cuda without CUDA failed each file after the model loaded."""
    src = tmp_path / "in"
    for i in range(3):
        photo(src / f"{i}.png", i)
    # A model that does not exist: the device is checked first, so its error is the one told.
    assert denoise(str(src), "-o", str(tmp_path / "out"), "--device", "cuda", "--model", "nowhere") == 2
    err = capsys.readouterr().err
    assert "CUDA is not available" in err and err.count("CUDA") == 1 and "nowhere" not in err
    assert "use --device cpu" in err  # and says what to do
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.png"))


def test_a_full_disk_stops_the_batch_naming_the_folder_and_a_rerun_finishes(
        tmp_path: Path, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: a full disk gave "unexpected OSError: No space left on device"."""
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(4):
        photo(src / f"{i}.png", i)
    real, calls = writing.atomic_write, {"n": 0}

    def full_from_the_second(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    common = [str(src), "-o", str(out), "--model", str(tiny_model_file), "--strength", "20"]
    with monkeypatch.context() as patch:
        patch.setattr(writing, "atomic_write", full_from_the_second)
        assert denoise(*common) == 2
    err = capsys.readouterr().err
    assert f"{out}: No space left on device while writing the result of 1.png" in err
    assert "run the same command again" in err and "unexpected" not in err
    assert calls["n"] == 2  # stopped at the first refusal, not once per remaining file
    assert sorted(p.name for p in out.glob("*.png")) == ["0_denoised.png"]
    assert denoise(*common) == 0
    assert "3 denoised, 0 failed, 1 skipped" in capsys.readouterr().err


def test_an_output_name_too_long_fails_that_file_by_name_and_the_rest_goes_on(
        tmp_path: Path, tiny_model_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: a 245-character name gave "File name too long" with nothing to do about it."""
    src, out = tmp_path / "in", tmp_path / "out"
    long = photo(src / f"{'a' * 245}.png", 1)
    photo(src / "short.png", 2)
    assert denoise(str(src), "-o", str(out), "--model", str(tiny_model_file), "--strength", "20") == 1
    text = capsys.readouterr().err
    assert f"FAILED  {long}: {out / long.stem}_denoised.png: the output name is 258 bytes" in text
    assert "use a shorter --name pattern or rename the photo" in text
    assert [p.name for p in out.glob("*.png")] == ["short_denoised.png"]


@pytest.mark.parametrize("pattern", ["{stem.__class__}", "{0}", "{stem!r}", "{}", "{stem:>300}", "{name}"])
def test_a_name_pattern_may_only_use_stem(tmp_path: Path, tiny_model_file: Path, pattern: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 8: --name '{stem.__class__}' wrote "<class 'str'>.jpg"."""
    src = photo(tmp_path / "p.png")
    assert denoise(str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file), "--name", pattern) == 2
    assert "the only field is {stem}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_png_named_jpg_keeps_its_real_format_and_says_so(tmp_path: Path, tiny_model_file: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 8: a PNG named .jpg was written as a lossy JPEG."""
    src, out = photo(tmp_path / "in" / "p.jpg", fmt="PNG"), tmp_path / "out"
    assert denoise(str(src), "-o", str(out), "--model", str(tiny_model_file), "--strength", "20") == 0
    text = capsys.readouterr().err  # the warning under the file's line
    assert [p.name for p in out.glob("p_*")] == ["p_denoised.png"]
    with PILImage.open(out / "p_denoised.png") as written:
        assert written.format == "PNG"
    assert "p.jpg holds a PNG image" in text
    entry = Manifest.load(out).get(src)
    assert "format_kept" in [f["code"] for f in entry["findings"]]
    # Asked for JPEG in so many words: JPEG it is.
    assert denoise(str(src), "-o", str(tmp_path / "jpeg"), "--model", str(tiny_model_file), "--strength", "20",
                   "--format", "jpg") == 0
    assert [p.name for p in (tmp_path / "jpeg").glob("p_*")] == ["p_denoised.jpg"]


def test_an_output_folder_that_cannot_be_made_is_named_before_any_work(tmp_path: Path, tiny_model_file: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: a read-only output folder gave "unexpected OSError" after the first photo was denoised. (Root
    writes anywhere, so the folder is made impossible another way: its parent is a file.)"""
    src = photo(tmp_path / "p.png")
    (tmp_path / "file").write_text("not a folder")
    assert denoise(str(src), "-o", str(tmp_path / "file" / "out"), "--model", str(tiny_model_file)) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'file' / 'out'}: cannot write in the output folder" in err and "unexpected" not in err
