"""How strongly to denoise: what "auto" finds in a photo, times the amounts a photographer sets.

The model takes a per-pixel noise map (sigma in 0-255 units; luminance and colour noise apart for models with
two noise inputs). :func:`estimate_noise_map` finds that map in a photo (the bundled noise-map network when there
is one, else the PCA estimate as one flat level); a :class:`Strength` turns it into the map the model is given:
the estimate (or a fixed sigma) times an overall amount, times separate luminance and colour amounts, as
Lightroom's and darktable's luminance and colour noise sliders do.

A grey photo is denoised by the colour model as three equal channels (:func:`~denoiser.inference.denoise_array`
repeats a one-channel photo; a three-channel grey one is already so), so its noise is the same in every channel.
Auto reads its level ``s`` (the grey noise's standard deviation) and gives the model the map :data:`GREY_MAP`
makes of it.

A photo too small to read at all (1 x 1, a 6 x 6 grey icon) is not left undenoised or refused: auto assumes the noise
of a typical camera photo (:data:`ASSUMED_LEVELS`, :data:`ASSUMED_GREY`) and the estimate says so
(:attr:`NoiseEstimate.method` ``assumed``), as does the finding :func:`~denoiser.findings.estimate_findings` makes
of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from denoiser.chroma import check_chroma, luminance_only_levels
from denoiser.errors import DenoiserError
from denoiser.noise import MAX_SIGMA
from denoiser.noise_estimation import PATCH, estimate_noise, workable_patch

FLOOR_SHARE = 1.0
"""No region of a photo is read below this share of the photo's median level: clipping at black and white hides
noise that was there. An 8-bit photo with sigma-50 noise reads low in its darkest and brightest regions; auto lost
0.92 dB against the true sigma there (first 12 CBSD68 photos, clipped protocol: 26.95 dB), 0.2 dB with the floor
(27.67). On the PolyU validation pairs the floor moved auto from 38.85 to 38.92 dB."""

MAX_AMOUNT = 2.0
"""The top of every amount (200 %)."""

GREY_MAP = (2.0, 1.25)
"""The (luminance, colour) map auto gives the model for a grey photo whose noise has standard deviation ``s``:
``(2.0 s, 1.25 s)`` (:meth:`Strength.levels` keeps it at most :data:`MAX_SIGMA`, as every map).

Noise the same in all three channels is ``(sqrt(3) s, 0)`` in the model's opponent units, but the bundled default
never met luminance noise without colour noise in training and denoises too little at that map (and far too little
at ``(s, s)``, what a grey photo got before). Measured on 8 held-out CBSD432 photos made grey (256 x 256 crops; the
bundled default, PSNR in dB) at the maps ``(s, s)`` / ``(sqrt 3 s, 0)`` / ``(2 s, 1.25 s)``: white
grey noise sigma 10: 30.33 / 31.01 / 32.79, sigma 25: 23.27 / 24.82 / 27.97; the camera pipeline's grey noise
(median std 10.9): 29.16 / 30.30 / 30.96. Nearby maps ``(1.73 s, 1.5 s)``, ``(2 s, s)``, ``(2.25 s, 0.75 s)`` were
within 0.1-0.5 dB. A model trained on grey patches would want ``(sqrt(3) s, 0)`` and this constant would change."""

ASSUMED_LEVELS = (4.0, 2.0)
"""The (luminance, colour) noise auto assumes for a colour photo too small to read (:func:`estimate_noise_map`):
what the bundled estimator reads in a typical camera photo, the median over the 68 PolyU noisy photos (real camera
JPEGs from five cameras, ISO 800 to 12800: luminance 4.0, colour 1.9; quartiles 3.5-4.8 and 1.4-2.5), to whole
levels.

Why a typical photo's noise and not none: auto promises to clean the noise a photo holds, and a tiny photo is most
often a crop or a strip of a camera photo, which holds that photo's noise; assuming none would leave it silently
untouched, which a user who asked for auto does not expect. Why not more: at these levels the model removes faint
noise only, so a clean icon loses little, where a mid-range level (sigma 25) would smear it. The finding tells the
user, and a fixed strength (0 leaves a photo as it is) overrides it."""

ASSUMED_GREY = 3.0
"""The grey noise level auto assumes for a grey photo too small to read (the model is given :data:`GREY_MAP` of
it): the luma noise of the same PolyU photos (Rec. 601 luma of noisy minus clean, median standard deviation 3.2,
quartiles 2.9-3.8), to a whole level, for the reasons :data:`ASSUMED_LEVELS` gives."""


@dataclass(frozen=True)
class Strength:
    """The user's strength setting: auto (``sigma`` None) or a fixed sigma, times amounts (1.0 = 100 %)."""

    sigma: float | None = None
    """A fixed noise level (0-255 units) for luminance and colour alike; None: what auto finds in each photo."""
    amount: float = 1.0
    """Multiplies the whole map (auto's estimate or the fixed sigma)."""
    luminance: float = 1.0
    """Multiplies the luminance noise level (grain, speckle)."""
    color: float = 1.0
    """Multiplies the colour noise level (chroma blotches)."""

    def __post_init__(self) -> None:
        if self.sigma is not None and not 0 <= self.sigma <= 255:
            raise DenoiserError(f"a fixed strength must be a sigma between 0 and 255, not {self.sigma:g}")
        for name in ("amount", "luminance", "color"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_AMOUNT:
                raise DenoiserError(f"the {name} amount must be between 0 and {MAX_AMOUNT:.0%}, not {value:.0%}")

    @property
    def is_auto(self) -> bool:
        """Whether the noise level comes from the photo."""
        return self.sigma is None

    def describe(self) -> str:
        """A short label: ``auto``, ``auto 150 %``, ``sigma 25``, plus the luminance/colour amounts if not 100 %."""
        text = "auto" if self.is_auto else f"sigma {self.sigma:g}"
        if self.amount != 1.0:
            text += f" {self.amount:.0%}".replace("%", " %")
        if (self.luminance, self.color) != (1.0, 1.0):
            text += f" (luminance {self.luminance:.0%}, colour {self.color:.0%})".replace("%", " %")
        return text

    def signature(self) -> dict[str, Any]:
        """The setting as plain JSON values (for a batch manifest: equal signatures give equal outputs)."""
        return {"strength": "auto" if self.sigma is None else float(self.sigma), "amount": float(self.amount),
                "luminance": float(self.luminance), "color": float(self.color)}

    def levels(self, estimate: NoiseEstimate | None) -> np.ndarray:
        """The (luminance, colour) map the model is given, in 0-255 units, at most :data:`MAX_SIGMA`: the
        estimate's map (which covers the photo at its own resolution) scaled by the amounts.

        ``estimate`` is needed for auto. A fixed sigma (and a flat estimate) gives a 1 x 1 x 2 map, which
        :func:`~denoiser.inference.denoise_array` applies everywhere. For a grey photo's estimate the colour amount
        does nothing: the luminance amount scales both channels."""
        # A grey photo has no colour noise: its one level is set by the luminance amount, in both channels of the
        # map (the colour amount once changed a grey result by up to 30 levels).
        grey = estimate is not None and estimate.grey is not None
        color = self.luminance if grey else self.color
        scale = np.array([self.amount * self.luminance, self.amount * color], dtype=np.float32)
        if self.sigma is None:
            if estimate is None:
                raise DenoiserError("auto strength needs the photo's noise estimate")
            base = estimate.levels
        else:
            base = np.full((1, 1, 2), self.sigma, dtype=np.float32)
        return np.minimum(base * scale, np.float32(MAX_SIGMA))


@dataclass(frozen=True)
class NoiseEstimate:
    """What auto found in a photo: the luminance and colour noise per pixel, before any amount."""

    levels: np.ndarray
    """h x w x 2 float32, sigma in 0-255 units: luminance, colour. It covers the photo: a quarter of its resolution
    from the network, 1 x 1 when flat (see :func:`~denoiser.tiling.sample_map`). For a grey photo, the map the
    model is given for its noise (:data:`GREY_MAP`)."""
    method: str
    """``network`` (the noise-map estimator), ``pca`` (one flat white-noise estimate) or ``assumed`` (the photo was
    too small to read: :data:`ASSUMED_LEVELS` or :data:`ASSUMED_GREY`, not measured)."""
    grey: float | None = None
    """For a grey photo, its typical (median) noise level as read, a sigma in 0-255 units; None for colour."""
    patch: tuple[int, int] | None = None
    """For a ``pca`` estimate of a photo too small for the usual 7 x 7 patches, the smaller patch (rows, columns)
    it was read in (:func:`~denoiser.noise_estimation.workable_patch`), a rougher reading; None otherwise."""
    subsampled: bool = False
    """Whether the photo's colour was found subsampled (:mod:`denoiser.chroma`: nearly every JPEG, most HEICs and
    AVIFs) and its luminance noisier than a clean photo's: the levels were raised to at least what its luminance
    reading gives (:func:`~denoiser.chroma.luminance_only_levels`)."""

    @property
    def measured(self) -> bool:
        """Whether the levels were read in the photo (False: assumed, the photo being too small to read)."""
        return self.method != "assumed"

    @property
    def rough(self) -> bool:
        """Whether the levels were read in patches smaller than usual, the photo being too small for 7 x 7 ones."""
        return self.patch is not None

    @property
    def luminance(self) -> float:
        """The photo's typical (median) luminance noise level."""
        return float(np.median(self.levels[:, :, 0]))

    @property
    def color(self) -> float:
        """The photo's typical (median) colour noise level."""
        return float(np.median(self.levels[:, :, 1]))

    @property
    def spread(self) -> float:
        """How much the level varies over the photo: the 90th minus the 10th percentile of the luminance level."""
        low, high = np.percentile(self.levels[:, :, 0], [10, 90])
        return float(high - low)

    def levels_text(self) -> str:
        """``luminance 3.2, colour 7.5``; for a grey photo ``grey 4.1 (the model is given luminance 8.2, colour
        5.1)``: its one noise level, then the map that level becomes for the colour model."""
        text = f"luminance {self.luminance:.1f}, colour {self.color:.1f}"
        return text if self.grey is None else f"grey {self.grey:.1f} (the model is given {text})"

    def summary(self) -> str:
        """:meth:`levels_text`, with the spread when the level varies over the photo, and a word when the photo was
        too small to read as usual: ``(assumed: ...)`` or ``(rough: ...)``."""
        text = self.levels_text()
        if self.spread >= 2.0:
            text += f" (varies by {self.spread:.0f} over the photo)"
        if self.subsampled:
            text += " (colour subsampled: read in the luminance)"
        if not self.measured:
            text += " (assumed: the photo is too small to measure its noise)"
        elif self.rough:
            text += f" (rough: the photo is too small for {PATCH} x {PATCH}-pixel patches)"
        return text


def flat_estimate(sigma: float) -> NoiseEstimate:
    """One level everywhere, for luminance and colour alike (a 1 x 1 x 2 map)."""
    return NoiseEstimate(np.full((1, 1, 2), sigma, dtype=np.float32), "pca")


def assumed_estimate(grey: bool) -> NoiseEstimate:
    """What auto uses for a photo too small to read: a typical camera photo's noise (:data:`ASSUMED_LEVELS`, or
    for a grey photo the map :data:`GREY_MAP` makes of :data:`ASSUMED_GREY`), as method ``assumed``."""
    if grey:
        return grey_estimate(np.full((1, 1), ASSUMED_GREY, np.float32), "assumed")
    return NoiseEstimate(np.array(ASSUMED_LEVELS, np.float32).reshape(1, 1, 2), "assumed")


def grey_estimate(levels: np.ndarray, method: str) -> NoiseEstimate:
    """A grey photo's estimate from its grey noise levels (h x w, sigma in 0-255 units): the map the model is
    given, :data:`GREY_MAP` times the level."""
    grey = levels.astype(np.float32, copy=False)
    return NoiseEstimate(grey[:, :, None] * np.array(GREY_MAP, dtype=np.float32), method, float(np.median(grey)))


def is_grey(pixels: np.ndarray) -> bool:
    """One channel, or three equal ones (judged on every 7th pixel of every 7th row)."""
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return True
    sample = pixels[::7, ::7]
    return bool(np.array_equal(sample[..., 0], sample[..., 1]) and np.array_equal(sample[..., 1], sample[..., 2]))


def estimate_noise_map(pixels: np.ndarray) -> NoiseEstimate:
    """What auto finds in ``pixels`` (H x W x C; uint8, uint16 or float in 0-1): the noise-map network's
    per-pixel estimate when it is available and the photo big enough, else the PCA white-noise estimate.

    Any size works. A photo too small for the PCA estimate's usual 7 x 7 patches is read in smaller ones
    (:func:`~denoiser.noise_estimation.workable_patch`; :attr:`NoiseEstimate.patch` says which), and one too small
    for any (1 x 1, a 6 x 6 grey photo, a one-pixel grey line) gets :func:`assumed_estimate`, a typical camera photo's
    noise: never an error, and never a silent "no noise".

    A grey photo (:func:`is_grey`) is read as one level, the grey noise's, and the model is given :data:`GREY_MAP`
    of it (:func:`grey_estimate`). The network reads it (per region) only when it learnt grey photos
    (:attr:`~denoiser.estimator.NoiseMapEstimator.reads_grey`); the bundled one did not, and reads the noise of a
    grey photo as next to nothing (sigma 0.0 on four grey RNI6 photos where PCA finds 9 to 17), so grey photos get
    the PCA estimate.

    A colour photo whose chroma was subsampled (:func:`~denoiser.chroma.check_chroma`: nearly every JPEG, most
    HEICs and AVIFs) holds its noise in the luminance alone, which both readers take for picture detail: its levels
    are raised to at least :func:`~denoiser.chroma.luminance_only_levels` of its luminance noise
    (:attr:`NoiseEstimate.subsampled`). Other photos' estimates, and clean subsampled ones', are what they were.
    """
    from denoiser.bundled_noise_reader import bundled_noise_reader

    grey = is_grey(pixels)
    if grey and pixels.ndim == 3:
        pixels = pixels[:, :, :1]  # for PCA, three equal channels would leave two thirds of its eigenvalues at zero
    reader = bundled_noise_reader()
    usable = reader is not None and (not grey or reader.reads_grey)
    if usable and min(pixels.shape[:2]) >= reader.smallest_side:
        levels = reader.read(pixels)
        if grey:  # trained to read the grey level in both channels: their mean is the steadier reading
            level = levels.mean(axis=2)
            return grey_estimate(np.maximum(level, FLOOR_SHARE * np.float32(np.median(level))), "network")
        floor = FLOOR_SHARE * np.median(levels.reshape(-1, 2), axis=0).astype(np.float32)
        return _with_subsampled_chroma(NoiseEstimate(np.maximum(levels, floor), "network"), pixels, grey)
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    patch = workable_patch(pixels.shape[0], pixels.shape[1], channels)
    if patch is None:
        return assumed_estimate(grey)
    sigma = min(MAX_SIGMA, estimate_noise(pixels, patch=patch))
    estimate = grey_estimate(np.full((1, 1), sigma, np.float32), "pca") if grey else flat_estimate(sigma)
    if patch != (PATCH, PATCH):
        return dataclasses.replace(estimate, patch=patch)
    return _with_subsampled_chroma(estimate, pixels, grey)


def _with_subsampled_chroma(estimate: NoiseEstimate, pixels: np.ndarray, grey: bool) -> NoiseEstimate:
    """``estimate``, raised to the luminance-only levels when a colour photo's chroma was subsampled."""
    check = None if grey else check_chroma(pixels)
    raised = None if check is None else luminance_only_levels(check)
    if raised is None:
        return estimate
    return dataclasses.replace(estimate, levels=np.maximum(estimate.levels, raised), subsampled=True)


def levels_for(pixels: np.ndarray, strength: Strength,
               estimate: NoiseEstimate | None = None) -> tuple[np.ndarray, NoiseEstimate | None]:
    """The map to denoise ``pixels`` at (covering the photo, 1 x 1 x 2 when flat) and the estimate it came from (None
    for a fixed sigma). Pass ``estimate`` when the photo was already looked at (the app keeps it per photo)."""
    if strength.is_auto and estimate is None:
        estimate = estimate_noise_map(pixels)
    return strength.levels(estimate), estimate
