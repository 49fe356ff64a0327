"""The batch record in an output folder, ``denoiser-manifest.json``: what was done to which input, how, and where.

One entry per input file (input path and SHA-256, model name and fingerprint, the settings that shape the
output, status, output path, seconds, sigma, PSNR/SSIM against a clean reference when one is found). The
manifest is rewritten atomically after every file, so it is valid JSON whenever the batch is killed; a rerun
skips every file recorded as done from the same input bytes, model and settings whose output still exists.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from denoiser.batch.results import FileResult, finite_or_none
from denoiser.errors import DenoiserError
from denoiser.io import atomic_write

MANIFEST_NAME = "denoiser-manifest.json"
MANIFEST_VERSION = 1


def manifest_key(path: Path) -> str:
    """The manifest's key for an input: its absolute, resolved path."""
    return str(Path(path).resolve())


class Manifest:
    """The batch record in an output folder: ``{"format", "version", "files": {input path: entry}}``.

    Every :meth:`save` rewrites the whole file atomically (temporary file, fsync, rename), so a batch killed
    at any moment leaves either the previous or the new manifest, always valid JSON.
    """

    def __init__(self, path: Path, entries: dict[str, dict[str, Any]] | None = None) -> None:
        self.path = path
        self.entries: dict[str, dict[str, Any]] = entries or {}

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        """The manifest in ``folder`` (empty when there is none). A file that is not a Denoiser manifest
        raises DenoiserError naming it rather than being silently replaced."""
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DenoiserError(f"{path}: the batch manifest cannot be read ({err}); move it away to start "
                                "afresh") from err
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict) or int(data.get("version", 0)) > MANIFEST_VERSION:
            raise DenoiserError(f"{path}: not a batch manifest this version of Denoiser understands; move it "
                                "away to start afresh")
        return cls(path, {str(k): v for k, v in files.items() if isinstance(v, dict)})

    def get(self, source: Path) -> dict[str, Any] | None:
        """The entry for input ``source``, if any."""
        return self.entries.get(manifest_key(source))

    def outputs(self) -> set[Path]:
        """The resolved output paths the manifest knows of (so they are never taken as inputs)."""
        return {Path(e["output"]).resolve() for e in self.entries.values() if isinstance(e.get("output"), str)}

    def done_output(self, source: Path, sha256: str, fingerprint: str, signature: dict[str, Any]) -> Path | None:
        """The output of ``source`` when the manifest says it is done from the same bytes, model and settings
        and that output file still exists; else None."""
        entry = self.get(source)
        if (
            entry is None
            or entry.get("status") != "done"
            or entry.get("input_sha256") != sha256
            or entry.get("model_fingerprint") != fingerprint
            or entry.get("settings") != signature
            or not isinstance(entry.get("output"), str)
        ):
            return None
        output = Path(entry["output"])
        return output if output.is_file() else None

    def record(self, result: FileResult, model_name: str, fingerprint: str, signature: dict[str, Any],
               options: dict[str, Any] | None = None) -> None:
        """Put ``result`` in the manifest (replacing the input's previous entry); call :meth:`save` after.

        ``signature`` (:meth:`DenoiseSettings.output_signature`) is what a rerun compares; ``options``
        (:meth:`BatchSettings.run_options`) is recorded for the record only.
        """
        self.entries[manifest_key(result.source)] = {
            "input": str(result.source.resolve()),
            "input_sha256": result.input_sha256,
            "model": model_name,
            "model_fingerprint": fingerprint,
            "settings": signature,
            "options": dict(options or {}),
            "status": result.status,
            "output": str(result.output.resolve()) if result.output is not None else None,
            "seconds": round(result.seconds, 3),
            "sigma": finite_or_none(result.sigma) if result.sigma is not None else None,
            "message": result.message,
            "reference": str(result.reference.resolve()) if result.reference is not None else None,
            "metrics": dict(result.metrics),
            "reference_note": result.reference_note,
            "findings": list(result.findings),
            "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self) -> None:
        """Write the manifest atomically (the folder is created when missing)."""
        payload = {"format": "denoiser-batch-manifest", "version": MANIFEST_VERSION, "files": self.entries}
        # allow_nan=False: the file must stay valid JSON for any reader, not just Python's.
        text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path) as temporary:
            temporary.write_text(text, encoding="utf-8")
