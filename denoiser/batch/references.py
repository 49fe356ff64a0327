"""Clean references beside noisy photos (``clean/`` folders) and the PSNR/SSIM of a result against them."""

from __future__ import annotations

from pathlib import Path

from denoiser.batch.failures import failure_message
from denoiser.batch.results import finite_or_none
from denoiser.io import SUPPORTED_EXTENSIONS, Image, read_image, to_float
from denoiser.metrics import psnr, ssim

REFERENCE_FOLDER = "clean"
"""Name of the folder a clean reference is looked up in (see :func:`find_reference`)."""


def find_reference(path: str | Path) -> Path | None:
    """The clean reference of a noisy photo, or None: same stem, any supported extension, in a ``clean/``
    folder beside the photo's folder (``X/noisy/a.png`` -> ``X/clean/a.*``) or inside it (``X/a.png`` ->
    ``X/clean/a.*``). A file of the photo's own extension wins; then the first by name. A photo that is
    itself in a ``clean/`` folder has no reference.
    """
    path = Path(path)
    folder = path.parent
    if folder.name == REFERENCE_FOLDER:
        return None
    for candidate_folder in (folder.parent / REFERENCE_FOLDER, folder / REFERENCE_FOLDER):
        if candidate_folder == folder or not candidate_folder.is_dir():
            continue
        matches = sorted(
            p for p in candidate_folder.iterdir()
            if p.stem == path.stem and p.suffix.lower() in SUPPORTED_EXTENSIONS and p.is_file()
        )
        if matches:
            same_ext = [p for p in matches if p.suffix.lower() == path.suffix.lower()]
            return (same_ext or matches)[0]
    return None


def reference_metrics(noisy: Image, denoised: Image, reference: Image) -> tuple[dict[str, float | None], str]:
    """PSNR (dB) and SSIM of the noisy and the denoised colour against the reference, on a 0-1 scale.

    Returns the figures and an empty note, or no figures and a note saying why they cannot be compared
    (size or channel count differ). The denoised image is measured as computed, before encoding.
    """
    if (reference.width, reference.height) != (noisy.width, noisy.height):
        return {}, (f"reference is {reference.width}x{reference.height}, the photo {noisy.width}x{noisy.height}: "
                    "not compared")
    ref = to_float(reference.color_pixels())
    if ref.shape[2] != noisy.color_pixels().shape[2]:
        return {}, (f"reference has {ref.shape[2]} colour channel(s), the photo {noisy.color_pixels().shape[2]}: "
                    "not compared")
    figures: dict[str, float | None] = {}
    for label, image in (("noisy", noisy), ("denoised", denoised)):
        values = to_float(image.color_pixels())
        figures[f"psnr_{label}"] = finite_or_none(psnr(ref, values, peak=1.0))
        figures[f"ssim_{label}"] = finite_or_none(ssim(ref, values, peak=1.0))
    return figures, ""


def compare_with_reference(source: Path, image: Image,
                           denoised: Image) -> tuple[Path | None, dict[str, float | None], str]:
    """The clean reference found beside ``source`` (or None), the metrics of the noisy photo and of the result
    against it, and a note when it could not be compared (a bad reference never fails a denoised file)."""
    reference = find_reference(source)
    if reference is None:
        return None, {}, ""
    try:
        metrics, note = reference_metrics(image, denoised, read_image(reference))
    except Exception as err:  # noqa: BLE001 - a bad reference must not fail a file that was denoised
        return reference, {}, f"reference not compared: {failure_message(reference, err)}"
    return reference, metrics, note
