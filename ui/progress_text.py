"""Percent done and time left of a running job, from its ``Progress`` counts, for the status bar and the
result pane. Plain Python (no Qt): the clock is injectable so tests need not wait."""

from __future__ import annotations

import time
from collections.abc import Callable

from denoiser.formatting import duration_text

__all__ = ["ProgressClock", "progress_text"]


class ProgressClock:
    """Turns a stage's (done, total) reports into (percent, seconds left).

    The rate is measured from the first report of a stage: a new total (the preview's tiles, then the whole
    photo's) or counts going backwards start the measurement again, so the time left is never the preview's.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._total = -1
        self._start = (0.0, 0)  # (time, done) of the stage's first report
        self._last_done = 0

    def reset(self) -> None:
        """Forget the stage measured so far (a new job starts)."""
        self._total = -1

    def update(self, done: int, total: int) -> tuple[int, float | None]:
        """The percent done (0-100) and the seconds left (None until two reports give a rate)."""
        now = self._clock()
        if total != self._total or done < self._last_done:
            self._total, self._start = total, (now, done)
        self._last_done = done
        percent = 0 if total <= 0 else min(100, int(100 * done / total))
        started_at, started_done = self._start
        if done <= started_done or now <= started_at:
            return percent, None
        rate = (done - started_done) / (now - started_at)
        return percent, max(0, total - done) / rate


def progress_text(what: str, percent: int, seconds_left: float | None) -> str:
    """``Denoising a.jpg: 42 %, about 12 s left`` (``estimating the time left`` until it is known)."""
    left = "estimating the time left..." if seconds_left is None else f"about {duration_text(seconds_left)} left"
    return f"{what}: {percent} %, {left}"
