"""The worker bridge: jobs run off the GUI thread, report by signals, cancel, replace, and shut down cleanly."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QThread
from pytestqt.qtbot import QtBot

from denoiser.errors import Cancelled, DenoiserError
from denoiser.progress import Progress, check_stop
from ui.worker import WorkerBridge


def endless_job(running: threading.Event):
    """A job that signals ``running`` and then works until it is told to stop."""

    def job(should_stop, on_progress):
        running.set()
        while True:
            check_stop(should_stop)
            time.sleep(0.005)

    return job


def test_job_runs_off_the_gui_thread_and_reports(qtbot: QtBot, bridge: WorkerBridge) -> None:
    gui_thread = QThread.currentThread()
    seen: dict[str, object] = {}

    def job(should_stop, on_progress):
        seen["thread"] = QThread.currentThread()
        for i in range(3):
            on_progress(Progress("work", i + 1, 3))
        return 42

    progress: list[Progress] = []
    bridge.progress.connect(lambda _id, _name, event: progress.append(event))
    with qtbot.waitSignal(bridge.succeeded, timeout=5000) as blocker:
        job_id = bridge.submit("answer", job)
    assert blocker.args == [job_id, "answer", 42]
    assert seen["thread"] is not gui_thread
    assert [p.done for p in progress] == [1, 2, 3]


def test_engine_errors_become_a_message(qtbot: QtBot, bridge: WorkerBridge) -> None:
    def broken(should_stop, on_progress):
        raise DenoiserError("photo.png: truncated file")

    with qtbot.waitSignal(bridge.failed, timeout=5000) as blocker:
        bridge.submit("load", broken)
    assert blocker.args[2] == "photo.png: truncated file"


def test_unexpected_errors_are_reported_not_raised(qtbot: QtBot, bridge: WorkerBridge) -> None:
    def buggy(should_stop, on_progress):
        return 1 / 0

    with qtbot.waitSignal(bridge.failed, timeout=5000) as blocker:
        bridge.submit("oops", buggy)
    assert "ZeroDivisionError" in blocker.args[2]


def test_cancel_stops_a_running_job(qtbot: QtBot, bridge: WorkerBridge) -> None:
    running = threading.Event()
    bridge.submit("long", endless_job(running))
    assert running.wait(5)
    with qtbot.waitSignal(bridge.cancelled, timeout=5000):
        bridge.cancel()
    qtbot.waitUntil(lambda: not bridge.is_busy(), timeout=5000)


def test_new_job_replaces_the_running_one(qtbot: QtBot, bridge: WorkerBridge) -> None:
    started = threading.Event()
    outcomes: list[tuple[str, str]] = []
    bridge.succeeded.connect(lambda _i, name, _r: outcomes.append((name, "done")))
    bridge.cancelled.connect(lambda _i, name: outcomes.append((name, "cancelled")))

    def slow(should_stop, on_progress):
        started.set()
        while not should_stop():
            time.sleep(0.005)
        raise Cancelled()

    bridge.submit("denoise", slow)
    assert started.wait(5)
    bridge.submit("denoise", lambda s, p: "ok")
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=5000)
    assert outcomes == [("denoise", "cancelled"), ("denoise", "done")]


def test_replace_leaves_jobs_of_other_names_alone(qtbot: QtBot, bridge: WorkerBridge) -> None:
    """A new denoise must not cancel a batch that shares the lane (nor Cancel of one stop the other)."""
    release = threading.Event()
    outcomes: list[tuple[str, str]] = []
    bridge.succeeded.connect(lambda _i, name, _r: outcomes.append((name, "done")))
    bridge.cancelled.connect(lambda _i, name: outcomes.append((name, "cancelled")))

    def batch(should_stop, on_progress):
        release.wait(5)
        check_stop(should_stop)
        return "batch"

    bridge.submit("batch", batch)
    bridge.submit("denoise", lambda s, p: "a")
    bridge.cancel("model", "denoise")
    bridge.submit("denoise", lambda s, p: "b")
    release.set()
    qtbot.waitUntil(lambda: not bridge.is_busy(), timeout=5000)
    assert ("batch", "done") in outcomes and ("batch", "cancelled") not in outcomes
    assert outcomes.count(("denoise", "cancelled")) == 1 and outcomes.count(("denoise", "done")) == 1


def test_waiting_jobs_dropped_by_replace_are_reported_cancelled(qtbot: QtBot, bridge: WorkerBridge) -> None:
    gate = threading.Event()
    cancelled: list[str] = []
    bridge.cancelled.connect(lambda _i, name: cancelled.append(name))

    def blocking(should_stop, on_progress):
        gate.wait(5)
        check_stop(should_stop)

    bridge.submit("job", blocking)
    bridge.submit("job", lambda s, p: None, replace=False)
    bridge.submit("job", lambda s, p: "c", replace=True)  # cancels the running one and the waiting one
    gate.set()
    qtbot.waitUntil(lambda: not bridge.is_busy(), timeout=5000)
    assert cancelled == ["job", "job"]


def test_busy_changed_brackets_model_work(qtbot: QtBot, bridge: WorkerBridge) -> None:
    states: list[bool] = []
    bridge.busy_changed.connect(states.append)
    with qtbot.waitSignal(bridge.succeeded, timeout=5000):
        bridge.submit("quick", lambda s, p: 1)
    qtbot.waitUntil(lambda: states == [True, False], timeout=5000)


def test_io_lane_runs_while_model_lane_is_busy(qtbot: QtBot, bridge: WorkerBridge) -> None:
    release = threading.Event()
    bridge.submit("denoise", lambda s, p: release.wait(5))
    with qtbot.waitSignal(bridge.succeeded, timeout=5000) as blocker:
        bridge.submit("thumbnail", lambda s, p: "thumb", lane="io")
    assert blocker.args[1:] == ["thumbnail", "thumb"]
    release.set()


def test_shutdown_during_a_job_stops_it(qtbot: QtBot) -> None:
    bridge = WorkerBridge()
    running = threading.Event()
    bridge.submit("long", endless_job(running))
    assert running.wait(5)
    assert bridge.shutdown(5000)
    with pytest.raises(RuntimeError):
        bridge.submit("late", lambda s, p: None)
