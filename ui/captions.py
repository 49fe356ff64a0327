"""Texts the main window shows that are made from plain values: its title (photo, folder, app) and the clean
reference's figures for the side panel. Plain Python, no Qt."""

from __future__ import annotations

from pathlib import Path

__all__ = ["TITLE_DASH", "reference_text", "window_title"]

TITLE_DASH = "\u2014"
"""Separates the photo, its folder and the app's name in the window title."""


def window_title(photo: Path | None, folder: Path | None) -> str:
    """``photo.jpg — folder — Denoiser`` for an open photo (its own folder), ``folder — Denoiser`` for a listed
    folder with no photo open yet, else ``Denoiser``."""
    if photo is not None:
        parts = [photo.name, photo.parent.name or str(photo.parent)]
    elif folder is not None:
        parts = [folder.name or str(folder)]
    else:
        parts = []
    return f" {TITLE_DASH} ".join([*parts, "Denoiser"])


def reference_text(reference: Path, figures: dict[str, float | None], note: str) -> str:
    """The side panel's lines about a clean reference: PSNR and SSIM of the noisy photo and of the result
    against it (``identical`` where they match it exactly), or the ``note`` saying why there are none."""
    if note:
        return f"Reference {reference.name}: {note}"

    def value(key: str, unit: str) -> str:
        number = figures.get(key)
        return "identical" if number is None else f"{number:.2f}{unit}" if unit else f"{number:.4f}"

    return (f"Against {reference.name}:\n"
            f"noisy    PSNR {value('psnr_noisy', ' dB')}, SSIM {value('ssim_noisy', '')}\n"
            f"result   PSNR {value('psnr_denoised', ' dB')}, SSIM {value('ssim_denoised', '')}")
