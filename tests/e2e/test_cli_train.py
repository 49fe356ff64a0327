"""``denoiser train`` end to end: each way of training, the pair report, fine-tuning, and where models go."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.cli import main
from denoiser.modelstore import load_model, user_models_dir
from denoiser.resources import bundled_models_dir

TINY = ["--widths", "8,16", "--steps", "6", "--batch-size", "4", "--patch", "32", "--validation-every", "3",
        "--workers", "0", "--threads", "1"]


def photo_folder(folder: Path, count: int = 4, noise: float = 0.0) -> Path:
    y, x = np.mgrid[0:48, 0:64]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a = 0.05 + 0.05 * i
        clean = np.stack([np.sin(x * a) * 80 + 128, np.cos(y * a) * 80 + 128, (x + y) % 256], axis=2)
        image = clean + (np.random.default_rng(100 + i).normal(0, noise, clean.shape) if noise else 0)
        PILImage.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_clean_photos_with_a_noise_mix_go_to_the_library(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = photo_folder(tmp_path / "clean")
    assert main(["train", "--clean", str(clean), "--noise", "gaussian,poisson_gaussian,jpeg", "--name", "mine",
                 *TINY]) == 0
    out = capsys.readouterr().out
    assert "4 clean photos" in out and "val_psnr" in out and "saved" in out
    model, info = load_model("mine")
    assert info.training["mode"] == "synthetic" and info.training["noise"]["models"] == [
        "gaussian", "poisson_gaussian", "jpeg"]
    assert info.validation["metric"] == "val_psnr"


def test_pair_problems_are_listed_and_stop_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo_folder(tmp_path / "set" / "clean")
    photo_folder(tmp_path / "set" / "noisy", noise=20)
    (tmp_path / "set" / "noisy" / "extra.png").write_bytes((tmp_path / "set" / "noisy" / "p0.png").read_bytes())
    assert main(["train", "--pairs", str(tmp_path / "set"), "--name", "pairs", *TINY]) == 2
    captured = capsys.readouterr()
    assert "4 usable pairs, 1 problem" in captured.out and "extra.png: no clean partner" in captured.out
    assert "--skip-bad-pairs" in captured.err
    assert not (user_models_dir() / "pairs.safetensors").exists()
    assert main(["train", "--pairs", str(tmp_path / "set" / "noisy"), str(tmp_path / "set" / "clean"),
                 "--name", "pairs", "--skip-bad-pairs", *TINY]) == 0
    assert load_model("pairs")[1].training["mode"] == "pairs"


def test_noisy_photos_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noisy = photo_folder(tmp_path / "noisy", noise=20)
    out_file = tmp_path / "self.safetensors"
    assert main(["train", "--noisy", str(noisy), "--out", str(out_file), *TINY]) == 0
    assert "val_loss" in capsys.readouterr().out
    assert load_model(str(out_file))[1].training["mode"] == "noisy"


def test_fine_tuning_the_default_reports_the_gain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (bundled_models_dir() / "default.safetensors").is_file():
        pytest.skip("no bundled default model")
    photo_folder(tmp_path / "set" / "clean")
    photo_folder(tmp_path / "set" / "noisy", noise=20)
    assert main(["train", "--pairs", str(tmp_path / "set"), "--from", "default", "--name", "tuned",
                 "--steps", "2", "--batch-size", "2", "--patch", "32", "--workers", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "starting from default" in out and "gain" in out
    info = load_model("tuned")[1]
    assert info.family == "unet" and info.training["start_from"] == "default"
    assert info.training["learning_rate"] == pytest.approx(2e-4)


def test_existing_names_and_files_are_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = photo_folder(tmp_path / "clean")
    assert main(["train", "--clean", str(clean), "--name", "once", *TINY]) == 0
    before = (user_models_dir() / "once.safetensors").read_bytes()
    assert main(["train", "--clean", str(clean), "--name", "once", *TINY]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (user_models_dir() / "once.safetensors").read_bytes() == before
    assert main(["train", "--clean", str(clean), *TINY]) == 2  # nowhere to save


@pytest.mark.parametrize(("name", "rule"), [("../../x", "path separator"), ("sub/x", "path separator"),
                                             ("..", "'..'"), (" x", "space"), ("x" * 65, "at most 64")])
def test_names_that_leave_the_library_or_hide_in_it_are_refused_before_training(
        name: str, rule: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    clean = photo_folder(tmp_path / "clean")
    everything = tmp_path_factory.getbasetemp()  # the library's folder and the folders above it, up to here
    before = sorted(everything.rglob("*"))
    assert main(["train", "--clean", str(clean), "--name", name, *TINY]) == 2
    out, err = capsys.readouterr()
    assert f"invalid model name {name!r}" in err and rule in err and "training a" not in out
    assert not (user_models_dir() / f"{name}.safetensors").resolve().exists()
    assert sorted(everything.rglob("*")) == before  # nothing written anywhere: no model, no folder, no checkpoint


def test_resume_from_a_checkpoint_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = photo_folder(tmp_path / "clean")
    checkpoint = tmp_path / "ckpt"
    assert main(["train", "--clean", str(clean), "--out", str(tmp_path / "a.safetensors"), "--checkpoint",
                 str(checkpoint), *TINY]) == 0
    assert (checkpoint / "checkpoint.json").is_file() and list(checkpoint.glob("checkpoint-*.safetensors"))
    assert not (checkpoint / "checkpoint.safetensors").exists()
    assert main(["train", "--clean", str(clean), "--out", str(tmp_path / "b.safetensors"), "--checkpoint",
                 str(checkpoint), *TINY]) == 0
    assert "resumed at step 6" in capsys.readouterr().err
    # The second session had nothing left to do: the model records the one session that trained it.
    runs = load_model(str(tmp_path / "b.safetensors"))[1].training["runs"]
    assert [(r["device"], r["steps"]) for r in runs] == [("cpu", 6)]
    assert main(["models", "info", str(tmp_path / "b.safetensors")]) == 0
    assert "  device_minutes: {\"cpu\": " in capsys.readouterr().out


def test_a_run_spread_over_sessions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--session-minutes`` ends a session with the checkpoint kept; the folder, copied elsewhere, goes on."""
    import shutil

    from denoiser.train_cli import EXIT_SESSION_OVER

    clean = photo_folder(tmp_path / "clean")
    first = ["train", "--clean", str(clean), "--out", str(tmp_path / "m.safetensors"), *TINY]
    assert main([*first, "--session-minutes", "1e-6"]) == 2  # nowhere to keep the run between sessions
    assert "--session-minutes needs --checkpoint" in capsys.readouterr().err
    assert main([*first, "--checkpoint", str(tmp_path / "a"), "--session-minutes", "1e-6"]) == EXIT_SESSION_OVER
    assert "minutes are over; run the same command" in capsys.readouterr().err
    assert (tmp_path / "a" / "checkpoint.json").is_file() and not (tmp_path / "m.safetensors").exists()
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert main([*first, "--checkpoint", str(tmp_path / "b"), "--session-minutes", "60"]) == 0
    assert load_model(str(tmp_path / "m.safetensors"))[1].training["steps_done"] == 6


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_same_model(tmp_path: Path) -> None:
    """A real ``kill -9`` in the middle of a run; the resumed run ends with the uninterrupted run's weights."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch
    from safetensors.torch import load_file

    clean = photo_folder(tmp_path / "clean")
    args = ["--clean", str(clean), *TINY[:2], "--steps", "40", *TINY[4:], "--validation-every", "20",
            "--checkpoint-every", "5"]
    env = {**os.environ, "DENOISER_HOME": str(tmp_path / "home")}

    def command(out: str, checkpoint: Path) -> list[str]:
        return [sys.executable, "-m", "denoiser", "train", *args, "--out", str(tmp_path / out),
                "--checkpoint", str(checkpoint)]

    subprocess.run(command("straight.safetensors", tmp_path / "c1"), check=True, env=env, capture_output=True)
    victim = subprocess.Popen(command("killed.safetensors", tmp_path / "c2"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (tmp_path / "c2" / "checkpoint.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    from denoiser.checkpoints import read_checkpoint_state

    killed_at = read_checkpoint_state(tmp_path / "c2")["state"]["step"]
    assert killed_at < 40 and not (tmp_path / "killed.safetensors").exists()  # really killed mid-run
    subprocess.run(command("killed.safetensors", tmp_path / "c2"), check=True, env=env, capture_output=True)
    straight = load_file(str(tmp_path / "straight.safetensors"))
    resumed = load_file(str(tmp_path / "killed.safetensors"))
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(resumed[key], straight[key]), key  # bit for bit, as docs/training.md promises on the CPU


def test_device_synthesis_with_pairs_trains_a_two_channel_model(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    clean = photo_folder(tmp_path / "clean")
    photo_folder(tmp_path / "set" / "clean", count=10)
    photo_folder(tmp_path / "set" / "noisy", count=10, noise=15)
    assert main(["train", "--clean", str(clean), "--synthesis", "camera=2,gaussian_float=1",
                 "--add-pairs", str(tmp_path / "set"), "--pair-share", "0.5", "--noise-channels", "2",
                 "--out", str(tmp_path / "m.safetensors"), *TINY]) == 0
    out = capsys.readouterr().out
    assert "noise made on the training device (camera 2, gaussian_float 1)" in out
    assert "training part of" in out and "9 pairs" in out  # 10 pairs, one held out as the bench's validation
    model, info = load_model(str(tmp_path / "m.safetensors"))
    assert model.config.noise_channels == 2
    assert info.training["mode"] == "device_mix" and info.training["pair_share"] == 0.5
    assert info.training["synthesis"]["weights"] == {"camera": 2.0, "gaussian_float": 1.0}


def test_a_one_channel_model_is_widened_to_take_colour_noise_apart(tmp_path: Path) -> None:
    clean = photo_folder(tmp_path / "clean")
    first = tmp_path / "one.safetensors"
    assert main(["train", "--clean", str(clean), "--out", str(first), *TINY]) == 0
    assert main(["train", "--clean", str(clean), "--synthesis", "default", "--from", str(first),
                 "--noise-channels", "2", "--out", str(tmp_path / "two.safetensors"), *TINY[2:]]) == 0
    one, _ = load_model(str(first))
    two, info = load_model(str(tmp_path / "two.safetensors"))
    assert one.config.noise_channels == 1 and two.config.noise_channels == 2
    assert one.config.widths == two.config.widths and info.training["start_from"] == str(first)


def test_bad_synthesis_mixes_are_refused(tmp_path: Path) -> None:
    clean = photo_folder(tmp_path / "clean")
    assert main(["train", "--clean", str(clean), "--synthesis", "fog=1", "--out", str(tmp_path / "x"), *TINY]) == 2
    assert main(["train", "--clean", str(clean), "--add-pairs", str(clean), "--out", str(tmp_path / "x"),
                 *TINY]) == 2


def test_the_names_written_out_for_help_are_the_engines() -> None:
    from denoiser.models import families
    from denoiser.synthesis import NOISE_KINDS
    from denoiser.train_cli import FAMILY_NAMES, SYNTHESIS_KINDS

    assert list(FAMILY_NAMES) == families() and SYNTHESIS_KINDS == NOISE_KINDS


def test_split_seed_reaches_the_request_apart_from_the_seed() -> None:
    from denoiser.cli import build_parser
    from denoiser.train_cli import request_from_args

    args = build_parser().parse_args(["train", "--clean", "photos", "--seed", "3", "--split-seed", "0"])
    data = request_from_args(args).data
    assert (data.seed, data.split_seed) == (3, 0)
    plain = request_from_args(build_parser().parse_args(["train", "--clean", "photos", "--seed", "3"])).data
    assert plain.split_seed is None  # the split follows --seed, as before


def test_fine_tuning_holds_out_the_starting_models_split(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Session 7's hazard: ``--seed 1 --from default`` held out seed 1's photos, some of which the default (seed 0)
    trained on, and its validation figures flattered it without a word. Now a fine-tune holds out the starting
    model's split unless ``--split-seed`` says otherwise, and a run told another split warns."""
    if not (bundled_models_dir() / "default.safetensors").is_file():
        pytest.skip("no bundled default model")
    photo_folder(tmp_path / "set" / "clean")
    photo_folder(tmp_path / "set" / "noisy", noise=20)
    common = ["train", "--pairs", str(tmp_path / "set"), "--from", "default", "--steps", "1", "--batch-size", "2",
              "--patch", "32", "--workers", "0", "--threads", "1", "--seed", "1"]
    assert main([*common, "--out", str(tmp_path / "a.safetensors")]) == 0
    err = capsys.readouterr().err
    assert "holding out the photos default held out (the split of seed 0)" in err and "warning" not in err
    assert load_model(tmp_path / "a.safetensors")[1].training["split_seed"] == 0
    assert main([*common, "--split-seed", "1", "--out", str(tmp_path / "b.safetensors")]) == 0
    err = capsys.readouterr().err
    assert "warning: default held out the validation split of seed 0, this run holds out seed 1's" in err
    assert "--split-seed 0" in err
    assert load_model(tmp_path / "b.safetensors")[1].training["split_seed"] == 1
