"""The folder pane: a grid of the photos in one folder, with thumbnails that fill in lazily.

Listing a folder is immediate (file names and placeholder icons); the thumbnails are read off the GUI thread
through the :class:`~ui.worker.WorkerBridge`'s ``io`` lane, a few files per job and one job at a time, so
other file reads queued on that lane never wait long. Each next chunk is taken from the items on screen
first, so scrolling through a big folder fills in what the user is looking at. Opening another folder stops
the outstanding job and ignores whatever it still delivers.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QIcon,
    QImage,
    QPainter,
    QPixmap,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListView, QSizePolicy, QStyle, QVBoxLayout, QWidget

from denoiser.errors import Cancelled, DenoiserError, ImageReadError
from denoiser.io import find_images, is_image_path, read_thumbnail
from denoiser.progress import Progress
from ui.qimage import array_to_qimage
from ui.worker import JobHandle, WorkerBridge

__all__ = ["FolderPane"]

ICON_SIZE = 100
"""Side of the square each thumbnail is fitted into, in device-independent pixels."""
CHUNK_SIZE = 8
"""Files read per background job: small, so the shared ``io`` lane stays responsive."""
JOB_NAME = "thumbnails"

_PATH_ROLE = Qt.ItemDataRole.UserRole + 1

# What a job returns: one (path, thumbnail or None, error message or None) per file it was given.
ThumbnailResults = list[tuple[Path, QImage | None, str | None]]


@dataclass
class _ThumbnailJob:
    """The one outstanding thumbnail job: which files it reads, for which listing, and how to stop it."""

    handle: JobHandle
    paths: list[Path]
    generation: int
    stop: threading.Event = field(default_factory=threading.Event)


class FolderPane(QWidget):
    """A header (folder name, image count) over an icon grid of the folder's images.

    The user picks an image by clicking it, moving to it with the keyboard, or pressing Enter or
    double-clicking it: :attr:`image_activated` tells which. The pane never touches QSettings.
    """

    image_activated = Signal(Path)
    """The user picked this image (click, arrow keys, Enter, double-click) or :meth:`select` chose it."""
    folder_changed = Signal(Path)
    """:meth:`open_folder` listed this folder."""

    def __init__(self, bridge: WorkerBridge, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._bridge = bridge
        self._folder: Path | None = None
        self._paths: list[Path] = []
        self._rows: dict[Path, int] = {}
        self._pending: set[Path] = set()
        self._loaded: set[Path] = set()
        self._errors: dict[Path, str] = {}
        self._generation = 0  # bumped by every listing; a job from an older one is stale
        self._job: _ThumbnailJob | None = None
        self._last_activated: tuple[Path, float] | None = None  # path, time.monotonic() of the emission

        self.title = QLabel("No folder")
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        # A long folder name is cut off rather than widening the dock (the tooltip has the full path).
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.count_label = QLabel("")
        self.count_label.setTextFormat(Qt.TextFormat.PlainText)
        self.count_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        header = QHBoxLayout()
        header.setContentsMargins(4, 2, 4, 2)
        header.addWidget(self.title, 1)
        header.addWidget(self.count_label)

        self.model = QStandardItemModel(self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setIconSize(QSize(ICON_SIZE, ICON_SIZE))
        self.view.setGridSize(QSize(ICON_SIZE + 24, ICON_SIZE + 40))
        self.view.setUniformItemSizes(True)
        self.view.setWordWrap(True)
        self.view.setWrapping(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(100)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QListView.EditTrigger.NoEditTriggers)
        self.view.setDragEnabled(False)
        self.view.selectionModel().currentChanged.connect(self._on_current_changed)
        self.view.activated.connect(self._on_activated)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)

        self._placeholder_icon = _placeholder_icon(self.palette().mid().color())
        self._broken_icon = self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)

        self._update_header()

    # ----- public API --------------------------------------------------------------------------------------
    def open_folder(self, folder: Path) -> None:
        """List the images directly in ``folder`` (sorted, no sub-folders) at once; thumbnails fill in lazily.

        Stops the thumbnail work of the previous listing. When the folder cannot be listed (gone, no
        permission) the list is emptied, the header says why, :meth:`folder` becomes None and
        :attr:`folder_changed` is not emitted; nothing is raised.
        """
        folder = Path(folder)
        try:
            paths = find_images([folder], recursive=False)
        except ImageReadError as err:
            self._reset(None)
            self.count_label.setText("")
            self.count_label.setToolTip("")
            self.title.setToolTip(str(err))
            self.title.setText(f"{folder.name or folder}: {err.problem}")
            return
        self._reset(folder)
        self._append(paths)
        self.folder_changed.emit(folder)

    def add_files(self, paths: list[Path]) -> None:
        """Append image files (e.g. dropped on the window) after the listed ones, in the given order.

        Files that are not images (by extension) or do not exist are skipped; a file already listed keeps
        its place and has its thumbnail read again (it may have been overwritten).
        """
        new: list[Path] = []
        for path in map(Path, paths):
            if not (is_image_path(path) and path.is_file()):
                continue
            if path in self._rows:
                self._refresh(path)
            elif path not in new:
                new.append(path)
        self._append(new)  # also submits the refreshed files' thumbnails

    def folder(self) -> Path | None:
        """The folder listed by the last :meth:`open_folder`, or None (none yet, or it could not be listed)."""
        return self._folder

    def paths(self) -> list[Path]:
        """The listed images, in display order."""
        return list(self._paths)

    def select(self, path: Path) -> None:
        """Make ``path`` the current image and scroll to it; emits :attr:`image_activated` if it changed.

        A path that is not listed is ignored.
        """
        row = self._rows.get(Path(path))
        if row is None:
            return
        index = self.model.index(row, 0)
        self.view.setCurrentIndex(index)
        self.view.scrollTo(index)

    def width_for_columns(self, columns: int) -> int:
        """The pane's width that shows ``columns`` thumbnails side by side (with room for the scroll bar)."""
        frame = 2 * self.view.frameWidth()
        scroll_bar = self.view.verticalScrollBar().sizeHint().width()
        return columns * self.view.gridSize().width() + frame + scroll_bar + 2 * self.view.spacing() + 4

    def thumbnail_loaded(self, path: Path) -> bool:
        """Whether ``path``'s thumbnail has been read, or has failed to read and shows the broken icon."""
        path = Path(path)
        return path in self._loaded or path in self._errors

    def thumbnail_error(self, path: Path) -> str | None:
        """Why ``path``'s thumbnail could not be read (also its tooltip), or None."""
        return self._errors.get(Path(path))

    # ----- listing -----------------------------------------------------------------------------------------
    def _reset(self, folder: Path | None) -> None:
        """Forget the current listing and stop its thumbnail job (whatever it still delivers is ignored)."""
        self._generation += 1
        if self._job is not None:
            self._job.stop.set()  # the job stays outstanding until the bridge reports its end
        self._folder = folder
        self._paths = []
        self._rows = {}
        self._pending = set()
        self._loaded = set()
        self._errors = {}
        self._last_activated = None
        self.title.setToolTip(str(folder) if folder is not None else "")
        self.model.clear()

    def _append(self, paths: Iterable[Path]) -> None:
        items = []
        for path in paths:
            self._rows[path] = len(self._paths)
            self._paths.append(path)
            self._pending.add(path)
            item = QStandardItem(self._placeholder_icon, path.name)
            item.setData(str(path), _PATH_ROLE)
            item.setToolTip(str(path))
            item.setEditable(False)
            item.setDragEnabled(False)
            items.append(item)
        if items:
            self.model.invisibleRootItem().appendRows(items)  # one insertion, however many files
        self._update_header()
        self._schedule()

    def _refresh(self, path: Path) -> None:
        self._loaded.discard(path)
        self._errors.pop(path, None)
        self._pending.add(path)

    def _update_header(self) -> None:
        if self._folder is not None:
            self.title.setText(self._folder.name or str(self._folder))
        elif self._paths:
            self.title.setText("Photos")
        else:
            self.title.setText("No folder")
        count = len(self._paths)
        self.count_label.setText(f"{count} image{'' if count == 1 else 's'}" if self._folder or count else "")

    # ----- thumbnails --------------------------------------------------------------------------------------
    def _schedule(self) -> None:
        """Submit the next chunk of pending thumbnails, unless a job is still outstanding."""
        if self._job is not None or not self._pending:
            return
        chunk = self._next_chunk()
        stop = threading.Event()
        side = max(ICON_SIZE, round(ICON_SIZE * self.devicePixelRatioF()))
        try:
            handle = self._bridge.submit(JOB_NAME, _thumbnail_job(chunk, side, stop), lane="io", replace=False)
        except RuntimeError:  # the bridge is shut down: the window is closing
            return
        self._pending.difference_update(chunk)
        job = _ThumbnailJob(handle, chunk, self._generation, stop)
        self._job = job
        handle.succeeded.connect(lambda result: self._on_job_succeeded(job, result))
        handle.failed.connect(lambda message: self._on_job_failed(job, message))
        handle.cancelled.connect(lambda: self._on_job_cancelled(job))

    def _next_chunk(self) -> list[Path]:
        """Up to CHUNK_SIZE pending paths: those on screen first, then those below, then those above."""
        first = self._first_visible_row()
        chunk: list[Path] = []
        for row in itertools.chain(range(first, len(self._paths)), range(first)):
            path = self._paths[row]
            if path in self._pending:
                chunk.append(path)
                if len(chunk) == CHUNK_SIZE:
                    break
        return chunk

    def _first_visible_row(self) -> int:
        """The first row on screen (0 while the view is hidden); rows not laid out yet count as below it."""
        count = self.model.rowCount()
        if count == 0 or not self.view.isVisible():
            return 0
        # Items flow left to right, top to bottom, so their bottom edges never decrease: bisect for the first
        # one that reaches into the viewport.
        low, high = 0, count
        while low < high:
            middle = (low + high) // 2
            rect = self.view.visualRect(self.model.index(middle, 0))
            if rect.isValid() and rect.bottom() < 0:
                low = middle + 1
            else:
                high = middle
        return min(low, count - 1)

    def _on_job_succeeded(self, job: _ThumbnailJob, result: object) -> None:
        self._finish(job)
        if job.generation == self._generation and isinstance(result, list):
            for path, image, error in result:
                self._apply(path, image, error)
        self._schedule()

    def _on_job_failed(self, job: _ThumbnailJob, message: str) -> None:
        self._finish(job)
        if job.generation == self._generation:  # the job itself broke: mark its files, keep going
            for path in job.paths:
                self._apply(path, None, message)
        self._schedule()

    def _on_job_cancelled(self, job: _ThumbnailJob) -> None:
        self._finish(job)
        if job.generation == self._generation:
            # Someone else cancelled the io lane: read these files again, after whatever replaced them.
            self._pending.update(path for path in job.paths if path in self._rows)
        QTimer.singleShot(0, self, self._schedule)  # not from inside the bridge's own cancel call

    def _finish(self, job: _ThumbnailJob) -> None:
        """``job`` has ended: it is no longer outstanding."""
        if self._job is job:
            self._job = None

    def _apply(self, path: Path, image: QImage | None, error: str | None) -> None:
        row = self._rows.get(path)
        if row is None or path in self._pending:  # no longer listed, or re-queued for a fresh read
            return
        item = self.model.item(row)
        if image is not None and not image.isNull():
            self._loaded.add(path)
            self._errors.pop(path, None)
            item.setIcon(QIcon(QPixmap.fromImage(image)))
            item.setToolTip(str(path))
        else:
            message = error or f"{path}: cannot read the thumbnail"
            self._errors[path] = message
            self._loaded.discard(path)
            item.setIcon(self._broken_icon)
            item.setToolTip(message)

    # ----- activation --------------------------------------------------------------------------------------
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        path = self._path_at(current)
        if path is not None:
            self._activate(path)

    def _on_activated(self, index: QModelIndex) -> None:
        path = self._path_at(index)
        if path is None:
            return
        # The click that starts a double-click (or a click where one click activates) has just reported the
        # item through currentChanged; only a later Enter or double-click opens it again.
        if self._last_activated is not None and self._last_activated[0] == path:
            elapsed_ms = 1000 * (time.monotonic() - self._last_activated[1])
            if elapsed_ms <= QGuiApplication.styleHints().mouseDoubleClickInterval():
                return
        self._activate(path)

    def _activate(self, path: Path) -> None:
        self._last_activated = (path, time.monotonic())
        self.image_activated.emit(path)

    def _path_at(self, index: QModelIndex) -> Path | None:
        if not index.isValid():
            return None
        value = index.data(_PATH_ROLE)
        return Path(value) if value else None


def _thumbnail_job(
    paths: list[Path], max_side: int, stop: threading.Event
) -> Callable[[Callable[[], bool], Callable[[Progress], None]], ThumbnailResults]:
    """The worker function reading ``paths``' thumbnails; one bad file never stops the others."""

    def job(should_stop: Callable[[], bool], _on_progress: Callable[[Progress], None]) -> ThumbnailResults:
        results: ThumbnailResults = []
        for path in paths:
            if stop.is_set() or should_stop():
                raise Cancelled()
            try:
                # QImage (unlike QPixmap) may be built off the GUI thread.
                results.append((path, centred_on_square(array_to_qimage(read_thumbnail(path, max_side)), max_side),
                                None))
            except DenoiserError as err:
                results.append((path, None, str(err)))
            except Exception as err:  # noqa: BLE001 - a broken icon with the reason beats a dead pane
                results.append((path, None, f"{path}: unexpected {type(err).__name__}: {err}"))
        return results

    return job


def centred_on_square(thumbnail: QImage, side: int) -> QImage:
    """``thumbnail`` in the middle of a transparent ``side`` x ``side`` square (it fits in one already).

    Every icon is then the same square, so a tiny photo's thumbnail (a 12 x 8 photo stays 12 x 8) or a
    panorama's flat strip sits centred in its cell above its name, instead of in a corner of it. Safe off the
    GUI thread (QImage and QPainter on a QImage)."""
    square = QImage(side, side, QImage.Format.Format_ARGB32_Premultiplied)
    square.fill(Qt.GlobalColor.transparent)
    painter = QPainter(square)
    painter.drawImage((side - thumbnail.width()) // 2, (side - thumbnail.height()) // 2, thumbnail)
    painter.end()
    return square


def _placeholder_icon(colour: QColor) -> QIcon:
    """A faint rounded square shown until an item's thumbnail arrives."""
    pixmap = QPixmap(ICON_SIZE, ICON_SIZE)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    fill = QColor(colour)
    fill.setAlpha(70)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(fill)
    painter.drawRoundedRect(8, 8, ICON_SIZE - 16, ICON_SIZE - 16, 6, 6)
    painter.end()
    return QIcon(pixmap)
