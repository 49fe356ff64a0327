"""One worker of a batch on a Ray cluster: it loads the model once, then denoises the files it is handed into
encoded bytes.

Nothing here imports Ray (:mod:`~denoiser.batch.ray_pool` makes the class an actor), so the worker's job can
be run and tested in-process. A worker never writes into the output folder: each result goes through
:func:`~denoiser.batch.single.denoise_image` and :func:`~denoiser.io.write_image` with the batch's settings,
exactly as the local batch does, into a scratch folder of its own, and its bytes are handed back. The
driver (:mod:`~denoiser.batch.ray_run`) writes them into the name it claimed, noting their hash in the manifest
before the rename, as the local batch does. So a worker killed mid-file leaves nothing in the output folder, and
its file can go to another worker.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from denoiser.batch.failures import failure_message
from denoiser.batch.references import compare_with_reference
from denoiser.batch.run import file_findings
from denoiser.batch.settings import BatchSettings
from denoiser.batch.single import denoise_image
from denoiser.errors import ModelLoadError, first_line
from denoiser.exported import ExportedModel
from denoiser.inference import resolve_device
from denoiser.io import read_image, write_image
from denoiser.model_identity import model_fingerprint
from denoiser.model_loading import load_model_for_inference

if TYPE_CHECKING:
    from denoiser.models import Autoencoder

SCRATCH_PREFIX = "denoiser-ray-"
"""Where a worker encodes one file, in the system's temporary folder: ``denoiser-ray-<pid>-XXXX``, deleted once
its bytes are read (or by the next worker on the machine when it was killed meanwhile)."""


@dataclass
class EncodedFile:
    """What a worker hands back for one file: the encoded output and what to record about it, or why there is
    none (``data`` None, ``message`` naming the file)."""

    data: bytes | None
    sigma: float | None = None
    findings: list[dict[str, str]] = field(default_factory=list)
    reference: Path | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    reference_note: str = ""
    message: str = ""
    seconds: float = 0.0
    """Time the worker spent on the file (reading, denoising, encoding, comparing)."""


@dataclass(frozen=True)
class WorkerInfo:
    """Where a worker runs, and why it cannot work when it cannot."""

    host: str
    pid: int
    device: str
    problem: str = ""
    """The model or the device could not be had there (the message names the file or the device)."""


class FileDenoiser:
    """Denoises files with one model loaded once (the body of a Ray actor; see the module's description).

    ``model_path`` is tried first, then ``model_name`` (a bundled or library model on a machine where the path
    differs); the model must have the ``fingerprint`` the driver records. ``threads``: CPU threads for torch and
    ONNX Runtime (the CPU cores the worker was given). A worker that cannot load the model or use the device says
    so in :meth:`info` rather than by raising (Ray cannot carry the engine's errors back).
    """

    def __init__(self, model_path: str | None, model_name: str, fingerprint: str, settings: BatchSettings,
                 threads: int) -> None:
        _use_threads(threads)
        self.settings = settings
        self.device, self.problem = settings.device, ""
        try:
            self.model = _load_model(model_path, model_name, fingerprint)
            self.device = str(resolve_device(settings.device))  # a device this machine lacks fails here, once
        except Exception as err:  # noqa: BLE001 - told by info(), whatever it is
            self.problem = first_line(err)
        _remove_scratch_of_dead_workers()

    def info(self) -> WorkerInfo:
        """Where this worker runs (its process id and device), and its problem if it has one."""
        return WorkerInfo(socket.gethostname(), os.getpid(), self.device, self.problem)

    def denoise(self, source: Path, target: Path) -> EncodedFile:
        """Denoise ``source`` and encode the result as the file ``target`` (which the driver writes) will hold it;
        a failure is the answer's message, naming ``target`` where it concerns the output, never an exception."""
        started = time.monotonic()
        settings = self.settings
        encoded: Path | None = None
        try:
            image = read_image(source)
            outcome = denoise_image(image, self.model, settings)
            with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-") as scratch:
                encoded = Path(scratch) / target.name
                write_image(encoded, outcome.image, quality=settings.quality, keep_metadata=settings.keep_metadata,
                            bit_depth=settings.bit_depth, protected=[source])
                data = encoded.read_bytes()
        except Exception as err:  # noqa: BLE001 - one file's failure, foreseen or not, is that file's result
            message = failure_message(source, err)
            if encoded is not None:
                message = message.replace(str(encoded), str(target))
            return EncodedFile(None, message=message, seconds=time.monotonic() - started)
        result = EncodedFile(data, sigma=float(outcome.sigma),
                             findings=file_findings(source, image, outcome, settings, target.name))
        result.reference, result.metrics, result.reference_note = compare_with_reference(source, image,
                                                                                         outcome.image)
        return dataclasses.replace(result, seconds=time.monotonic() - started)


def _load_model(model_path: str | None, model_name: str, fingerprint: str) -> Autoencoder | ExportedModel:
    """The batch's model on this machine: from its path, else by its name; refused when its weights differ."""
    spec = model_path if model_path and Path(model_path).is_file() else model_name
    model, _ = load_model_for_inference(spec)
    if model_fingerprint(model) != fingerprint:
        raise ModelLoadError(Path(spec), f"on {socket.gethostname()} this is not the model the batch runs with (its "
                                         "weights differ); give every machine the same model file")
    return model


def _use_threads(threads: int) -> None:
    """Run torch and ONNX Runtime on ``threads`` CPU threads (ONNX Runtime reads ``OMP_NUM_THREADS``)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


def _remove_scratch_of_dead_workers() -> None:
    """Delete the scratch folders on this machine whose worker process is gone (killed mid-file)."""
    for folder in Path(tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*-*"):
        pid_text = folder.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid_text.isdigit() and not _process_exists(int(pid_text)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process (PermissionError) is alive
        return True
    return True
