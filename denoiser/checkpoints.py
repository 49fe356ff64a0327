"""Training checkpoints: a run's whole state in a folder that can travel, written so a kill never spoils it.

A checkpoint folder holds ``checkpoint.json`` (config, state, optimiser settings and the list of part files with
their size and sha256) and part files ``checkpoint-g{generation}-{index}.safetensors`` of at most 15 MiB each
(:data:`PART_LIMIT`), so that it can travel through an output folder that takes files of 16 MiB at most and
resume on another machine, in another folder. Each save writes a new generation of parts, then replaces the
JSON atomically, then deletes the older parts. The single ``checkpoint.safetensors`` of earlier versions still
resumes. The tensors are the weights, the best weights so far, Adam's moments and torch's random state; the
state records each training session (process) that contributed: device, steps, wall seconds, summed per device
kind by :func:`device_minutes`. The loop that writes and resumes checkpoints is :mod:`denoiser.training`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import load_file
from safetensors.torch import save as save_tensors

from denoiser.config import VersionedConfig
from denoiser.errors import DenoiserError, FileProblem
from denoiser.io import atomic_write_bytes, sync_folder
from denoiser.models import Autoencoder, create_model


def device_minutes(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Minutes of training per device kind over a run's sessions, e.g. ``{"cuda": 21.3, "cpu": 4.0}``: a session
    of ``processes`` processes (a distributed run, one device each) counts its minutes that many times."""
    seconds: dict[str, float] = {}
    for run in runs:
        used = float(run["seconds"]) * int(run.get("processes", 1))
        seconds[run["device"]] = seconds.get(run["device"], 0.0) + used
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


def memory_format_of(model: Autoencoder) -> str:
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
                    optimizer: torch.optim.Optimizer, state: dict[str, Any], config: VersionedConfig,
                    scaler: torch.amp.GradScaler | None = None) -> None:
    """Write the run's state to ``folder``: ``checkpoint.json`` (config, state, optimiser settings, and the
    part files with their size and sha256) and part files ``checkpoint-g{generation}-{index}.safetensors`` of at
    most :data:`PART_LIMIT` bytes each holding the tensors (weights, best weights, Adam's moments, torch's random
    state; packed in name order, a larger tensor cut into pieces). The parts of a new generation are written
    and synced first, then the JSON is replaced atomically, then the old parts go: a kill at any moment leaves
    the previous checkpoint or this one, never a mix. ``state`` is the loop's state as plain data, ``config`` the
    run's settings. On a GPU the mixed-precision loss ``scaler``'s state and CUDA's random state are kept too, so
    that a resumed run scales its first losses as the uninterrupted run would have (a fresh scaler starts at 65536
    and skips steps while it backs off)."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update({f"best.{k}": v.detach().cpu().contiguous() for k, v in best.items()})
    optimizer_tensors, optimizer_plain = _optimizer_tensors(optimizer)
    tensors.update(optimizer_tensors)
    tensors["torch_rng"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors.update({f"cuda_rng.{i}": rng for i, rng in enumerate(torch.cuda.get_rng_state_all())})
    meta = {"config": config.to_dict(), "state": state, "optimizer": optimizer_plain,
            "memory_format": memory_format_of(model)}
    if scaler is not None and scaler.is_enabled():
        meta["loss_scaler"] = scaler.state_dict()
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


def checkpoint_file_names(folder: Path) -> list[str]:
    """The names of the files of the checkpoint in ``folder`` (either layout; empty when there is none): what a
    process that cannot see the folder needs to resume from it."""
    if not folder.is_dir():
        return []
    return sorted(path.name for path in folder.iterdir() if path.name in (CHECKPOINT_FILE, LEGACY_CHECKPOINT_FILE)
                  or _PART_NAME.fullmatch(path.name))


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


def load_checkpoint(folder: Path, model: Autoencoder, best: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, config: VersionedConfig,
                    scaler: torch.amp.GradScaler | None = None) -> dict[str, Any] | None:
    """Resume from the checkpoint in ``folder``: load its weights into ``model``, its best weights into ``best``,
    its optimiser state, torch's random state (and CUDA's, on as many GPUs as it was saved from) and the loss
    ``scaler``'s state where both the checkpoint and this run have one; returns the loop's saved state, or None
    when there is no checkpoint. A checkpoint written with other settings than ``config`` is refused."""
    meta = _read_meta(folder)
    if meta is None:
        return None
    # Compare as JSON sees them (tuples come back as lists), with fields added since the checkpoint at their defaults.
    defaults = type(config)()
    saved = {**json.loads(json.dumps(defaults.to_dict())), **meta["config"], "version": defaults.VERSION}
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
    cuda_states = [tensors[f"cuda_rng.{i}"] for i in range(sum(k.startswith("cuda_rng.") for k in tensors))]
    if cuda_states and torch.cuda.is_available() and torch.cuda.device_count() == len(cuda_states):
        torch.cuda.set_rng_state_all(cuda_states)
    if scaler is not None and scaler.is_enabled() and meta.get("loss_scaler"):
        scaler.load_state_dict(meta["loss_scaler"])
    return meta["state"]
