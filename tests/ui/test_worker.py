"""The worker bridge: jobs run off the GUI thread, report on their own handles, cancel, replace, log their
failures, and shut down cleanly."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QThread
from pytestqt.qtbot import QtBot

from denoiser.errors import Cancelled, DenoiserError
from denoiser.progress import Progress, check_stop
from ui.worker import JobHandle, WorkerBridge


def endless_job(running: threading.Event):
    """A job that signals ``running`` and then works until it is told to stop."""

    def job(should_stop, on_progress):
        running.set()
        while True:
            check_stop(should_stop)
            time.sleep(0.005)

    return job


def record(handle: JobHandle, outcomes: list[tuple[str, str]]) -> JobHandle:
    """Append (job name, outcome) to ``outcomes`` whenever ``handle`` ends."""
    handle.succeeded.connect(lambda _result: outcomes.append((handle.name, "done")))
    handle.failed.connect(lambda _message: outcomes.append((handle.name, "failed")))
    handle.cancelled.connect(lambda: outcomes.append((handle.name, "cancelled")))
    return handle


def test_job_runs_off_the_gui_thread_and_reports(qtbot: QtBot, bridge: WorkerBridge) -> None:
    gui_thread = QThread.currentThread()
    seen: dict[str, object] = {}

    def job(should_stop, on_progress):
        seen["thread"] = QThread.currentThread()
        for i in range(3):
            on_progress(Progress("work", i + 1, 3))
        return 42

    handle = bridge.submit("answer", job)
    progress: list[Progress] = []
    delivered_on: list[object] = []
    handle.progress.connect(progress.append)
    handle.succeeded.connect(lambda _result: delivered_on.append(QThread.currentThread()))
    with qtbot.waitSignal(handle.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args == [42]
    assert handle.outcome == "succeeded" and handle.is_done()
    assert seen["thread"] is not gui_thread
    assert delivered_on == [gui_thread]  # the handle's signals arrive on the GUI thread
    assert [p.done for p in progress] == [1, 2, 3]


def test_each_handle_gets_only_its_own_events(qtbot: QtBot, bridge: WorkerBridge) -> None:
    first_progress: list[Progress] = []
    results: dict[str, list[object]] = {"first": [], "second": [], "third": []}

    def job(value: str):
        def run(should_stop, on_progress):
            on_progress(Progress(value, 1, 1))
            return value
        return run

    handles = {name: bridge.submit(name, job(name), lane=lane, replace=False)
               for name, lane in (("first", "model"), ("second", "model"), ("third", "io"))}
    handles["first"].progress.connect(first_progress.append)
    for name, handle in handles.items():
        handle.succeeded.connect(results[name].append)
    qtbot.waitUntil(lambda: all(h.is_done() for h in handles.values()), timeout=5000)
    assert results == {"first": ["first"], "second": ["second"], "third": ["third"]}
    assert [event.stage for event in first_progress] == ["first"]


def test_engine_errors_become_a_message(qtbot: QtBot, bridge: WorkerBridge) -> None:
    def broken(should_stop, on_progress):
        raise DenoiserError("photo.png: truncated file")

    handle = bridge.submit("load", broken)
    with qtbot.waitSignal(handle.failed, timeout=5000) as blocker:
        pass
    assert blocker.args == ["photo.png: truncated file"]
    assert handle.details == ""  # an expected error has no traceback


def test_unexpected_errors_are_reported_not_raised(qtbot: QtBot, bridge: WorkerBridge) -> None:
    def buggy(should_stop, on_progress):
        return 1 / 0

    handle = bridge.submit("oops", buggy)
    with qtbot.waitSignal(handle.failed, timeout=5000) as blocker:
        pass
    assert "ZeroDivisionError" in blocker.args[0]
    assert "Traceback" in handle.details and "1 / 0" in handle.details


def test_failures_are_logged_by_the_worker(qtbot: QtBot, bridge: WorkerBridge,
                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="denoiser.worker")
    for name, fn in (("bug", lambda s, p: 1 / 0),
                     ("bad", lambda s, p: (_ for _ in ()).throw(DenoiserError("x.png: broken"))),
                     ("stop", lambda s, p: (_ for _ in ()).throw(Cancelled()))):
        handle = bridge.submit(name, fn, replace=False)
    qtbot.waitUntil(handle.is_done, timeout=5000)
    records = [r for r in caplog.records if r.name == "denoiser.worker"]
    assert [(r.levelname, r.exc_info is not None) for r in records] == [("ERROR", True), ("WARNING", False)]
    assert "'bug'" in records[0].getMessage() and "x.png: broken" in records[1].getMessage()


def test_cancel_stops_a_running_job(qtbot: QtBot, bridge: WorkerBridge) -> None:
    running = threading.Event()
    handle = bridge.submit("long", endless_job(running))
    assert running.wait(5)
    with qtbot.waitSignal(handle.cancelled, timeout=5000):
        bridge.cancel()
    qtbot.waitUntil(lambda: not bridge.is_busy(), timeout=5000)


def test_a_handle_cancels_only_its_own_job(qtbot: QtBot, bridge: WorkerBridge) -> None:
    running = threading.Event()
    outcomes: list[tuple[str, str]] = []
    long = record(bridge.submit("long", endless_job(running)), outcomes)
    waiting = record(bridge.submit("waiting", lambda s, p: "w", replace=False), outcomes)
    assert running.wait(5)
    long.cancel()
    qtbot.waitUntil(waiting.is_done, timeout=5000)
    assert outcomes == [("long", "cancelled"), ("waiting", "done")]


def test_new_job_replaces_the_running_one(qtbot: QtBot, bridge: WorkerBridge) -> None:
    started = threading.Event()
    outcomes: list[tuple[str, str]] = []

    def slow(should_stop, on_progress):
        started.set()
        while not should_stop():
            time.sleep(0.005)
        raise Cancelled()

    old = record(bridge.submit("denoise", slow), outcomes)
    assert started.wait(5)
    new = record(bridge.submit("denoise", lambda s, p: "ok"), outcomes)
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=5000)
    assert outcomes == [("denoise", "cancelled"), ("denoise", "done")]
    assert (old.outcome, new.outcome) == ("cancelled", "succeeded")


def test_a_replaced_jobs_result_is_never_delivered(qtbot: QtBot, bridge: WorkerBridge) -> None:
    """A job that finishes while being replaced (it never polls its stop flag) reports cancelled, not its result."""
    release = threading.Event()
    got: list[object] = []
    old = bridge.submit("denoise", lambda s, p: release.wait(5) and "stale")
    old.succeeded.connect(got.append)
    release.set()
    time.sleep(0.05)  # the old job has very likely finished: its result is queued for the GUI thread
    new = bridge.submit("denoise", lambda s, p: "fresh")
    new.succeeded.connect(got.append)
    with qtbot.waitSignal(old.cancelled, timeout=5000):
        pass
    qtbot.waitUntil(new.is_done, timeout=5000)
    assert got == ["fresh"]


def test_replace_leaves_jobs_of_other_names_alone(qtbot: QtBot, bridge: WorkerBridge) -> None:
    """A new denoise must not cancel a batch that shares the lane (nor Cancel of one stop the other)."""
    release = threading.Event()
    outcomes: list[tuple[str, str]] = []

    def batch(should_stop, on_progress):
        release.wait(5)
        check_stop(should_stop)
        return "batch"

    record(bridge.submit("batch", batch), outcomes)
    record(bridge.submit("denoise", lambda s, p: "a"), outcomes)
    bridge.cancel("model", "denoise")
    record(bridge.submit("denoise", lambda s, p: "b"), outcomes)
    release.set()
    qtbot.waitUntil(lambda: not bridge.is_busy() and len(outcomes) == 3, timeout=5000)
    assert ("batch", "done") in outcomes and ("batch", "cancelled") not in outcomes
    assert outcomes.count(("denoise", "cancelled")) == 1 and outcomes.count(("denoise", "done")) == 1


def test_waiting_jobs_dropped_by_replace_are_reported_cancelled(qtbot: QtBot, bridge: WorkerBridge) -> None:
    gate = threading.Event()
    outcomes: list[tuple[str, str]] = []

    def blocking(should_stop, on_progress):
        gate.wait(5)
        check_stop(should_stop)

    record(bridge.submit("job", blocking), outcomes)
    waiting = record(bridge.submit("job", lambda s, p: None, replace=False), outcomes)
    last = record(bridge.submit("job", lambda s, p: "c", replace=True), outcomes)  # cancels both before it
    gate.set()
    qtbot.waitUntil(lambda: not bridge.is_busy() and last.is_done(), timeout=5000)
    assert outcomes == [("job", "cancelled"), ("job", "cancelled"), ("job", "done")]
    assert waiting.outcome == "cancelled"


def test_replace_false_waits_for_the_running_job(qtbot: QtBot, bridge: WorkerBridge) -> None:
    gate = threading.Event()
    order: list[str] = []

    def first(should_stop, on_progress):
        gate.wait(5)
        order.append("first")
        return 1

    a = bridge.submit("job", first)
    b = bridge.submit("job", lambda s, p: order.append("second") or 2, replace=False)
    started: list[str] = []
    b.started.connect(lambda: started.append("second"))
    time.sleep(0.05)
    assert order == [] and started == []
    gate.set()
    qtbot.waitUntil(b.is_done, timeout=5000)
    assert order == ["first", "second"] and (a.outcome, b.outcome) == ("succeeded", "succeeded")


def test_busy_changed_brackets_model_work(qtbot: QtBot, bridge: WorkerBridge) -> None:
    states: list[bool] = []
    bridge.busy_changed.connect(states.append)
    handle = bridge.submit("quick", lambda s, p: 1)
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    qtbot.waitUntil(lambda: states == [True, False], timeout=5000)


def test_io_lane_runs_while_model_lane_is_busy(qtbot: QtBot, bridge: WorkerBridge) -> None:
    release = threading.Event()
    bridge.submit("denoise", lambda s, p: release.wait(5))
    handle = bridge.submit("thumbnail", lambda s, p: "thumb", lane="io")
    with qtbot.waitSignal(handle.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args == ["thumb"]
    release.set()


def test_shutdown_during_a_job_stops_it(qtbot: QtBot) -> None:
    bridge = WorkerBridge()
    running = threading.Event()
    bridge.submit("long", endless_job(running))
    assert running.wait(5)
    assert bridge.shutdown(5000)
    with pytest.raises(RuntimeError):
        bridge.submit("late", lambda s, p: None)


def test_a_job_that_outlasts_the_shutdown_wait_is_waited_for_before_exit(qtbot: QtBot) -> None:
    """A model load cannot be cancelled: shutdown's bounded wait gives up, and the wait before the process exits
    (which would otherwise destroy a running QThread, and Qt aborts then) lets it end."""
    bridge = WorkerBridge()
    running, release = threading.Event(), threading.Event()

    def uncancellable(should_stop, on_progress):
        running.set()
        release.wait(10)

    bridge.submit("model", uncancellable)
    assert running.wait(5)
    assert not bridge.shutdown(50)  # still running after the close's wait
    assert bridge._lanes["model"].isRunning()
    threading.Timer(0.3, release.set).start()
    started = time.monotonic()
    bridge.wait_until_stopped()
    assert time.monotonic() - started >= 0.2  # it waited for the job ...
    assert not any(lane.isRunning() for lane in bridge._lanes.values())  # ... and every lane ended


def test_wait_until_stopped_shuts_an_open_bridge_down(qtbot: QtBot) -> None:
    bridge = WorkerBridge()
    running = threading.Event()
    bridge.submit("long", endless_job(running))
    assert running.wait(5)
    bridge.wait_until_stopped()  # the window was never closed: it cancels, then waits
    assert not any(lane.isRunning() for lane in bridge._lanes.values())
    with pytest.raises(RuntimeError):
        bridge.submit("late", lambda s, p: None)
