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


@pytest.fixture(autouse=True)
def no_log_file_left_behind() -> Iterator[None]:
    """``ui.app.main`` installs the app's log file handler (in the test's private log folder): remove it after."""
    yield
    from ui.logging_setup import teardown_logging

    teardown_logging()
