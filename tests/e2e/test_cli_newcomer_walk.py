"""What a newcomer's walk through the command line found (report-cli items 5-9, 12, 13 and the cosmetic ones): the
summary names the file written, ``-o`` naming an input or a non-image name is refused up front, ``--name`` patterns
that leave the folder are refused up front, a non-image file named on the command line is reported, and
``estimate-noise --json``, ``denoiser formats``, ``models list`` and ``-q``/``-v`` say what is so."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from test_cli_conventions import denoise, photo

from denoiser.batch import DenoiseSettings
from denoiser.batch.settings import check_pattern
from denoiser.cli import main
from denoiser.errors import DenoiserError
from denoiser.models import create_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_model_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refusal that must come before any work fails the test if a model is loaded."""
    import denoiser.model_loading

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the usage error")

    monkeypatch.setattr(denoiser.model_loading, "load_model_for_inference", refuse)


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """stderr of a command refused as a usage error (exit status 2 through argparse)."""
    with pytest.raises(SystemExit) as refused:
        main(argv)
    assert refused.value.code == 2
    return capsys.readouterr().err


# --- item 5: the summary and --json name the file written -------------------------------------------------------------


def test_a_taken_name_is_said_as_the_name_written(tmp_path: Path, tiny_model_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The bug: stdout said ``-> r-2.png`` while the summary said ``results in r.png`` and --json "output" r.png."""
    source, asked = photo(tmp_path / "p.png"), tmp_path / "r.png"
    asked.write_bytes(b"mine")
    written = tmp_path / "r-2.png"
    assert denoise(tiny_model_file, str(source), "-o", str(asked)) == 0
    out, err = capsys.readouterr()
    assert out == f"ok      {source} -> {written} (sigma 20.0)\n"
    (summary,) = [line for line in err.splitlines() if " denoised, " in line]
    assert summary.endswith(f"results in {written}")
    assert denoise(tiny_model_file, str(source), "-o", str(asked), "--json") == 0
    document = json.loads(capsys.readouterr().out)
    assert document["files"][0]["output"] == str(tmp_path / "r-3.png") == document["output"]
    assert asked.read_bytes() == b"mine"


# --- item 6: -o naming an input ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_model_loads")
@pytest.mark.parametrize("spelling", ["same", "absolute", "dotted"])
def test_an_output_naming_the_input_is_refused_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str],
                                                                spelling: str) -> None:
    monkeypatch.chdir(tmp_path)
    source = photo(tmp_path / "in" / "p.jpg")
    before = source.read_bytes()
    output = {"same": "in/p.jpg", "absolute": str(source), "dotted": "in/../in/p.jpg"}[spelling]
    err = usage_error(["denoise", "in/p.jpg", "-o", output, "--on-collision", "overwrite", "--yes"], capsys)
    assert f"-o {output} is the input {Path('in/p.jpg')}" in err
    assert source.read_bytes() == before


# --- item 7: --name patterns that leave the folder --------------------------------------------------------------------


BAD_PATTERNS = ["{stem}/{stem}", "../{stem}", "/tmp/{stem}", "..", "{stem}\\x", "."]


@pytest.mark.parametrize("pattern", BAD_PATTERNS)
def test_a_name_pattern_that_leaves_the_folder_is_refused_before_any_work(
        tmp_path: Path, tiny_model_file: Path, capsys: pytest.CaptureFixture[str], pattern: str) -> None:
    """The bug: each file failed on its own (exit 1), leaving an output folder that held a manifest of failures."""
    source = photo(tmp_path / "a" / "x.png")
    assert denoise(tiny_model_file, str(source), "-o", str(tmp_path / "out"), "--name", pattern) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"output name pattern {pattern!r}" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("pattern", BAD_PATTERNS)
def test_the_app_batch_settings_refuse_the_same_patterns(pattern: str) -> None:
    with pytest.raises(DenoiserError, match="output name pattern"):
        check_pattern(pattern)
    with pytest.raises(DenoiserError, match="output name pattern"):
        DenoiseSettings(pattern=pattern)


@pytest.mark.parametrize("pattern", ["{stem}", "{stem}_denoised", "clean {stem}", "{stem}..x", "..{stem}"])
def test_ordinary_patterns_still_pass(pattern: str) -> None:
    check_pattern(pattern)


# --- item 8: a named file that is not an image ------------------------------------------------------------------------


def test_a_named_file_that_is_not_an_image_is_reported_and_counted(tmp_path: Path, tiny_model_file: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """The bug: notes.txt named beside a photo was never mentioned, and the run exited 0."""
    notes, source, out = tmp_path / "notes.txt", photo(tmp_path / "a" / "x.png"), tmp_path / "out"
    notes.write_text("not a photo")
    assert denoise(tiny_model_file, str(notes), str(source), "-o", str(out), "--json") == 1
    stdout, err = capsys.readouterr()
    assert re.search(rf"FAILED  {re.escape(str(notes))}: not an image file.*\(supported: .*PNG.*\)", err)
    document = json.loads(stdout)
    assert document["totals"]["failed"] == 1 and document["totals"]["done"] == 1
    failed = next(entry for entry in document["files"] if entry["status"] == "failed")
    assert failed["source"] == str(notes) and "not an image file" in failed["message"]
    assert (out / "x_denoised.png").is_file()
    # The manifest keeps to what the batch did: it claims nothing about a file that was never an input image.
    manifest = json.loads((out / "denoiser-manifest.json").read_text())
    assert [Path(entry["input"]).name for entry in manifest["files"].values()] == ["x.png"]


def test_a_folder_s_other_files_are_still_left_out_quietly(tmp_path: Path, tiny_model_file: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "a"
    photo(folder / "x.png")
    (folder / "notes.txt").write_text("not a photo")
    assert denoise(tiny_model_file, str(folder), "-o", str(tmp_path / "out")) == 0
    assert "notes.txt" not in capsys.readouterr().err


@pytest.mark.usefixtures("no_model_loads")
@pytest.mark.parametrize("output", ["out", "r.png"])
def test_only_a_non_image_named_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       output: str) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    assert main(["denoise", str(notes), "-o", str(tmp_path / output)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {notes}: not an image file") and "(supported: " in err
    assert not (tmp_path / output).exists()


@pytest.mark.usefixtures("no_model_loads")
def test_an_empty_folder_is_an_error_in_the_usual_style(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["denoise", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.startswith("error: no images found in ")


# --- item 9: -o with an extension that is not an image's --------------------------------------------------------------


@pytest.mark.usefixtures("no_model_loads")
@pytest.mark.parametrize("output", ["r2.txt", "r.jgp"])
def test_an_output_name_with_another_extension_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str], output: str) -> None:
    """The bug: ``-o r2.txt`` (or the typo ``.jgp``) silently became a folder called r2.txt."""
    monkeypatch.chdir(tmp_path)
    photo(tmp_path / "a" / "x.jpg")
    err = usage_error(["denoise", "a/x.jpg", "-o", output], capsys)
    assert f"-o {output}" in err and ".png" in err and ".jpg" in err and "trailing /" in err
    assert not (tmp_path / output).exists()


@pytest.mark.parametrize("output", ["results", "r2.txt/", "v1.5/"])
def test_a_name_without_extension_or_with_a_slash_stays_a_folder(tmp_path: Path, tiny_model_file: Path,
                                                                  output: str) -> None:
    source = photo(tmp_path / "x.png")
    assert denoise(tiny_model_file, str(source), "-o", f"{tmp_path}/{output}") == 0
    assert (tmp_path / output.rstrip("/") / "x_denoised.png").is_file()


def test_an_existing_folder_with_a_dotted_name_stays_a_folder(tmp_path: Path, tiny_model_file: Path) -> None:
    source, folder = photo(tmp_path / "x.png"), tmp_path / "results.v2"
    folder.mkdir()
    assert denoise(tiny_model_file, str(source), "-o", str(folder)) == 0
    assert (folder / "x_denoised.png").is_file()


# --- item 12: estimate-noise --json says the colour was subsampled ----------------------------------------------------


def test_estimate_noise_json_says_what_the_text_says_about_subsampled_colour(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    y, x = np.mgrid[0:96, 0:128]
    clean = np.stack([x * 1.5 + 20, y * 2 + 20, (x + y) + 30], axis=2)
    noisy = (clean + np.random.default_rng(1).normal(0, 12, clean.shape)).clip(0, 255).astype(np.uint8)
    jpeg, png = tmp_path / "n.jpg", tmp_path / "n.png"
    PILImage.fromarray(noisy).save(jpeg, quality=95, subsampling=2)  # 4:2:0
    PILImage.fromarray(noisy).save(png)
    assert main(["estimate-noise", str(jpeg), str(png)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert main(["estimate-noise", "--json", str(jpeg), str(png)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [record["subsampled"] for record in records] == [True, False]
    assert ["colour subsampled" in line for line in lines] == [True, False]


# --- item 13: HEIC is written at 8 or 10 bits -------------------------------------------------------------------------


def test_formats_and_the_readme_say_heic_is_written_at_8_or_10_bits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["formats"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("HEIC/HEIF"))
    if "unavailable" not in row:
        assert "8/10-bit" in row.split(maxsplit=2)[2] and "16" not in row.split(maxsplit=2)[2].split(".")[0]
    assert main(["formats", "--json"]) == 0
    heic = next(entry for entry in json.loads(capsys.readouterr().out) if entry["name"] == "HEIF")
    assert heic["writes"] == [8, 10]
    readme_row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| HEIC"))
    assert readme_row.split("|")[3].strip().startswith("8-bit, 10-bit")
    assert "16-bit results as 10-bit" in readme_row


# --- cosmetic: "1 model", -q with -v ----------------------------------------------------------------------------------


def test_models_list_counts_one_model_in_the_singular(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import denoiser.modelstore
    from denoiser.modelstore import save_to_library

    save_to_library(create_model("sparse", {"widths": [4, 8], "blocks": 0, "latent_channels": 8}), "mine")
    mine = [info for info in denoiser.modelstore.list_models() if info.name == "mine"]
    monkeypatch.setattr(denoiser.modelstore, "list_models", lambda: mine)
    assert main(["models", "list"]) == 0
    assert "(1 model; your library is" in capsys.readouterr().err
    monkeypatch.setattr(denoiser.modelstore, "list_models", lambda: mine * 2)
    assert main(["models", "list"]) == 0
    assert "(2 models; your library is" in capsys.readouterr().err


@pytest.mark.usefixtures("no_model_loads")
@pytest.mark.parametrize(("before", "after"), [("-q", "-v"), ("-v", "-q"), ("--quiet", "--verbose")])
def test_quiet_before_the_command_and_verbose_after_it_are_refused(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    before: str, after: str) -> None:
    """The bug: ``denoiser -q denoise ... -v`` went verbose without a word, though the usage says [-q | -v]."""
    source = photo(tmp_path / "x.png")
    err = usage_error([before, "denoise", str(source), "-o", str(tmp_path / "out"), after], capsys)
    assert "-q" in err and "-v" in err and "not both" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [["-q", "-q"], ["-v", "-v"]])
def test_the_same_verbosity_twice_is_fine(tmp_path: Path, flags: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main([flags[0], "estimate-noise", str(photo(tmp_path / "x.png")), flags[1]]) == 0


def test_one_file_written_to_a_format_that_drops_its_alpha_says_so(tiny_model_file: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The single-file path (-o FILE) gave only the model's findings: what the format could not hold (alpha into
    JPEG, float values outside 0-1 into PNG) went unsaid there, as it had in batches."""
    rgba = np.random.default_rng(1).integers(0, 256, size=(24, 32, 4), dtype=np.uint8)
    PILImage.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    assert denoise(tiny_model_file, str(tmp_path / "logo.png"), "-o", str(tmp_path / "logo.jpg")) == 0
    assert "alpha channel) was dropped" in capsys.readouterr().err
