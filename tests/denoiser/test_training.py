"""The minimal training loop: it learns, validates, checkpoints, resumes exactly, and stops on request."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.errors import Cancelled
from denoiser.modelstore import load_model_file
from denoiser.training import TrainConfig, save_trained, split_images, train


def photos(count: int = 4, size: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    images = []
    for _ in range(count):
        a, b, c = rng.uniform(0.05, 0.3, 3)
        base = np.stack([np.sin(x * a) * 80, np.cos(y * b) * 80, np.sin((x + y) * c) * 80], axis=2) + 128
        images.append(base.clip(0, 255).astype(np.uint8))
    return images


def tiny_config(**changes: object) -> TrainConfig:
    base = dict(family="unet", model={"widths": [4, 8], "blocks": 1}, steps=6, batch_size=2, patch=16,
                validation_fraction=0.25, validation_every=3, checkpoint_every=2, seed=3, learning_rate=3e-3)
    base.update(changes)
    return TrainConfig(**base)  # type: ignore[arg-type]


def run(config: TrainConfig, **kwargs: object) -> dict:
    events = list(train(photos(), config, **kwargs))  # type: ignore[arg-type]
    return events[-1].extra


def test_split_is_seeded_and_disjoint() -> None:
    train_ids, held = split_images(20, 0.2, seed=1)
    assert (train_ids, held) == split_images(20, 0.2, seed=1)
    assert len(held) == 4 and not set(train_ids) & set(held)
    assert sorted(train_ids + held) == list(range(20))


def test_loss_goes_down_and_validation_is_recorded() -> None:
    torch.set_num_threads(1)
    result = run(tiny_config(steps=40, validation_every=20))
    history = result["history"]
    first, last = np.mean([h["loss"] for h in history[:5]]), np.mean([h["loss"] for h in history[-5:]])
    assert last < first
    assert [h["step"] for h in history if "val_psnr" in h] == [20, 40]
    assert result["best_psnr"] == max(h["val_psnr"] for h in history if "val_psnr" in h)


def test_killed_run_resumes_with_the_same_results(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    straight = run(tiny_config(), checkpoint_dir=tmp_path / "straight")
    folder = tmp_path / "interrupted"
    generator = train(photos(), tiny_config(), checkpoint_dir=folder)
    for event in generator:
        if event.done == 4:  # the checkpoint at step 4 is on disk; drop the run as a kill would
            break
    generator.close()
    resumed = run(tiny_config(), checkpoint_dir=folder)
    assert [h["loss"] for h in resumed["history"]] == pytest.approx([h["loss"] for h in straight["history"]])
    for key, value in straight["model"].state_dict().items():
        torch.testing.assert_close(resumed["model"].state_dict()[key], value)


def test_stop_request_saves_a_checkpoint_and_raises(tmp_path: Path) -> None:
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    with pytest.raises(Cancelled):
        list(train(photos(), tiny_config(), checkpoint_dir=tmp_path, should_stop=stop_after_three))
    assert (tmp_path / "checkpoint.json").is_file()
    events = list(train(photos(), tiny_config(), checkpoint_dir=tmp_path))
    assert events[0].message == "resumed at step 3"


@pytest.mark.parametrize("family", ["undercomplete", "sparse", "variational"])
def test_other_families_train_and_save(family: str, tmp_path: Path) -> None:
    config = tiny_config(family=family, model={"widths": [4, 8], "blocks": 0, "latent_channels": 6}, steps=3,
                         validation_every=3)
    result = run(config)
    target = tmp_path / f"{family}.safetensors"
    path = save_trained(result["model"], target, config, "synthetic", result["best_psnr"], 1.0)
    model, info = load_model_file(path)
    assert info.family == family and info.training["steps"] == 3 and info.trained_on == "synthetic"
