"""The single-photo use case: denoise one image with the batch's settings (auto strength included), with warnings.

The app's Save and every file of a batch go through :func:`denoise_image`, so what one sees is what one saves.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from denoiser.batch.settings import DenoiseSettings
from denoiser.exported import ExportedModel
from denoiser.findings import Finding, assess, estimate_findings
from denoiser.inference import denoise_array
from denoiser.io import Image, convert_depth
from denoiser.progress import ProgressFn, StopFn
from denoiser.strength import NoiseEstimate, levels_for

if TYPE_CHECKING:
    from denoiser.models import Autoencoder


@dataclass
class Denoised:
    """One denoised image and what to tell the user about it."""

    image: Image
    sigma: float
    """The typical noise level used (median over the photo, over luminance and colour; 0-255 units)."""
    findings: list[Finding] = field(default_factory=list)
    """Warnings about the result (see :mod:`denoiser.findings`)."""


def denoise_image(
    image: Image,
    model: Autoencoder | ExportedModel,
    settings: DenoiseSettings,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
    estimate: NoiseEstimate | None = None,
) -> Denoised:
    """Denoise the colour of ``image`` (alpha untouched), with the warnings the result deserves.

    ``estimate`` is the photo's noise map when it was already read (auto strength). The bit depth is kept, or
    raised to 16 when the settings' format forces it, so that a 16-bit output of an 8-bit photo holds the model's
    full precision instead of 8-bit steps. Every size works with auto strength: a photo too small to read gets a
    typical photo's noise, and the findings say so (:func:`~denoiser.findings.estimate_findings`).
    """
    # The native uint8/uint16 pixels go in as they are: a float copy of a 24 MP photo would cost 288 MB.
    pixels = image.model_pixels()
    strength = settings.strength_setting()
    levels, estimate = levels_for(pixels, strength, estimate)
    if settings.bit_depth == 16 and image.bit_depth == 8:
        # x * 257 / 65535 == x / 255 exactly: the model sees the same values, the result keeps 16 bits.
        image = dataclasses.replace(image, pixels=convert_depth(image.pixels, 16))
        pixels = image.model_pixels()
    cleaned = denoise_array(pixels, model, levels, tiles=settings.tiles, device=settings.device,
                            on_progress=on_progress, should_stop=should_stop)
    np.clip(cleaned, 0.0, 1.0, out=cleaned)
    findings = estimate_findings(estimate, pixels.shape[:2], strength) + assess(pixels, cleaned, estimate)
    return Denoised(image.with_color(cleaned), typical_level(levels), findings)


def typical_level(levels: np.ndarray) -> float:
    """One sigma for a luminance/colour map: the median over the photo of the per-RGB-channel level (the one-level
    equivalent a one-noise-input model is given: :func:`~denoiser.models.blocks.combined_level`, here in numpy so
    that it needs no torch)."""
    levels = np.asarray(levels, dtype=np.float32)
    if levels.shape[2] == 1:
        return float(np.median(levels))
    luminance, colour = levels[:, :, 0], levels[:, :, 1]
    return float(np.median(np.sqrt((luminance**2 + 2 * colour**2) / 3)))
