"""Tests of the warnings about a result: noise beyond the model's range, detail removed with the noise."""

from __future__ import annotations

import cv2
import numpy as np

from denoiser.findings import assess, noise_findings, residual_findings, structure_in_residual
from denoiser.strength import NoiseEstimate, flat_estimate


def scene(size: int = 160) -> np.ndarray:
    """Smooth shading with sharp-edged shapes: a picture whose edges a too-strong denoise rounds off."""
    y, x = np.mgrid[0:size, 0:size] / size
    image = 0.3 + 0.2 * x + 0.1 * y
    image[20:70, 30:120] = 0.8
    image[90:140, 50:90] = 0.1
    cv2.circle(image, (120, 110), 25, 0.9, -1)
    return np.repeat(image[:, :, None], 3, axis=2).astype(np.float32)


def test_noise_beyond_the_trained_range_is_flagged_with_advice() -> None:
    (finding,) = noise_findings(flat_estimate(90.0))
    assert finding.code == "beyond_range" and "75" in finding.message and finding.advice
    assert noise_findings(flat_estimate(30.0)) == []
    assert noise_findings(None) == []
    patchy = np.full((10, 10, 2), 20.0, np.float32)
    patchy[:5, :, 1] = 100.0  # half the photo has colour noise beyond the range
    assert [f.code for f in noise_findings(NoiseEstimate(patchy, "network"))] == ["beyond_range"]


def test_removing_noise_only_is_not_flagged() -> None:
    clean = scene()
    noise = np.random.default_rng(0).normal(0, 0.08, clean.shape).astype(np.float32)
    noisy = clean + noise
    assert abs(structure_in_residual(noisy, clean)) < 0.03  # removed exactly the noise
    assert residual_findings(noisy, clean) == []


def test_blurring_edges_away_is_flagged() -> None:
    clean = scene()
    noisy = clean + np.random.default_rng(1).normal(0, 0.02, clean.shape).astype(np.float32)
    blurred = cv2.GaussianBlur(noisy, (0, 0), 3.0)
    assert structure_in_residual(noisy, blurred) > 0.1
    (finding,) = residual_findings(noisy, blurred)
    assert finding.code == "detail_removed" and "strength" in finding.advice


def test_next_to_nothing_removed_reads_zero() -> None:
    clean = scene()
    assert structure_in_residual(clean, clean + 1e-4) == 0.0
    assert assess(clean, clean, None) == []


def test_findings_serialise_for_the_manifest() -> None:
    (finding,) = noise_findings(flat_estimate(90.0))
    assert set(finding.to_dict()) == {"code", "message", "advice"}
    assert finding.text().startswith(finding.message)


def test_a_large_photo_is_judged_on_spread_squares() -> None:
    from denoiser.findings import _squares

    squares = _squares(2100, 2400)
    assert len(squares) == 9 and squares[-1] == (slice(1588, 2100), slice(1888, 2400))
    big = np.tile(scene(), (14, 15, 1))[:2100, :2400]  # 5 megapixels of the same scene
    noisy = big + np.random.default_rng(2).normal(0, 0.02, big.shape).astype(np.float32)
    assert structure_in_residual(noisy, cv2.GaussianBlur(noisy, (0, 0), 3.0)) > 0.1
    assert abs(structure_in_residual(noisy, big)) < 0.03
