"""One photo into one named file (``denoiser denoise photo.jpg -o result.png``): a batch's engine and safety without
a manifest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.batch.failures import failure_message
from denoiser.batch.naming import unique_path
from denoiser.batch.results import FileResult
from denoiser.batch.run import file_findings
from denoiser.batch.settings import BatchSettings
from denoiser.batch.single import denoise_image
from denoiser.exported import ExportedModel
from denoiser.io import read_image, write_image
from denoiser.progress import Progress, ProgressFn

if TYPE_CHECKING:  # torch: the desktop bundle runs exported graphs only
    from denoiser.models import Autoencoder

__all__ = ["collision_target", "denoise_one_file"]


def collision_target(out: Path, collision: str) -> tuple[Path | None, bool]:
    """Where one photo's result goes when OUT may exist: (the path, or None to skip; whether to replace it)."""
    if not out.exists():
        return out, False
    if collision == "skip":
        return None, False
    if collision == "unique":
        return unique_path(out), False
    return out, True


def denoise_one_file(source: Path, out: Path, settings: BatchSettings, model: Autoencoder | ExportedModel,
                     on_progress: ProgressFn) -> FileResult:
    """Denoise ``source`` into the file ``out`` (format from its extension) with the batch's engine, without a
    manifest. Same safety as a batch: the input is never replaced, an existing OUT only with the ``overwrite``
    policy; a failure is the result's message, not an exception."""
    started = time.monotonic()
    target, overwrite = collision_target(out, settings.collision)
    if target is None:
        return FileResult(source, out, "skipped", message=f"{out} already exists (collision policy: skip)")
    on_progress(Progress("files", 0, 1, source.name, extra={"path": source}))
    result = FileResult(source, None, "failed")
    try:
        image = read_image(source)
        outcome = denoise_image(image, model, settings, on_progress)
        result.output = write_image(target, outcome.image, quality=settings.quality,
                                    keep_metadata=settings.keep_metadata, bit_depth=settings.bit_depth,
                                    protected=[source], overwrite=overwrite)
        result.status, result.sigma = "done", float(outcome.sigma)
        result.findings = file_findings(source, image, outcome, settings, result.output.name)
    except Exception as err:  # noqa: BLE001 - reported as a failed file, as in a batch
        result.message = failure_message(source, err)
    result.seconds = time.monotonic() - started
    return result
