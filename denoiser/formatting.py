"""Sizes and durations as people read them: the one way the command line and the app write them.

Plain text, no Qt and no torch, so the ``denoiser`` command imports it at no cost and the app's dialogs share it.
"""

from __future__ import annotations


def size_text(size: int | None) -> str:
    """A byte count in binary units, as file managers mostly show model files (``"4.2 MiB"``); ``"?"`` if unknown."""
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def duration_text(seconds: float) -> str:
    """A time spent or left, to the second below an hour (``"2 min 05 s"``), to the minute above (``"3 h 02 min"``)."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min {seconds % 60:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
