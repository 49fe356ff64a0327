"""A safetensors file read as untrusted input: its header checked from the first bytes alone, its weights checked
for NaN and infinity. The model file (:mod:`denoiser.modelfile`) and the noise-map estimator
(:mod:`denoiser.estimator`) both load through these checks."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from denoiser.config import is_whole, short
from denoiser.errors import ModelLoadError, first_line, reason

MAX_HEADER_BYTES = 16 * 1024**2
"""Largest safetensors header read (tensor table and description; a model's is a few kB)."""
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
"""Bytes per value of each safetensors type."""

@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the safetensors header describes it."""

    dtype: str
    """The safetensors type name: ``F32``, ``F16``, ``I64``..."""
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class WeightsHeader:
    """What a safetensors file says it holds, read without loading any tensor."""

    tensors: dict[str, TensorEntry]
    metadata: dict[str, str]
    data_bytes: int
    """Bytes of tensor data after the header."""


def read_header(path: str | Path, advice: str) -> WeightsHeader:
    """The tensor table and metadata of the safetensors file ``path``, from its first bytes alone.

    The format is an 8-byte little-endian length, that many bytes of JSON, then the tensors' bytes. Every entry
    is checked (known type, whole non-negative shape, byte range matching the shape, ranges back to back filling
    the rest of the file exactly), so a truncated or tampered file is refused here, before anything is loaded.
    Raises :class:`ModelLoadError` naming the file, its message ending with ``advice`` (what the user can do).
    """
    path = Path(path)

    def bad(what: str) -> ModelLoadError:
        return ModelLoadError(path, f"not a valid safetensors file, corrupt or truncated ({what}); {advice}")

    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise bad(f"{len(prefix)} bytes long, too short to hold a header")
            length = int.from_bytes(prefix, "little")
            if length > MAX_HEADER_BYTES:
                raise bad(f"a header of {length} bytes, more than the {MAX_HEADER_BYTES // 1024**2} MB allowed")
            if 8 + length > size:
                raise bad(f"the header needs {length} bytes, the file has {size - 8} after its length")
            raw = handle.read(length)
    except OSError as err:
        raise ModelLoadError(path, f"cannot read the model file ({reason(err)})") from err
    try:
        table = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as err:
        raise bad(f"its header is not valid JSON: {first_line(err, 80)}") from err
    if not isinstance(table, dict):
        raise bad("its header is not a JSON object")
    metadata = table.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad("its header's metadata is not a table of texts")
    tensors: dict[str, TensorEntry] = {}
    spans: list[tuple[int, int]] = []
    for name, entry in table.items():
        if not isinstance(entry, dict):
            raise bad(f"tensor {short(name)} is not described by an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPE_BYTES:
            raise bad(f"tensor {short(name)} has an unknown type {short(dtype)}")
        if not isinstance(shape, list) or not all(is_whole(n) and n >= 0 for n in shape):
            raise bad(f"tensor {short(name)} has an invalid shape {short(shape)}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(is_whole(n) for n in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise bad(f"tensor {short(name)} has invalid data offsets {short(offsets)}")
        nbytes = offsets[1] - offsets[0]
        if math.prod(shape) * _DTYPE_BYTES[dtype] != nbytes:
            raise bad(f"tensor {short(name)} holds {nbytes} bytes, not what its shape {short(shape)} needs")
        tensors[name] = TensorEntry(dtype, tuple(shape), nbytes)
        spans.append((offsets[0], offsets[1]))
    end = 0
    for begin, finish in sorted(spans):
        if begin != end:
            raise bad("its tensors' byte ranges overlap or leave gaps")
        end = finish
    if 8 + length + end != size:
        left = size - 8 - length
        raise bad(f"the tensors need {end} bytes, the file has {left}" if left < end
                  else f"{left - end} unexpected bytes after the tensors")
    return WeightsHeader(tensors, metadata, end)


def refuse_non_finite(path: Path, tensors: dict[str, Tensor], what: str = "model") -> None:
    """Raise :class:`ModelLoadError` naming ``path`` when a floating-point tensor holds NaN or infinity.

    Such weights make every output NaN (black once saved), so a model holding any is refused outright.
    """
    spoilt = [name for name, value in tensors.items()
              if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if spoilt:
        listed = ", ".join(spoilt[:3]) + (f" and {len(spoilt) - 3} more" if len(spoilt) > 3 else "")
        raise ModelLoadError(path, f"not a valid {what} file: its weights hold NaN or infinite values ({listed}); "
                                   "the training that made it diverged or the file was damaged: use another "
                                   f"{what}, or train it again")


