"""Shared test set-up: headless Qt, a private user folder per test, and a check for leaked QThreads."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def private_user_folder(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty model library and its own log folder, so nothing touches the real user's data
    or log folders."""
    home = tmp_path_factory.mktemp("denoiser-home")
    monkeypatch.setenv("DENOISER_HOME", str(home))
    monkeypatch.setenv("DENOISER_LOG_DIR", str(home / "logs"))
    return home


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and on a busy machine thread hand-offs cost far more."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` when it exists; the test is skipped cleanly when it does not."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA


_started_threads: list[weakref.ref] = []


@pytest.fixture(autouse=True)
def fail_on_running_qthreads() -> Iterator[None]:
    """Fail a test that leaves a QThread running (as napari's conftest does)."""
    try:
        from PySide6.QtCore import QThread
    except ImportError:  # pragma: no cover - Qt is a dependency, but the engine tests need not care
        yield
        return
    original_start = QThread.start

    def tracking_start(self: QThread, *args: object) -> None:
        _started_threads.append(weakref.ref(self))
        original_start(self, *args)

    QThread.start = tracking_start  # type: ignore[method-assign]
    try:
        yield
    finally:
        QThread.start = original_start  # type: ignore[method-assign]
    running = []
    for ref in _started_threads:
        thread = ref()
        try:
            if thread is not None and thread.isRunning():
                running.append(thread)
        except RuntimeError:  # the C++ object is gone: not running
            continue
    _started_threads.clear()
    for thread in running:
        thread.quit()
        thread.wait(2000)
    if running:
        pytest.fail(f"{len(running)} QThread(s) left running after the test")


@pytest.fixture(autouse=True)
def torch_engine_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run the model through torch (no ONNX export of every tiny random model); the ONNX Runtime tests ask
    for it by name (``engine="onnx"``), and the engine choice itself is tested with the variable removed."""
    monkeypatch.setenv("DENOISER_ENGINE", "torch")
