"""The machine a figure was measured on: the CPU's name and widest vector instructions from /proc/cpuinfo."""

from __future__ import annotations

from pathlib import Path

import pytest

from denoiser import machine
from denoiser.machine import cpu_description, describe_cpu

X86_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu vme sse sse2 avx fma avx2 avx512f avx512dq

processor\t: 1
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu vme sse sse2 avx fma avx2 avx512f avx512dq
"""


def test_an_x86_cpu_is_named_once_with_its_widest_extension() -> None:
    assert describe_cpu(X86_CPUINFO) == "AMD EPYC 9654 96-Core Processor, AVX-512"


def test_a_cpu_without_avx512_is_described_by_avx2() -> None:
    assert describe_cpu(X86_CPUINFO.replace(" avx512f avx512dq", "")) == "AMD EPYC 9654 96-Core Processor, AVX2"


def test_an_arm_cpuinfo_names_its_features() -> None:
    arm = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes\nCPU implementer\t: 0x41\n"
    assert describe_cpu(arm) == "NEON"


def test_text_without_a_name_or_flags_describes_nothing() -> None:
    assert describe_cpu("") == ""


def test_without_proc_cpuinfo_the_architecture_stands_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(machine, "CPUINFO", tmp_path / "absent")
    monkeypatch.setattr(machine.platform, "processor", lambda: "")
    monkeypatch.setattr(machine.platform, "machine", lambda: "riscv64")
    assert cpu_description() == "riscv64"


def test_this_machine_is_described() -> None:
    assert cpu_description().strip()
