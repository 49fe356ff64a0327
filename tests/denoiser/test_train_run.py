"""The training use case: a request carried out from the first check to the saved model, as both callers use it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.errors import Cancelled, DenoiserError
from denoiser.modelfile import load_model_file
from denoiser.progress import Progress
from denoiser.train_request import DataSpec, ModelSpec, NoiseSpec, OutputSpec, ScheduleSpec, TrainRequest
from denoiser.train_run import SessionOver, TrainOutcome, run_training


def photo_folder(folder: Path, count: int = 3, noise: float = 0.0) -> Path:
    y, x = np.mgrid[0:48, 0:48]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        clean = np.stack([np.sin(x * (0.1 + 0.05 * i)) * 80 + 128, np.cos(y * 0.1) * 80 + 128, (x + y) % 256], axis=2)
        image = clean + (np.random.default_rng(i).normal(0, noise, clean.shape) if noise else 0)
        PILImage.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / f"p{i}.png")
    return folder


def tiny(folder: Path, **sections: object) -> TrainRequest:
    base: dict[str, object] = {
        "model": ModelSpec(widths=(4, 8), options={"blocks": 1}),
        "data": DataSpec(mode="clean", folders=(str(folder),), validation_fraction=0.34),
        "schedule": ScheduleSpec(steps=2, batch_size=2, patch=32, validation_every=2, workers=0),
    }
    base.update(sections)
    return TrainRequest(**base)  # type: ignore[arg-type]


def test_a_fresh_run_and_a_fine_tune_each_take_the_engines_rules_and_save(tmp_path: Path) -> None:
    folder = photo_folder(tmp_path / "clean")
    events: list[Progress] = []
    first = tmp_path / "first.safetensors"
    outcome = run_training(tiny(folder, output=OutputSpec(name="fresh", file=str(first))), None, events.append,
                           command="denoiser train ...")
    assert isinstance(outcome, TrainOutcome) and outcome.result.steps == 2
    assert outcome.config.learning_rate == pytest.approx(1e-3) and outcome.config.mode == "synthetic"
    assert outcome.config.model == {"widths": [4, 8], "blocks": 1}
    start = next(e for e in events if e.stage == "start")
    assert start.message.startswith("training a unet model on 3 clean photos") and start.total == 2
    stages = [e.stage for e in events]
    assert stages[-1] == "done" and stages.index("load") < stages.index("start") < stages.index("validate")
    assert [p.name for p in outcome.saved] == ["fresh.safetensors", "first.safetensors"]
    _, info = load_model_file(first)
    assert info.name == "first" and info.training["command"] == "denoiser train ..."
    assert info.training["steps_done"] == 2

    widened = run_training(tiny(folder, model=ModelSpec(start_from=str(first), noise_channels=2),
                                noise=NoiseSpec(synthesis={}), schedule=ScheduleSpec(minutes=0.001, batch_size=2,
                                                                                     patch=32, workers=0)))
    assert widened.config.learning_rate == pytest.approx(2e-4) and widened.config.start_from == str(first)
    assert widened.config.steps == 1_000_000 and widened.config.mode == "device_mix"
    assert widened.result.model.config.noise_channels == 2 and widened.saved == []
    assert widened.save(file=str(tmp_path / "later.safetensors"))[0].is_file()  # as the app saves, afterwards


def test_nothing_is_read_when_the_destination_is_taken(tmp_path: Path) -> None:
    taken = tmp_path / "taken.safetensors"
    taken.write_bytes(b"")
    with pytest.raises(DenoiserError, match="already exists"):
        run_training(tiny(tmp_path / "no-such-folder", output=OutputSpec(file=str(taken))))


def test_a_stop_request_and_the_end_of_a_session_are_told_apart(tmp_path: Path) -> None:
    folder = photo_folder(tmp_path / "clean")
    with pytest.raises(Cancelled) as stopped:
        run_training(tiny(folder), lambda: True)
    assert not isinstance(stopped.value, SessionOver)
    checkpoint = tmp_path / "ckpt"
    session = ScheduleSpec(steps=2, batch_size=2, patch=32, workers=0, checkpoint=str(checkpoint),
                           session_minutes=1e-9)
    with pytest.raises(SessionOver):
        run_training(tiny(folder, schedule=session))
    assert (checkpoint / "checkpoint.json").is_file()


def test_pairs_without_a_checked_report_are_matched_and_problems_refused(tmp_path: Path) -> None:
    photo_folder(tmp_path / "set" / "clean")
    photo_folder(tmp_path / "set" / "noisy", count=4, noise=20)  # p3 has no clean partner
    pairs = DataSpec(mode="pairs", folders=(str(tmp_path / "set"),), validation_fraction=0.34)
    with pytest.raises(DenoiserError, match="3 usable pairs, 1 problem"):
        run_training(tiny(tmp_path, data=pairs))
    pairs.skip_bad_pairs = True
    outcome = run_training(tiny(tmp_path, data=pairs))
    assert outcome.config.mode == "pairs" and outcome.trained_on.startswith("3 noisy/clean pairs")
