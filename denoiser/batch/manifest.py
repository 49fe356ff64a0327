"""The batch record in an output folder: what was done to which input, how, where, and who is working on what.

One entry per input file (input path and SHA-256, model name and fingerprint, the settings that shape the
output, status, output path and its SHA-256, seconds, sigma, PSNR/SSIM against a clean reference when one is
found). On disk it is two files beside the outputs:

- ``denoiser-manifest.json``, a snapshot (``{"format", "version", "files", "outputs"}``), replaced atomically;
- ``denoiser-manifest.journal``, JSON lines appended (and fsynced) as each file is claimed and as it lands.

Every change happens under a lock on the folder (``.denoiser-manifest.lock``, through ``filelock``), after
reading what other writers appended meanwhile, so two batches writing into one folder lose nothing and never
both take the same input or the same output name. A process killed at any instruction leaves at most a torn last
journal line, which is ignored. :meth:`Manifest.compact` folds the journal into the snapshot (at the end of a
run); reading is the snapshot, then the journal replayed over it.

Statuses: ``done``, ``failed``, ``skipped``, and ``running`` for a claim (the owner's host, process and run, the
output name it reserved, and once encoded, that output's SHA-256). A claim whose process is gone is stale: a
rerun adopts its output when the file there has that hash, and deletes the hidden temporary files it left.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock

from denoiser.batch.results import FileResult, finite_or_none
from denoiser.errors import DenoiserError, reason
from denoiser.io import atomic_write, sync_folder

MANIFEST_NAME = "denoiser-manifest.json"
JOURNAL_NAME = "denoiser-manifest.journal"
LOCK_NAME = ".denoiser-manifest.lock"
MANIFEST_VERSION = 2
"""2 adds the journal, claims and ``outputs``; version 1 snapshots read as they are."""

FOREIGN_CLAIM_HOURS = 24.0
"""A claim from another machine (a shared folder) counts as live for this long: its process cannot be checked."""

_LIVE_RUNS: set[str] = set()
"""Run ids of this process's batches that are running now (so a claim of this process is known live or not)."""


def manifest_key(path: Path) -> str:
    """The manifest's key for an input: its absolute, resolved path."""
    return str(Path(path).resolve())


def now_text() -> str:
    """The time now, UTC, as ISO 8601 seconds (what the manifest records)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def new_owner(run_id: str) -> dict[str, Any]:
    """The owner record of a claim made by this process for run ``run_id``."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "run": run_id, "started": now_text()}


def register_run(run_id: str, live: bool) -> None:
    """Mark one of this process's runs as running (its claims are live) or finished."""
    (_LIVE_RUNS.add if live else _LIVE_RUNS.discard)(run_id)


def owner_is_live(owner: dict[str, Any]) -> bool:
    """Whether the process that made a claim may still be working on it."""
    if not isinstance(owner, dict):
        return False
    if owner.get("host") != socket.gethostname():
        try:
            started = datetime.datetime.fromisoformat(str(owner.get("started")))
        except ValueError:
            return False
        age = datetime.datetime.now(datetime.timezone.utc) - started
        return age.total_seconds() < FOREIGN_CLAIM_HOURS * 3600
    pid = owner.get("pid")
    if pid == os.getpid():
        return owner.get("run") in _LIVE_RUNS
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    except OSError:
        return False
    return True


class Manifest:
    """The batch record of one output folder (see the module's description). Read with :meth:`load`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.journal = self.folder / JOURNAL_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        self.written_outputs: set[str] = set()
        """Every output any run recorded here, even after its entry was replaced: never taken as an input."""
        self._seen: tuple[Any, Any, int] | None = None  # (snapshot identity, journal identity, journal offset)
        self._lock = FileLock(str(self.folder / LOCK_NAME))

    # -- reading -----------------------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path) -> Manifest:
        """The manifest in ``folder`` (empty when there is none). A file that is not a Denoiser manifest raises
        DenoiserError naming it rather than being silently replaced."""
        manifest = cls(Path(folder))
        if manifest.folder.is_dir():
            with manifest.locked():
                pass  # locked() reads everything
        return manifest

    @contextlib.contextmanager
    def locked(self) -> Iterator[Manifest]:
        """Hold the folder's lock, with every entry other writers added read in; changes are made inside."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock.acquire()
        except OSError as err:
            raise DenoiserError(f"{self.folder}: cannot write in the output folder ({reason(err)}); choose a "
                                "folder you can write to") from err
        try:
            self.refresh()
            yield self
        finally:
            self._lock.release()

    def refresh(self) -> None:
        """Read what changed on disk: the new journal lines, or everything when the snapshot was replaced."""
        snapshot_id = _identity(self.path)
        journal_id = _identity(self.journal)
        if self._seen is None or self._seen[0] != snapshot_id or _journal_restarted(self._seen[1], journal_id):
            self.entries, self.written_outputs = self._read_snapshot()
            offset = 0
        else:
            offset = self._seen[2]
        offset = self._replay(offset)
        self._seen = (snapshot_id, journal_id, offset)

    def _read_snapshot(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        if not self.path.is_file():
            return {}, set()
        try:
            data = _strict_json(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
            raise DenoiserError(f"{self.path}: the batch manifest cannot be read ({err}); move it away to start "
                                "afresh") from err
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict) or not isinstance(data.get("version", 0), int) \
                or data.get("version", 0) > MANIFEST_VERSION:
            raise DenoiserError(f"{self.path}: not a batch manifest this version of Denoiser understands; move it "
                                "away to start afresh")
        listed = data.get("outputs", [])
        outputs = {p for p in listed if _usable_path(p)} if isinstance(listed, list) else set()
        outputs.update(o for e in files.values() if isinstance(e, dict) and (o := _output_of(e)))
        entries = {str(k): v for k, v in files.items() if well_formed(v)}  # a damaged entry is left out
        return entries, outputs

    def _replay(self, offset: int) -> int:
        """Apply the journal's complete lines from byte ``offset``; returns the offset after the last one."""
        try:
            with open(self.journal, "rb") as handle:
                handle.seek(offset)
                data = handle.read()
        except FileNotFoundError:
            return 0
        except OSError as err:
            raise DenoiserError(f"{self.journal}: the batch journal cannot be read ({err})") from err
        consumed = 0
        for line in data.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # a torn last line (a writer killed while appending): ignored, completed by nobody
            consumed += len(line)
            try:
                change = _strict_json(line)
            except (UnicodeDecodeError, ValueError, RecursionError):
                continue  # a torn line followed by later appends
            if isinstance(change, dict) and isinstance(change.get("key"), str) \
                    and (change.get("entry") is None or well_formed(change["entry"])):
                self._apply(change["key"], change.get("entry"))
        return offset + consumed

    def _apply(self, key: str, entry: dict[str, Any] | None) -> None:
        if entry is None:
            self.entries.pop(key, None)
            return
        self.entries[key] = entry
        output = _output_of(entry)
        if output and entry.get("status") == "done":
            self.written_outputs.add(output)

    # -- questions ---------------------------------------------------------------------------------------------

    def get(self, source: Path) -> dict[str, Any] | None:
        """The entry for input ``source``, if any."""
        return self.entries.get(manifest_key(source))

    def outputs(self) -> set[Path]:
        """The resolved output paths the manifest knows of, now or before (so they are never taken as inputs),
        and the names that live claims reserved."""
        paths = {Path(p).resolve() for p in self.written_outputs}
        paths.update(Path(o).resolve() for e in self.entries.values() if (o := _output_of(e)))
        return paths

    def reserved_outputs(self) -> set[Path]:
        """Output names reserved by claims whose process is still working."""
        return {Path(o).resolve() for e in self.entries.values()
                if e.get("status") == "running" and (o := _output_of(e)) and owner_is_live(e.get("owner", {}))}

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

    # -- changes (inside :meth:`locked`) -----------------------------------------------------------------------

    def put(self, source: Path, entry: dict[str, Any] | None) -> None:
        """Set (or with None remove) the entry of ``source``: appended to the journal and fsynced at once."""
        key = manifest_key(source)
        line = json.dumps({"key": key, "entry": entry}, sort_keys=True, allow_nan=False) + "\n"
        new_file = not self.journal.exists()
        try:
            with open(self.journal, "ab") as handle:
                if handle.tell() and not _ends_with_newline(self.journal):
                    handle.write(b"\n")  # after a torn line, start a fresh one
                handle.write(line.encode("utf-8"))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise DenoiserError(f"{self.journal}: the batch record cannot be written ({reason(err)}); free some "
                                "space or choose another output folder, then run the same command again") from err
        if new_file:
            sync_folder(self.folder)
        self._apply(key, entry)
        self._seen = (self._seen[0], _identity(self.journal), self.journal.stat().st_size) if self._seen else None

    def record(self, result: FileResult, model_name: str, fingerprint: str, signature: dict[str, Any],
               options: dict[str, Any] | None = None, output_sha256: str | None = None) -> None:
        """Record how ``result`` went (replacing the input's entry).

        A failure never replaces an entry that says the input is done and whose output still exists: that
        entry is kept, with the failure noted under ``last_failure``. ``signature``
        (:meth:`~denoiser.batch.settings.DenoiseSettings.output_signature`) is what a rerun compares;
        ``options`` is recorded for the record only.
        """
        previous = self.get(result.source)
        if previous is not None and previous.get("status") == "running":
            previous = previous.get("previous")
        if result.status != "done" and _done_with_output(previous):
            kept = dict(previous or {})
            kept["last_failure"] = {"status": result.status, "message": result.message, "when": now_text()}
            self.put(result.source, kept)
            return
        self.put(result.source, {
            "input": str(result.source.resolve()),
            "input_sha256": result.input_sha256,
            "model": model_name,
            "model_fingerprint": fingerprint,
            "settings": signature,
            "options": dict(options or {}),
            "status": result.status,
            "output": str(result.output.resolve()) if result.output is not None else None,
            "output_sha256": output_sha256,
            "seconds": round(result.seconds, 3),
            "sigma": finite_or_none(result.sigma) if result.sigma is not None else None,
            "message": result.message,
            "reference": str(result.reference.resolve()) if result.reference is not None else None,
            "metrics": dict(result.metrics),
            "reference_note": result.reference_note,
            "findings": list(result.findings),
            "finished": now_text(),
        })

    def compact(self) -> None:
        """Fold the journal into the snapshot (atomically), then empty the journal. Takes the lock itself."""
        with self.locked():
            payload = {"format": "denoiser-batch-manifest", "version": MANIFEST_VERSION, "files": self.entries,
                       "outputs": sorted(self.written_outputs)}
            # allow_nan=False: the file must stay valid JSON for any reader, not just Python's.
            text = json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
            try:
                with atomic_write(self.path) as temporary:
                    temporary.write_text(text, encoding="utf-8")
            except OSError as err:  # the journal keeps every entry: nothing is lost, the next run folds it in
                raise DenoiserError(f"{self.path}: the batch manifest cannot be written ({reason(err)}); free "
                                    "some space, then run the same command again") from err
            # A crash here leaves a journal whose lines the snapshot holds already: replaying them changes nothing.
            with contextlib.suppress(FileNotFoundError):
                self.journal.unlink()
            sync_folder(self.folder)
            self._seen = (_identity(self.path), None, 0)

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the manifest's own leftover temporary files (only ever written under the lock: any found while
        holding it are from a process that died). Call inside :meth:`locked`; returns what was deleted."""
        removed = []
        for temporary in self.folder.glob(f".{Path(MANIFEST_NAME).stem}.tmp-*"):
            with contextlib.suppress(OSError):
                temporary.unlink()
                removed.append(temporary)
        return removed


_ENTRY_FIELDS: dict[str, tuple[type, ...]] = {
    "status": (str,), "output": (str, type(None)), "settings": (dict,), "options": (dict,), "owner": (dict,),
    "previous": (dict, type(None)), "findings": (list,), "metrics": (dict,), "last_failure": (dict,),
    "model": (str, type(None)), "model_fingerprint": (str, type(None)), "input_sha256": (str, type(None)),
    "output_sha256": (str, type(None)), "input": (str, type(None)), "message": (str, type(None)),
    "sigma": (int, float, type(None)), "seconds": (int, float, type(None)),
}
STATUSES = ("done", "failed", "skipped", "running")


def well_formed(entry: Any) -> bool:
    """Whether ``entry`` has the shape this module writes: the known fields of their types, a known status, an
    output path a file system takes. An entry that is not (a hand edit, a damaged disk) is left out on reading."""
    if not isinstance(entry, dict) or entry.get("status") not in STATUSES:
        return False
    if any(key in entry and not isinstance(entry[key], types) for key, types in _ENTRY_FIELDS.items()):
        return False
    if entry.get("output") is not None and not _usable_path(entry["output"]):
        return False
    return entry.get("previous") is None or well_formed(entry["previous"])


def _strict_json(text: str | bytes) -> Any:
    """JSON as this module writes it (``allow_nan=False``): NaN, infinity and numbers too large for a float are
    refused (ValueError) rather than read into an entry that could never be written back."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _output_of(entry: dict[str, Any] | None) -> str | None:
    output = (entry or {}).get("output")
    return output if _usable_path(output) else None


def _usable_path(value: object) -> bool:
    """A path as the manifest may hold one: text, not empty, without the NUL byte no file system takes."""
    return isinstance(value, str) and bool(value) and "\0" not in value


def _done_with_output(entry: dict[str, Any] | None) -> bool:
    output = _output_of(entry)
    return bool(entry and entry.get("status") == "done" and output and Path(output).is_file())


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns)


def _journal_restarted(before: Any, now: Any) -> bool:
    """The journal was removed or replaced (compaction) since it was last read: its offsets mean nothing."""
    if before is None:
        return False  # there was no journal: reading the new one from its start is right
    return now is None or before[:2] != now[:2]


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"
