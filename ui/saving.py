"""What Save and Save As write, and where: the result blended with the detail setting (exactly what the viewer
shows), the name proposed beside the photo, the Save As dialog (the proposed name's format as its filter, the
JPEG/WebP/HEIF/AVIF quality asked and remembered, the original replaced only when confirmed), and the write job
that runs on the ``io`` lane."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from denoiser.display import blend
from denoiser.io import Image, write_image
from denoiser.io.formats import WRITABLE_EXTENSIONS, format_info, result_extension
from ui.file_filters import LOSSY_FORMATS, save_filters
from ui.window_settings import DEFAULT_SAVE_QUALITY, remember_quality, stored_quality

__all__ = ["SavePlan", "ask_quality", "plan_save", "plan_save_as", "result_image", "suggested_path", "write_job"]

QualityAsker = Callable[[str, int], "int | None"]
"""``ask(format, current)``: the quality to write at, None when the user cancelled."""


@dataclass(frozen=True)
class SavePlan:
    """Where and how one save writes."""

    target: Path
    quality: int = DEFAULT_SAVE_QUALITY
    overwrite: bool = False
    """The user agreed to replace an existing file (the file dialog asked)."""
    replace_original: bool = False
    """The target is the open photo itself, and the user confirmed replacing it."""


def result_image(original: Image, denoised: np.ndarray, detail: float) -> Image:
    """The photo with its colour replaced by the result blended with ``detail``: what the viewer shows and what
    is written (full bit depth, the original's metadata)."""
    return original.with_color(blend(original.color(), denoised, detail))


def suggested_path(source: Path) -> Path:
    """``{stem}_denoised{ext}`` beside ``source``, numbered when taken (a camera RAW photo gives ``.tif``)."""
    extension = result_extension(source)
    candidate, number = source.with_name(f"{source.stem}_denoised{extension}"), 1
    while candidate.exists():
        number += 1
        candidate = source.with_name(f"{source.stem}_denoised-{number}{extension}")
    return candidate


def plan_save(source: Path, settings: QSettings) -> SavePlan:
    """Save: beside the photo under a new name (never over the original), at the remembered quality."""
    return SavePlan(suggested_path(source), quality=stored_quality(settings))


def ask_quality(parent: QWidget, fmt: str, current: int) -> int | None:
    """Ask for the quality (1-100) of a lossy format to write at; None when cancelled."""
    name = format_info(fmt).label
    lossless = " WebP at 100 is lossless." if fmt == "WEBP" else ""
    value, ok = QInputDialog.getInt(
        parent, f"{name} quality", f"{name} quality (1-100): higher keeps more detail in a larger file.{lossless}\n"
        "Save uses it too until you choose another.", current, 1, 100)
    return value if ok else None


def _ask_target(parent: QWidget, suggestion: Path) -> Path | None:
    """The Save As file dialog, its filter the proposed name's format; the chosen filter's extension added when
    the dialog left it off. None when cancelled."""
    filters = save_filters()
    fmt = WRITABLE_EXTENSIONS.get(suggestion.suffix.lower(), "PNG")
    path, chosen = QFileDialog.getSaveFileName(parent, "Save As", str(suggestion), ";;".join(filters.values()),
                                               filters.get(fmt, ""))
    if not path:
        return None
    target = Path(path)
    if target.suffix.lower() not in WRITABLE_EXTENSIONS:  # some dialogs leave the filter's extension off
        chosen_format = next((name for name, text in filters.items() if text == chosen), fmt)
        extension = next(ext for ext, name in WRITABLE_EXTENSIONS.items() if name == chosen_format)
        target = target.with_name(target.name + extension)
    return target


def _confirm_replacing(parent: QWidget, target: Path) -> bool:
    """Ask before writing over the original photo (default: Cancel)."""
    answer = QMessageBox.warning(
        parent, "Overwrite the original?",
        f"{target.name} is the original photo. Replace it with the denoised result? "
        "The original cannot be recovered.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
        QMessageBox.StandardButton.Cancel)
    return answer == QMessageBox.StandardButton.Yes


def plan_save_as(parent: QWidget, source: Path, settings: QSettings, ask: QualityAsker) -> SavePlan | None:
    """Save As: ask where (the format follows the extension), ask a lossy format's quality with ``ask`` (and
    remember it), and confirm replacing the original. None when the user cancelled any of them."""
    target = _ask_target(parent, suggested_path(source))
    if target is None:
        return None
    quality = stored_quality(settings)
    target_format = WRITABLE_EXTENSIONS[target.suffix.lower()]
    if target_format in LOSSY_FORMATS:
        asked = ask(target_format, quality)
        if asked is None:
            return None
        quality = asked
        remember_quality(settings, quality)
    if target.resolve() == source.resolve():
        if not _confirm_replacing(parent, target):
            return None
        return SavePlan(target, quality, replace_original=True)
    return SavePlan(target, quality, overwrite=target.exists())  # the dialog already asked


def write_job(plan: SavePlan, result: Image, original: Path) -> Callable[[Any, Any], Path]:
    """The job that writes ``result`` as ``plan`` says; ``original`` is never written unless the plan replaces
    it (then the result carries no source to copy metadata from: it is the source)."""
    protected = [] if plan.replace_original else [original]
    if plan.replace_original:
        result = dataclasses.replace(result, source=None)

    def job(_stop: Any, _progress: Any) -> Path:
        return write_image(plan.target, result, quality=plan.quality, protected=protected,
                           overwrite=plan.overwrite or plan.replace_original)

    return job
