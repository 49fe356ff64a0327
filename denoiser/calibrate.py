"""Measure a model's camera strength: the "auto" strength for camera-processed noise, from real noisy/clean pairs.

The white-noise estimate reads camera noise (demosaiced, noise-reduced in camera, JPEG-compressed) far too low,
so "auto" would barely touch a noisy camera JPEG. Which strength such noise needs depends on the model (on the
noise it was trained with), so it is measured per model: every candidate strength is tried on the *training*
split of a pair folder (the split ``denoiser train --pairs`` uses; its validation split stays unseen, for the
benchmark), and the candidate with the best mean PSNR is kept, in the model's JSON (``auto.camera_strength``).

Run: ``python benchmarks/calibrate_camera.py ../shared/data/pairs/polyu --model default --write``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from denoiser.errors import DenoiserError
from denoiser.models import Autoencoder
from denoiser.noise import read_noise

DEFAULT_CANDIDATES: tuple[float, ...] = (0.0, 6.0, 9.0, 12.0, 15.0, 18.0, 22.0)
"""Camera strengths tried (0: none, the plain white-noise estimate)."""


@dataclass
class CameraCalibration:
    """Mean PSNR of the model with "auto" strength for each candidate camera strength, and the best one."""

    pairs: int
    noisy_psnr: float
    psnr_by_candidate: dict[float, float] = field(default_factory=dict)

    @property
    def best(self) -> float:
        """The candidate with the highest mean PSNR."""
        return max(self.psnr_by_candidate, key=lambda c: self.psnr_by_candidate[c])

    def auto_section(self, measured_on: str) -> dict[str, Any]:
        """What goes into the model JSON's ``auto`` section."""
        return {"camera_strength": self.best, "measured_on": measured_on, "pairs": self.pairs,
                "noisy_psnr": round(self.noisy_psnr, 3),
                "psnr_by_camera_strength": {f"{c:g}": round(v, 3) for c, v in self.psnr_by_candidate.items()}}


def calibrate_camera_strength(
    model: Autoencoder,
    pairs: Sequence[tuple[np.ndarray, np.ndarray]],
    candidates: Sequence[float] = DEFAULT_CANDIDATES,
    device: str = "cpu",
    on_step: Callable[[int, int], None] | None = None,
) -> CameraCalibration:
    """Score each candidate camera strength on (noisy, clean) uint8 pairs (each photo denoised once per distinct
    strength the candidates lead to)."""
    from denoiser.inference import denoise_array
    from denoiser.metrics import psnr

    if not pairs or not candidates:
        raise DenoiserError("calibration needs at least one pair and one candidate strength")
    calibration = CameraCalibration(len(pairs), float(np.mean([psnr(c, n) for n, c in pairs])))
    scores: dict[float, list[float]] = {c: [] for c in candidates}
    for index, (noisy, clean) in enumerate(pairs):
        reading = read_noise(noisy)
        done: dict[float, float] = {}
        for candidate in candidates:
            strength = reading.strength(candidate)
            if strength not in done:
                out = denoise_array(noisy, model, strength, device=device)
                done[strength] = psnr(clean, np.clip(np.round(out * 255), 0, 255).astype(np.uint8))
            scores[candidate].append(done[strength])
        if on_step:
            on_step(index + 1, len(pairs))
    calibration.psnr_by_candidate = {c: float(np.mean(v)) for c, v in scores.items()}
    return calibration
