"""Validation: the seeded held-out split of a run's data, and the scores a run keeps its best model by.

Validation runs every "epoch" (``validation_every`` steps) on the held-out split: PSNR against the clean images
(with seeded Gaussian noise at ``validation_sigma`` for clean-only data, in the clipped protocol and, when the
training noise includes unclipped noise, the float protocol too), or the self-supervised loss for noisy-only data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from denoiser.datasets import draw_neighbours, subsample_with
from denoiser.io import from_float
from denoiser.metrics import psnr
from denoiser.models import Autoencoder
from denoiser.noise import NoiseMix, add_gaussian_noise, float_noisy
from denoiser.synthesis import SynthesisMix
from denoiser.train_request import TrainConfig


def split_images(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train / validation split of ``count`` items (at least one each when count > 1)."""
    order = np.random.default_rng(seed).permutation(count)
    held = min(count - 1, max(1 if count > 1 and fraction > 0 else 0, int(round(count * fraction))))
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())


def run_split(config: TrainConfig, count: int) -> tuple[list[int], list[int]]:
    """A run's train / validation split of ``count`` items: seeded by ``config.split_seed``, or by ``config.seed``
    when that is None."""
    return split_images(count, config.validation_fraction, config.held_out_seed)


def trained_split_seed(trained: dict[str, Any]) -> int | None:
    """The seed of the validation split a model held out, from its saved training settings (``trained``); None
    when it held nothing out or does not say."""
    fraction = trained.get("validation_fraction")
    if not isinstance(fraction, (int, float)) or fraction <= 0:
        return None
    seed = trained.get("split_seed")
    seed = trained.get("seed") if seed is None else seed
    return seed if isinstance(seed, int) else None


def split_warning(trained: dict[str, Any], config: TrainConfig, start_from: str) -> str | None:
    """A warning when a run fine-tunes a model (``trained``: its saved training settings) whose validation split
    was drawn from another seed than this run's: that model may have trained on this run's validation photos, so
    the run's validation figures would flatter it. None when the seeds agree or either run held nothing out.
    (Fractions are not compared: splits of one seed are nested, and a pair set's split has its own fraction.)"""
    before, now = trained_split_seed(trained), config.held_out_seed
    if before is None or config.validation_fraction <= 0 or before == now:
        return None
    return (f"{start_from} held out the validation split of seed {before}, this run holds out seed {now}'s: it may "
            f"have trained on this run's validation photos, which would flatter its validation figures; add "
            f"--split-seed {before} to hold out the same photos")


def validation_protocols(config: TrainConfig) -> tuple[str, ...]:
    """The noise protocols validation scores for synthetic noise: ``clipped`` (8-bit, rounded and clipped) always,
    and ``float`` too when the training noise includes unclipped noise, so that the best model kept is the best on
    both kinds of photo rather than on saved 8-bit ones alone."""
    if config.mode == "device_mix":
        weights = SynthesisMix.from_dict(config.synthesis).weights if config.synthesis else SynthesisMix().weights
        return ("clipped", "float") if weights.get("gaussian_float", 0) > 0 else ("clipped",)
    if config.mode == "synthetic":
        mix = NoiseMix.from_dict(config.noise) if config.noise else NoiseMix()
        return ("clipped", "float") if not mix.quantize or mix.quantize_probability < 1 else ("clipped",)
    return ()


class Validator:
    """Scores a model on the held-out split: mean PSNR (higher is better) or self-supervised loss (lower)."""

    def __init__(self, source: Any, indices: list[int], config: TrainConfig) -> None:
        self.source, self.indices, self.config = source, indices, config
        self.metric = "val_loss" if source.kind == "noisy" else "val_psnr"
        self.items: list[tuple[np.ndarray, np.ndarray | None, float]] = []  # (input, clean, sigma 0-255)
        self.protocols = validation_protocols(config)
        for k, index in enumerate(indices):
            if source.kind in ("synthetic", "device_mix"):
                clean = from_float(source.clean[index].transpose(1, 2, 0), 8)
                sigma = config.validation_sigma
                self.items.append((add_gaussian_noise(clean, sigma, config.seed + k), clean, sigma))
                if "float" in self.protocols:  # the same draws, neither rounded nor clipped
                    self.items.append((float_noisy(clean, sigma, config.seed + k), clean, sigma))
            elif source.kind == "pairs":
                stack = source.stacks[index]
                c = source.channels
                noisy, clean = stack[:c].transpose(1, 2, 0), stack[c:].transpose(1, 2, 0)
                self.items.append((noisy, clean, source.sigmas[index] * 255))
            else:
                self.items.append((source.noisy[index].transpose(1, 2, 0), None, source.sigmas[index] * 255))

    def better(self, new: float, old: float | None) -> bool:
        """Whether ``new`` beats ``old`` for this metric."""
        if old is None or math.isnan(old):
            return not math.isnan(new)
        return new > old if self.metric == "val_psnr" else new < old

    def score(self, model: Autoencoder) -> tuple[float, dict[str, np.ndarray]]:
        """The metric, and a small before/after sample from the first validation image."""
        from denoiser.inference import TileSettings, denoise_array

        values, sample = [], {}
        device = next(model.parameters()).device
        for k, (noisy, clean, sigma) in enumerate(self.items):
            if self.metric == "val_loss":
                values.append(self._self_supervised_loss(model, noisy, sigma, k))
                out = None
            else:
                # torch: the weights change at every step, an ONNX export of each would cost more than the run.
                out = denoise_array(noisy, model, sigma, tiles=TileSettings(tile=256, engine="torch"), device=device,
                                    check_finite=False)  # a diverged model scores NaN (see better()), not an error
                reference = clean if clean.dtype == np.uint8 else from_float(clean, 8)
                values.append(psnr(reference, from_float(out, 8)))
            if k == 0:
                sample = self._sample(model, noisy, sigma, out)
        model.train()
        return (float(np.mean(values)) if values else float("nan")), sample

    def _self_supervised_loss(self, model: Autoencoder, noisy: np.ndarray, sigma: float, k: int) -> float:
        tensor = torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)))[None]
        multiple = 2 * model.size_multiple
        h, w = tensor.shape[2] // multiple * multiple, tensor.shape[3] // multiple * multiple
        tensor = tensor[:, :, :h, :w].to(next(model.parameters()).device)
        choice = draw_neighbours(1, h, w, np.random.default_rng([self.config.seed, 10**6 + k]))
        first, second = subsample_with(tensor, choice)
        model.eval()
        with torch.inference_mode():
            return float(torch.mean((model(first, sigma / 255.0) - second) ** 2))

    @staticmethod
    def _sample(model: Autoencoder, noisy: np.ndarray, sigma: float, out: np.ndarray | None) -> dict[str, np.ndarray]:
        from denoiser.inference import TileSettings, denoise_array

        size = 96
        crop = noisy[:size, :size]
        # On the model's own device: "cpu" here moved a CUDA model off its GPU in the middle of training.
        result = out[:size, :size] if out is not None else denoise_array(
            crop, model, sigma, tiles=TileSettings(engine="torch"), device=next(model.parameters()).device,
            check_finite=False)
        as_uint8 = crop if crop.dtype == np.uint8 else from_float(crop, 8)
        return {"before": as_uint8, "after": from_float(result, 8)}
