"""Training: any autoencoder family on clean photos + synthetic noise, clean/noisy pairs, or noisy photos alone.

The loop is a generator of :class:`~denoiser.progress.Progress` events that polls ``should_stop`` every step.
Batches are built from the seed and the step number alone (see :mod:`denoiser.datasets`), in a background
worker when ``workers`` > 0; the checkpoint holds the weights, the optimiser, the best weights so far, the
history and torch's random state, so a run killed at any moment resumes with the same results.

A checkpoint folder holds ``checkpoint.json`` (config, state, optimiser settings and the list of part files with
their size and sha256) and part files ``checkpoint-g{generation}-{index}.safetensors`` of at most 15 MiB each
(:data:`PART_LIMIT`), so that it can travel through an output folder that takes files of 16 MiB at most and
resume on another machine, in another folder. Each save writes a new generation of parts, then replaces the
JSON atomically, then deletes the older parts. The single ``checkpoint.safetensors`` of earlier versions still
resumes. The state records each training session (process) that contributed: device, steps, wall seconds; the
model's ``training_info`` sums them per device kind (``device_minutes``).

Validation runs every "epoch" (``validation_every`` steps) on a seeded held-out split of the user's data:
PSNR against the clean images (with seeded Gaussian noise at ``validation_sigma`` for clean-only data), or
the self-supervised loss for noisy-only data. The best model is kept; ``patience`` epochs without
improvement stop the run early; ``minutes`` caps the wall time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from denoiser.config import VersionedConfig, require
from denoiser.datasets import (
    NoisyOnlySource,
    PairSource,
    StepBatches,
    SyntheticSource,
    draw_neighbours,
    load_images,
    load_pair_images,
    subsample_with,
    synthesize_on_device,
)
from denoiser.errors import DenoiserError, FileProblem
from denoiser.io import atomic_write_bytes, from_float, sync_folder
from denoiser.metrics import psnr
from denoiser.models import Autoencoder, create_model
from denoiser.modelstore import ModelInfo
from denoiser.noise import MAX_SIGMA, NoiseMix, add_gaussian_noise, float_noisy
from denoiser.progress import Progress, StopFn, check_stop
from denoiser.synthesis import SynthesisMix

MODES = ("synthetic", "pairs", "noisy", "device_mix")


@dataclass
class TrainConfig(VersionedConfig):
    """One training run. Defaults suit a CPU: small patches, a few thousand steps."""

    VERSION = 2

    mode: str = "synthetic"
    """synthetic: clean photos + noise; pairs: noisy/clean photos; noisy: noisy photos only (self-supervised);
    device_mix: clean photos + noise made on the training device (``synthesis``), plus real pairs."""
    family: str = "unet"
    """Autoencoder family to train (ignored when fine-tuning: the starting model's family is kept)."""
    model: dict[str, Any] = field(default_factory=dict)
    """The family's config fields (empty: the family's defaults)."""
    start_from: str = ""
    """The model fine-tuned (a name or path, recorded for the report); empty when training from scratch."""
    steps: int = 1000
    """Optimiser steps (with ``minutes``: an upper bound)."""
    minutes: float = 0.0
    """Wall-time budget; 0 for none. The learning-rate schedule is fitted to it after the first steps."""
    batch_size: int = 16
    patch: int = 64
    """Patch edge in pixels (self-supervised: the edge of each half-size sub-image)."""
    noise: dict[str, Any] = field(default_factory=dict)
    """NoiseMix fields for synthetic noise (empty: Gaussian, sigma 0-75)."""
    learning_rate: float = 1e-3
    """Adam's rate after warm-up; cosine decay to 1 % of it by the end."""
    validation_fraction: float = 0.1
    """Share of the images held out (seeded split)."""
    validation_every: int = 250
    """Steps per epoch: validation, best-model tracking and early stopping happen every this many steps."""
    validation_sigma: float = 25.0
    """Gaussian sigma of the validation noise when only clean photos are given."""
    patience: int = 0
    """Epochs without improvement before stopping early; 0 never stops early."""
    checkpoint_every: int = 100
    workers: int = 1
    """Background processes building batches (0: build them in the training process)."""
    neighbour_weight: float = 1.0
    """Weight of Neighbor2Neighbor's regulariser (self-supervised mode)."""
    synthesis: dict[str, Any] = field(default_factory=dict)
    """:class:`~denoiser.synthesis.SynthesisMix` fields of a ``device_mix`` run (empty: the defaults)."""
    pair_share: float = 0.0
    """Share of each ``device_mix`` batch taken from real noisy/clean pairs."""
    grad_clip: float = 1.0
    """Largest gradient norm a step may apply (larger gradients are scaled down to it)."""
    seed: int = 0

    def validate(self) -> None:
        require(self.mode in MODES, f"mode must be one of {', '.join(MODES)}")
        require(self.steps >= 1, "steps must be >= 1")
        require(self.minutes >= 0, "minutes must be >= 0")
        require(self.batch_size >= 1, "batch_size must be >= 1")
        require(self.patch >= 16 and self.patch % 16 == 0, "patch must be a multiple of 16, at least 16")
        require(self.learning_rate > 0, "learning_rate must be positive")
        require(0 <= self.validation_fraction < 1, "validation_fraction must be in [0, 1)")
        require(self.validation_every >= 1 and self.checkpoint_every >= 1, "intervals must be >= 1")
        require(self.patience >= 0 and self.workers >= 0, "patience and workers must be >= 0")
        require(self.grad_clip > 0, "grad_clip must be positive")
        NoiseMix.from_dict(self.noise) if self.noise else None
        SynthesisMix.from_dict(self.synthesis) if self.synthesis else None
        require(0 <= self.pair_share <= 1, "pair_share must be in [0, 1]")


def build_source(kind: str, folder: str | Path, channels: int = 3, *, report: Any = None,
                 noise_models: tuple[str, ...] = ("gaussian",), sigma_max: float = MAX_SIGMA,
                 quantize: bool = False, quantize_probability: float = 1.0,
                 folders_text: str = "") -> tuple[Any, str, list[str]]:
    """The training source for one of the three ways in, read from disk.

    ``kind`` is ``clean`` (clean photos + synthetic noise), ``pairs`` (the usable pairs of ``report``, a
    :class:`~denoiser.datasets.PairReport`) or ``noisy`` (self-supervised). Returns the source, a line saying what
    it was trained on, and one line per unreadable file that was skipped. ``noise_models``, ``sigma_max`` and
    ``quantize`` shape the synthetic noise (:class:`~denoiser.noise.NoiseMix`) of ``clean``.
    """
    if kind == "pairs":
        if report is None or not report.pairs:
            raise DenoiserError("no usable pairs to train on")
        noisy, clean = load_pair_images(report, channels)
        return PairSource(noisy, clean), f"{len(report.pairs)} noisy/clean pairs from {folders_text or folder}", []
    images, paths, problems = load_images(folder, channels)
    if kind == "clean":
        mix = NoiseMix(models=tuple(noise_models), sigma_max=sigma_max, quantize=quantize,
                       quantize_probability=quantize_probability)
        mix.validate()
        share = "" if quantize_probability >= 1 else f" for {quantize_probability:.0%} of patches"
        saved = f", rounded and clipped to 8 bits{share}" if quantize else ""
        trained_on = f"{len(paths)} clean photos from {folder} + synthetic noise ({', '.join(noise_models)}{saved})"
        return SyntheticSource(images, mix), trained_on, problems
    if kind == "noisy":
        trained_on = f"{len(paths)} noisy photos from {folder} (self-supervised, Neighbor2Neighbor)"
        return NoisyOnlySource(images), trained_on, problems
    raise DenoiserError(f"unknown way to train {kind!r}: clean, pairs or noisy")


def split_images(count: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train / validation split of ``count`` items (at least one each when count > 1)."""
    order = np.random.default_rng(seed).permutation(count)
    held = min(count - 1, max(1 if count > 1 and fraction > 0 else 0, int(round(count * fraction))))
    return sorted(order[held:].tolist()), sorted(order[:held].tolist())


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
                out = denoise_array(noisy, model, sigma, tiles=TileSettings(tile=256), device=device)
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
        from denoiser.inference import denoise_array

        size = 96
        crop = noisy[:size, :size]
        result = out[:size, :size] if out is not None else denoise_array(crop, model, sigma, device="cpu")
        as_uint8 = crop if crop.dtype == np.uint8 else from_float(crop, 8)
        return {"before": as_uint8, "after": from_float(result, 8)}


@dataclass
class TrainingResult:
    """What a finished run hands back."""

    model: Autoencoder
    metric: str
    best: float | None
    start: float | None
    steps: int
    seconds: float
    history: list[dict[str, float]]
    stopped_early: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    """The sessions (processes) that trained it, with a resumed run's earlier ones: see ``_State.runs``."""

    @property
    def gain(self) -> float | None:
        """Improvement of the best model over the starting one on the validation split (dB or loss)."""
        if self.best is None or self.start is None:
            return None
        return self.best - self.start if self.metric == "val_psnr" else self.start - self.best


def learning_rate_at(step: int, horizon: int, base: float) -> float:
    """Linear warm-up over the first 5 % (at most 100 steps), then cosine decay to 1 % at ``horizon``."""
    warmup = max(1, min(100, horizon // 20))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, horizon - warmup))
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class _State:
    """What a run carries from one step to the next, and from one session to the next through the checkpoint."""

    step: int = 0
    horizon: int = 0
    elapsed: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    best: float | None = None
    start: float | None = None
    bad_epochs: int = 0
    skipped_steps: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    """One record per training session (process) that did steps: ``device`` (cuda, cpu...), ``device_name``,
    ``steps`` and wall ``seconds`` in that session, and when it ``started`` (ISO time, UTC)."""


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or device.type


class _Session:
    """This process's share of a run: its record in ``state.runs``, added once it has done a step."""

    def __init__(self, state: _State, device: torch.device) -> None:
        self.first_step, self.first_elapsed = state.step, state.elapsed
        self.record: dict[str, Any] = {
            "device": device.type, "device_name": _device_name(device), "steps": 0, "seconds": 0.0,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }

    def update(self, state: _State, elapsed: float) -> None:
        """Bring the record up to ``state``'s step and the run's ``elapsed`` seconds (the run's, not the session's)."""
        self.record["steps"] = state.step - self.first_step
        self.record["seconds"] = round(elapsed - self.first_elapsed, 3)
        if self.record["steps"] and not any(run is self.record for run in state.runs):
            state.runs.append(self.record)


def device_minutes(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Minutes of training per device kind over a run's sessions, e.g. ``{"cuda": 21.3, "cpu": 4.0}``."""
    seconds: dict[str, float] = {}
    for run in runs:
        seconds[run["device"]] = seconds.get(run["device"], 0.0) + float(run["seconds"])
    return {device: round(total / 60, 1) for device, total in seconds.items()}


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors, plain = {}, {"param_groups": state["param_groups"], "state": {}}
    for index, slot in state["state"].items():
        for key, value in slot.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                plain["state"].setdefault(str(index), {})[key] = value
    return tensors, plain


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], plain: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            state.setdefault(int(index), {})[key] = value
    for index, slot in plain.get("state", {}).items():
        state.setdefault(int(index), {}).update(slot)
    optimizer.load_state_dict({"state": state, "param_groups": plain["param_groups"]})


CHECKPOINT_FILE = "checkpoint.json"
"""The checkpoint's JSON part: config, state, optimiser settings, and the list of its part files."""
LEGACY_CHECKPOINT_FILE = "checkpoint.safetensors"
"""The single-file checkpoint of earlier versions (JSON in its header): still read, replaced at the next save."""
PART_LIMIT = 15 * 2**20
"""Largest part file, in bytes: each file of a checkpoint can travel through an output folder taking 16 MiB."""
CHECKPOINT_FORMAT = 2
_PART_NAME = re.compile(r"checkpoint-g(\d+)-(\d+)\.safetensors")
_HISTORY_TENSOR = "state.history"
_PART_OVERHEAD = 64  # a safetensors file's length prefix, braces and header padding


def _header_cost(name: str, dims: int) -> int:
    """Bytes of a tensor's entry in a safetensors header, generously counted."""
    return len(name.encode()) + 96 + 12 * dims


def _entry_cost(name: str, tensor: torch.Tensor) -> int:
    """Bytes ``tensor`` takes in a safetensors file, its header entry included."""
    return tensor.nbytes + _header_cost(name, tensor.dim())


def _split_large(tensors: dict[str, torch.Tensor], limit: int) -> tuple[list[tuple[str, torch.Tensor]],
                                                                         dict[str, dict[str, Any]]]:
    """The entries to store, in name order: tensors too large for one part become ``name@0``, ``name@1``... cut
    along their first dimension (or, when one row alone is too large, along their flattened elements)."""
    entries: list[tuple[str, torch.Tensor]] = []
    split: dict[str, dict[str, Any]] = {}
    for name in sorted(tensors):
        tensor = tensors[name]
        if _PART_OVERHEAD + _entry_cost(name, tensor) <= limit:
            entries.append((name, tensor))
            continue
        room = limit - _PART_OVERHEAD - _header_cost(f"{name}@{tensor.numel()}", max(1, tensor.dim()))
        rows = tensor if tensor.dim() >= 1 and tensor.nbytes // tensor.shape[0] <= room else tensor.reshape(-1)
        per_piece = room // (rows.nbytes // rows.shape[0])
        if per_piece < 1:
            raise DenoiserError(f"checkpoint part limit of {limit} bytes is too small for tensor {name}")
        pieces = [piece.clone() for piece in rows.split(per_piece)]
        split[name] = {"shape": list(tensor.shape), "pieces": len(pieces)}
        entries.extend((f"{name}@{k}", piece) for k, piece in enumerate(pieces))
    return entries, split


def _pack(entries: list[tuple[str, torch.Tensor]], limit: int) -> list[dict[str, torch.Tensor]]:
    """Entries packed greedily, in order, into parts of at most ``limit`` bytes."""
    parts: list[dict[str, torch.Tensor]] = []
    size = limit + 1
    for name, tensor in entries:
        cost = _entry_cost(name, tensor)
        if size + cost > limit:
            parts.append({})
            size = _PART_OVERHEAD
        parts[-1][name] = tensor
        size += cost
    return parts


def _write_synced(path: Path, data: bytes) -> None:
    # Parts get a new name each generation and are never replaced: a synced plain write is enough, since the
    # JSON that names them is written (atomically) only once they are on disk.
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _write_checkpoint(folder: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``tensors`` as part files of a new generation, then ``checkpoint.json`` naming them (atomically),
    then remove older generations' parts and a single-file checkpoint of earlier versions."""
    limit = PART_LIMIT
    generations = [int(m.group(1)) for p in folder.iterdir() if (m := _PART_NAME.fullmatch(p.name))]
    generation = max(generations, default=0) + 1
    entries, split = _split_large(tensors, limit)
    parts = _pack(entries, limit)
    # The history grows with every step: when the JSON would outgrow a part, it travels in the parts instead.
    listing = len(json.dumps(meta)) + 200 * len(parts) + len(json.dumps(split))
    history_in_parts = listing > limit and bool(meta["state"]["history"])
    if history_in_parts:
        history = json.dumps(meta["state"]["history"]).encode()
        meta = {**meta, "state": {k: v for k, v in meta["state"].items() if k != "history"}}
        entries, split = _split_large({**tensors, _HISTORY_TENSOR: torch.frombuffer(bytearray(history),
                                                                                     dtype=torch.uint8)}, limit)
        parts = _pack(entries, limit)
    files = []
    for index, part in enumerate(parts):
        data = save_tensors(part)
        if len(data) > limit:  # the entry costs above are generous: this would be a bug
            raise RuntimeError(f"checkpoint part {index} is {len(data)} bytes, over the {limit}-byte limit")
        name = f"checkpoint-g{generation}-{index:03d}.safetensors"
        _write_synced(folder / name, data)
        files.append({"file": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    meta = {**meta, "format": CHECKPOINT_FORMAT, "generation": generation, "parts": files, "split": split,
            "history_in_parts": history_in_parts}
    sync_folder(folder)  # the parts are on disk before the JSON that names them
    atomic_write_bytes(folder / CHECKPOINT_FILE, json.dumps(meta).encode())  # fsync, rename, folder fsync
    keep = {entry["file"] for entry in files}
    for path in folder.iterdir():
        if (_PART_NAME.fullmatch(path.name) and path.name not in keep) or path.name == LEGACY_CHECKPOINT_FILE:
            path.unlink(missing_ok=True)


def save_checkpoint(folder: Path, model: Autoencoder, best: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, state: _State, config: TrainConfig) -> None:
    """Write the run's state to ``folder``: ``checkpoint.json`` (config, state, optimiser settings, and the
    part files with their size and sha256) and part files ``checkpoint-g{generation}-{index}.safetensors`` of at
    most :data:`PART_LIMIT` bytes each holding the tensors (weights, best weights, Adam's moments, torch's random
    state; packed in name order, a larger tensor cut into pieces). The parts of a new generation are written
    and synced first, then the JSON is replaced atomically, then the old parts go: a kill at any moment leaves
    the previous checkpoint or this one, never a mix."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best.items()})
    optimizer_tensors, optimizer_plain = _optimizer_tensors(optimizer)
    tensors.update(optimizer_tensors)
    tensors["torch_rng"] = torch.get_rng_state()
    meta = {"config": config.to_dict(), "state": asdict(state), "optimizer": optimizer_plain,
            "memory_format": _memory_format(model)}
    _write_checkpoint(folder, tensors, meta)


def _read_meta(folder: Path) -> dict[str, Any] | None:
    """The JSON part as stored (the new layout's ``checkpoint.json`` or the old single file's header), or None."""
    path = folder / CHECKPOINT_FILE
    if path.is_file():
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise FileProblem(path, f"unreadable checkpoint ({err})") from err
        if not isinstance(meta, dict) or not isinstance(meta.get("parts"), list):
            raise FileProblem(path, "not a denoiser training checkpoint")
        return meta
    legacy = folder / LEGACY_CHECKPOINT_FILE
    if not legacy.is_file():
        return None
    try:
        with safe_open(str(legacy), framework="pt") as handle:
            return json.loads((handle.metadata() or {})["denoiser_checkpoint"])
    except Exception as err:  # noqa: BLE001 - safetensors raises its own types for a damaged file
        raise FileProblem(legacy, f"unreadable checkpoint ({err})") from err


def _read_tensors(folder: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint whose JSON part is ``meta``: each part's size and sha256 checked, split
    tensors joined again."""
    if "parts" not in meta:  # the old single file
        return load_file(str(folder / LEGACY_CHECKPOINT_FILE))
    tensors: dict[str, torch.Tensor] = {}
    for entry in meta["parts"]:
        path = folder / entry["file"]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileProblem(path, f"checkpoint part missing (named in {CHECKPOINT_FILE})") from None
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise FileProblem(path, f"checkpoint part corrupt: {len(data)} bytes, expected {entry['size']} bytes "
                                    "with the sha256 recorded in " + CHECKPOINT_FILE)
        tensors.update(load_tensors(data))
    for name, split in meta.get("split", {}).items():
        pieces = [tensors.pop(f"{name}@{k}") for k in range(split["pieces"])]
        tensors[name] = torch.cat(pieces).reshape(split["shape"])
    return tensors


def _restore_history(meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    """``meta`` with its state's history back in place when it travelled in the parts."""
    if meta.get("history_in_parts"):
        history = json.loads(tensors.pop(_HISTORY_TENSOR).numpy().tobytes().decode())
        meta = {**meta, "state": {**meta["state"], "history": history}}
    return meta


def read_checkpoint_state(folder: str | Path) -> dict[str, Any] | None:
    """The JSON part of the checkpoint in ``folder`` (config, state, optimiser settings; with the new layout also
    its part files), or None when there is none. Reads either layout: ``checkpoint.json`` with its parts, or an
    earlier version's single ``checkpoint.safetensors``."""
    folder = Path(folder)
    meta = _read_meta(folder)
    if meta is None or not meta.get("history_in_parts"):
        return meta
    return _restore_history(meta, _read_tensors(folder, meta))


def model_from_checkpoint(folder: str | Path, weights: str = "best") -> tuple[Autoencoder, dict[str, Any]]:
    """The model of a run's checkpoint (either layout), to evaluate a long run mid-way: its ``best`` weights so
    far (the ones the run would keep) or its current ``model`` weights; also returns the checkpoint's JSON part."""
    if weights not in ("best", "model"):
        raise DenoiserError(f"weights must be 'best' or 'model', not {weights!r}")
    folder = Path(folder)
    meta = _read_meta(folder)
    if meta is None:
        raise DenoiserError(f"{folder}: no training checkpoint there")
    tensors = _read_tensors(folder, meta)
    meta = _restore_history(meta, tensors)
    config = meta["config"]
    model = create_model(config["family"], config.get("model") or None)
    prefix = weights + "."
    model.load_state_dict({key[len(prefix):]: value for key, value in tensors.items() if key.startswith(prefix)})
    return model.eval(), meta


def _memory_format(model: Autoencoder) -> str:
    """``channels_last`` when the model's convolutions are in that layout (validation leaves them so: see
    :mod:`denoiser.inference`), else ``contiguous``."""
    for param in model.parameters():
        if param.dim() == 4 and not param.is_contiguous():
            return "channels_last" if param.is_contiguous(memory_format=torch.channels_last) else "contiguous"
    return "contiguous"


def _match_layouts(optimizer: torch.optim.Optimizer) -> None:
    """Give the optimiser's restored state tensors their parameter's memory layout (as Adam creates them), so that
    a resumed run computes exactly as the uninterrupted one."""
    for param, slot in optimizer.state.items():
        for key, value in slot.items():
            if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                slot[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def _load_checkpoint(folder: Path, model: Autoencoder, best: dict[str, torch.Tensor],
                     optimizer: torch.optim.Optimizer, config: TrainConfig) -> _State | None:
    meta = _read_meta(folder)
    if meta is None:
        return None
    # Compare as JSON sees them (tuples come back as lists), with fields added since the checkpoint at their defaults.
    saved = {**json.loads(json.dumps(TrainConfig().to_dict())), **meta["config"], "version": TrainConfig.VERSION}
    if saved != json.loads(json.dumps(config.to_dict())):
        raise DenoiserError(f"{folder}: the checkpoint there belongs to a run with other settings; "
                            "use another checkpoint folder or the same settings")
    tensors = _read_tensors(folder, meta)
    meta = _restore_history(meta, tensors)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    # The same weights in another memory layout compute slightly differently: take the run's layout (an earlier
    # version's checkpoint does not say; its runs validated from the start, which leaves channels_last).
    if meta.get("memory_format", "channels_last") == "channels_last":
        model.to(memory_format=torch.channels_last)
    best.update({k[5:]: v for k, v in tensors.items() if k.startswith("best.")})
    _restore_optimizer(optimizer, tensors, meta["optimizer"])
    _match_layouts(optimizer)
    torch.set_rng_state(tensors["torch_rng"])
    return _State(**meta["state"])


def _batches(source: Any, indices: list[int], config: TrainConfig, first_step: int) -> Iterator[dict]:
    dataset = StepBatches(source, indices, config.batch_size, config.patch, config.seed)
    if config.workers == 0:
        step = first_step
        while True:
            yield dataset[step]
            step += 1
    # Forking a process that runs other threads (the app's Qt threads, a training job's worker thread) can
    # copy a lock mid-use; from any thread but the main one the workers start from a clean forkserver.
    context = None if threading.current_thread() is threading.main_thread() else "forkserver"
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(first_step, 2**31 - 1), num_workers=config.workers,
        prefetch_factor=2, persistent_workers=False, multiprocessing_context=context,
    )
    yield from loader


def _loss(model: Autoencoder, batch: dict, config: TrainConfig, device: torch.device,
          mix: SynthesisMix | None = None) -> torch.Tensor:
    if "seed" in batch:  # a device_mix batch: its noise is made here, on the training device, from ``mix``
        if mix is None:
            raise DenoiserError("a device_mix batch needs its synthesis mix")
        batch = synthesize_on_device(batch, mix, device)
    noisy = batch["input"].to(device, non_blocking=True)
    noise_map = batch["noise_map"].to(device, non_blocking=True)
    if "choice" not in batch:
        output, penalty = model.forward_train(noisy, noise_map)
        return torch.nn.functional.l1_loss(output, batch["target"].to(device)) + penalty
    # Neighbor2Neighbor: one sub-image is the target of the other; the regulariser asks the network's
    # output on the full patch, sub-sampled the same way, to differ as the two sub-images' outputs do.
    first, second = subsample_with(noisy, batch["choice"])
    output, penalty = model.forward_train(first, noise_map)
    with torch.no_grad():
        full_map = noise_map[:, :, :1, :1].expand(-1, -1, noisy.shape[2], noisy.shape[3])
        full = model(noisy, full_map)
        full_first, full_second = subsample_with(full, batch["choice"])
    residual = output - second
    regulariser = torch.mean((residual - (full_first - full_second)) ** 2)
    return torch.mean(residual**2) + config.neighbour_weight * regulariser + penalty


def train(
    source: SyntheticSource | PairSource | NoisyOnlySource,
    config: TrainConfig,
    *,
    start_model: Autoencoder | None = None,
    checkpoint_dir: str | Path | None = None,
    should_stop: StopFn | None = None,
    device: str = "auto",
) -> Iterator[Progress]:
    """Train on ``source``; yields progress; the last event's ``extra["result"]`` is a :class:`TrainingResult`.

    ``start_model`` is fine-tuned (a copy: the caller's model is untouched). Stopping saves a checkpoint and
    raises :class:`~denoiser.errors.Cancelled`.
    """
    from denoiser.inference import resolve_device

    config.validate()
    torch.manual_seed(config.seed)
    target = resolve_device(device)
    if start_model is not None:
        model = copy.deepcopy(start_model)
    else:
        model = create_model(config.family, config.model or None)
    model.to(target).train()
    if target.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick its fastest kernels once
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    use_amp = target.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    train_ids, held_ids = split_images(len(source), config.validation_fraction, config.seed)
    mix = SynthesisMix.from_dict(config.synthesis) if config.mode == "device_mix" else None  # once, not per step
    validator = Validator(source, held_ids, config)
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    state = _load_checkpoint(folder, model, best, optimizer, config) if folder else None
    if state is not None:
        yield Progress("train", state.step, config.steps, f"resumed at step {state.step}")
    else:
        state = _State(horizon=config.steps)
        if held_ids:
            state.start, sample = validator.score(model)
            state.best = state.start if start_model is not None else None
            yield Progress("validate", 0, config.steps, "starting model",
                           extra={validator.metric: state.start, "sample": sample})
    stopped_early = False
    session = _Session(state, target)  # this process's record in state.runs
    session_start = time.monotonic()
    batches = _batches(source, train_ids, config, state.step)
    try:
        while state.step < min(config.steps, state.horizon):
            try:
                check_stop(should_stop, "training cancelled")
            except DenoiserError:
                state.elapsed += time.monotonic() - session_start
                session_start = time.monotonic()
                session.update(state, state.elapsed)
                if folder is not None:
                    save_checkpoint(folder, model, best, optimizer, state, config)
                raise
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(state.step, state.horizon, config.learning_rate)
            batch = next(batches)
            with torch.autocast(target.type, enabled=use_amp):
                loss = _loss(model, batch, config, target, mix)
            optimizer.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                scaler.scale(loss).backward()
                # One extreme batch (very dark Poisson noise, say) once blew a run up from loss 0.03 to 400:
                # clipping the gradient's norm keeps any single step from throwing the weights away.
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                state.skipped_steps += 1  # a non-finite loss would poison the weights and Adam's moments
            state.step += 1
            elapsed = state.elapsed + time.monotonic() - session_start
            record: dict[str, Any] = {"step": state.step, "loss": loss.item(),
                                      "lr": optimizer.param_groups[0]["lr"], "seconds": elapsed}
            last = state.step >= min(config.steps, state.horizon)
            out_of_time = bool(config.minutes) and elapsed >= config.minutes * 60
            extra: dict[str, Any] = {}
            if held_ids and (state.step % config.validation_every == 0 or last or out_of_time):  # judge the last
                value, extra["sample"] = validator.score(model)
                record[validator.metric] = value
                if validator.better(value, state.best):
                    state.best, state.bad_epochs = value, 0
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    state.bad_epochs += 1
                    if config.patience and state.bad_epochs >= config.patience:
                        stopped_early, last = True, True
            elapsed = state.elapsed + time.monotonic() - session_start  # validation time counts too
            if config.minutes and (state.step in (20, 200) or record.keys() & {"val_psnr", "val_loss"}):
                # Fit the schedule's end to the time left, at the pace so far (validations included). A slow
                # start (a GPU's first kernels, the workers' first batches) can set it short: a later fit that
                # finds time left moves the end out again rather than stopping there.
                state.horizon = max(state.step + 1, min(config.steps, int(config.minutes * 60 * state.step / elapsed)))
                last = stopped_early or state.step >= min(config.steps, state.horizon)
            state.history.append(record)
            if folder is not None and (state.step % config.checkpoint_every == 0 or last or out_of_time):
                state.elapsed, session_start = elapsed, time.monotonic()  # the checkpoint's own write counts next
                session.update(state, state.elapsed)
                save_checkpoint(folder, model, best, optimizer, state, config)
            record["eta_s"] = elapsed / state.step * (min(config.steps, state.horizon) - state.step)
            yield Progress("train", state.step, min(config.steps, state.horizon), extra={**record, **extra})
            if last or out_of_time:
                break
    finally:
        if hasattr(batches, "close"):
            batches.close()
    if held_ids and state.best is not None:
        model.load_state_dict(best)
    model.eval()
    seconds = state.elapsed + time.monotonic() - session_start
    session.update(state, seconds)
    result = TrainingResult(model, validator.metric, state.best, state.start, state.step, seconds, state.history,
                            stopped_early, state.runs)
    yield Progress("done", state.step, state.step, "training finished", extra={"result": result})


def training_info(result: TrainingResult, config: TrainConfig, trained_on: str, command: str = "",
                  name: str = "model") -> ModelInfo:
    """The description saved beside a trained model: data, settings, time and validation figures. The time is
    ``steps_done``, ``seconds``, ``runs`` (one record per training session, see ``_State.runs``) and
    ``device_minutes``, the minutes per device kind over those sessions (e.g. ``{"cuda": 21.3, "cpu": 4.0}``)."""
    validation: dict[str, Any] = {"metric": result.metric, "split": f"seeded {config.validation_fraction:.0%} held out"}
    if result.metric == "val_psnr" and result.best is not None:
        validation["psnr"] = round(result.best, 3)
    for key, value in (("best", result.best), ("start", result.start), ("gain", result.gain)):
        if value is not None:
            validation[key] = round(value, 5)
    if config.mode in ("synthetic", "device_mix"):
        validation["sigma"] = config.validation_sigma
        validation["protocols"] = list(validation_protocols(config))
    return ModelInfo(
        name=name,
        family=result.model.family,
        config={},
        trained_on=trained_on,
        training={**config.to_dict(), "steps_done": result.steps, "seconds": round(result.seconds, 1),
                  "device_minutes": device_minutes(result.runs), "runs": result.runs,
                  "command": command, "stopped_early": result.stopped_early},
        validation=validation,
    )
