"""Issue 14's "missing, that every photo tool has": the zoom readout, next/previous photo from the viewer, progress
with percent and time left, the log file, the Help menu."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

import ui.help as help_module
import ui.main_window as main_window_module
import ui.photo_jobs as photo_jobs_module
from denoiser.errors import Cancelled, DenoiserError
from denoiser.models import create_model
from denoiser.modelstore import save_to_library
from denoiser.progress import Progress
from ui.logging_setup import LOG_DIR_ENV, log_dir, log_file, setup_logging, teardown_logging
from ui.main_window import MainWindow
from ui.progress_text import ProgressClock, progress_text
from ui.viewer import VIEWER_KEYS
from ui.worker import WorkerBridge
from ui.zoom_readout import zoom_text

OPEN_TIMEOUT_MS = 60_000
"""Opening a photo reads it and its noise: seconds on a loaded 2-core machine (a wait, not a speed check)."""


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    torch.manual_seed(0)
    save_to_library(create_model("unet", {"widths": [4, 8], "blocks": 1}), "tiny-unet")
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    store.setValue("model", "tiny-unet")
    return store


@pytest.fixture
def window(qtbot: QtBot, settings: QSettings) -> Iterator[MainWindow]:
    win = MainWindow(settings=settings, auto_denoise=False)
    qtbot.addWidget(win)
    win.resize(1100, 700)
    win.show()
    qtbot.waitUntil(lambda: win.model is not None, timeout=10000)
    yield win
    win.close()


def photos(folder: Path, count: int, size: tuple[int, int] = (64, 48)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        paths.append(folder / f"p{seed}.png")
        PILImage.fromarray(pixels).save(paths[-1])
    return paths


def key(qtbot: QtBot, win: MainWindow, which: Qt.Key) -> None:
    """Press ``which`` with the viewer focused, as the user would after clicking the photo."""
    win.viewer.setFocus()
    qtbot.keyClick(win.viewer, which)


# --- 1. zoom readout ----------------------------------------------------------------------------------------------


def test_zoom_text() -> None:
    assert zoom_text(1.0) == "100 %"
    assert zoom_text(0.3412, fitting=True) == "34 % (fit)"
    assert zoom_text(0.025) == "2.5 %" and zoom_text(0.02) == "2 %"
    assert zoom_text(32.0) == "3200 %"


def test_the_zoom_readout_follows_fit_wheel_keys_and_actions(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    readout = window.zoom_readout
    assert readout.text() == "\u2013 %"  # no photo yet
    (photo,) = photos(tmp_path, 1, size=(3000, 2000))
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    fit = window.viewer.view_state().fit_zoom()
    assert fit < 1.0
    assert readout.text() == zoom_text(fit, fitting=True) and readout.text().endswith("(fit)")
    window.zoom_100_action.trigger()
    assert readout.text() == "100 %"
    key(qtbot, window, Qt.Key.Key_Plus)
    assert readout.text() == "125 %"
    canvas = window.viewer.canvases()[-1]
    pos = QPointF(canvas.width() / 2, canvas.height() / 2)
    QApplication.sendEvent(canvas, QWheelEvent(pos, QPointF(canvas.mapToGlobal(pos)), QPoint(), QPoint(0, 120),
                                               Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                                               Qt.ScrollPhase.NoScrollPhase, False))
    assert window.viewer.zoom() == pytest.approx(1.5625)
    assert readout.text() == "156 %"
    window.fit_action.trigger()
    assert window.viewer.zoom() == pytest.approx(fit) and readout.text() == zoom_text(fit, fitting=True)


def test_the_readout_drops_fit_when_the_user_zooms_to_the_same_level(qtbot: QtBot, window: MainWindow,
                                                                       tmp_path: Path) -> None:
    (photo,) = photos(tmp_path, 1, size=(40, 30))  # fits at 100 %... and beyond: fit zoom is larger
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    state = window.viewer.view_state()
    state.set_view(zoom=state.zoom)  # same zoom, same centre: only fit mode ends
    assert not window.zoom_readout.text().endswith("(fit)")
    window.viewer.zoom_to_fit()
    assert window.zoom_readout.text().endswith("(fit)")


# --- 2. next / previous photo -------------------------------------------------------------------------------------


def test_keys_in_the_viewer_step_through_the_folder(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    paths = photos(tmp_path / "shoot", 3)
    window.open_folder(tmp_path / "shoot")
    qtbot.waitUntil(lambda: window.photo is not None and window.photo.path == paths[0], timeout=OPEN_TIMEOUT_MS)

    def step(which: Qt.Key, expected: Path) -> None:
        key(qtbot, window, which)
        qtbot.waitUntil(lambda: window.photo.path == expected, timeout=OPEN_TIMEOUT_MS)
        assert window.folder_pane.view.currentIndex().row() == paths.index(expected)  # selected, as a click does

    step(Qt.Key.Key_Right, paths[1])  # the photo fits: nothing to pan, so Right is "next"
    step(Qt.Key.Key_Space, paths[2])
    step(Qt.Key.Key_PageUp, paths[1])
    step(Qt.Key.Key_Left, paths[0])
    step(Qt.Key.Key_PageDown, paths[1])
    step(Qt.Key.Key_PageDown, paths[2])
    key(qtbot, window, Qt.Key.Key_Space)  # the end: stays, and says so
    qtbot.wait(50)
    assert window.photo.path == paths[2] and "Last photo" in window.status_label.text()


def test_left_and_right_pan_while_there_is_something_to_pan(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    paths = photos(tmp_path / "shoot", 2, size=(400, 300))
    window.open_folder(tmp_path / "shoot")
    qtbot.waitUntil(lambda: window.photo is not None and window.photo.path == paths[0], timeout=OPEN_TIMEOUT_MS)
    window.viewer.set_zoom(8.0)
    before = window.viewer.view_state().center
    key(qtbot, window, Qt.Key.Key_Right)
    qtbot.wait(50)
    assert window.viewer.view_state().center.x() > before.x()  # panned ...
    assert window.photo.path == paths[0] and window._opening is None  # ... and stayed on the photo


def test_page_keys_belong_to_the_viewer_not_the_whole_window(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    paths = photos(tmp_path / "shoot", 2)
    window.open_folder(tmp_path / "shoot")
    qtbot.waitUntil(lambda: window.photo is not None and window.photo.path == paths[0], timeout=OPEN_TIMEOUT_MS)
    window.panel.model_box.setFocus()
    qtbot.keyClick(window.panel.model_box, Qt.Key.Key_Space)
    qtbot.wait(50)
    assert window.photo.path == paths[0] and window._opening is None


# --- 9. progress with percent and time left -----------------------------------------------------------------------


def test_progress_clock_measures_each_stage_from_its_first_report() -> None:
    now = [0.0]
    clock = ProgressClock(lambda: now[0])
    assert clock.update(0, 10) == (0, None)
    now[0] = 2.0
    assert clock.update(2, 10) == (20, pytest.approx(8.0))  # 1 per second, 8 to go
    now[0] = 3.0
    assert clock.update(0, 4) == (0, None)  # a new stage (new total): measured afresh
    now[0] = 4.0
    assert clock.update(1, 4) == (25, pytest.approx(3.0))
    assert progress_text("Denoising a.png", 25, 3.0) == "Denoising a.png: 25 %, about 3 s left"
    assert progress_text("Denoising a.png", 0, None).endswith("estimating the time left...")


def test_a_long_denoise_shows_percent_time_left_and_a_working_result_pane(
        qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (photo,) = photos(tmp_path, 1)
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    go = threading.Event()

    def tiles(pixels, model, sigma, visible, *, zoom=1.0, device="auto", on_progress=None, should_stop=None,
              tiles=None):
        for done in range(5):
            on_progress(Progress("denoise", done, 4))
            deadline = time.monotonic() + 10
            while not go.is_set() and time.monotonic() < deadline:
                if should_stop():
                    raise Cancelled()
                time.sleep(0.005)
            go.clear()
            time.sleep(0.02)
        return pixels.astype(np.float32) / 255.0

    monkeypatch.setattr(photo_jobs_module, "denoise_visible_first", tiles)
    window.denoise()
    assert window.viewer.working().startswith("Denoising")
    assert window.viewer.canvases()[-1].hint().startswith("Denoising")  # the result pane says it is working
    qtbot.waitUntil(lambda: "0 %" in window.status_label.text(), timeout=10000)
    go.set()
    qtbot.waitUntil(lambda: "25 %" in window.status_label.text(), timeout=10000)
    text = window.status_label.text()
    assert text.startswith(f"Denoising {photo.name}: 25 %, about ") and text.endswith(" left")
    assert window.viewer.working() == "Denoising... 25 %"
    assert window.progress_bar.isVisible() and window.progress_bar.value() == 1 and window.progress_bar.maximum() == 4
    for _ in range(4):
        go.set()
        time.sleep(0.05)
    qtbot.waitUntil(lambda: window.viewer.has_result() and window.viewer.working() == "", timeout=10000)
    assert window.viewer.canvases()[-1].hint() == ""


def test_a_cancelled_denoise_stops_saying_it_is_working(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    (photo,) = photos(tmp_path, 1)
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)

    def endless(pixels, model, sigma, visible, *, zoom=1.0, device="auto", on_progress=None, should_stop=None,
                tiles=None):
        while not should_stop():
            time.sleep(0.005)
        raise Cancelled()

    monkeypatch.setattr(photo_jobs_module, "denoise_visible_first", endless)
    window.denoise()
    assert window.viewer.working()
    window.cancel()
    qtbot.waitUntil(lambda: window.viewer.working() == "", timeout=10000)
    assert window.viewer.canvases()[-1].hint() == "not denoised yet"


def zoomed_in_on_a_denoised_photo(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    """A small photo opened, denoised and shown side by side at 400 %, so that only a region of it is in view."""
    (photo,) = photos(tmp_path, 1, size=(400, 300))
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    window.denoise()
    qtbot.waitUntil(lambda: window.outcome is not None and window.viewer.has_result(), timeout=OPEN_TIMEOUT_MS)
    window.viewer.set_mode("side")
    window.viewer.set_zoom(4.0)


def test_a_strength_change_shows_the_visible_region_first_then_the_whole_photo(
        qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoomed in, a new strength is denoised where the user looks first: the region in view goes to the engine,
    its preview is on screen while the full pass still runs, and the full result replaces it."""
    from ui.qimage import qimage_to_array

    zoomed_in_on_a_denoised_photo(qtbot, window, tmp_path)
    asked: dict[str, object] = {}
    full_pass, release = threading.Event(), threading.Event()

    def visible_first(pixels, model, sigma, visible, *, zoom=1.0, device="auto", on_progress=None,
                      should_stop=None, tiles=None):
        asked.update(visible=visible, zoom=zoom)
        preview = np.full(pixels.shape, 0.25, np.float32)  # unlike any real result
        on_progress(Progress("preview", 0, 0, extra={"preview": preview}))
        full_pass.set()
        release.wait(10)
        return np.full(pixels.shape, 0.75, np.float32)

    monkeypatch.setattr(photo_jobs_module, "denoise_visible_first", visible_first)
    rect = window.viewer.visible_image_rect()
    window.panel.strength_slider.setValue(80)
    window.panel.strength_changed.emit()  # what the slider's release emits
    qtbot.waitUntil(full_pass.is_set, timeout=10000)
    region = asked["visible"]
    assert asked["zoom"] == pytest.approx(4.0)
    assert (region.left, region.top) == (int(rect.left()), int(rect.top()))  # the region in view ...
    assert region.width < 400 and region.height < 300  # ... not the whole photo
    assert region.left + region.width >= rect.right() and region.top + region.height >= rect.bottom()
    shown = lambda: qimage_to_array(window.viewer.canvases()[-1].image())  # noqa: E731
    qtbot.waitUntil(lambda: int(shown()[150, 200, 0]) == 64, timeout=10000)  # the preview is on screen ...
    assert window.bridge.is_busy("model", "denoise")  # ... while the full pass runs
    release.set()
    qtbot.waitUntil(lambda: int(shown()[150, 200, 0]) == 191, timeout=10000)  # then the whole result


def test_quick_views_compose_the_visible_region_over_what_is_shown() -> None:
    from denoiser.display import compose_views
    from denoiser.preview import Region
    from ui.photo_jobs import quick_views
    from ui.qimage import array_to_qimage, qimage_to_array

    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    denoised = rng.random((300, 400, 3), dtype=np.float32)
    shown_now = np.full((300, 400, 3), 7, np.uint8)
    base = (array_to_qimage(shown_now), array_to_qimage(shown_now))
    region = Region(100, 50, 120, 80)
    (shown, _levels), (removed, _) = quick_views(original, denoised, 0.3, region, 4.0, base)
    want_shown, want_removed = compose_views(original[50:130, 100:220], denoised[50:130, 100:220], 0.3)
    got = qimage_to_array(shown)
    np.testing.assert_array_equal(got[50:130, 100:220], want_shown)  # the region: exactly the new result
    np.testing.assert_array_equal(qimage_to_array(removed)[50:130, 100:220], want_removed)
    outside = np.ones((300, 400), bool)
    outside[50:130, 100:220] = False
    assert (got[outside] == 7).all()  # the rest: what was shown
    assert quick_views(original, denoised, 0.3, region, 4.0, None) is None  # nothing shown yet to draw over
    # Viewed whole at 25 %: composed at a quarter of the size and enlarged back to the photo's.
    (small, _), _ = quick_views(original, denoised, 0.3, Region(0, 0, 401, 301), 0.25, base)
    assert (small.width(), small.height()) == (400, 300)
    want = compose_views(original[::4, ::4], denoised[::4, ::4], 0.3)[0]
    np.testing.assert_array_equal(qimage_to_array(small)[::4, ::4], want)
    assert quick_views(original, denoised, 0.3, Region(0, 0, 401, 301), 0.6, base) is None  # near 100 %: no gain


def test_a_detail_change_shows_the_visible_region_first(qtbot: QtBot, window: MainWindow, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoomed in, a new detail is composed where the user looks before the whole photo is."""
    from ui.qimage import qimage_to_array

    (photo,) = photos(tmp_path, 1, size=(400, 300))
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=20000)
    window.denoise()
    qtbot.waitUntil(lambda: window.outcome is not None and window.viewer.has_result()
                    and not window.bridge.is_busy("display"), timeout=15000)
    window.viewer.set_mode("side")
    window.viewer.set_zoom(4.0)
    before = qimage_to_array(window.viewer.canvases()[-1].image())
    whole, release = threading.Event(), threading.Event()
    real_compose = photo_jobs_module.compose_display

    def held_compose(*args):
        whole.set()
        release.wait(10)
        return real_compose(*args)

    monkeypatch.setattr(photo_jobs_module, "compose_display", held_compose)
    window.panel.detail_slider.setValue(100)  # all of the original back: the region shows the photo itself
    qtbot.waitUntil(whole.is_set, timeout=10000)  # the whole photo is being composed ...
    qtbot.waitUntil(lambda: not np.array_equal(qimage_to_array(window.viewer.canvases()[-1].image()), before),
                    timeout=10000)
    shown = qimage_to_array(window.viewer.canvases()[-1].image())
    rect = window.viewer.visible_image_rect()
    top, left = int(rect.top()), int(rect.left())
    photo_pixels = np.asarray(PILImage.open(photo))
    np.testing.assert_array_equal(shown[top + 5, left + 5], photo_pixels[top + 5, left + 5])  # ... the region is new
    np.testing.assert_array_equal(shown[0, 0], before[0, 0])  # ... and the rest still the old detail
    release.set()
    qtbot.waitUntil(lambda: not window.bridge.is_busy("display"), timeout=10000)
    np.testing.assert_array_equal(qimage_to_array(window.viewer.canvases()[-1].image()), photo_pixels)


# --- 6. the log file ----------------------------------------------------------------------------------------------


def test_the_log_folder_is_redirected_in_tests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "here"))
    assert log_dir() == tmp_path / "here" and log_file() == tmp_path / "here" / "denoiser.log"


def test_a_failed_jobs_traceback_goes_to_the_rotating_log_file(qtbot: QtBot, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "logs"))
    path = setup_logging()
    try:
        assert path == tmp_path / "logs" / "denoiser.log"
        bridge = WorkerBridge()
        try:
            def broken(should_stop, on_progress):
                raise ZeroDivisionError("a bug deep in a job")

            def bad_file(should_stop, on_progress):
                raise DenoiserError("photo.png: truncated file")

            handle = bridge.submit("denoise", broken)
            with qtbot.waitSignal(handle.failed, timeout=10000) as failed:
                pass
            assert failed.args[0] == "unexpected ZeroDivisionError: a bug deep in a job"  # the message as before
            assert "Traceback (most recent call last)" in handle.details
            handle = bridge.submit("load", bad_file)
            with qtbot.waitSignal(handle.failed, timeout=10000):
                pass
            handle = bridge.submit("quiet", lambda stop, progress: (_ for _ in ()).throw(Cancelled()))
            with qtbot.waitSignal(handle.cancelled, timeout=10000):
                pass
        finally:
            assert bridge.shutdown(10_000)
        text = path.read_text(encoding="utf-8")
        assert "job 'denoise' failed with an unexpected error" in text
        assert "Traceback (most recent call last)" in text and "ZeroDivisionError: a bug deep in a job" in text
        assert "'quiet'" not in text  # a cancel is no failure
        expected = [line for line in text.splitlines() if "'load'" in line]
        assert len(expected) == 1 and "photo.png: truncated file" in expected[0]  # an engine error: one line
        assert text.count("Traceback (most recent call last)") == 1
        handler = next(h for h in logging.getLogger().handlers if getattr(h, "baseFilename", "") == str(path))
        assert isinstance(handler, logging.handlers.RotatingFileHandler) and handler.backupCount >= 1
        assert handler.maxBytes > 0
    finally:
        teardown_logging()
    assert not any(getattr(h, "baseFilename", "") == str(path) for h in logging.getLogger().handlers)


def test_the_window_logs_through_its_bridge(window: MainWindow) -> None:
    assert isinstance(window.bridge, WorkerBridge) and logging.getLogger("denoiser.worker").propagate


# --- 5. the Help menu ----------------------------------------------------------------------------------------------


def test_the_shortcuts_list_comes_from_the_actions(qtbot: QtBot, window: MainWindow) -> None:
    rows = dict(window.shortcut_rows())
    assert rows["Open Photo"] == window.open_action.shortcut().toString()
    assert rows["Next Photo"] == "PgDown, Space" and rows["Previous Photo"] == "PgUp"
    assert rows["Fit"] == "Ctrl+0" and rows["Batch Denoise"] == "Ctrl+B"
    for keys, what in VIEWER_KEYS:
        assert rows[what] == keys  # (what, keys) like the actions' rows
    window.save_action.setShortcut("Ctrl+Alt+S")  # change an action: the list follows
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    shown = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert shown["Save"] == "Ctrl+Alt+S"
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    assert [a.text() for a in help_menu.actions() if a.text()] == ["Keyboard Shortcuts...", "Show Log",
                                                                    "About Denoiser"]


def test_the_shortcuts_dialog_shows_every_row_as_action_then_keys(qtbot: QtBot, window: MainWindow) -> None:
    """Regression: the viewer's own keys came as (keys, what) under the header Action | Keys, so "Wheel, + / -"
    sat under Action and the long descriptions under Keys, squeezing the action names into two lines."""
    dialog = window.show_shortcuts()
    qtbot.addWidget(dialog)
    qtbot.waitExposed(dialog)
    table = dialog.table
    shown = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    for keys, what in VIEWER_KEYS:
        assert shown[what] == keys
    metrics = table.fontMetrics()
    widest_keys = max(metrics.horizontalAdvance(table.item(r, 1).text()) for r in range(table.rowCount()))
    assert table.columnWidth(1) >= widest_keys  # the keys column is never elided
    assert table.columnWidth(0) >= metrics.horizontalAdvance("Keyboard Shortcuts")  # names on one line


def test_about_names_the_versions_and_the_device(window: MainWindow) -> None:
    import PySide6

    text = window.about_text()
    for needle in ("Denoiser 0.", f"PySide6 {PySide6.__version__}", f"PyTorch {torch.__version__}", "Python 3.",
                   "Qt 6.", "Device in use: cpu"):
        assert needle in text


def test_show_log_opens_the_log_file_or_its_folder(window: MainWindow, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    opened = []
    monkeypatch.setattr(help_module.QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "logs"))
    window.show_log()
    assert Path(opened[-1].toLocalFile()) == tmp_path / "logs" and (tmp_path / "logs").is_dir()
    (tmp_path / "logs" / "denoiser.log").write_text("x")
    window.show_log()
    assert Path(opened[-1].toLocalFile()) == tmp_path / "logs" / "denoiser.log"


def test_uncaught_errors_are_logged_and_still_reach_the_previous_hook(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    seen = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: seen.append(value))
    path = setup_logging(tmp_path / "logs")
    try:
        error = ValueError("a slot broke")
        sys.excepthook(ValueError, error, None)
        assert seen == [error]
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "uncaught ValueError" in path.read_text(encoding="utf-8")
        assert "ValueError: a slot broke" in path.read_text(encoding="utf-8")
    finally:
        teardown_logging()
    assert not getattr(sys.excepthook, "_denoiser_logs", False)


def test_the_app_logs_to_the_redirected_folder(monkeypatch: pytest.MonkeyPatch, qtbot: QtBot, tmp_path: Path) -> None:
    import ui.app as app_module

    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    monkeypatch.setattr(main_window_module, "default_settings", lambda: store)
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "logs"))
    (photo,) = photos(tmp_path / "shoot", 1)

    def fake_exec(self: QApplication) -> int:
        (win,) = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        qtbot.waitUntil(lambda: win.photo is not None, timeout=15000)
        win.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    try:
        assert app_module.main([str(photo)]) == 0
        assert any(getattr(h, "baseFilename", "") == str(tmp_path / "logs" / "denoiser.log")
                   for h in logging.getLogger().handlers)
    finally:
        teardown_logging()


# --- 4. the photo info panel --------------------------------------------------------------------------------------


def test_the_info_panel_shows_exif_size_depth_and_histograms(qtbot: QtBot, window: MainWindow,
                                                            tmp_path: Path) -> None:
    from PIL.TiffImagePlugin import IFDRational

    from denoiser.io.metadata import EXIF_IFD_TAG

    exif = PILImage.Exif()
    exif[271], exif[272] = "FUJIFILM", "X-T4"
    sub = exif.get_ifd(EXIF_IFD_TAG)
    sub[33434], sub[33437], sub[34855], sub[37386] = IFDRational(1, 60), IFDRational(4, 1), 3200, IFDRational(23, 1)
    sub[36867] = "2023:11:05 18:00:00"
    path = tmp_path / "night.jpg"
    pixels = np.zeros((48, 64, 3), np.uint8)
    pixels[:, :, 0] = 250
    PILImage.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)
    assert window.info_panel.rows() == [("File", "no photo open")]
    window.open_photo(path)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    rows = dict(window.info_panel.rows())
    assert rows["File"] == "night.jpg" and rows["Size"] == "64 x 48 (0.0 MP)"
    assert rows["Depth"] == "8-bit RGB" and rows["Format"] == "JPEG"
    assert rows["Camera"] == "FUJIFILM X-T4" and rows["ISO"] == "3200" and rows["Exposure"] == "1/60 s"
    assert rows["Aperture"] == "f/4" and rows["Focal length"] == "23 mm" and rows["Date"] == "2023-11-05 18:00:00"
    counts = window.info_panel.photo_histogram.histogram()
    assert counts is not None and counts.shape[0] == 3 and counts[0].argmax() >= counts.shape[1] - 2  # red is high
    assert window.info_panel.result_histogram.histogram() is None
    window.info_panel.grab()  # paints without error
    window.denoise()
    qtbot.waitUntil(lambda: window.info_panel.result_histogram.histogram() is not None, timeout=15000)
    assert window.info_panel.result_histogram.histogram().shape == counts.shape
    window.info_panel.grab()
    (other,) = photos(tmp_path / "other", 1)
    window.open_photo(other)
    qtbot.waitUntil(lambda: window.photo.path == other, timeout=OPEN_TIMEOUT_MS)
    assert dict(window.info_panel.rows())["Camera"] == "no EXIF"
    assert window.info_panel.result_histogram.histogram() is None  # the old result's is gone


def test_the_info_panel_is_a_dock_beside_the_controls(window: MainWindow) -> None:
    assert window.docks["Info"].widget() is window.info_panel
    assert window.tabifiedDockWidgets(window.docks["Denoise"]) == [window.docks["Info"]]


# --- 3. the folder pane as a thumbnail grid -----------------------------------------------------------------------


def test_the_folder_pane_is_a_multi_column_grid_with_full_names_on_hover(qtbot: QtBot, window: MainWindow,
                                                                         tmp_path: Path) -> None:
    from PySide6.QtWidgets import QListView

    folder = tmp_path / "shoot"
    paths = photos(folder, 4)
    long_name = folder / ("a_very_long_file_name_that_cannot_fit_under_a_thumbnail_" + "x" * 30 + ".png")
    paths[3].rename(long_name)
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    pane = window.folder_pane
    pane.resize(420, 400)
    qtbot.waitUntil(lambda: all(pane.thumbnail_loaded(p) for p in pane.paths()), timeout=10000)
    view = pane.view
    assert view.viewMode() == QListView.ViewMode.IconMode and view.isWrapping()
    first, second = (view.visualRect(pane.model.index(row, 0)) for row in (0, 1))
    assert first.top() == second.top() and second.left() > first.left()  # side by side: columns
    row = pane.paths().index(long_name)
    item = pane.model.item(row)
    assert item.toolTip() == str(long_name) and long_name.name in item.toolTip()  # the whole name on hover
    assert view.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert view.currentIndex().row() == pane.paths().index(window.photo.path)  # the open photo is selected
    window.step_photo(1)
    qtbot.waitUntil(lambda: window.photo.path == pane.paths()[1], timeout=OPEN_TIMEOUT_MS)
    assert view.currentIndex().row() == 1 and view.selectionModel().isSelected(pane.model.index(1, 0))


def test_a_first_start_shows_the_photos_in_two_columns(qtbot: QtBot, settings: QSettings, tmp_path: Path) -> None:
    """At the size a first start opens at (no remembered layout), the Photos dock is wide enough for a grid."""
    win = MainWindow(settings=settings, auto_denoise=False)
    qtbot.addWidget(win)
    win.show()
    paths = photos(tmp_path / "shoot", 5)
    win.open_folder(tmp_path / "shoot")
    qtbot.waitUntil(lambda: win.photo is not None, timeout=10000)
    pane = win.folder_pane
    first, second, third = (pane.view.visualRect(pane.model.index(row, 0)) for row in range(3))
    assert first.top() == second.top() and second.left() > first.left()  # two side by side ...
    assert third.top() > first.top()  # ... then the next row
    assert pane.paths() == paths
    win.close()


# --- 8. the latent thumbnails, collapsed by default -----------------------------------------------------------------


def test_latents_are_collapsed_by_default_with_a_legend_and_the_choice_is_remembered(
        qtbot: QtBot, window: MainWindow, settings: QSettings, tmp_path: Path) -> None:
    from ui.panel import LATENTS_LEGEND

    panel = window.panel
    assert not panel.latents_expanded() and not panel.latent_box.isVisibleTo(panel)
    assert panel.latents_toggle.isVisibleTo(panel) and panel.latents_toggle.arrowType() == Qt.ArrowType.RightArrow
    qtbot.mouseClick(panel.latents_toggle, Qt.MouseButton.LeftButton)
    assert panel.latents_expanded() and panel.latent_box.isVisibleTo(panel)
    assert panel.latents_legend.isVisibleTo(panel) and panel.latents_legend.text() == LATENTS_LEGEND
    assert "\n" not in LATENTS_LEGEND
    assert str(settings.value("latents_expanded")) == "true"
    (photo,) = photos(tmp_path, 1)
    window.open_photo(photo)
    qtbot.waitUntil(lambda: window.photo is not None, timeout=OPEN_TIMEOUT_MS)
    window.denoise()
    qtbot.waitUntil(lambda: panel.latents.count() > 0, timeout=15000)  # still made and shown when open
    # Regression: the caption under the legend said "PCA: the top 3 components as RGB." again.
    assert "PCA" not in panel.latents.caption.text() and "most active shown first" in panel.latents.caption.text()
    again = MainWindow(settings=settings, auto_denoise=False)
    qtbot.addWidget(again)
    try:
        assert again.panel.latents_expanded()
        qtbot.mouseClick(again.panel.latents_toggle, Qt.MouseButton.LeftButton)
        assert str(settings.value("latents_expanded")) == "false" and not again.panel.latent_box.isVisibleTo(
            again.panel)
    finally:
        again.close()


# --- 10. the batch dialog -------------------------------------------------------------------------------------------


def test_a_batch_result_comes_up_in_front_of_the_dialog(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    dialog = window.open_batch_dialog()
    qtbot.waitExposed(dialog)
    assert dialog.windowHandle().transientParent() is None  # not kept above the main window
    dialog.activateWindow()
    qtbot.waitUntil(lambda: dialog.isActiveWindow(), timeout=5000)
    (source,) = photos(tmp_path / "in", 1)
    output = tmp_path / "out.png"
    PILImage.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(output)
    dialog.open_pair.emit(source, output)
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=5000)
    qtbot.waitUntil(lambda: window.photo is not None and window.viewer.has_result(), timeout=OPEN_TIMEOUT_MS)
    assert window.photo.path == source
    window.close()
    assert not dialog.isVisible()  # the dialog goes with the window


def test_the_per_file_bar_follows_the_tiles(qtbot: QtBot, window: MainWindow, tmp_path: Path) -> None:
    photos(tmp_path / "in", 1, size=(1400, 1000))  # above a megapixel: several 512 tiles on the CPU
    dialog = window.open_batch_dialog()
    dialog.auto_box.setChecked(False)
    dialog.input_edit.setText(str(tmp_path / "in"))
    dialog.output_edit.setText(str(tmp_path / "out"))
    dialog.device_box.setCurrentIndex(dialog.device_box.findData("cpu"))
    seen: list[tuple[int, int]] = []
    dialog.file_bar.valueChanged.connect(lambda value: seen.append((value, dialog.file_bar.maximum())))
    assert dialog.start()
    qtbot.waitUntil(lambda: not dialog.is_running(), timeout=30000)
    assert dialog.report is not None and dialog.report.done == 1
    tiles = max(maximum for _, maximum in seen)
    assert tiles > 1  # the photo is several tiles ...
    assert {value for value, maximum in seen if maximum == tiles} >= set(range(1, tiles + 1))  # ... each one shown
    dialog.close()


# --- 7. the window icon and the missing-library advice --------------------------------------------------------------


def test_the_window_has_the_bundled_icon(window: MainWindow) -> None:
    from denoiser.resources import app_icon_path

    assert app_icon_path().is_file() and app_icon_path().parent.parent.name in ("resources", "_resources")
    assert not window.windowIcon().isNull()
    assert window.windowIcon().pixmap(32, 32).width() == 32


def test_missing_xcb_libraries_only_where_qt_will_use_xcb() -> None:
    from ui.preflight import SKIP_ENV, XCB_PACKAGES, missing_xcb_libraries

    x11 = {"DISPLAY": ":0"}
    nothing = lambda name: None  # noqa: E731 - a stand-in for find_library
    only_cursor_missing = lambda name: None if name == "xcb-cursor" else f"lib{name}.so.0"  # noqa: E731
    assert missing_xcb_libraries("linux", x11, nothing) == list(XCB_PACKAGES)
    assert missing_xcb_libraries("linux", x11, only_cursor_missing) == ["libxcb-cursor0"]
    assert missing_xcb_libraries("linux", {**x11, "QT_QPA_PLATFORM": "xcb"}, only_cursor_missing) == ["libxcb-cursor0"]
    for platform, env in (("win32", x11), ("darwin", x11), ("linux", {}),  # no X display: no xcb
                          ("linux", {**x11, "QT_QPA_PLATFORM": "offscreen"}),
                          ("linux", {**x11, "WAYLAND_DISPLAY": "wayland-0"}),
                          ("linux", {**x11, SKIP_ENV: "1"})):
        assert missing_xcb_libraries(platform, env, nothing) == [], (platform, env)
    assert missing_xcb_libraries("linux", x11, lambda name: f"lib{name}.so") == []


def test_the_gui_explains_missing_libraries_instead_of_aborting(monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    import ui.app as app_module

    monkeypatch.setattr(app_module, "missing_xcb_libraries", lambda: ["libxcb-cursor0"])
    monkeypatch.setattr(app_module.QApplication, "instance", staticmethod(lambda: None))
    built = []
    monkeypatch.setattr(app_module, "MainWindow", lambda *a, **k: built.append(1))
    assert app_module.main([]) == 1
    err = capsys.readouterr().err
    assert "libxcb-cursor0" in err and "sudo apt-get install libxcb-cursor0 libxkbcommon-x11-0" in err
    for package in ("libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0", "libxcb-xinerama0",
                    "libxcb-shape0"):
        assert package in err
    assert built == []  # no window, no Qt abort


def test_a_region_preview_is_composed_there_only_and_drawn_over_what_is_shown() -> None:
    """A denoise's preview of the region in view comes as the region's pixels alone: composed there, drawn over the
    levels shown now (the rest of the photo kept, no histogram); with nothing shown yet, composed whole over the
    original."""
    from denoiser.display import compose_views
    from denoiser.preview import Region
    from ui.photo_jobs import compose_region_preview
    from ui.qimage import display_levels_of, qimage_to_array

    rng = np.random.default_rng(0)
    original = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    patch = rng.random((80, 120, 3), dtype=np.float32)
    region = Region(100, 50, 120, 80)
    shown_now = np.full((300, 400, 3), 7, np.uint8)
    base = (display_levels_of(shown_now), display_levels_of(shown_now))
    (shown, shown_levels), (removed, _), histogram = compose_region_preview(original, patch, region, 0.3, base)
    want_shown, want_removed = compose_views(original[50:130, 100:220], patch, 0.3)
    got = qimage_to_array(shown)
    np.testing.assert_array_equal(got[50:130, 100:220], want_shown)
    np.testing.assert_array_equal(qimage_to_array(removed)[50:130, 100:220], want_removed)
    outside = np.ones((300, 400), bool)
    outside[50:130, 100:220] = False
    assert (got[outside] == 7).all() and histogram is None
    assert shown_levels[0] is shown and len(shown_levels) == len(base[0])
    (first, _), _, _ = compose_region_preview(original, patch, region, 0.3, None)  # nothing shown yet
    pasted = original.astype(np.float32) / 255
    pasted[50:130, 100:220] = patch
    np.testing.assert_array_equal(qimage_to_array(first), compose_views(original, pasted, 0.3)[0])


def test_a_region_preview_is_drawn_at_its_place_and_the_full_result_replaces_it(
        qtbot: QtBot, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zoomed in, the engine's preview is the region in view alone: it is drawn where it belongs over the result
    shown (the rest keeps it) while the full pass runs, and the full result then replaces all of it."""
    from denoiser.preview import Region
    from ui.qimage import qimage_to_array

    zoomed_in_on_a_denoised_photo(qtbot, window, tmp_path)
    full_pass, release = threading.Event(), threading.Event()
    shown = lambda: qimage_to_array(window.viewer.result_images()[0])  # noqa: E731
    before = shown()
    region = Region(150, 100, 60, 40)

    def visible_first(pixels, model, sigma, visible, *, zoom=1.0, device="auto", on_progress=None,
                      should_stop=None, tiles=None):
        on_progress(Progress("preview", 0, 0, extra={"preview": np.full((40, 60, 3), 0.25, np.float32),
                                                     "region": region}))
        full_pass.set()
        release.wait(10)
        return np.full(pixels.shape, 0.75, np.float32)

    monkeypatch.setattr(photo_jobs_module, "denoise_visible_first", visible_first)
    window.panel.strength_slider.setValue(80)
    window.panel.strength_changed.emit()
    qtbot.waitUntil(full_pass.is_set, timeout=10000)
    qtbot.waitUntil(lambda: int(shown()[120, 170, 0]) == 64, timeout=10000)  # the patch, where it belongs ...
    now = shown()
    assert (now[100:140, 150:210] == 64).all()
    outside = np.ones((300, 400), bool)
    outside[100:140, 150:210] = False
    np.testing.assert_array_equal(now[outside], before[outside])  # ... the rest as it was
    assert window.bridge.is_busy("model", "denoise")
    release.set()
    qtbot.waitUntil(lambda: (shown() == 191).all(), timeout=10000)  # then the whole result everywhere
