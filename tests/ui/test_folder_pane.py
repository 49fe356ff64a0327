"""The folder pane lists a folder at once, fills thumbnails in lazily and reports the image the user picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PySide6.QtCore import QModelIndex, QSize, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QStyle
from pytestqt.qtbot import QtBot

from ui.folder_pane import FolderPane
from ui.worker import WorkerBridge

RED = (200, 30, 30)
GREEN = (30, 200, 30)


def make_images(folder: Path, count: int, colour: tuple[int, int, int], jpeg_every: int = 3) -> list[Path]:
    """``count`` tiny flat-coloured images (every ``jpeg_every``-th a JPEG), sorted by name."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.empty((12, 18, 3), np.uint8)
    pixels[:] = colour
    paths = []
    for index in range(count):
        path = folder / f"img_{index:03d}.{'jpg' if index % jpeg_every == 0 else 'png'}"
        PILImage.fromarray(pixels).save(path)
        paths.append(path)
    return sorted(paths)


def icon_colour(pane: FolderPane, path: Path) -> tuple[int, int, int]:
    """The colour at the centre of the icon ``path``'s item shows."""
    item = pane.model.item(pane.paths().index(path))
    image = item.icon().pixmap(QSize(100, 100)).toImage()
    colour = image.pixelColor(image.width() // 2, image.height() // 2)
    return colour.red(), colour.green(), colour.blue()


def close_to(actual: tuple[int, int, int], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - e) <= 12 for a, e in zip(actual, expected, strict=True))  # JPEG wiggles a little


def all_loaded(pane: FolderPane) -> bool:
    return all(pane.thumbnail_loaded(path) for path in pane.paths())


@pytest.fixture
def pane(qtbot: QtBot, bridge: WorkerBridge) -> FolderPane:
    widget = FolderPane(bridge)
    qtbot.addWidget(widget)
    return widget


def test_open_folder_lists_at_once_then_fills_in_thumbnails(qtbot: QtBot, pane: FolderPane, tmp_path: Path) -> None:
    folder = tmp_path / "holiday"
    images = make_images(folder, 30, RED)
    (folder / "notes.txt").write_text("not a photo")
    broken = folder / "img_broken.png"
    broken.write_bytes(b"certainly not a PNG")

    with qtbot.waitSignal(pane.folder_changed, timeout=1000) as changed:
        pane.open_folder(folder)
    # The listing is complete when open_folder returns; no thumbnail can have arrived yet.
    assert pane.paths() == sorted([*images, broken])
    assert not any(pane.thumbnail_loaded(path) for path in pane.paths())
    assert changed.args == [folder]
    assert pane.folder() == folder
    assert pane.model.rowCount() == 31
    assert pane.model.item(0).text() == "img_000.jpg"
    assert pane.title.text() == "holiday"
    assert pane.count_label.text() == "31 images"

    qtbot.waitUntil(lambda: all_loaded(pane), timeout=10000)
    assert all(close_to(icon_colour(pane, path), RED) for path in images)
    assert all(pane.thumbnail_error(path) is None for path in images)
    error = pane.thumbnail_error(broken)
    assert error is not None and "img_broken.png" in error and "not an image" in error
    item = pane.model.item(pane.paths().index(broken))
    assert item.toolTip() == error
    warning = pane.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
    assert item.icon().pixmap(QSize(32, 32)).toImage() == warning.pixmap(QSize(32, 32)).toImage()


def test_click_and_select_report_the_image(qtbot: QtBot, pane: FolderPane, tmp_path: Path) -> None:
    images = make_images(tmp_path / "photos", 5, GREEN)
    pane.resize(420, 360)
    pane.show()
    qtbot.waitExposed(pane)
    pane.open_folder(tmp_path / "photos")

    rect = pane.view.visualRect(pane.model.index(2, 0))
    assert rect.isValid()
    with qtbot.waitSignal(pane.image_activated, timeout=2000) as clicked:
        qtbot.mouseClick(pane.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert clicked.args == [images[2]]

    with qtbot.waitSignal(pane.image_activated, timeout=2000) as selected:
        pane.select(images[4])
    assert selected.args == [images[4]]
    assert pane.view.currentIndex().row() == 4

    with qtbot.waitSignal(pane.image_activated, timeout=2000) as keyed:
        qtbot.keyClick(pane.view, Qt.Key.Key_Left)
    assert keyed.args == [images[3]]

    emitted: list[Path] = []
    pane.image_activated.connect(emitted.append)
    centre = pane.view.visualRect(pane.model.index(1, 0)).center()
    # A real double-click arrives as a click followed by a double-click event.
    qtbot.mouseClick(pane.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(pane.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.wait(20)
    assert emitted == [images[1]]  # a double-click opens the photo once, not twice

    hints = QGuiApplication.styleHints()
    interval = hints.mouseDoubleClickInterval()
    hints.setMouseDoubleClickInterval(30)
    try:
        qtbot.wait(60)  # later than a double-click: Enter opens the current photo again
        with qtbot.waitSignal(pane.image_activated, timeout=2000) as entered:
            qtbot.keyClick(pane.view, Qt.Key.Key_Return)
        assert entered.args == [images[1]]
    finally:
        hints.setMouseDoubleClickInterval(interval)

    with qtbot.assertNotEmitted(pane.image_activated):
        pane.select(tmp_path / "photos" / "not-listed.png")
    qtbot.waitUntil(lambda: all_loaded(pane), timeout=10000)


@pytest.mark.parametrize("switch_after_first_chunk", [False, True])
def test_opening_another_folder_drops_the_first(
    qtbot: QtBot, pane: FolderPane, bridge: WorkerBridge, tmp_path: Path, switch_after_first_chunk: bool
) -> None:
    first = make_images(tmp_path / "first", 40, RED)
    second = make_images(tmp_path / "second", 12, GREEN)  # the same file names, another folder and colour
    loaded_when_switching: list[int] = []

    def switch() -> None:
        loaded_when_switching.append(sum(pane.thumbnail_loaded(path) for path in first))
        pane.open_folder(tmp_path / "second")
        assert pane.paths() == second
        assert not any(pane.thumbnail_loaded(path) for path in second)  # listed at once, none read yet

    if switch_after_first_chunk:
        # A handle's ``finished`` comes after its ``succeeded``, which the pane handles: it applies the first
        # chunk and submits the next one, which is then outstanding when the second folder opens.
        bridge.submitted.connect(lambda handle: handle.finished.connect(
            lambda: None if loaded_when_switching else switch()))
        pane.open_folder(tmp_path / "first")
        qtbot.waitUntil(lambda: bool(loaded_when_switching), timeout=10000)
        assert loaded_when_switching == [8]
    else:
        pane.open_folder(tmp_path / "first")
        switch()
        assert loaded_when_switching == [0]
    qtbot.waitUntil(lambda: all_loaded(pane), timeout=10000)

    assert pane.paths() == second
    assert pane.model.rowCount() == 12
    assert pane.count_label.text() == "12 images"
    assert all(close_to(icon_colour(pane, path), GREEN) for path in second), "a stale thumbnail was applied"
    assert not any(pane.thumbnail_loaded(path) for path in first)


def test_add_files_appends(qtbot: QtBot, pane: FolderPane, tmp_path: Path) -> None:
    listed = make_images(tmp_path / "listed", 3, RED)
    loose = make_images(tmp_path / "loose", 2, GREEN)
    text = tmp_path / "loose" / "readme.txt"
    text.write_text("skip me")
    pane.open_folder(tmp_path / "listed")

    pane.add_files([loose[1], text, listed[0], loose[0], loose[1]])
    assert pane.paths() == [*listed, loose[1], loose[0]]
    assert pane.folder() == tmp_path / "listed"
    assert pane.count_label.text() == "5 images"
    qtbot.waitUntil(lambda: all_loaded(pane), timeout=10000)
    assert close_to(icon_colour(pane, loose[0]), GREEN)
    assert close_to(icon_colour(pane, listed[0]), RED)


def test_visible_items_load_first(qtbot: QtBot, pane: FolderPane, tmp_path: Path) -> None:
    images = make_images(tmp_path / "many", 80, RED)
    pane.resize(300, 260)
    pane.show()
    qtbot.waitExposed(pane)
    order: list[int] = []
    pane.model.dataChanged.connect(lambda top, *_: None if top.row() in order else order.append(top.row()))
    pane.open_folder(tmp_path / "many")  # nothing scrolled yet: the first chunk is the top rows
    pane.view.scrollTo(pane.model.index(79, 0))  # before any thumbnail arrives, the user jumps to the end
    assert pane.view.verticalScrollBar().value() > 0

    qtbot.waitUntil(lambda: all_loaded(pane), timeout=10000)
    assert sorted(order) == list(range(80))
    assert order[:8] == list(range(8))
    # The second chunk came from the rows on screen at the bottom, long before the middle of the folder.
    assert order.index(79) < 16 < order.index(40)
    assert images[79] == pane.paths()[79]


def test_unlistable_folder_says_why(qtbot: QtBot, pane: FolderPane, tmp_path: Path) -> None:
    make_images(tmp_path / "there", 2, RED)
    pane.open_folder(tmp_path / "there")
    with qtbot.assertNotEmitted(pane.folder_changed):
        pane.open_folder(tmp_path / "gone")
    assert pane.paths() == []
    assert pane.folder() is None
    assert "gone" in pane.title.text() and "no such" in pane.title.text()
    assert pane.view.currentIndex() == QModelIndex()
