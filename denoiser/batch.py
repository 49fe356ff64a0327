"""Denoise files and folders: one result per file, a failed file never stops the rest.

Outputs go to a separate folder under a new name (``{stem}_denoised`` by default) that never collides with
an input or with an existing file; writes are atomic, so a stopped or crashed run leaves no partial file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from denoiser.errors import Cancelled, DenoiserError
from denoiser.inference import TileSettings, denoise_array
from denoiser.io import Image, find_images, read_image, write_image
from denoiser.models import Autoencoder
from denoiser.noise import estimate_noise
from denoiser.progress import Progress, ProgressFn, StopFn, ignore_progress

DEFAULT_PATTERN = "{stem}_denoised"
MAX_SIGMA = 75.0
"""The top of the range the models are trained on; auto strength never asks for more."""


@dataclass
class DenoiseSettings:
    """What to do to each file."""

    strength: float | None = None
    """Noise level sigma in 0-255 units; None estimates it per image ("auto")."""
    tiles: TileSettings = field(default_factory=TileSettings)
    device: str = "auto"
    pattern: str = DEFAULT_PATTERN
    """Output file name without extension; ``{stem}`` is the input's name without extension."""
    extension: str | None = None
    """Output extension (e.g. ``.png``); None keeps the input's."""
    quality: int = 95
    keep_metadata: bool = True


@dataclass
class FileResult:
    """How one file went."""

    source: Path
    output: Path | None
    status: str
    """``done`` or ``failed``."""
    message: str = ""
    sigma: float | None = None
    seconds: float = 0.0


def auto_strength(color: np.ndarray) -> float:
    """The noise level to denoise at when the user chose "auto": the estimate, capped to the trained range."""
    return float(min(MAX_SIGMA, estimate_noise(color)))


def denoise_image(
    image: Image,
    model: Autoencoder,
    settings: DenoiseSettings,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> tuple[Image, float]:
    """Denoise the colour of ``image`` (alpha untouched, bit depth kept); returns the result and sigma used."""
    # The native uint8/uint16 pixels go in as they are: a float copy of a 24 MP photo would cost 288 MB.
    pixels = image.color_pixels()
    sigma = settings.strength if settings.strength is not None else auto_strength(pixels)
    cleaned = denoise_array(pixels, model, sigma, tiles=settings.tiles, device=settings.device,
                            on_progress=on_progress, should_stop=should_stop)
    return image.with_color(np.clip(cleaned, 0.0, 1.0, out=cleaned)), sigma


def output_path_for(source: Path, out_dir: Path, settings: DenoiseSettings, relative_to: Path | None = None) -> Path:
    """Where the result of ``source`` goes before collisions are resolved: same sub-folder, new name."""
    sub = source.parent.relative_to(relative_to) if relative_to is not None else Path()
    name = settings.pattern.format(stem=source.stem)
    if not name or "/" in name or "\\" in name:
        raise DenoiserError(f"output name pattern {settings.pattern!r} gives an invalid name {name!r}")
    return out_dir / sub / f"{name}{settings.extension or source.suffix}"


def unique_path(path: Path, taken: set[Path] | None = None) -> Path:
    """``path`` itself if free, else ``stem-2``, ``stem-3``... Existing files (inputs included) and the
    resolved paths in ``taken`` count as used."""
    taken = taken or set()
    candidate, number = path, 1
    while candidate.exists() or candidate.resolve() in taken:
        number += 1
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
    return candidate


def plan_outputs(inputs: list[str | Path], out_dir: str | Path, settings: DenoiseSettings) -> list[tuple[Path, Path]]:
    """(input, output) pairs for the files and folders given; folders keep their tree under ``out_dir``.

    No output is an input, an existing file, or another planned output.
    """
    out_dir = Path(out_dir)
    plan: list[tuple[Path, Path]] = []
    taken: set[Path] = set()
    for item in inputs:
        root = Path(item)
        for file in find_images([root]):
            target = unique_path(output_path_for(file, out_dir, settings, root if root.is_dir() else None), taken)
            taken.add(target.resolve())
            plan.append((file, target))
    return plan


def denoise_files(
    plan: list[tuple[Path, Path]],
    model: Autoencoder,
    settings: DenoiseSettings,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> Iterator[FileResult]:
    """Denoise each (input, output) pair; yields a result per file. Cancelled propagates; other errors don't."""
    on_progress = on_progress or ignore_progress
    protected = [source for source, _ in plan]
    for index, (source, target) in enumerate(plan):
        on_progress(Progress("files", index, len(plan), f"{source.name}"))
        started = time.monotonic()

        def tile_progress(event: Progress, index: int = index, name: str = source.name) -> None:
            on_progress(Progress("tiles", event.done, event.total, name, extra={"file": index}))

        try:
            image = read_image(source)
            result, sigma = denoise_image(image, model, settings, tile_progress, should_stop)
            written = write_image(target, result, quality=settings.quality, keep_metadata=settings.keep_metadata,
                                  protected=protected)
            yield FileResult(source, written, "done", "", sigma, time.monotonic() - started)
        except Cancelled:
            raise
        except DenoiserError as err:
            yield FileResult(source, None, "failed", str(err), None, time.monotonic() - started)
        except (torch.OutOfMemoryError, MemoryError) as err:
            yield FileResult(source, None, "failed", f"{source}: out of memory ({err})", None,
                             time.monotonic() - started)
        except Exception as err:  # noqa: BLE001 - one file's unforeseen failure must not stop the batch
            message = f"{source}: unexpected {type(err).__name__}: {err}"
            yield FileResult(source, None, "failed", message, None, time.monotonic() - started)
    on_progress(Progress("files", len(plan), len(plan)))
