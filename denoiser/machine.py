"""The machine a figure was measured on, in words: the CPU's model name and its widest vector instructions.

Speed figures move with the CPU (ONNX Runtime's and PyTorch's kernels use AVX-512 where there is one and AVX2
where not), so a benchmark prints this beside its figures, and a training record keeps it."""

from __future__ import annotations

import platform
from pathlib import Path

__all__ = ["cpu_description", "describe_cpu"]

CPUINFO = Path("/proc/cpuinfo")

_VECTOR_EXTENSIONS = (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"), ("neon", "NEON"), ("asimd", "NEON"))
"""Flags from ``/proc/cpuinfo``, widest first, and how a figure names them."""


def describe_cpu(cpuinfo: str) -> str:
    """The CPU's model name and widest vector extension from the text of ``/proc/cpuinfo`` ("" if it names none).

    >>> describe_cpu("model name\\t: AMD EPYC 9654\\nflags\\t\\t: fpu avx avx2 avx512f\\n")
    'AMD EPYC 9654, AVX-512'
    """
    name = ""
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not name:
            name = " ".join(value.split())
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    extension = next((label for flag, label in _VECTOR_EXTENSIONS if flag in flags), "")
    return ", ".join(part for part in (name, extension) if part)


def cpu_description() -> str:
    """This machine's CPU in words, for example ``"AMD EPYC 9654, AVX-512"``; the architecture where the system
    does not say more (``/proc/cpuinfo`` is Linux's)."""
    try:
        described = describe_cpu(CPUINFO.read_text(errors="replace"))
    except OSError:
        described = ""
    return described or platform.processor() or platform.machine() or "unknown CPU"
