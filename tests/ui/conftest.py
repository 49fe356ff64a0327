"""Fixtures shared by the app's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ui.worker import WorkerBridge


@pytest.fixture
def bridge() -> Iterator[WorkerBridge]:
    """A worker bridge that must shut down cleanly (its lanes stopped) at the end of the test."""
    worker = WorkerBridge()
    yield worker
    assert worker.shutdown(10_000)
