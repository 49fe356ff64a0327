"""The command line's manners (issue 16, item 6): ``-o result.png`` writes that file, ``-q``/``-v``, results on
stdout and the rest on stderr, bars only at a terminal, a reader that goes away, ``--json``, ``denoiser-gui
--version`` and shell completion."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser import __version__
from denoiser.cli import main

ROOT = Path(__file__).resolve().parents[2]


def photo(path: Path, seed: int = 0) -> Path:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)
    return path


def denoise(model: Path, *args: str) -> int:
    return main(["denoise", *args, "--model", str(model), "--strength", "20", "--device", "cpu"])


def run_denoiser(*args: str, stdout: int | None = subprocess.PIPE,
                 stderr: int | None = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    """``python -m denoiser ARGS`` in a fresh process (stdin empty, stderr a pipe: not a terminal)."""
    return subprocess.run([sys.executable, "-m", "denoiser", *args], stdout=stdout, stderr=stderr,
                          stdin=subprocess.DEVNULL, text=True, timeout=300, cwd=ROOT)


# --- -o OUT.png: one photo into one file ----------------------------------------------------------------------------


def test_one_photo_into_an_image_name_writes_that_file_and_no_manifest(tmp_path: Path, tiny_model_file: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The bug: ``-o result.png`` made a folder named result.png holding p_denoised.png and a manifest."""
    source, result = photo(tmp_path / "p.png"), tmp_path / "result.png"
    assert denoise(tiny_model_file, str(source), "-o", str(result)) == 0
    assert result.is_file()
    with PILImage.open(result) as written:
        assert written.format == "PNG" and written.size == (32, 24)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "p.png", "result.png"]  # no manifest, no lock
    assert capsys.readouterr().out == f"ok      {source} -> {result} (sigma 20.0)\n"


def test_the_result_takes_the_format_its_name_gives(tmp_path: Path, tiny_model_file: Path) -> None:
    import tifffile

    source = photo(tmp_path / "p.png")
    assert denoise(tiny_model_file, str(source), "-o", str(tmp_path / "r.jpg")) == 0
    with PILImage.open(tmp_path / "r.jpg") as written:
        assert written.format == "JPEG"
    assert denoise(tiny_model_file, str(source), "-o", str(tmp_path / "r.tif"), "--format", "tiff16") == 0
    assert tifffile.imread(tmp_path / "r.tif").dtype == np.uint16


def test_an_existing_result_follows_the_collision_policy(tmp_path: Path, tiny_model_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    source, result = photo(tmp_path / "p.png"), tmp_path / "result.png"
    result.write_bytes(b"mine")
    assert denoise(tiny_model_file, str(source), "-o", str(result)) == 0  # unique: a new name beside it
    assert result.read_bytes() == b"mine" and (tmp_path / "result-2.png").is_file()
    assert denoise(tiny_model_file, str(source), "-o", str(result), "--on-collision", "skip") == 0
    assert "skip    " in capsys.readouterr().out and result.read_bytes() == b"mine"
    # Overwriting asks first; with no terminal to ask at, --yes is needed.
    assert denoise(tiny_model_file, str(source), "-o", str(result), "--on-collision", "overwrite") == 2
    assert "--yes" in capsys.readouterr().err and result.read_bytes() == b"mine"
    assert denoise(tiny_model_file, str(source), "-o", str(result), "--on-collision", "overwrite", "--yes") == 0
    with PILImage.open(result) as written:
        assert written.format == "PNG"
    assert not (tmp_path / "result-3.png").exists()


def test_the_input_is_never_the_result(tmp_path: Path, tiny_model_file: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    source = photo(tmp_path / "p.png")
    before = source.read_bytes()
    with pytest.raises(SystemExit) as refused:  # a usage error, before any work (report-cli item 6)
        denoise(tiny_model_file, str(source), "-o", str(source), "--on-collision", "overwrite", "--yes")
    assert refused.value.code == 2
    assert f"is the input {source}" in capsys.readouterr().err and source.read_bytes() == before


@pytest.mark.parametrize(("inputs", "output", "said"), [
    (["a.png", "b.png"], "r.png", "-o r.png names one image file, but 2 inputs are given"),
    (["folder"], "r.png", "folder is a folder: give a folder for the results"),
    (["a.png"], "r.nef", "camera RAW files are never written"),
    (["a.png"], "notes.txt", "is an existing file with no image extension"),
])
def test_an_image_name_that_cannot_hold_the_results_is_a_usage_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        inputs: list[str], output: str, said: str) -> None:
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "a.png")
    photo(tmp_path / "b.png", 1)
    photo(tmp_path / "folder" / "c.png")
    (tmp_path / "notes.txt").write_text("not a folder")
    with pytest.raises(SystemExit) as refused:
        main(["denoise", *inputs, "-o", output])
    assert refused.value.code == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / output).is_dir()


@pytest.mark.parametrize(("options", "said"), [(["--format", "jpg"], "name different formats"),
                                               (["--name", "{stem}_x"], "--name names results in a folder")])
def test_folder_options_that_contradict_a_file_name_are_usage_errors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], said: str) -> None:
    source = photo(tmp_path / "a.png")
    with pytest.raises(SystemExit) as refused:
        main(["denoise", str(source), "-o", str(tmp_path / "r.png"), *options])
    assert refused.value.code == 2 and said in capsys.readouterr().err


def test_an_existing_folder_or_a_trailing_slash_stays_a_folder(tmp_path: Path, tiny_model_file: Path) -> None:
    source, folder = photo(tmp_path / "p.png"), tmp_path / "old.png"
    folder.mkdir()
    assert denoise(tiny_model_file, str(source), "-o", str(folder)) == 0
    assert (folder / "p_denoised.png").is_file() and (folder / "denoiser-manifest.json").is_file()
    assert denoise(tiny_model_file, str(source), "-o", f"{tmp_path / 'new.png'}/") == 0
    assert (tmp_path / "new.png" / "p_denoised.png").is_file()


# --- -q, -v, and what goes where --------------------------------------------------------------------------------------


def failing_batch(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    photo(src / "good.png")
    (src / "bad.png").write_bytes(b"not a png")
    return src


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_only_the_errors(tmp_path: Path, tiny_model_file: Path, capsys: pytest.CaptureFixture[str],
                                      where: str) -> None:
    src = failing_batch(tmp_path)
    args = ["denoise", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file)]
    assert main(["-q", *args] if where == "before" else [*args, "-q"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [line for line in err.splitlines() if line.startswith("FAILED")] and "bad.png" in err
    assert (tmp_path / "out" / "good_denoised.png").is_file()


def test_verbose_adds_model_device_and_timings_on_stderr(tmp_path: Path, tiny_model_file: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    src = failing_batch(tmp_path)
    assert main(["denoise", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_model_file), "--device",
                 "cpu", "-v"]) == 1
    out, err = capsys.readouterr()
    assert f"model tiny (unet, {tiny_model_file}) on cpu" in err
    assert any(line.startswith("  good.png: ") and line.endswith(" s") for line in err.splitlines())
    assert out.startswith("ok ") and len(out.splitlines()) == 1  # the details stay off stdout


def test_estimate_noise_quiet_keeps_the_figures_and_verbose_adds_details(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    source = photo(tmp_path / "p.png")
    assert main(["-q", "estimate-noise", str(source)]) == 0
    out, err = capsys.readouterr()
    assert "luminance" in out and err == ""
    assert main(["estimate-noise", str(source), "-v"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and "p.png: map read by" in err


def test_train_quiet_prints_nothing_but_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "clean"
    for i in range(4):
        photo(folder / f"{i}.png", i)
    out_file = tmp_path / "m.safetensors"
    assert main(["train", "-q", "--clean", str(folder), "--out", str(out_file), "--steps", "2", "--batch-size", "2",
                 "--patch", "16", "--widths", "4,8", "--validation-every", "2", "--device", "cpu",
                 "--workers", "0"]) == 0
    assert capsys.readouterr() == ("", "") and out_file.is_file()


# --- progress: bars at a terminal only ----------------------------------------------------------------------------


class _TerminalStderr(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_one_plain_line_per_file_and_no_escape_codes(tmp_path: Path, tiny_model_file: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The bug: tqdm drew its bars (carriage returns, escape codes) into logs too."""
    src = tmp_path / "in"
    photo(src / "a.png")
    photo(src / "b.png", 1)
    assert denoise(tiny_model_file, str(src), "-o", str(tmp_path / "out")) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "\x1b" not in err
    assert [line for line in err.splitlines() if line.startswith("[")] == [f"[1/2] {src / 'a.png'}",
                                                                           f"[2/2] {src / 'b.png'}"]


def test_a_terminal_gets_bars(tmp_path: Path, tiny_model_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = photo(tmp_path / "a.png")
    terminal = _TerminalStderr()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert denoise(tiny_model_file, str(source), "-o", str(tmp_path / "out")) == 0
    shown = terminal.getvalue()
    assert "\r" in shown and "file" in shown and "[1/1]" not in shown


# --- a reader that goes away ----------------------------------------------------------------------------------------


def into_a_closed_pipe(*args: str, stderr_too: bool = False) -> subprocess.CompletedProcess[str]:
    """Run with stdout (and with ``stderr_too`` stderr, as ``2>&1``) a pipe whose reader is already gone, as
    ``denoiser ... | head -1`` is once head has its line: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return run_denoiser(*args, stdout=write_end, stderr=write_end if stderr_too else subprocess.PIPE)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("argv", [["formats"], ["formats", "--json"], ["--version"], ["denoise", "--help"]])
def test_a_reader_gone_ends_a_listing_quietly(argv: list[str]) -> None:
    """The bug: "Exception ignored ... BrokenPipeError" on stderr and exit status 120 (or 2)."""
    result = into_a_closed_pipe(*argv)
    assert (result.returncode, result.stderr) == (0, "")


def test_a_reader_gone_ends_models_info_and_estimate_noise_quietly(tmp_path: Path, tiny_model_file: Path) -> None:
    result = into_a_closed_pipe("models", "info", str(tiny_model_file))
    assert (result.returncode, result.stderr) == (0, "")
    result = into_a_closed_pipe("estimate-noise", str(photo(tmp_path / "a.png")), str(photo(tmp_path / "b.png", 1)))
    assert (result.returncode, result.stderr) == (0, "")


def test_a_reader_gone_does_not_stop_a_batch(tmp_path: Path, tiny_model_file: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    for i in range(2):
        photo(src / f"{i}.png", i)
    result = into_a_closed_pipe("denoise", str(src), "-o", str(out), "--model", str(tiny_model_file), "--device",
                                "cpu")
    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr and "2 denoised, 0 failed" in result.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["0_denoised.png", "1_denoised.png"]
    # Its log too (2>&1 | head -1): the batch still goes to the end.
    result = into_a_closed_pipe("denoise", str(src), "-o", str(tmp_path / "again"), "--model", str(tiny_model_file),
                                "--device", "cpu", stderr_too=True)
    assert result.returncode == 0
    assert sorted(p.name for p in (tmp_path / "again").glob("*.png")) == ["0_denoised.png", "1_denoised.png"]


def test_head_reads_the_first_line_of_a_real_pipe() -> None:
    result = subprocess.run(f"set -o pipefail; '{sys.executable}' -m denoiser formats | head -1", shell=True,
                            executable="/bin/bash", capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.startswith("Format") and result.stderr == ""


# --- --json -----------------------------------------------------------------------------------------------------------


def test_denoise_json_is_one_document_with_every_file_and_the_totals(tmp_path: Path, tiny_model_file: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    src, out = failing_batch(tmp_path), tmp_path / "out"
    assert denoise(tiny_model_file, str(src), "-o", str(out), "--json") == 1
    stdout, err = capsys.readouterr()
    document = json.loads(stdout)  # nothing else on stdout
    files = {Path(entry["source"]).name: entry for entry in document["files"]}
    good, bad = files["good.png"], files["bad.png"]
    assert good["status"] == "done" and good["output"] == str(out / "good_denoised.png")
    assert good["sigma"] == pytest.approx(20.0) and good["seconds"] > 0
    assert all(set(finding) == {"code", "message", "advice"} for finding in good["findings"])
    assert bad["status"] == "failed" and "bad.png" in bad["message"] and bad["output"] is None
    assert document["totals"] == {"done": 1, "failed": 1, "skipped": 0, "warnings": len(good["findings"]),
                                  "seconds": document["totals"]["seconds"]}
    assert document["model"] == "tiny" and document["manifest"] == str(out / "denoiser-manifest.json")
    assert document["interrupted"] is False and document["error"] is None
    assert "FAILED" in err and "1 denoised, 1 failed" in err
    # A single photo: no manifest.
    assert denoise(tiny_model_file, str(src / "good.png"), "-o", str(tmp_path / "r.png"), "--json") == 0
    single = json.loads(capsys.readouterr().out)
    assert single["manifest"] is None and single["files"][0]["output"] == str(tmp_path / "r.png")


def test_estimate_noise_json_lists_each_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good, bad = photo(tmp_path / "a.png"), tmp_path / "bad.png"
    bad.write_text("nope")
    assert main(["estimate-noise", "--json", str(good), str(bad)]) == 1
    first, second = json.loads(capsys.readouterr().out)
    assert first["file"] == str(good) and first["status"] == "ok" and first["method"] in ("network", "pca")
    assert first["luminance"] > 0 and first["color"] >= 0 and isinstance(first["pca_check"], float)
    assert second["status"] == "failed" and "bad.png" in second["message"]


# --- denoiser-gui --version, shell completion -------------------------------------------------------------------------


def test_the_app_says_its_version_without_starting_qt(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import ui.app as app_module

    def no_qt(*args: object) -> None:
        raise AssertionError("the app started for --version")

    monkeypatch.setattr(app_module, "QApplication", no_qt)
    monkeypatch.setattr(app_module, "setup_logging", no_qt)
    with pytest.raises(SystemExit) as exited:
        app_module.main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"denoiser-gui {__version__}\n"


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o bashdefault"), ("zsh", "#compdef denoiser"),
                                               ("tcsh", "complete denoiser")])
def test_print_completion_writes_a_script_for_each_shell(shell: str, marker: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--print-completion", shell])
    script = capsys.readouterr().out
    assert exited.value.code == 0
    assert marker in script and "estimate-noise" in script and "--on-collision" in script


def test_bash_completion_completes_commands_and_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--print-completion", "bash"])
    script = tmp_path / "denoiser.bash"
    script.write_text(capsys.readouterr().out)
    probe = (f"source '{script}'; COMP_WORDS=(denoiser est); COMP_CWORD=1; _shtab_denoiser; echo \"${{COMPREPLY[@]}}\";"
             " COMP_WORDS=(denoiser denoise --on-collision ''); COMP_CWORD=3; _shtab_denoiser;"
             " echo \"${COMPREPLY[@]}\"")
    result = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.stdout.splitlines() == ["estimate-noise", "unique skip overwrite"], result.stderr
