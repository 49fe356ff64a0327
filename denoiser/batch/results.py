"""What a batch reports: one :class:`FileResult` per file and the :class:`BatchReport` of a whole run."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FileResult:
    """How one file went."""

    source: Path
    output: Path | None
    status: str
    """``done``, ``failed`` or ``skipped``."""
    message: str = ""
    sigma: float | None = None
    seconds: float = 0.0
    resumed: bool = False
    """Skipped because the manifest records it as done (as opposed to skipped for an existing output)."""
    input_sha256: str | None = None
    reference: Path | None = None
    """The clean reference found for it, if any (see :func:`find_reference`)."""
    metrics: dict[str, float | None] = field(default_factory=dict)
    """``psnr_noisy``, ``ssim_noisy``, ``psnr_denoised``, ``ssim_denoised`` against the reference."""
    reference_note: str = ""
    """Why a reference that was found could not be compared (size differs, unreadable...)."""
    findings: list[dict[str, str]] = field(default_factory=list)
    """Warnings about the result (:class:`~denoiser.findings.Finding` as code, message and advice)."""


@dataclass
class BatchReport:
    """Everything a finished batch did."""

    results: list[FileResult]
    manifest: Path | None

    def count(self, status: str) -> int:
        """How many files ended with ``status``."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def done(self) -> int:
        """Files denoised by this run."""
        return self.count("done")

    @property
    def failed(self) -> int:
        """Files that could not be denoised."""
        return self.count("failed")

    @property
    def skipped(self) -> int:
        """Files left alone: done before (resumed) or their output existed (collision policy ``skip``)."""
        return self.count("skipped")



def finite_or_none(value: float) -> float | None:
    """JSON has no infinity (identical images have infinite PSNR): such values are stored as None."""
    return round(value, 6) if math.isfinite(value) else None
