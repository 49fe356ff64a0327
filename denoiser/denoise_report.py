"""What ``denoiser denoise`` tells while and after it runs: progress (tqdm bars at a terminal, one plain line per
file in a log) and the report (an ``ok``/``skip`` line per file on stdout, failures, warnings and the summary on
stderr, or one JSON document with ``--json``)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from denoiser.cli_common import Console
from denoiser.progress import Progress

if TYPE_CHECKING:
    from denoiser.batch import FileResult


class _Bar:
    """A tqdm bar on stderr fed by engine progress events."""

    def __init__(self, unit: str, total: int = 0, leave: bool = False) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=leave)

    def __call__(self, event: Progress) -> None:
        if event.total and self.bar.total != event.total:
            self.bar.reset(total=event.total)
        self.bar.n = event.done
        self.bar.set_description(event.message[:40] if event.message else event.stage, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


class DenoiseProgress:
    """The batch's progress: at a terminal, a bar for the files and one for the tiles of the current file; in a
    log (stderr not a terminal), one plain line as each file starts. Nothing with ``-q``. Engine notes (an
    out-of-memory retry) are notes on stderr."""

    def __init__(self, console: Console, total: int) -> None:
        self.console = console
        self.total = total
        self.files: _Bar | None = None
        self.tiles: _Bar | None = None
        if console.shows_bars:
            self.files, self.tiles = _Bar("file", total=total, leave=True), _Bar("tile", leave=False)
            console.bars_open = True

    def __call__(self, event: Progress) -> None:
        """An engine progress event (stages ``files``, ``tiles`` and ``denoise``)."""
        if event.stage == "files" and "result" not in event.extra:
            self._file_started(event.done, event.extra.get("path", event.message))
        elif event.stage in ("tiles", "denoise"):
            if not event.total:
                if event.message:
                    self.console.note(event.message)
            elif self.tiles is not None:
                self.tiles(event)

    def _file_started(self, index: int, source: object) -> None:
        if self.files is None:
            self.console.note(f"[{index + 1}/{self.total}] {source}")

    def file_finished(self) -> None:
        """One more file is through."""
        if self.files is not None:
            self.files.bar.update(1)

    def close(self) -> None:
        """Take the bars off the terminal."""
        for bar in (self.tiles, self.files):
            if bar is not None:
                bar.close()
        self.console.bars_open = False


def result_record(result: FileResult) -> dict[str, Any]:
    """One file's result as plain JSON values (``--json``)."""
    return {
        "source": str(result.source),
        "output": str(result.output) if result.output is not None else None,
        "status": result.status,
        "resumed": result.resumed,
        "sigma": result.sigma,
        "seconds": round(result.seconds, 3),
        "findings": result.findings,
        "message": result.message,
        "reference": str(result.reference) if result.reference is not None else None,
        "metrics": result.metrics,
    }


class DenoiseReport:
    """What ``denoise`` tells: a line per file on stdout (or one JSON document at the end with ``--json``),
    failures and warnings on stderr, details with ``-v``, and the summary on stderr."""

    def __init__(self, console: Console, as_json: bool) -> None:
        self.console = console
        self.as_json = as_json
        self.results: list[FileResult] = []
        self.warnings = 0
        self.started = time.monotonic()

    def count(self, status: str) -> int:
        """How many files so far ended with ``status``."""
        return sum(1 for result in self.results if result.status == status)

    def add(self, result: FileResult) -> None:
        """Tell one file's result."""
        self.results.append(result)
        console = self.console
        if result.status == "failed":
            console.error(f"FAILED  {result.message}")
            return
        if not self.as_json:
            console.report(self._result_line(result))
        for finding in result.findings:
            self.warnings += 1
            console.note(f"  warning: {finding['message']} {finding['advice']}")
        if result.status == "done":
            console.detail(f"  {result.source.name}: {result.seconds:.2f} s")
        if result.reference_note:
            console.detail(f"  {result.reference_note}")
        elif result.metrics:
            figures = ", ".join(f"{key} {value:.4g}" for key, value in result.metrics.items() if value is not None)
            console.detail(f"  against {result.reference}: {figures}")

    @staticmethod
    def _result_line(result: FileResult) -> str:
        if result.status == "done":
            return f"ok      {result.source} -> {result.output} (sigma {result.sigma:.1f})"
        if result.output is None:  # another run is on it
            return f"skip    {result.source} ({result.message})"
        reason = "already done" if result.resumed else "output exists"
        return f"skip    {result.source} -> {result.output} ({reason})"

    def finish(self, model_name: str, output: Path, manifest: Path | None, stopped: str = "",
               one_file: bool = False) -> None:
        """The summary on stderr; with ``--json`` the document on stdout. ``output``: the ``-o`` folder, or with
        ``one_file`` the file asked for, said as the file the result went to when that differs (``r-2.png``, ``r.png``
        being taken). ``stopped``: why the batch ended early (``interrupted``, or an error's message)."""
        elapsed = time.monotonic() - self.started
        if one_file:
            output = next((result.output for result in self.results if result.output is not None), output)
        done, failed, skipped = self.count("done"), self.count("failed"), self.count("skipped")
        if self.as_json:
            self.console.result(json.dumps({
                "model": model_name, "output": str(output), "manifest": str(manifest) if manifest else None,
                "files": [result_record(result) for result in self.results],
                "totals": {"done": done, "failed": failed, "skipped": skipped, "warnings": self.warnings,
                           "seconds": round(elapsed, 3)},
                "interrupted": stopped == "interrupted",
                "error": stopped if stopped and stopped != "interrupted" else None,
            }, indent=2))
        if stopped:
            return
        self.console.note(f"{done} denoised, {failed} failed, {skipped} skipped, in {elapsed:.1f} s with model "
                          f"{model_name}; results in {output}")
        if self.warnings:
            also = f"; they are also in {manifest}" if manifest else ""
            self.console.note(f"{self.warnings} warning(s) above{also}")
