"""Denoising photos with settings: one photo, or files and folders as a batch that resumes.

One job per module:

- :mod:`~denoiser.batch.settings`: :class:`DenoiseSettings` (what to do to each photo) and :class:`BatchSettings`
- :mod:`~denoiser.batch.single`: :func:`denoise_image`, the single-photo use case the app's Save and the batch share
- :mod:`~denoiser.batch.naming`: output names from the pattern, ``-2`` when a name is taken
- :mod:`~denoiser.batch.fingerprints`: a file's SHA-256 (a model's fingerprint is :mod:`denoiser.model_identity`'s)
- :mod:`~denoiser.batch.references`: clean references and PSNR/SSIM against them
- :mod:`~denoiser.batch.failures`: what a failed file says; whether the output folder refuses writes
- :mod:`~denoiser.batch.results`: :class:`FileResult` and :class:`BatchReport`
- :mod:`~denoiser.batch.manifest`: the record in the output folder that reruns resume from
- :mod:`~denoiser.batch.inputs`: the files a batch covers, never its own outputs
- :mod:`~denoiser.batch.run`: the loop, one :class:`BatchRun` per run (:func:`iter_batch`, :func:`run_batch`)
- :mod:`~denoiser.batch.ray_run`, :mod:`~denoiser.batch.ray_pool`, :mod:`~denoiser.batch.ray_worker`: the batch on a
  Ray cluster (the driver, the actors, one worker's step)
"""

from __future__ import annotations

from denoiser.batch.fingerprints import file_sha256
from denoiser.batch.inputs import collect_inputs
from denoiser.batch.manifest import MANIFEST_NAME, Manifest
from denoiser.batch.naming import output_path_for, unique_path
from denoiser.batch.references import find_reference, reference_metrics
from denoiser.batch.results import BatchReport, FileResult
from denoiser.batch.run import BatchRun, iter_batch, run_batch
from denoiser.batch.settings import (
    COLLISION_POLICIES,
    DEFAULT_PATTERN,
    OUTPUT_FORMATS,
    BatchSettings,
    DenoiseSettings,
    normalize_format,
)
from denoiser.batch.single import Denoised, denoise_image, typical_level
from denoiser.model_identity import model_fingerprint

__all__ = [
    "COLLISION_POLICIES",
    "DEFAULT_PATTERN",
    "MANIFEST_NAME",
    "OUTPUT_FORMATS",
    "BatchReport",
    "BatchRun",
    "BatchSettings",
    "DenoiseSettings",
    "Denoised",
    "FileResult",
    "Manifest",
    "collect_inputs",
    "denoise_image",
    "file_sha256",
    "find_reference",
    "iter_batch",
    "model_fingerprint",
    "normalize_format",
    "output_path_for",
    "reference_metrics",
    "run_batch",
    "typical_level",
    "unique_path",
]
