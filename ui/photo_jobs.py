"""The main window's background jobs on one photo: read it, denoise it, draw its noise map (and its key),
compose what the viewer shows (its visible region or screen scale first), compare the result with a clean
reference, read a batch result beside its input. Each runs on a worker lane (:mod:`ui.worker`) and calls the
engine; none touches a widget (QImages are plain data and may be made off the GUI thread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtGui import QColor, QImage

from denoiser.batch import reference_metrics, typical_level
from denoiser.display import (
    NOISE_MAP_KEY,
    LatentView,
    compose_views,
    histogram,
    latent_view,
    noise_map_image,
    noise_map_legend,
    to_uint8,
)
from denoiser.errors import DenoiserError
from denoiser.exported import ExportedModel
from denoiser.findings import Finding, assess, estimate_findings
from denoiser.inference import TileSettings
from denoiser.io import Image, read_image
from denoiser.io.metadata import exif_facts
from denoiser.noise import MAX_SIGMA
from denoiser.preview import Region, denoise_visible_first, paste_region
from denoiser.progress import Progress
from denoiser.strength import NoiseEstimate, Strength, estimate_noise_map, levels_for
from ui.qimage import display_levels_of, enlarged_levels, pasted_levels
from ui.torch_parts import LATENTS_NEED_PYTORCH

if TYPE_CHECKING:  # torch types: the app runs without torch (the desktop bundle)
    from denoiser.models import Autoencoder

Views = tuple[tuple[QImage, list[QImage]], tuple[QImage, list[QImage]], np.ndarray | None]
"""(shown image, its levels), (removed noise, its levels), the shown image's histogram (None: not made)."""


@dataclass
class OpenedPhoto:
    """A photo read by a job: the image, what auto found in it and what the viewer shows."""

    path: Path
    image: Image
    estimate: NoiseEstimate
    display: QImage
    levels: list[QImage]
    facts: list[tuple[str, str]] = field(default_factory=list)
    """What the EXIF says (camera, lens, exposure...), for the info panel."""
    histogram: np.ndarray | None = None
    """The photo's per-channel histogram (channels x bins, tallest 1), for the info panel."""
    noise_summary: str = ""
    """What auto found, in words (:meth:`NoiseEstimate.summary`; made here: medians of a 12-megapixel map take
    tens of milliseconds, which the GUI thread should not spend)."""

    @property
    def sigma(self) -> float:
        """The typical noise level auto found (0-255 units, luminance and colour together)."""
        return typical_level(self.estimate.levels)


@dataclass
class DenoiseOutcome:
    """A finished denoise: the float result, the strength used, the latent thumbnails and the warnings."""

    path: Path
    denoised: np.ndarray
    sigma: float
    """The typical level of the noise map the model was given (0-255 units)."""
    latents: LatentView
    strength: Strength | None = None
    """The setting it was made with (None: not made here, e.g. a batch result shown beside its input)."""
    levels: np.ndarray | None = None
    """The noise map the model was given (covering the photo, 1 x 1 x 2 when flat; luminance and colour sigma)."""
    findings: list[Finding] = field(default_factory=list)
    """Warnings about the result (noise beyond the model's range, detail removed)."""


def read_photo(path: Path) -> OpenedPhoto:
    """Read a photo, find its noise map (what auto uses) and make its display images."""
    image = read_image(path)
    pixels = image.color_pixels()
    estimate = estimate_noise_map(image.model_pixels())  # a grey picture stored as colour is read as grey
    levels = display_levels_of(to_uint8(pixels if pixels.shape[2] == 3 else pixels[:, :, 0]))
    return OpenedPhoto(path, image, estimate, levels[0], levels, exif_facts(image.exif),
                       histogram(pixels), estimate.summary())


def denoise_photo(photo: OpenedPhoto, model: Autoencoder | ExportedModel, strength: Strength, visible: Region,
                  zoom: float, tiles: TileSettings, device: str, should_stop: Callable[[], bool],
                  on_progress: Callable[[Progress], None]) -> DenoiseOutcome:
    """Denoise ``photo`` at ``strength``, the ``visible`` region first (its preview event names the photo), then
    assess the result and extract its latents (an exported graph has none to give: a note says so)."""
    pixels = photo.image.model_pixels()  # one channel for a grey picture stored as colour: denoised as grey
    levels, _ = levels_for(pixels, strength, photo.estimate)
    sigma = typical_level(levels)

    channels = photo.image.color_values().shape[2]

    def as_photo(result: np.ndarray) -> np.ndarray:  # a grey result of a grey picture stored as colour
        return np.repeat(result, channels, axis=2) if result.shape[2] != channels else result

    def report(event: Progress) -> None:
        if event.stage == "preview":
            event.extra["path"] = photo.path
            event.extra["preview"] = as_photo(event.extra["preview"])
        on_progress(event)

    denoised = denoise_visible_first(pixels, model, levels, visible, zoom=zoom, tiles=tiles, device=device,
                                     on_progress=report, should_stop=should_stop)
    # The photo's estimate goes in for a fixed strength too: noise beyond the model's range is the photo's,
    # whatever strength was asked for.
    findings = estimate_findings(photo.estimate, pixels.shape[:2], strength) + assess(pixels, denoised, photo.estimate)
    latents = latent_thumbnails(pixels, model, sigma, device)
    return DenoiseOutcome(photo.path, as_photo(denoised), sigma, latents, strength, levels, findings)


def latent_thumbnails(pixels: np.ndarray, model: Autoencoder | ExportedModel, sigma: float, device: str
                      ) -> LatentView:
    """What the torch model's bottleneck holds for ``pixels``; for an exported graph (no torch) only a note that
    this needs PyTorch."""
    if isinstance(model, ExportedModel):
        return LatentView(LATENTS_NEED_PYTORCH, np.zeros((1, 1, 3), np.uint8), [])
    from denoiser.latents import extract_latent  # imports torch

    return latent_view(extract_latent(pixels, model, sigma, device=device), model.family)


def draw_noise_map(photo: OpenedPhoto) -> tuple[OpenedPhoto, QImage, list[QImage], list[str]]:
    """The photo's noise map as an image, its levels and its legend."""
    estimate, size = photo.estimate, (photo.image.height, photo.image.width)
    levels = display_levels_of(noise_map_image(estimate.levels, size, MAX_SIGMA))
    legend = noise_map_legend(estimate.levels, MAX_SIGMA, estimate.method)
    return photo, levels[0], levels, legend


def noise_map_key() -> list[tuple[str, QColor]]:
    """The noise map's colour key as Qt colours."""
    return [(name, QColor(*rgb)) for name, rgb in NOISE_MAP_KEY]


def compare_with_reference(photo: Image, result: Image, reference: Path) -> tuple[Path, dict, str]:
    """PSNR and SSIM of the noisy photo and of the result against the clean ``reference`` (read here), or a
    note saying why they cannot be compared."""
    figures, note = reference_metrics(photo, result, read_image(reference))
    return reference, figures, note


def compose_display(original: np.ndarray, denoised: np.ndarray, detail: float) -> Views:
    """The result blended with the detail setting and the noise removed, as viewer images."""
    shown_pixels, removed_pixels = compose_views(original, denoised, detail)
    return _with_levels(display_levels_of(shown_pixels)), _with_levels(display_levels_of(removed_pixels)), histogram(
        shown_pixels)


QUICK_REGION_SHARE = 0.5
"""The visible region is composed first when it is at most this share of the photo (zoomed in)."""
QuickViews = tuple[tuple[QImage, list[QImage]], tuple[QImage, list[QImage]]]
"""(shown image, its levels), (removed noise, its levels): a first look, before the whole photo is composed."""


def _with_levels(levels: list[QImage]) -> tuple[QImage, list[QImage]]:
    """(the image to show, its display levels): the first level is the display-format image itself."""
    return levels[0], levels


ShownLevels = tuple[Sequence[QImage], Sequence[QImage]]
"""The result and residual shown now, each as its display levels (or only the image): what a patch is drawn over."""


def _region_drawn_over(base: ShownLevels, original: np.ndarray, patch: np.ndarray, region: Region,
                       detail: float) -> QuickViews:
    """``region`` of the result composed from ``patch`` (its denoised pixels) and drawn over ``base``."""
    shown, removed = compose_views(original[region.slices], patch, detail)
    return (_with_levels(pasted_levels(base[0], shown, region.left, region.top)),
            _with_levels(pasted_levels(base[1], removed, region.left, region.top)))


def quick_views(original: np.ndarray, denoised: np.ndarray, detail: float, visible: Region, zoom: float,
                base: ShownLevels | None) -> QuickViews | None:
    """A first look at the composed result, in a fraction of the whole photo's time: zoomed in, the ``visible``
    region composed and drawn over ``base`` (what is shown now: the rest keeps it); viewed whole below
    50 %, the photo composed at about the screen's scale and enlarged back. None when neither pays (the photo
    viewed at 50 % or more, or zoomed in with nothing shown yet)."""
    height, width = original.shape[:2]
    region = visible.clipped(width, height)
    if 0 < region.area <= QUICK_REGION_SHARE * width * height:
        return None if base is None else _region_drawn_over(base, original, denoised[region.slices], region, detail)
    step = int(1.0 / zoom) if zoom > 0 else 1
    if step < 2:
        return None
    shown, removed = compose_views(original[::step, ::step], denoised[::step, ::step], detail)
    return (_with_levels(enlarged_levels(shown, step, height, width)),
            _with_levels(enlarged_levels(removed, step, height, width)))


def compose_region_preview(original: np.ndarray, patch: np.ndarray, region: Region, detail: float,
                           base: ShownLevels | None) -> Views:
    """A denoise's preview of ``region`` alone (``patch``: its float pixels) as viewer images: the region composed
    and drawn over ``base`` (what is shown now), the rest of the photo left untouched; with nothing shown yet, the
    patch pasted into the original and the whole composed. The histogram is None (a preview has none)."""
    if base is None:
        shown, removed, _ = compose_display(original, paste_region(original, patch, region), detail)
        return shown, removed, None
    return (*_region_drawn_over(base, original, patch, region, detail), None)


def compose_display_quick_first(original: np.ndarray, denoised: np.ndarray, detail: float, visible: Region,
                                zoom: float, base: ShownLevels | None, *, preview: bool,
                                on_progress: Callable[[Progress], None]) -> Views:
    """:func:`compose_display`, with :func:`quick_views` reported first as ``Progress("quick", extra={"views":
    ...})`` when they pay. A ``preview`` (a quick pass of a denoise whose whole result follows) stops at the
    quick views when there are any: its histogram is then None."""
    quick = quick_views(original, denoised, detail, visible, zoom, base)
    if quick is not None:
        if preview:
            return quick[0], quick[1], None
        on_progress(Progress("quick", 0, 0, extra={"views": quick}))
    return compose_display(original, denoised, detail)


def read_pair(source: Path, output: Path) -> tuple[OpenedPhoto, DenoiseOutcome]:
    """A batch output beside its input: the input as the photo, the output as its result."""
    opened = read_photo(source)
    result = read_image(output)
    if (result.width, result.height) != (opened.image.width, opened.image.height):
        raise DenoiserError(f"{output}: its size differs from {source.name}'s")
    denoised = result.color()
    if result.bit_depth == 32:  # on the input's scale, as a result denoised here is, not on the result's own
        low, high = opened.image.value_range
        denoised = ((result.color_values() - np.float32(low)) / np.float32(high - low)).astype(np.float32)
    if denoised.shape[2] != opened.image.color_pixels().shape[2]:
        denoised = denoised.mean(axis=2, keepdims=True) if denoised.shape[2] == 3 else np.repeat(
            denoised, 3, axis=2)
    empty = LatentView(f"latents are not shown for a saved result ({output.name})", np.zeros((1, 1, 3), np.uint8),
                       [])
    return opened, DenoiseOutcome(source, denoised, opened.sigma, empty)
