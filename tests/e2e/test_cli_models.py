"""``denoiser models`` end to end: list, info, rename, remove, import and export through ``main``."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.cli import main
from denoiser.modelfile import ModelInfo, save_model
from denoiser.models import create_model
from denoiser.modelstore import save_to_library, user_models_dir
from denoiser.resources import bundled_models_dir


def tiny_info(name: str = "mine") -> ModelInfo:
    return ModelInfo(name=name, family="", config={}, trained_on="synthetic squares (3 images)",
                     training={"steps": 42, "seconds": 3.5, "command": "denoiser train --steps 42"},
                     validation={"psnr": 29.75, "sigma": 25, "protocol": "held-out split"})


def add_model(name: str = "mine", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    return save_to_library(create_model("unet", {"widths": [4, 8], "blocks": 0}), name, tiny_info(name))


def library_files() -> list[str]:
    folder = user_models_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


class _Terminal(io.StringIO):
    """Stdin that says it is a terminal, so the confirmation question is asked."""

    def isatty(self) -> bool:
        return True


def test_models_with_and_without_list_shows_names(capsys: pytest.CaptureFixture[str]) -> None:
    add_model("mine")
    for argv in (["models"], ["models", "list"]):
        assert main(argv) == 0
        out, err = capsys.readouterr()
        bundled = len(list(bundled_models_dir().glob("*.safetensors")))
        # The models on stdout; where the library is, a note, on stderr.
        assert "mine: unet, validation PSNR 29.75 dB" in out and f"({1 + bundled} models; your library is" in err
        assert "your library is" not in out
    for argv in (["models", "--json"], ["models", "list", "--json"], ["models", "--json", "list"]):
        assert main(argv) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [entry["name"] for entry in listed if not entry["bundled"]] == ["mine"]


def test_info_prints_family_training_validation_size_and_path(capsys: pytest.CaptureFixture[str]) -> None:
    path = add_model("mine")
    assert main(["models", "info", "mine"]) == 0
    out = capsys.readouterr().out
    assert "family:      unet" in out
    assert '"widths": [4, 8]' in out
    assert "trained on:  synthetic squares (3 images)" in out
    assert "42 steps, 3.5 s" in out and "denoiser train --steps 42" in out
    assert "PSNR 29.75 dB at sigma 25" in out and "held-out split" in out
    assert f"({path.stat().st_size} bytes)" in out and str(path) in out
    assert "noise input: one level for luminance and colour" in out
    assert main(["models", "info", "default"]) == 0
    out = capsys.readouterr().out
    training = json.loads((bundled_models_dir() / "default.json").read_text())["training"]
    if "steps_done" in training:  # trained on a time budget: the steps it did, not the budget's upper bound
        assert f"training:    {training['steps_done']} steps" in out
    assert main(["models", "info", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["family"] == "unet" and data["size_bytes"] == path.stat().st_size and data["path"] == str(path)


def test_rename_reports_and_moves(capsys: pytest.CaptureFixture[str]) -> None:
    add_model("old")
    assert main(["models", "rename", "old", "new"]) == 0
    assert "renamed old to new" in capsys.readouterr().out
    assert library_files() == ["new.json", "new.safetensors"]


def test_remove_with_yes(capsys: pytest.CaptureFixture[str]) -> None:
    add_model("doomed")
    assert main(["models", "remove", "doomed", "--yes"]) == 0
    assert "removed doomed" in capsys.readouterr().out
    assert library_files() == []


def test_remove_asks_and_answer_no_keeps_it(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    add_model("precious")
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["models", "remove", "precious"]) == 0
    captured = capsys.readouterr()
    assert "remove precious? [y/N]" in captured.err and "kept precious" in captured.out
    assert library_files() == ["precious.json", "precious.safetensors"]


def test_remove_asks_and_answer_yes_removes_it(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    add_model("doomed")
    monkeypatch.setattr("sys.stdin", _Terminal("y\n"))
    assert main(["models", "remove", "doomed"]) == 0
    assert "removed doomed" in capsys.readouterr().out
    assert library_files() == []


@pytest.mark.parametrize("answer", ["y\n", "n\n", ""])
def test_remove_without_yes_on_a_pipe_refuses(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                              answer: str) -> None:
    add_model("precious")
    monkeypatch.setattr("sys.stdin", io.StringIO(answer))
    assert main(["models", "remove", "precious"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: not removing precious") and "--yes" in err and len(err.splitlines()) == 1
    assert library_files() == ["precious.json", "precious.safetensors"]


def test_import_and_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    add_model("mine")
    out = tmp_path / "out"
    out.mkdir()
    assert main(["models", "export", "mine", str(out)]) == 0
    exported = out / "mine.safetensors"
    assert f"exported mine to {exported}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["mine.safetensors"]

    monkeypatch.setenv("DENOISER_HOME", str(tmp_path / "fresh-home"))
    assert main(["models", "import", str(exported)]) == 0
    assert "imported" in capsys.readouterr().out and library_files() == ["mine.json", "mine.safetensors"]
    assert main(["models", "import", str(exported), "--name", "copy"]) == 0
    assert "as copy" in capsys.readouterr().out
    assert main(["models", "info", "copy"]) == 0
    assert "PSNR 29.75 dB" in capsys.readouterr().out


def test_import_of_a_pickle_exits_2_naming_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    assert main(["models", "import", str(evil)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(evil) in err and "Traceback" not in err
    assert library_files() == []


def test_import_collision_suggests_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_model("taken")
    torch.manual_seed(1)
    source = save_model(create_model("unet", {"widths": [4, 8], "blocks": 0}), tmp_path / "taken")
    assert main(["models", "import", str(source)]) == 2
    err = capsys.readouterr().err
    assert "taken" in err and "--name" in err


def test_export_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_model("mine")
    target = tmp_path / "mine.safetensors"
    target.write_bytes(b"precious")
    assert main(["models", "export", "mine", str(target)]) == 2
    assert str(target) in capsys.readouterr().err
    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["models", "info", "no-such-model"], "no-such-model"),
        (["models", "rename", "no-such-model", "x"], "no-such-model"),
        (["models", "rename", "mine", "default"], "default"),
        (["models", "remove", "no-such-model", "--yes"], "no-such-model"),
        (["models", "remove", "default", "--yes"], "default"),
        (["models", "import", "missing.safetensors"], "missing.safetensors"),
        (["models", "export", "no-such-model", "."], "no-such-model"),
    ],
)
def test_errors_exit_2_with_one_line(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    add_model("mine")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and named in err and len(err.splitlines()) == 1
    assert library_files() == ["mine.json", "mine.safetensors"]


@pytest.mark.parametrize("bad", ["../../x", "sub/x", "..\\x", "..", ".hidden", "x" * 65, "line\nbreak", "default"])
def test_rename_and_import_refuse_names_outside_the_rule(bad: str, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source = add_model("mine")
    exported = tmp_path / "exported" / "other.safetensors"
    assert main(["models", "export", "mine", str(exported)]) == 0
    home = user_models_dir().parent
    before = sorted(home.parent.rglob("*"))
    capsys.readouterr()
    for argv in (["models", "rename", "mine", bad], ["models", "import", str(exported), "--name", bad]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: invalid model name {bad!r}: ") and len(err.splitlines()) == 1
    assert sorted(home.parent.rglob("*")) == before  # nothing moved, copied or created, inside or outside
    assert library_files() == ["mine.json", "mine.safetensors"] and source.is_file()


def test_remove_of_a_path_out_of_the_library_deletes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    add_model("mine")
    outside = save_model(create_model("unet", {"widths": [4, 8], "blocks": 0}), user_models_dir().parent / "x")
    assert main(["models", "remove", "../x", "--yes"]) == 2
    assert "path separator" in capsys.readouterr().err
    assert outside.is_file() and library_files() == ["mine.json", "mine.safetensors"]


# --- sample: what a variational model draws from its prior ----------------------------------------------------


def test_sample_decodes_seeded_latents_into_a_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image as PILImage

    torch.manual_seed(0)
    vae = create_model("variational", {"widths": [4, 8], "blocks": 0, "latent_channels": 4})
    save_to_library(vae, "dreamer")
    for name in ("a.png", "b.png", "c.png"):
        seed = "7" if name != "c.png" else "8"
        assert main(["models", "sample", "dreamer", "-o", str(tmp_path / name), "--count", "3", "--size", "20",
                     "--seed", seed]) == 0
    assert "wrote 3 sample(s) of dreamer, 20x20 each (seed 7)" in capsys.readouterr().out
    grids = {name: np.asarray(PILImage.open(tmp_path / name)) for name in ("a.png", "b.png", "c.png")}
    assert grids["a.png"].shape == (40, 40, 3)  # two columns, two rows; the fourth cell stays black
    assert np.array_equal(grids["a.png"], grids["b.png"]) and not np.array_equal(grids["a.png"], grids["c.png"])
    with torch.no_grad():  # the first cell is the model's decoding of the first latent drawn with that seed
        first = vae.eval().sample(3, 20, 20, generator=torch.Generator().manual_seed(7))[0]
    expected = np.round(first.clamp(0, 1).permute(1, 2, 0).numpy() * 255)
    assert np.abs(grids["a.png"][:20, :20].astype(float) - expected).max() <= 1
    assert not grids["a.png"][20:, 20:].any() and grids["a.png"][:20, 20:].any()


def test_sample_refuses_other_families_and_existing_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_model("mine")
    assert main(["models", "sample", "mine", "-o", str(tmp_path / "s.png")]) == 2
    assert "mine is a unet model, which has no prior to draw images from" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()
    save_to_library(create_model("variational", {"widths": [4, 8], "blocks": 0, "latent_channels": 4}), "vae")
    (tmp_path / "taken.png").write_bytes(b"precious")
    assert main(["models", "sample", "vae", "-o", str(tmp_path / "taken.png")]) == 2
    assert (tmp_path / "taken.png").read_bytes() == b"precious"
