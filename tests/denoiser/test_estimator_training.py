"""Tests of the noise-map estimator's training: targets, validation, a short run that learns, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from denoiser.datasets import DeviceMixSource
from denoiser.estimator import load_estimator
from denoiser.estimator_training import (
    EstimatorTraining,
    quarter_targets,
    train_estimator,
    validation_errors,
)
from denoiser.synthesis import SynthesisMix


def photos(count: int, size: tuple[int, int] = (64, 64)) -> list[np.ndarray]:
    y, x = np.mgrid[0 : size[0], 0 : size[1]] / max(size)
    images = []
    for k in range(count):
        base = np.stack([0.3 + 0.4 * x, 0.4 + 0.3 * y, 0.5 + 0.2 * np.sin(6 * x + k)], axis=2)
        images.append(np.clip(np.round(base * 255), 0, 255).astype(np.uint8))
    return images


def test_quarter_targets_keep_the_root_mean_variance() -> None:
    maps = torch.zeros(1, 2, 8, 8)
    maps[:, :, :4, :4] = 0.1
    quarter = quarter_targets(maps)
    assert quarter.shape == (1, 2, 2, 2)
    assert quarter[0, 0, 0, 0] == pytest.approx(0.1) and quarter[0, 0, 1, 1] == 0
    maps[:, :, 0, 0] = 0.5  # one loud pixel raises its cell's level as variance, not as amplitude
    assert quarter_targets(maps)[0, 0, 0, 0] == pytest.approx(np.sqrt((0.25 + 15 * 0.01) / 16))


def test_validation_errors_are_per_sigma_and_overall() -> None:
    torch.manual_seed(0)
    from denoiser.estimator import EstimatorConfig, NoiseMapEstimator

    errors = validation_errors(NoiseMapEstimator(EstimatorConfig(width=8, blocks=1)), photos(2))
    assert set(errors) == {"error_sigma_0", "error_sigma_5", "error_sigma_15", "error_sigma_25", "error_sigma_50",
                           "error"}
    assert errors["error_sigma_50"] > errors["error_sigma_5"]  # an untrained estimator reads about nothing


@pytest.mark.slow
def test_a_short_run_learns_to_read_gaussian_noise() -> None:
    mix = SynthesisMix(weights={"gaussian_float": 1.0}, sigma_min=5.0, sigma_max=60.0)
    source = DeviceMixSource(photos(6), mix)
    config = EstimatorTraining(steps=60, batch_size=8, patch=32, learning_rate=3e-3, validation_every=60,
                               validation_fraction=0.34, estimator={"width": 8, "blocks": 1})
    events = list(train_estimator(source, config, device="cpu"))
    first = np.mean([e.extra["loss"] for e in events[:10] if e.stage == "train"])
    last = np.mean([e.extra["loss"] for e in events[-11:-1] if e.stage == "train"])
    assert last < 0.4 * first
    estimator, info = events[-1].extra["result"]
    assert info["validation"]["photos"] == 2 and "error" in info["validation"]
    assert info["training"]["steps"] == 60


def test_train_estimator_cli_writes_a_loadable_file(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from denoiser.cli import main

    folder = tmp_path / "clean"
    folder.mkdir()
    for k, photo in enumerate(photos(4)):
        PILImage.fromarray(photo).save(folder / f"p{k}.png")
    out = tmp_path / "e.safetensors"
    assert main(["train-estimator", "--clean", str(folder), "--steps", "2", "--batch-size", "2", "--patch", "32",
                 "--validation-every", "2", "--out", str(out), "--device", "cpu"]) == 0
    estimator, info = load_estimator(out)
    assert info["training"]["steps"] == 2 and "4 clean photos" in info["trained_on"]
    assert main(["train-estimator", "--clean", str(folder), "--steps", "2", "--out", str(out)]) == 2  # no overwrite
