"""Camera-strength calibration: every candidate scored on pairs, the best kept, the plain estimate as candidate 0."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from denoiser.calibrate import calibrate_camera_strength
from denoiser.errors import DenoiserError
from denoiser.inference import denoise_array
from denoiser.metrics import psnr
from denoiser.models import create_model
from denoiser.noise import read_noise


def camera_pairs(count: int = 2) -> list[tuple[np.ndarray, np.ndarray]]:
    y, x = np.mgrid[0:48, 0:48]
    pairs = []
    for i in range(count):
        clean = np.stack([x * 4 + i * 9, y * 4, (x + y) * 2], axis=2).clip(0, 255).astype(np.uint8)
        noise = cv2.GaussianBlur(np.random.default_rng(i).normal(0, 1, clean.shape), (0, 0), 1.2)
        noisy = np.clip(np.round(clean + noise * 5 / noise.std()), 0, 255).astype(np.uint8)
        pairs.append((noisy, clean))
    return pairs


def test_each_candidate_is_scored_and_the_best_is_kept() -> None:
    torch.manual_seed(0)
    model = create_model("unet", {"widths": [4, 8], "blocks": 0}).eval()
    pairs = camera_pairs()
    calibration = calibrate_camera_strength(model, pairs, (0.0, 10.0, 30.0))
    assert set(calibration.psnr_by_candidate) == {0.0, 10.0, 30.0} and calibration.pairs == 2
    assert calibration.psnr_by_candidate[calibration.best] == max(calibration.psnr_by_candidate.values())
    # Candidate 0 is the plain white-noise estimate, scored exactly as "auto" without a camera strength.
    plain = [psnr(c, np.clip(np.round(denoise_array(n, model, read_noise(n).sigma, device="cpu") * 255), 0, 255))
             for n, c in pairs]
    assert calibration.psnr_by_candidate[0.0] == pytest.approx(float(np.mean(plain)), abs=1e-6)
    assert calibration.noisy_psnr == pytest.approx(float(np.mean([psnr(c, n) for n, c in pairs])))
    section = calibration.auto_section("test pairs")
    assert section["camera_strength"] == calibration.best
    assert set(section["psnr_by_camera_strength"]) == {"0", "10", "30"}


def test_nothing_to_calibrate_on_is_refused() -> None:
    with pytest.raises(DenoiserError, match="at least one pair"):
        calibrate_camera_strength(create_model("unet", {"widths": [4, 8], "blocks": 0}), [])
