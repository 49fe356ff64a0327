"""Training with torch.distributed: two gloo processes under torchrun train what one process does with the whole batch,
resume a one-process checkpoint, and leave validating, checkpoints, saving and speaking to rank 0.

One ``torchrun --standalone --nproc-per-node 2`` launch (this file run as its script, see :func:`_rank_main`) does
three runs through the real command line; the tests read what each rank left behind.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

FLAGS = ["--widths", "4,8", "--steps", "4", "--batch-size", "4", "--patch", "32", "--validation-every", "2",
         "--checkpoint-every", "2", "--validation-fraction", "0.2", "--noise", "gaussian", "--lr", "3e-3",
         "--seed", "5", "--workers", "0", "--threads", "1"]
"""A tiny run: 4 steps of a global batch of 4 patches (2 per rank under torchrun), validated every 2 steps."""
TOLERANCE = 1e-5


def _photos(count: int = 5, noise: float = 0.0) -> list[np.ndarray]:
    y, x = np.mgrid[0:48, 0:64]
    photos = []
    for i in range(count):
        a = 0.05 + 0.05 * i
        image = np.stack([np.sin(x * a) * 80 + 128, np.cos(y * a) * 80 + 128, (x + y) % 256], axis=2)
        image = image + (np.random.default_rng(100 + i).normal(0, noise, image.shape) if noise else 0)
        photos.append(np.clip(image, 0, 255).astype(np.uint8))
    return photos


def _photo_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, photo in enumerate(_photos()):
        PILImage.fromarray(photo).save(folder / f"p{i}.png")
    return folder


def _engine_runs() -> dict[str, tuple[Any, Any]]:
    """Sources and settings whose batches are cut otherwise than the command line's: noise made on the training
    device (cut after it is made) and Neighbor2Neighbor's noisy patches with their samplers."""
    from denoiser.datasets import DeviceMixSource, NoisyOnlySource
    from denoiser.synthesis import SynthesisMix
    from denoiser.train_request import TrainConfig

    tiny = dict(family="unet", model={"widths": [4, 8], "blocks": 1}, steps=3, batch_size=4, patch=16,
                validation_fraction=0.2, validation_every=3, seed=2, learning_rate=3e-3, workers=0)
    mix = SynthesisMix()
    return {
        "device_mix": (DeviceMixSource(_photos(), mix, _photos(2, noise=20), _photos(2), pair_share=0.25),
                       TrainConfig(mode="device_mix", synthesis=mix.to_dict(), pair_share=0.25, **tiny)),
        "noisy": (NoisyOnlySource(_photos(noise=20)), TrainConfig(mode="noisy", **tiny)),
    }


def _train_args(folder: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "--clean", str(folder / "photos"), "--out", str(out), *FLAGS, *extra]


def _counting(owner: Any, name: str, counts: dict[str, int]) -> None:
    """Replace ``owner.name`` by a wrapper that counts its calls in ``counts[name]``."""
    real: Callable[..., Any] = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return real(*args, **kwargs)

    setattr(owner, name, counted)


def _rank_main(folder: Path) -> None:
    """One rank under torchrun: the three distributed runs through ``denoiser.cli.main`` (what ``python -m denoiser``
    runs), each rank's exit statuses, output and calls to validation and checkpoint writing written to a file."""
    import denoiser.training
    from denoiser.cli import main
    from denoiser.validation import Validator

    rank = int(os.environ["RANK"])
    runs = {
        "fresh": _train_args(folder, folder / "fresh.safetensors", "--checkpoint", str(folder / "fresh-checkpoint"),
                             "--workers", "1", "--distributed"),  # batches built by a background worker
        "resumed": _train_args(folder, folder / "resumed.safetensors", "--checkpoint", str(folder / "one-process"),
                               "--distributed"),
        "session": _train_args(folder, folder / "never.safetensors", "--checkpoint", str(folder / "session"),
                               "--session-minutes", "0.0001", "--distributed"),
    }
    counts = {"score": 0, "save_checkpoint": 0}
    _counting(Validator, "score", counts)
    _counting(denoiser.training, "save_checkpoint", counts)
    report: dict[str, Any] = {}
    for name, argv in runs.items():
        counts.update(score=0, save_checkpoint=0)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(argv)
        report[name] = {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue(), **counts}
    (folder / f"rank{rank}.json").write_text(json.dumps(report))
    from safetensors.torch import save_file

    from denoiser.distributed import process_group
    from denoiser.training import train

    with process_group("cpu") as world:  # the group the command line joined, used as it is
        for name, (source, config) in _engine_runs().items():
            result = list(train(source, config, world=world))[-1].extra["result"]
            if world.is_main:
                weights = {key: value.contiguous() for key, value in result.model.state_dict().items()}
                save_file(weights, str(folder / f"engine-{name}.safetensors"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A single-process run with the whole batch, a single-process run stopped after 2 steps (its checkpoint is
    what the 2-process run resumes), then the torchrun launch; returns the folder and each rank's report."""
    from denoiser.cli import build_parser, main
    from denoiser.errors import Cancelled
    from denoiser.train_cli import request_from_args
    from denoiser.train_run import run_training

    folder = tmp_path_factory.mktemp("distributed")
    _photo_folder(folder / "photos")
    home = folder / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DENOISER_HOME", str(home))
        patch.setenv("DENOISER_LOG_DIR", str(home / "logs"))
        assert main(_train_args(folder, folder / "single.safetensors")) == 0
        args = build_parser().parse_args(_train_args(folder, folder / "unused.safetensors", "--checkpoint",
                                                     str(folder / "one-process")))
        done = {"steps": 0}

        def note(event: Any) -> None:
            if event.stage == "train":
                done["steps"] = event.done

        with pytest.raises(Cancelled):
            run_training(request_from_args(args), lambda: done["steps"] >= 2, note)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DENOISER_HOME": str(home), "DENOISER_LOG_DIR": str(home / "logs")}
    launch = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__,
         str(folder)], env=env, capture_output=True, text=True, timeout=240)
    assert launch.returncode == 0, launch.stdout[-3000:] + launch.stderr[-3000:]
    ranks = [json.loads((folder / f"rank{r}.json").read_text()) for r in (0, 1)]
    return {"folder": folder, "ranks": ranks}


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from denoiser.modelfile import load_model_file

    model, _ = load_model_file(path)
    return model.state_dict()


def _largest_difference(first: Path, second: Path) -> float:
    a, b = _weights(first), _weights(second)
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def test_two_processes_with_half_batches_train_the_weights_of_one_with_the_whole_batch(runs: dict[str, Any]) -> None:
    folder = runs["folder"]
    assert [rank["fresh"]["status"] for rank in runs["ranks"]] == [0, 0]
    assert _largest_difference(folder / "single.safetensors", folder / "fresh.safetensors") < TOLERANCE
    from denoiser.modelfile import load_model_file

    info = load_model_file(folder / "fresh.safetensors")[1]
    assert info.training["steps_done"] == 4 and info.training["batch_size"] == 4
    assert [run.get("processes") for run in info.training["runs"]] == [2]
    assert info.training["device_minutes"] == {"cpu": round(info.training["runs"][0]["seconds"] * 2 / 60, 1)}


@pytest.mark.parametrize("name", ["device_mix", "noisy"])
def test_noise_made_on_the_device_and_self_supervised_batches_split_as_one_process_trains_them(
        runs: dict[str, Any], name: str) -> None:
    from safetensors.torch import load_file

    from denoiser.training import train

    source, config = _engine_runs()[name]
    single = list(train(source, config))[-1].extra["result"].model.state_dict()
    distributed = load_file(str(runs["folder"] / f"engine-{name}.safetensors"))
    assert max(float((single[k] - distributed[k]).abs().max()) for k in single) < TOLERANCE


def test_only_rank_0_validates_writes_checkpoints_saves_and_speaks(runs: dict[str, Any]) -> None:
    first, second = (rank["fresh"] for rank in runs["ranks"])
    assert first["score"] == 3 and second["score"] == 0  # the starting model, steps 2 and 4
    assert first["save_checkpoint"] == 2 and second["save_checkpoint"] == 0  # steps 2 and 4
    meta = json.loads((runs["folder"] / "fresh-checkpoint" / "checkpoint.json").read_text())
    assert meta["generation"] == 2 and meta["state"]["step"] == 4
    assert first["stdout"].count("saved ") == 1 and "trained 4 steps" in first["stdout"]
    assert second["stdout"] == "" and second["stderr"] == ""
    models = sorted(p.name for p in runs["folder"].glob("*.safetensors") if not p.name.startswith("engine-"))
    assert models == ["fresh.safetensors", "resumed.safetensors", "single.safetensors"]  # each saved once


def test_two_processes_resume_a_one_process_checkpoint_and_end_where_one_process_would(runs: dict[str, Any]) -> None:
    from denoiser.modelfile import load_model_file

    folder = runs["folder"]
    first, second = (rank["resumed"] for rank in runs["ranks"])
    assert (first["status"], second["status"]) == (0, 0)
    assert "resumed at step 2" not in second["stderr"] and second["stdout"] == ""
    assert first["save_checkpoint"] == 1 and second["save_checkpoint"] == 0  # step 4
    assert _largest_difference(folder / "single.safetensors", folder / "resumed.safetensors") < TOLERANCE
    info = load_model_file(folder / "resumed.safetensors")[1]
    assert info.training["steps_done"] == 4
    assert [(run["steps"], run.get("processes", 1)) for run in info.training["runs"]] == [(2, 1), (2, 2)]
    history = json.loads((folder / "one-process" / "checkpoint.json").read_text())["state"]["history"]
    assert [record["step"] for record in history] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in history)


def test_a_session_that_ends_stops_every_rank_after_rank_0_kept_the_checkpoint(runs: dict[str, Any]) -> None:
    first, second = (rank["session"] for rank in runs["ranks"])
    assert (first["status"], second["status"]) == (75, 75)
    assert "minutes are over; run the same command" in first["stderr"] and second["stderr"] == ""
    assert (first["save_checkpoint"], second["save_checkpoint"]) == (1, 0)
    meta = json.loads((runs["folder"] / "session" / "checkpoint.json").read_text())
    assert meta["generation"] == 1 and not (runs["folder"] / "never.safetensors").exists()


def test_without_torchrun_the_flag_says_how_to_start_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from denoiser.cli import main

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    _photo_folder(tmp_path / "photos")
    assert main(_train_args(tmp_path, tmp_path / "model.safetensors", "--distributed")) == 2
    assert "run under torchrun: torchrun --nproc-per-node N -m denoiser train ... --distributed" in (
        capsys.readouterr().err)
    assert not (tmp_path / "model.safetensors").exists()


def test_each_rank_takes_its_consecutive_share_of_the_step_batch() -> None:
    from denoiser.distributed import World, shard_bounds
    from denoiser.errors import DenoiserError

    batch = {"input": torch.arange(6.0).view(6, 1), "choice": torch.arange(12).view(6, 2), "seed": torch.tensor(9)}
    shares = [World(rank=r, size=3, local_rank=r, device=torch.device("cpu")).shard(batch) for r in range(3)]
    assert [s["input"].flatten().tolist() for s in shares] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    assert torch.equal(torch.cat([s["choice"] for s in shares]), batch["choice"])
    assert all(int(s["seed"]) == 9 for s in shares)
    with pytest.raises(DenoiserError, match="multiple of 4"):
        shard_bounds(6, 0, 4)


def test_device_minutes_count_every_process_of_a_session() -> None:
    from denoiser.checkpoints import device_minutes

    runs = [{"device": "cuda", "seconds": 600.0, "processes": 4}, {"device": "cuda", "seconds": 60.0}]
    assert device_minutes(runs) == {"cuda": 41.0}


def test_a_request_says_whether_it_is_distributed_and_older_requests_read_as_not() -> None:
    from denoiser.config import ConfigError
    from denoiser.train_request import ScheduleSpec, TrainRequest

    request = TrainRequest(data={"mode": "clean", "folders": ["photos"]}, schedule=ScheduleSpec(distributed=True))
    assert TrainRequest.from_json(request.to_json()).schedule.distributed is True
    older = request.to_dict()
    del older["schedule"]["distributed"]
    assert TrainRequest.from_dict(older).schedule.distributed is False
    with pytest.raises(ConfigError, match="distributed run trains on device auto, cuda"):
        TrainRequest(data={"mode": "clean", "folders": ["photos"]},
                     schedule=ScheduleSpec(distributed=True, device="cuda:1")).validate()


if __name__ == "__main__":
    _rank_main(Path(sys.argv[1]))
