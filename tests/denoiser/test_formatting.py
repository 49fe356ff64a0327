"""Sizes and durations as the command line and the app write them."""

from __future__ import annotations

from denoiser.formatting import duration_text, size_text


def test_size_text() -> None:
    assert size_text(None) == "?"
    assert size_text(0) == "0 B" and size_text(1023) == "1023 B"
    assert size_text(1024) == "1.0 KiB" and size_text(1536) == "1.5 KiB"
    assert size_text(5 * 1024**2) == "5.0 MiB"
    assert size_text(3 * 1024**3) == "3.0 GiB" and size_text(2048 * 1024**3) == "2048.0 GiB"


def test_duration_text() -> None:
    assert duration_text(-3) == "0 s" and duration_text(12.4) == "12 s" and duration_text(59.6) == "1 min 00 s"
    assert duration_text(125) == "2 min 05 s"
    assert duration_text(3 * 3600 + 120 + 40) == "3 h 02 min"
