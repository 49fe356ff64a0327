"""Training the noise-map estimator on the noise the denoisers train on.

Each batch is a :class:`~denoiser.datasets.DeviceMixSource` batch: clean patches whose noise is synthesised on the
training device (:mod:`denoiser.synthesis`: Gaussian of every kind, spatially varying, camera pipeline with JPEG)
and, optionally, real noisy/clean pairs. The target is the luminance/colour noise map that the denoiser is given
for the same patch, at the estimator's quarter resolution; a share of the patches is left without noise (target
zero) so that a clean photo reads clean. Validation: held-out clean photos with seeded Gaussian noise of known
sigma (and none), scored by the error of the median level read, in 0-255 units.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from denoiser.config import VersionedConfig, require
from denoiser.datasets import DeviceMixSource, StepBatches, synthesize_on_device
from denoiser.estimator import SCALE, EstimatorConfig, NoiseMapEstimator, estimate_map
from denoiser.io import from_float
from denoiser.noise import add_gaussian_noise
from denoiser.progress import Progress, StopFn, check_stop

VALIDATION_SIGMAS = (0.0, 5.0, 15.0, 25.0, 50.0)
"""Gaussian sigmas (clipped 8-bit protocol) of the validation photos; 0 is the photo as it is."""


@dataclass
class EstimatorTraining(VersionedConfig):
    """One estimator training run."""

    steps: int = 3000
    batch_size: int = 16
    patch: int = 96
    """Patch edge; a multiple of 16."""
    learning_rate: float = 1e-3
    """Adam's rate; cosine decay to 1 % by the last step."""
    clean_share: float = 0.1
    """Share of each batch left without noise (target: no noise)."""
    validation_fraction: float = 0.03
    """Held-out share of the clean photos (the same seeded split as the denoiser's training)."""
    validation_every: int = 500
    seed: int = 0
    estimator: dict[str, Any] | None = None
    """:class:`~denoiser.estimator.EstimatorConfig` fields (None: the defaults)."""

    def validate(self) -> None:
        require(self.steps >= 1 and self.batch_size >= 1, "steps and batch_size must be >= 1")
        require(self.patch >= 32 and self.patch % 16 == 0, "patch must be a multiple of 16, at least 32")
        require(self.learning_rate > 0, "learning_rate must be positive")
        require(0 <= self.clean_share < 1, "clean_share must be in [0, 1)")
        require(0 <= self.validation_fraction < 1, "validation_fraction must be in [0, 1)")
        require(self.validation_every >= 1, "validation_every must be >= 1")


def quarter_targets(maps: torch.Tensor) -> torch.Tensor:
    """Full-resolution noise maps (N x 2 x H x W, 0-1 units) at the estimator's resolution: the root mean variance
    over each 4 x 4 cell."""
    return torch.sqrt(torch.nn.functional.avg_pool2d(maps * maps, SCALE))


def validation_errors(estimator: NoiseMapEstimator, photos: list[np.ndarray], seed: int = 0) -> dict[str, float]:
    """Mean absolute error (0-255 units) of the median luminance and colour level read on ``photos`` (uint8 clean
    photos) with seeded clipped Gaussian noise at each of :data:`VALIDATION_SIGMAS`, per sigma and overall."""
    errors: dict[str, float] = {}
    for sigma in VALIDATION_SIGMAS:
        values = []
        for k, photo in enumerate(photos):
            noisy = photo if sigma == 0 else add_gaussian_noise(photo, sigma, seed + k)
            levels = estimate_map(estimator, noisy)
            values.append(abs(float(np.median(levels[:, :, 0])) - sigma))
            values.append(abs(float(np.median(levels[:, :, 1])) - sigma))
        errors[f"error_sigma_{sigma:g}"] = float(np.mean(values))
    errors["error"] = float(np.mean(list(errors.values())))
    return errors


def _learning_rate(step: int, steps: int, base: float) -> float:
    warmup = max(1, min(100, steps // 20))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_estimator(source: DeviceMixSource, config: EstimatorTraining, *, device: str = "auto",
                    should_stop: StopFn | None = None) -> Iterator[Progress]:
    """Train a noise-map estimator on ``source``; yields progress, the last event's ``extra["result"]`` is
    ``(estimator, info)`` with the best (lowest validation error) weights. Cancelled when ``should_stop`` says so.
    """
    from denoiser.inference import resolve_device
    from denoiser.training import split_images

    config.validate()
    target_device = resolve_device(device)
    torch.manual_seed(config.seed)
    estimator = NoiseMapEstimator(EstimatorConfig.from_dict(config.estimator or {})).to(target_device)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=config.learning_rate)
    train_ids, held_ids = split_images(len(source), config.validation_fraction, config.seed)
    held = [from_float(source.clean[i].transpose(1, 2, 0), 8) for i in held_ids]
    batches = StepBatches(source, train_ids, config.batch_size, config.patch, config.seed)
    best: dict[str, float] | None = None
    best_state = {k: v.detach().clone() for k, v in estimator.state_dict().items()}
    history: list[dict[str, float]] = []
    started = time.monotonic()
    for step in range(config.steps):
        check_stop(should_stop, "estimator training cancelled")
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, config.steps, config.learning_rate)
        made = synthesize_on_device(batches[step], source.mix, target_device)
        inputs, maps = made["input"], made["noise_map"]
        quiet = int(round(config.clean_share * len(inputs)))
        if quiet:  # the first patches go in clean: their noise map is zero
            inputs = torch.cat([made["target"][:quiet], inputs[quiet:]])
            maps = torch.cat([torch.zeros_like(maps[:quiet]), maps[quiet:]])
        estimator.train()
        predicted = estimator(inputs)
        loss = torch.nn.functional.l1_loss(predicted * 255, quarter_targets(maps) * 255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        record: dict[str, float] = {"step": step + 1, "loss": loss.item(), "seconds": time.monotonic() - started}
        if held and ((step + 1) % config.validation_every == 0 or step + 1 == config.steps):
            errors = validation_errors(estimator.eval(), held, config.seed)
            record.update(errors)
            if best is None or errors["error"] < best["error"]:
                best = errors
                best_state = {k: v.detach().clone() for k, v in estimator.state_dict().items()}
        history.append(record)
        yield Progress("train", step + 1, config.steps, extra=record)
    if best is not None:
        estimator.load_state_dict(best_state)
    info = {"training": {**config.to_dict(), "seconds": round(time.monotonic() - started, 1),
                         "device": target_device.type, "mix": source.mix.to_dict(),
                         "pairs": len(source.pairs), "pair_share": source.pair_share},
            "validation": {"photos": len(held), "protocol": "clipped Gaussian, seeded", **(best or {})}}
    yield Progress("done", config.steps, config.steps, "estimator trained",
                   extra={"result": (estimator.eval().cpu(), info), "history": history})
