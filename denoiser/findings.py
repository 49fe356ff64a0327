"""Honest warnings about a result: noise beyond what the model knows, detail taken away with the noise, and an
auto strength that was not measured as usual.

Autoencoders are data-specific and lossy. Things a user cannot see at a glance are checked after each
denoise and reported in the app's side panel, the CLI's output and the batch manifest, each with what to do:

* ``beyond_range``: the photo's noise (as auto read it) is stronger than any the model was trained on
  (sigma above :data:`~denoiser.noise.MAX_SIGMA`), so noise will be left and artefacts are likely.
* ``detail_removed``: what was removed is not only noise. Removed noise has no preferred direction; removed
  detail lies along the picture's edges. The check measures how coherent (organised along one direction) the
  removed residual's gradients are, over the luminance, against white noise.
* ``strength_assumed`` (auto only): the photo is too small for auto to measure its noise (1 x 1, a 6 x 6 grey
  icon), so a typical camera photo's noise was assumed (:data:`~denoiser.strength.ASSUMED_LEVELS`).
* ``strength_rough`` (auto only): the photo is too small for the usual reading (7 x 7-pixel patches), so its noise
  was read in smaller patches, a rougher reading.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from denoiser.io import to_float
from denoiser.noise import MAX_SIGMA
from denoiser.noise_estimation import PATCH
from denoiser.strength import NoiseEstimate, Strength

STRUCTURE_LIMIT = 0.06
"""Excess coherence of the removed residual above which a result is flagged. Measured with the bundled model on
256-pixel crops of three Kodak24 photos with Gaussian noise of sigma 15/25/50: at half or the true sigma -0.01 to
0.03; at three times the true sigma 0.03-0.11; a clean photo denoised at 25: 0.03-0.21. A finely textured photo
(kodim01) stays under the limit even when over-smoothed: the check catches smooth scenes losing edges, not every
loss of texture."""

MIN_RESIDUAL = 0.5 / 255
"""Below this RMS of the (band-passed) residual so little was removed that its correlation means nothing."""


@dataclass(frozen=True)
class Finding:
    """One warning: a code for programs, a sentence for people, and what to do about it."""

    code: str
    message: str
    advice: str

    def text(self) -> str:
        """The message and the advice as one line."""
        return f"{self.message} {self.advice}"

    def to_dict(self) -> dict[str, str]:
        """Plain JSON values (for the batch manifest)."""
        return asdict(self)


def noise_findings(estimate: NoiseEstimate | None, maximum: float = MAX_SIGMA) -> list[Finding]:
    """``beyond_range`` when a tenth or more of the photo reads noisier than ``maximum``."""
    if estimate is None:
        return []
    strongest = float(np.percentile(estimate.levels.max(axis=2), 90))
    if strongest <= maximum:
        return []
    return [Finding("beyond_range",
                    f"The noise here (sigma up to {strongest:.0f}) is beyond what the model was trained on "
                    f"(sigma up to {maximum:.0f}): some noise will stay and artefacts are likely.",
                    "Try a model trained on noise this strong, or denoise a downscaled copy.")]


def estimate_findings(estimate: NoiseEstimate | None, size: tuple[int, int],
                      strength: Strength | None = None) -> list[Finding]:
    """``strength_assumed`` when auto's levels were assumed, not measured, the photo (``size``: height, width) being
    too small to read; ``strength_rough`` when they were read in patches smaller than the usual 7 x 7.

    Both are about auto: none when ``strength`` is a fixed sigma (or ``estimate`` is None). The message names the
    levels auto used and, when the amounts change them, the levels the model was given."""
    fixed = strength is not None and not strength.is_auto
    if estimate is None or fixed or (estimate.measured and not estimate.rough):
        return []
    height, width = size
    used = estimate.levels_text()
    if strength is not None and (strength.amount, strength.luminance, strength.color) != (1.0, 1.0, 1.0):
        given = strength.levels(estimate)
        used += (f"; with the amounts, the model was given luminance {float(np.median(given[:, :, 0])):.1f}, "
                 f"colour {float(np.median(given[:, :, 1])):.1f}")
    if not estimate.measured:
        return [Finding("strength_assumed",
                        f"This photo ({width} x {height} pixels) is too small for auto to measure its noise: auto "
                        f"assumed a typical camera photo's noise instead ({used}).",
                        "If the photo is noisier or cleaner than that, set a fixed strength (0 leaves it as it is).")]
    rows, cols = estimate.patch or (0, 0)
    return [Finding("strength_rough",
                    f"This photo ({width} x {height} pixels) is too small for auto's usual noise reading: it was read "
                    f"in {cols} x {rows}-pixel patches instead of {PATCH} x {PATCH}, a rougher reading ({used}).",
                    "If the result looks too strong or too weak, change the amount or set a fixed strength.")]


def _luminance(pixels: np.ndarray) -> np.ndarray:
    scaled = to_float(pixels)
    return scaled.mean(axis=2) if scaled.ndim == 3 else scaled


def structure_in_residual(original: np.ndarray, denoised: np.ndarray) -> float:
    """How much the removed residual is organised along edges: the local coherence of its gradients (structure
    tensor, windows of a few pixels), weighted by the residual's local energy, above that of white noise.

    Removed noise has no preferred direction (coherence about that of white noise); removed detail lies along the
    picture's edges (coherence near 1 there). Returns the excess over white noise, about -0.1 to 0.7. A photo
    over 4 megapixels is judged on nine spread-out squares of 512 pixels, so the check stays cheap.
    """
    weighted = total = 0.0
    removed = 0.0
    for rows, cols in _squares(*original.shape[:2]):
        residual = _luminance(original[rows, cols]) - _luminance(denoised[rows, cols])
        removed += float(np.sum(np.square(residual, dtype=np.float64)))
        part_weighted, part_total = _coherence_sums(residual)
        weighted, total = weighted + part_weighted, total + part_total
    pixels = sum((r.stop - r.start) * (c.stop - c.start) for r, c in _squares(*original.shape[:2]))
    if np.sqrt(removed / pixels) < MIN_RESIDUAL or total <= 0:
        return 0.0  # next to nothing removed: nothing to judge
    return weighted / total - WHITE_NOISE_COHERENCE


def _squares(height: int, width: int, side: int = 512, limit: int = 4_000_000) -> list[tuple[slice, slice]]:
    """The whole image, or a 3 x 3 grid of ``side`` squares spread over it when it is over ``limit`` pixels."""
    if height * width <= limit:
        return [(slice(0, height), slice(0, width))]
    tops = np.linspace(0, height - side, 3).astype(int)
    lefts = np.linspace(0, width - side, 3).astype(int)
    return [(slice(t, t + side), slice(left, left + side)) for t in tops for left in lefts]


def _coherence_sums(image: np.ndarray) -> tuple[float, float]:
    """Sum of structure-tensor coherence times local gradient energy, and sum of that energy."""
    smooth = cv2.GaussianBlur(image, (0, 0), 1.0)
    gx, gy = cv2.Sobel(smooth, cv2.CV_32F, 1, 0), cv2.Sobel(smooth, cv2.CV_32F, 0, 1)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), 3.0)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), 3.0)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), 3.0)
    trace = jxx + jyy
    coherence = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2) / np.maximum(trace, 1e-12)
    return float(np.sum(coherence * trace, dtype=np.float64)), float(np.sum(trace, dtype=np.float64))


WHITE_NOISE_COHERENCE = 0.23
"""The weighted coherence of white noise (0.23 for 256 and 512-pixel squares of it)."""


def residual_findings(original: np.ndarray, denoised: np.ndarray, limit: float = STRUCTURE_LIMIT) -> list[Finding]:
    """``detail_removed`` when the removed residual carries the picture's edges."""
    if min(original.shape[:2]) < 16:
        return []
    correlation = structure_in_residual(original, denoised)
    if correlation <= limit:
        return []
    return [Finding("detail_removed",
                    f"Some of what was removed is picture detail, not noise (the residual follows the edges: "
                    f"correlation {correlation:.2f}).",
                    "Lower the strength or the luminance amount, and check the residual view.")]


def assess(original: np.ndarray, denoised: np.ndarray, estimate: NoiseEstimate | None) -> list[Finding]:
    """Every finding for one result (``estimate``: what auto read, None for a fixed strength)."""
    return noise_findings(estimate) + residual_findings(original, denoised)
