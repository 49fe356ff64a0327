"""The main window: folder pane, before/after viewer, side panel, status bar with progress and Cancel.

Every piece of model or file work goes through the one :class:`~ui.worker.WorkerBridge`; this module only
wires widgets to jobs and jobs' results back to widgets. The jobs themselves call the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QColor, QDragEnterEvent, QDropEvent, QImage, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolBar,
)

from denoiser.batch import find_reference, reference_metrics
from denoiser.devices import available_devices, resolve_device
from denoiser.display import (
    NOISE_MAP_KEY,
    blend,
)
from denoiser.exported import ExportedModel
from denoiser.inference import TileSettings
from denoiser.io import SUPPORTED_EXTENSIONS, Image, is_image_path, read_image, write_image
from denoiser.io.formats import WRITABLE_EXTENSIONS, format_info, result_extension
from denoiser.model_loading import DEFAULT_MODEL, load_model_for_inference
from denoiser.preview import Region
from denoiser.progress import Progress
from denoiser.strength import Strength
from ui.batch_dialog import BatchDialog
from ui.file_filters import LOSSY_FORMATS, open_filters, save_filters
from ui.folder_pane import FolderPane
from ui.help import ShortcutsDialog, about_text, open_log, shortcut_rows
from ui.icon import app_icon
from ui.info_panel import InfoPanel, depth_text
from ui.logging_setup import log_file
from ui.panel import PanelScrollArea, SidePanel
from ui.photo_jobs import (
    DenoiseOutcome,
    OpenedPhoto,
    Views,
    compose_display,
    denoise_photo,
    draw_noise_map,
    read_pair,
    read_photo,
)
from ui.progress_text import ProgressClock, progress_text
from ui.qimage import array_to_qimage
from ui.state import Session
from ui.torch_parts import LATENTS_NEED_PYTORCH, NEEDS_PYTORCH, model_entries, model_names, model_note, torch_available
from ui.viewer import MODES, VIEWER_KEYS, ImageViewer
from ui.worker import JobHandle, WorkerBridge
from ui.zoom_readout import ZoomReadout

if TYPE_CHECKING:  # torch types: the app runs without torch (the desktop bundle)
    from denoiser.models import Autoencoder
    from ui.model_manager import ModelManager
    from ui.train_dialog import TrainDialog

MODE_TITLES = {"side": "Side by side", "split": "Split", "toggle": "Toggle", "residual": "Residual",
               "noise": "Noise map"}
MAX_RECENT = 8
TITLE_DASH = "\u2014"
"""Separates the photo, its folder and the app's name in the window title."""
DEFAULT_SAVE_QUALITY = 95
"""The JPEG/WebP quality until the user chooses one (the engine's default too)."""


def reference_text(reference: Path, figures: dict[str, float | None], note: str) -> str:
    """The side panel's lines about a clean reference."""
    if note:
        return f"Reference {reference.name}: {note}"

    def value(key: str, unit: str) -> str:
        number = figures.get(key)
        return "identical" if number is None else f"{number:.2f}{unit}" if unit else f"{number:.4f}"

    return (f"Against {reference.name}:\n"
            f"noisy    PSNR {value('psnr_noisy', ' dB')}, SSIM {value('ssim_noisy', '')}\n"
            f"result   PSNR {value('psnr_denoised', ' dB')}, SSIM {value('ssim_denoised', '')}")


def noise_map_key() -> list[tuple[str, QColor]]:
    """The noise map's colour key as Qt colours."""
    return [(name, QColor(*rgb)) for name, rgb in NOISE_MAP_KEY]


def _stored_amount(settings: QSettings, key: str) -> float:
    """An amount (1.0 = 100 %) from the settings; a missing or hand-mangled value reads 100 %."""
    try:
        return float(str(settings.value(key, 1.0)))
    except ValueError:
        return 1.0


def _stored_quality(settings: QSettings) -> int:
    """The remembered JPEG/WebP quality (1-100); a missing or hand-mangled value reads the default."""
    try:
        return min(100, max(1, int(str(settings.value("save_quality", DEFAULT_SAVE_QUALITY)))))
    except ValueError:
        return DEFAULT_SAVE_QUALITY


def window_title(photo: Path | None, folder: Path | None) -> str:
    """``photo.jpg — folder — Denoiser`` for an open photo (its own folder), ``folder — Denoiser`` for a listed
    folder with no photo open yet, else ``Denoiser``."""
    if photo is not None:
        parts = [photo.name, photo.parent.name or str(photo.parent)]
    elif folder is not None:
        parts = [folder.name or str(folder)]
    else:
        parts = []
    return f" {TITLE_DASH} ".join([*parts, "Denoiser"])


def default_settings() -> QSettings:
    """The app's persistent settings (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Denoiser", "Denoiser")


class MainWindow(QMainWindow):
    """Open photos or folders, denoise them in the background, compare, look at the latent space, save."""

    def __init__(self, settings: QSettings | None = None, auto_denoise: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("Denoiser")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.settings = settings or default_settings()
        self.auto_denoise = auto_denoise
        self.bridge = WorkerBridge(self)  # it logs a failed job's traceback to the log file
        self.model: Autoencoder | ExportedModel | None = None
        """The model denoising runs with: the torch model, or without torch the bundled one's exported graph."""
        self.session = Session()
        """The open photo, the model in use, the last result and the strength it was made with."""
        self.last_error = ""
        self._jobs: dict[str, JobHandle] = {}  # job kind -> the latest one; older ones reach no widget
        self._noise_map_of: OpenedPhoto | None = None  # the photo whose noise map is shown or being drawn
        self._closing = False
        self._busy = False
        self._restore_folder: Path | None = None  # the remembered folder, until something else is opened
        self._opening: Path | None = None  # the photo an "open" job is reading
        self._progress_clock = ProgressClock()  # percent and time left of the running denoise
        self._denoising: Path | None = None  # the photo the running denoise is for
        self._batch_dialogs: list[BatchDialog] = []  # top-level windows of their own: closed with this one

        self.viewer = ImageViewer()
        self.setCentralWidget(self.viewer)
        self.folder_pane = FolderPane(self.bridge)
        self.folder_pane.image_activated.connect(self._photo_activated)
        self.folder_pane.folder_changed.connect(self._remember_folder)
        self.panel = SidePanel()
        # The panel scrolls rather than squeezing its wrapped texts (model note, warnings) into clipped lines
        # when the window is short.
        self.panel_scroll = PanelScrollArea(self.panel)
        self.info_panel = InfoPanel()
        self.docks: dict[str, QDockWidget] = {}
        for dock_title, widget, area in (("Photos", self.folder_pane, Qt.DockWidgetArea.LeftDockWidgetArea),
                                         ("Denoise", self.panel_scroll, Qt.DockWidgetArea.RightDockWidgetArea),
                                         ("Info", self.info_panel, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock = QDockWidget(dock_title, self)
            dock.setObjectName(f"dock-{dock_title}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, dock)
            self.docks[dock_title] = dock
        # The info panel shares the right-hand column with the controls, as a tab behind them.
        self.tabifyDockWidget(self.docks["Denoise"], self.docks["Info"])
        self.docks["Denoise"].raise_()

        self.status_label = QLabel("Open a photo or a folder (or drop one here).")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setFormat("%p %")
        self.progress_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress_bar)
        self.statusBar().addPermanentWidget(self.cancel_button)

        self._build_actions()
        self.panel.denoise_requested.connect(self.denoise)
        self.panel.save_requested.connect(self.save)
        self.panel.save_as_requested.connect(self.save_as)
        self.panel.model_changed.connect(self.choose_model)
        self.panel.detail_changed.connect(lambda _: self._refresh_display())
        self.panel.strength_changed.connect(self._strength_changed)
        self.panel.device_changed.connect(lambda _: self._device_changed())
        self.panel.latents_expanded_changed.connect(
            lambda expanded: self.settings.setValue("latents_expanded", "true" if expanded else "false"))
        self.viewer.mode_changed.connect(self._mode_changed)
        self.viewer.step_requested.connect(self.step_photo)

        self._restore_settings()
        self.refresh_models()
        self.choose_model(self.panel.model_name())

    @property
    def photo(self) -> OpenedPhoto | None:
        """The open photo (the session's)."""
        return self.session.photo

    @property
    def outcome(self) -> DenoiseOutcome | None:
        """The last result for the open photo: what Save writes (the session's)."""
        return self.session.result

    @property
    def model_name(self) -> str | None:
        """The model in use (the session's)."""
        return self.session.model_name

    # ----- building -------------------------------------------------------------------------------------
    def _build_actions(self) -> None:
        toolbar = QToolBar("Main")
        toolbar.setObjectName("toolbar-main")
        self.addToolBar(toolbar)
        menu = self.menuBar().addMenu("&File")

        def action(text: str, slot: Any, shortcut: str | QKeySequence.StandardKey | None = None,
                   where: tuple = ()) -> QAction:
            act = QAction(text, self)
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            for target in where:
                target.addAction(act)
            self.addAction(act)
            return act

        self.open_action = action("Open Photo...", self.open_photo_dialog, QKeySequence.StandardKey.Open,
                                  (menu, toolbar))
        self.open_folder_action = action("Open Folder...", self.open_folder_dialog, "Ctrl+Shift+O", (menu, toolbar))
        self.recent_menu = menu.addMenu("Recent Folders")
        menu.addSeparator()
        self.save_action = action("Save", self.save, QKeySequence.StandardKey.Save, (menu,))
        self.save_as_action = action("Save As...", self.save_as, "Ctrl+Shift+S", (menu,))
        menu.addSeparator()
        action("Quit", self.close, QKeySequence.StandardKey.Quit, (menu,))
        toolbar.addSeparator()
        self.denoise_action = action("Denoise", self.denoise, "Ctrl+D", (toolbar,))
        self.cancel_action = action("Cancel", self.cancel, "Esc")
        toolbar.addSeparator()
        view_menu = self.menuBar().addMenu("&View")
        self.mode_actions: dict[str, QAction] = {}
        for number, mode in enumerate(MODES, start=1):
            act = action(MODE_TITLES[mode], lambda _=False, m=mode: self.viewer.set_mode(m), str(number),
                         (view_menu, toolbar))
            act.setCheckable(True)
            self.mode_actions[mode] = act
        toolbar.addSeparator()
        self.fit_action = action("Fit", self.viewer.zoom_to_fit, "Ctrl+0", (view_menu, toolbar))
        self.fit_action.setToolTip("Zoom to fit the whole photo (Ctrl+0)")
        self.zoom_100_action = action("1:1", self.viewer.zoom_100, "Ctrl+1", (view_menu, toolbar))
        self.zoom_100_action.setToolTip("Zoom to 100 %: one photo pixel per screen pixel (Ctrl+1)")
        self.zoom_readout = ZoomReadout(self.viewer)
        toolbar.addWidget(self.zoom_readout)
        view_menu.addSeparator()
        # Keys of the viewer only (a list or a text field keeps its own PgUp/PgDn/Space): added to the viewer,
        # not to the window.
        self.next_action = QAction("Next Photo", self)
        self.next_action.setShortcuts([QKeySequence(Qt.Key.Key_PageDown), QKeySequence(Qt.Key.Key_Space)])
        self.next_action.triggered.connect(lambda: self.step_photo(1))
        self.previous_action = QAction("Previous Photo", self)
        self.previous_action.setShortcut(QKeySequence(Qt.Key.Key_PageUp))
        self.previous_action.triggered.connect(lambda: self.step_photo(-1))
        for act in (self.previous_action, self.next_action):
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.viewer.addAction(act)
            view_menu.addAction(act)
        tools = self.menuBar().addMenu("&Tools")
        action("Batch Denoise...", self.open_batch_dialog, "Ctrl+B", (tools,))
        self.train_action = action("Train a Model...", self.open_train_dialog, "Ctrl+T", (tools,))
        self.manage_models_action = action("Manage Models...", self.open_model_manager, "Ctrl+M", (tools,))
        if not torch_available():  # the desktop bundle: the entries stay, disabled, and say what they need
            for act, what in ((self.train_action, "Training a model"),
                              (self.manage_models_action, "The model library")):
                act.setEnabled(False)
                act.setText(act.text().removesuffix("...") + " (needs PyTorch)")
                act.setToolTip(f"{what} {NEEDS_PYTORCH}")
                act.setStatusTip(f"{what} {NEEDS_PYTORCH}")
            tools.setToolTipsVisible(True)
        tools.addSeparator()
        action("Compare with a Clean Reference...", self.choose_reference, None, (tools,))
        help_menu = self.menuBar().addMenu("&Help")
        action("Keyboard Shortcuts...", self.show_shortcuts, QKeySequence.StandardKey.HelpContents, (help_menu,))
        action("Show Log", self.show_log, None, (help_menu,))
        help_menu.addSeparator()
        action("About Denoiser", self.show_about, None, (help_menu,))

    # ----- help ---------------------------------------------------------------------------------------------
    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Every keyboard shortcut the window has as (what, keys), read from its actions (the window's and the
        viewer's), then the keys and gestures the viewer handles itself (``VIEWER_KEYS`` is (keys, what))."""
        viewer_rows = [(what, keys) for keys, what in VIEWER_KEYS]
        return shortcut_rows([*self.actions(), *self.viewer.actions()]) + viewer_rows

    def show_shortcuts(self) -> ShortcutsDialog:
        """Help > Keyboard Shortcuts: a dialog listing them (non-modal)."""
        dialog = ShortcutsDialog(self.shortcut_rows(), self)
        dialog.show()
        self.shortcuts_dialog = dialog
        return dialog

    def about_text(self) -> str:
        """Help > About's text: versions and the device in use."""
        return about_text(self._device_text())

    def show_about(self) -> None:
        """Help > About Denoiser."""
        QMessageBox.about(self, "About Denoiser", self.about_text())

    def show_log(self) -> None:
        """Help > Show Log: the log file (or its folder, until something was logged) in the desktop's viewer."""
        path = log_file()
        if not open_log(path):
            self._say(f"Could not open the log; it is {path}", error=True)

    # ----- models ---------------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Re-read the bundled and saved models into the chooser. When the model in use is no longer listed
        (deleted), the one the chooser falls back to is loaded, so that what is used is what the chooser says."""
        entries = model_entries()
        if not entries:
            entries = [(DEFAULT_MODEL, "bundled default model (missing)")]
        wanted = self.model_name or str(self.settings.value("model", DEFAULT_MODEL))
        self.panel.set_models(entries, wanted)
        if self.model_name is not None and self.model_name not in {name for name, _ in entries}:
            self.choose_model(self.panel.model_name())

    def _model_renamed(self, old: str, new: str) -> None:
        """A library model was renamed: the model in use (and the remembered one) follows its new name."""
        self.session.model_renamed(old, new)
        if str(self.settings.value("model", "")) == old:
            self.settings.setValue("model", new)

    def choose_model(self, name: str) -> None:
        """Load model ``name`` in the background; the loaded one stays in use until it succeeds."""
        if name == self.model_name and self.model is not None:
            return

        def job(should_stop: Any, on_progress: Any) -> tuple[Autoencoder | ExportedModel, Any]:
            return load_model_for_inference(name)

        self._start("model", f"Loading model {name}...", job, succeeded=self._model_loaded, failed=self._model_failed)

    def _device_changed(self) -> None:
        self.panel.device_label.setText(self._device_text())
        if self.outcome is not None:
            self.denoise()

    def _device_text(self) -> str:
        try:
            return str(resolve_device(self.panel.settings().device))
        except Exception as err:  # noqa: BLE001 - shown, not raised: the user picked an unavailable device
            return f"unavailable ({err})"

    # ----- opening ---------------------------------------------------------------------------------------
    def open_photo_dialog(self) -> None:
        """Ask for a photo and open it."""
        start = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open Photo", start, ";;".join(open_filters()))
        if path:
            self.show_photo(Path(path))

    def open_folder_dialog(self) -> None:
        """Ask for a folder and list its photos."""
        start = str(self.settings.value("last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open Folder", start)
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path, photo: Path | None = None, *, open_first: bool = True) -> None:
        """List the photos of ``folder`` in the folder pane (thumbnails fill in lazily) and open ``photo``, or
        else (with ``open_first``) the folder's first photo unless one of its photos is open already."""
        folder = Path(folder)
        self._restore_folder = None  # what the user opens wins over the remembered folder
        self.folder_pane.open_folder(folder)
        if self.folder_pane.folder() is None:  # could not be listed: the pane's header says why
            self._say(f"Could not list {folder}: {self.folder_pane.title.text()}", error=True)
            return
        self._remember_folder(folder)
        paths = self.folder_pane.paths()
        if photo is not None and Path(photo) in paths:
            target: Path | None = Path(photo)
        elif self.photo is not None and self.photo.path in paths:
            target = self.photo.path  # the open photo stays open (and selected) when its folder is re-listed
        else:
            target = paths[0] if paths and open_first else None
        if target is not None:
            self.folder_pane.select(target)
            self._photo_activated(target)
        elif not paths:
            self._say(f"No photos in {folder} (supported: {', '.join(SUPPORTED_EXTENSIONS)}).")
        self._update_title()

    def show_photo(self, path: Path) -> None:
        """Open ``path`` with its folder listed in the folder pane (listing that folder when the pane shows
        another), so a photo from elsewhere never joins the current folder's list."""
        path = Path(path)
        if self.folder_pane.folder() != path.parent:
            self.open_folder(path.parent, photo=path)
            if path in self.folder_pane.paths():
                return
            self.folder_pane.add_files([path])  # e.g. hidden (leading dot), which a folder listing skips
        self.folder_pane.select(path)
        self._photo_activated(path)

    def _photo_activated(self, path: Path) -> None:
        """A click in the folder pane: open the photo unless it is the one already open (or being opened)."""
        path = Path(path)
        if path != self._opening and (self.photo is None or self.photo.path != path):
            self.open_photo(path)

    def step_photo(self, delta: int) -> None:
        """Open the photo ``delta`` places after (negative: before) the open one in the folder pane, selecting it
        there as a click would; at either end the status bar says so."""
        paths = self.folder_pane.paths()
        if not paths:
            return
        current = self._opening or (self.photo.path if self.photo is not None else None)
        if current in paths:
            index = paths.index(current) + delta  # type: ignore[arg-type]
        else:
            index = 0 if delta > 0 else len(paths) - 1
        if not 0 <= index < len(paths):
            self._say(f"{'Last' if delta > 0 else 'First'} photo of the folder.")
            return
        target = paths[index]
        self.folder_pane.select(target)
        self._photo_activated(target)

    def open_photo(self, path: Path) -> None:
        """Read ``path`` in the background; the viewer keeps the current photo until it is read."""
        path = Path(path)
        self._restore_folder = None
        self._opening = path
        self._start("open", f"Opening {path.name}...", lambda stop, progress: read_photo(path), lane="display",
                    succeeded=self._photo_opened, failed=self._open_failed, cancelled=self._open_cancelled)

    def _update_title(self) -> None:
        self.setWindowTitle(window_title(self.photo.path if self.photo is not None else None,
                                         self.folder_pane.folder()))

    def _show_noise_map(self) -> None:
        """In noise map mode, draw the open photo's noise map in the background (once per photo)."""
        photo = self.photo
        if photo is None or self.viewer.mode() != "noise" or self._noise_map_of is photo:
            return
        self._noise_map_of = photo
        def job(_stop: Any, _progress: Any) -> tuple[OpenedPhoto, QImage, list[QImage], list[str]]:
            return draw_noise_map(photo)

        self._start("noisemap", "", job, lane="display", succeeded=self._noise_map_drawn,
                    failed=self._noise_map_failed)

    # ----- denoising ---------------------------------------------------------------------------------------
    def _strength(self) -> Strength:
        """The strength the panel asks for: auto times the amount, or a fixed sigma; times the noise amounts."""
        return self.panel.settings().strength_setting()

    def _show_noise(self) -> None:
        self.panel.set_noise_estimate(self.photo.estimate if self.photo is not None else None)

    def denoise(self) -> None:
        """Denoise the open photo: the visible region first when the photo is large, then all of it."""
        if self.photo is None or self.model is None:
            self._say("Open a photo first." if self.photo is None else "No model is loaded.")
            return
        photo, model, strength = self.photo, self.model, self._strength()
        device = self.panel.settings().device
        tiles = TileSettings(passes=self.panel.settings().passes)
        rect = self.viewer.visible_image_rect()
        visible = Region(int(rect.left()), int(rect.top()), int(rect.width()) + 1, int(rect.height()) + 1)
        zoom = self.viewer.zoom()

        job = partial(denoise_photo, photo, model, strength, visible, zoom, tiles, device)

        self._progress_clock.reset()
        self._denoising = photo.path
        self.session.start_denoise(strength)
        self._start("denoise", f"Denoising {photo.path.name} at {strength.describe()}...", job,
                    succeeded=self._denoised, failed=lambda text: self._view_job_failed("denoise", text),
                    cancelled=self._denoise_cancelled)
        self.viewer.set_working("Denoising...")

    def cancel(self) -> None:
        """Stop the running denoise (within one tile batch); the previous result stays on screen."""
        for kind in ("denoise", "model"):  # the window's own work; a batch has its own Cancel
            self.bridge.cancel("model", kind)

    def _strength_changed(self) -> None:
        if self.outcome is not None and self.photo is not None:
            self.denoise()

    def _refresh_display(self, preview: np.ndarray | None = None) -> None:
        """Re-blend the result with the detail setting and rebuild the viewer's images, in the background."""
        if self.photo is None or (self.outcome is None and preview is None):
            return
        original = self.photo.image.color_pixels()
        denoised = preview if preview is not None else self.outcome.denoised  # type: ignore[union-attr]
        detail = self.panel.settings().detail

        def job(_stop: Any, _progress: Any) -> Views:
            return compose_display(original, denoised, detail)

        self._start("display", "", job, lane="display", succeeded=self._display_ready,
                    failed=lambda text: self._view_job_failed("display", text))

    # ----- saving -------------------------------------------------------------------------------------------
    def _result_image(self) -> Image | None:
        if self.photo is None or self.outcome is None:
            return None
        original = self.photo.image
        return original.with_color(blend(original.color(), self.outcome.denoised, self.panel.settings().detail))

    def suggested_path(self) -> Path | None:
        """``{stem}_denoised{ext}`` beside the photo, numbered when taken (a camera RAW photo gives ``.tif``)."""
        if self.photo is None:
            return None
        source = self.photo.path
        extension = result_extension(source)
        candidate, number = source.with_name(f"{source.stem}_denoised{extension}"), 1
        while candidate.exists():
            number += 1
            candidate = source.with_name(f"{source.stem}_denoised-{number}{extension}")
        return candidate

    def save(self) -> None:
        """Save beside the photo under a new name (never over the original); JPEG and WebP at the remembered
        quality."""
        target = self.suggested_path()
        if target is not None:
            self.save_to(target, quality=_stored_quality(self.settings))

    def save_as(self) -> None:
        """Ask where to save (the filter shown is the proposed name's format); format follows the extension;
        JPEG and WebP ask for a quality (remembered); the original needs an explicit confirmation."""
        suggestion = self.suggested_path()
        if suggestion is None:
            return
        filters = save_filters()
        fmt = WRITABLE_EXTENSIONS.get(suggestion.suffix.lower(), "PNG")
        path, chosen = QFileDialog.getSaveFileName(self, "Save As", str(suggestion), ";;".join(filters.values()),
                                                   filters.get(fmt, ""))
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() not in WRITABLE_EXTENSIONS:  # some dialogs leave the filter's extension off
            chosen_format = next((name for name, text in filters.items() if text == chosen), fmt)
            extension = next(ext for ext, name in WRITABLE_EXTENSIONS.items() if name == chosen_format)
            target = target.with_name(target.name + extension)
        quality = _stored_quality(self.settings)
        target_format = WRITABLE_EXTENSIONS[target.suffix.lower()]
        if target_format in LOSSY_FORMATS:
            asked = self.ask_quality(target_format, quality)
            if asked is None:
                return
            quality = asked
            self.settings.setValue("save_quality", quality)
        if self.photo is not None and target.resolve() == self.photo.path.resolve():
            answer = QMessageBox.warning(
                self, "Overwrite the original?",
                f"{target.name} is the original photo. Replace it with the denoised result? "
                "The original cannot be recovered.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return
            self.save_to(target, replace_original=True, quality=quality)
        else:
            self.save_to(target, overwrite=target.exists(), quality=quality)  # the dialog already asked

    def ask_quality(self, fmt: str, current: int) -> int | None:
        """Ask for the JPEG or WebP quality (1-100) to write at; None when cancelled. (Tests replace it.)"""
        name = format_info(fmt).label
        lossless = " WebP at 100 is lossless." if fmt == "WEBP" else ""
        value, ok = QInputDialog.getInt(
            self, f"{name} quality", f"{name} quality (1-100): higher keeps more detail in a larger file.{lossless}\n"
            "Save uses it too until you choose another.", current, 1, 100)
        return value if ok else None

    def save_to(self, target: Path, overwrite: bool = False, replace_original: bool = False,
                quality: int = DEFAULT_SAVE_QUALITY) -> None:
        """Write the result (blended with the detail setting, full bit depth, metadata kept) in the background;
        ``quality`` (1-100) applies to JPEG and WebP."""
        result = self._result_image()
        if result is None:
            return
        protected = [] if replace_original else [self.photo.path]  # type: ignore[union-attr]
        if replace_original:
            result = dataclasses.replace(result, source=None)

        def job(should_stop: Any, on_progress: Any) -> Path:
            return write_image(target, result, quality=quality, protected=protected,
                               overwrite=overwrite or replace_original)

        self._start("save", f"Saving {target.name}...", job, lane="io", replace=False, succeeded=self._saved,
                    failed=lambda text: self._say(f"Not saved: {text}", error=True))

    # ----- tools: batch, training, model library, reference -----------------------------------------------
    def open_batch_dialog(self) -> BatchDialog:
        """Batch-denoise folders (non-modal: the window stays usable).

        The dialog is a window of its own, not a child kept above this one: a result opened from its table
        brings this window to the front, in front of the dialog. The window keeps it (and closes it on close).
        """
        names = model_names() or [DEFAULT_MODEL]
        settings = self.panel.settings()
        dialog = BatchDialog(self.bridge, names, self.model_name or DEFAULT_MODEL, None, passes=settings.passes)
        dialog.set_strength(settings.auto_strength, settings.strength, settings.amount, settings.luminance,
                            settings.color)
        dialog.open_pair.connect(self._open_batch_pair)
        # Closed dialogs with no batch left running are let go; a running one stays referenced until it ends.
        self._batch_dialogs = [d for d in self._batch_dialogs if d.isVisible() or d.is_running()] + [dialog]
        dialog.show()
        self.batch_dialog = dialog
        return dialog

    def _open_batch_pair(self, source: Path, output: Path) -> None:
        """A batch result row was activated: show it here, and bring this window in front of the dialog."""
        self.open_pair(source, output)
        self.bring_to_front()

    def bring_to_front(self) -> None:
        """Un-minimise, raise and activate the window (as far as the window manager allows)."""
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()

    def open_train_dialog(self) -> TrainDialog | None:
        """Train or fine-tune a model; a saved model appears in the chooser. Without torch the status bar says
        what training needs, and there is no dialog (None)."""
        if not torch_available():
            self._say(f"Training a model {NEEDS_PYTORCH}.", error=True)
            return None
        from ui.train_dialog import TrainDialog  # imports torch

        dialog = TrainDialog(self.bridge, self)
        dialog.model_saved.connect(lambda name: self.refresh_models())
        dialog.show()
        self.train_dialog = dialog
        return dialog

    def open_model_manager(self) -> ModelManager | None:
        """The model library: rename, delete, import, export. Without torch the status bar says what the library
        needs, and there is no dialog (None)."""
        if not torch_available():
            self._say(f"The model library {NEEDS_PYTORCH}.", error=True)
            return None
        from ui.model_manager import ModelManager  # imports torch

        dialog = ModelManager(self.bridge, self)
        dialog.model_renamed.connect(self._model_renamed)
        dialog.models_changed.connect(self.refresh_models)
        dialog.show()
        self.model_manager = dialog
        return dialog

    def choose_reference(self) -> None:
        """Pick a clean reference for the open photo by hand (one in a sibling clean/ folder is found alone)."""
        if self.photo is None:
            self._say("Open a photo first.")
            return
        path, _ = QFileDialog.getOpenFileName(self, "Clean Reference", str(self.photo.path.parent),
                                              ";;".join(open_filters()))
        if path:
            self.compare_with_reference(Path(path))

    def compare_with_reference(self, reference: Path | None = None) -> None:
        """PSNR and SSIM of the noisy photo and of the result against a clean reference, in the background."""
        if self.photo is None or self.outcome is None:
            return
        reference = reference or find_reference(self.photo.path)
        if reference is None:
            self.panel.set_reference_text("")
            return
        photo, result = self.photo.image, self._result_image()

        def job(should_stop: Any, on_progress: Any) -> tuple[Path, dict, str]:
            figures, note = reference_metrics(photo, result, read_image(reference))
            return reference, figures, note

        self._start("reference", "", job, lane="io", replace=False,
                    succeeded=lambda result: self.panel.set_reference_text(reference_text(*result)))

    def open_pair(self, source: Path, output: Path) -> None:
        """Show a batch output beside its input: the input as the original, the output as the result."""

        def job(_stop: Any, _progress: Any) -> tuple[OpenedPhoto, DenoiseOutcome]:
            return read_pair(source, output)

        self._start("pair", f"Opening {source.name} and {output.name}...", job, lane="display",
                    succeeded=self._pair_opened)

    # ----- job plumbing ---------------------------------------------------------------------------------------
    def _start(self, kind: str, message: str, fn: Any, lane: str = "model", replace: bool = True, *,
               succeeded: Callable[[Any], None] | None = None, failed: Callable[[str], None] | None = None,
               cancelled: Callable[[], None] | None = None) -> None:
        """Submit ``fn`` as the window's job of ``kind`` and wire its handle: only the latest job of each kind
        reaches the widgets; a failure is said in the status bar (after ``failed``, when given)."""
        if self._closing:
            return
        handle = self.bridge.submit(kind, fn, lane=lane, replace=replace)
        self._jobs[kind] = handle

        def latest(slot: Callable[..., None]) -> Callable[..., None]:
            return lambda *args: slot(*args) if self._jobs.get(kind) is handle else None

        def on_failed(text: str) -> None:
            self.last_error = text
            if failed is not None:
                failed(text)
            else:
                self._say(f"{kind.capitalize()} failed: {text}", error=True)

        if succeeded is not None:
            handle.succeeded.connect(latest(succeeded))
        handle.failed.connect(latest(on_failed))
        if cancelled is not None:
            handle.cancelled.connect(latest(cancelled))
        handle.progress.connect(latest(lambda event: self._on_progress(kind, event)))
        handle.started.connect(self._update_busy)
        handle.finished.connect(self._update_busy)
        self._update_busy()
        if message:
            self._say(message)

    def _model_loaded(self, result: tuple[Autoencoder | ExportedModel, Any]) -> None:
        self.model, info = result
        self.session.model_loaded(info.name)
        self.panel.set_models(model_entries() or [(info.name, "")], info.name)
        self.panel.set_model_note(model_note(info))
        if isinstance(self.model, ExportedModel):  # a graph gives the result only: no bottleneck to show
            self.panel.set_latents_note(LATENTS_NEED_PYTORCH)
        self.panel.device_label.setText(self._device_text())
        self._say(f"Model {info.name} ready.")
        self._show_noise()
        if self.photo is not None and self.auto_denoise:
            self.denoise()

    def _model_failed(self, message: str) -> None:
        self.panel.set_models(model_entries(), self.model_name)
        kept = f" Still using {self.model_name}." if self.model_name else ""
        self._say(f"Could not load the model: {message}.{kept}", error=True)

    def _pair_opened(self, result: tuple[OpenedPhoto, DenoiseOutcome]) -> None:
        opened, outcome = result
        self._photo_opened(opened, auto_denoise=False)
        self._denoised(outcome)
        self._say(f"{outcome.path.name} beside the saved result.")

    def _photo_opened(self, result: OpenedPhoto, auto_denoise: bool = True) -> None:
        if self._opening == result.path:
            self._opening = None
        self.session.open(result)
        self.panel.set_reference_text("")
        self.viewer.prime(result.display, result.levels)
        self.viewer.set_original(result.display)
        self._show_noise()
        self._show_noise_map()
        self.panel.set_has_result(False)
        self.panel.set_findings([])
        self.panel.latents.clear()
        image = result.image
        self.info_panel.set_photo(result.path, image.width, image.height, image.bit_depth, image.channels,
                                  image.format, result.facts, result.histogram)
        self._update_title()
        self._say(f"{result.path.name}: {image.width}x{image.height}, {depth_text(image.bit_depth, image.channels)}, "
                  f"noise found: {result.estimate.summary()}.")
        if auto_denoise and self.auto_denoise and self.model is not None:
            self.denoise()

    def _open_failed(self, message: str) -> None:
        self._opening = None
        self._say(f"Could not open the photo: {message}", error=True)

    def _open_cancelled(self) -> None:
        self._opening = None

    def _denoised(self, result: DenoiseOutcome) -> None:
        self.session.finish_denoise(result)
        self.panel.set_has_result(True)
        self.panel.set_findings(result.findings)
        self.panel.latents.set_thumbnails(
            result.latents.caption, array_to_qimage(result.latents.colour),
            [(label, array_to_qimage(image)) for label, image in result.latents.channels])
        self._refresh_display()
        self.compare_with_reference()
        how = f"{result.strength.describe()}, " if result.strength is not None else ""
        message = f"Denoised {result.path.name} at {how}typical sigma {result.sigma:.1f}."
        if result.findings:
            count = len(result.findings)
            message += f" {count} warning{'s' if count > 1 else ''}: see the side panel."
        self._say(message)

    def _view_job_failed(self, kind: str, message: str) -> None:
        """A denoise or a display job failed: the viewer stops saying it works."""
        self.viewer.set_working("")
        self._say(f"{kind.capitalize()} failed: {message}", error=True)

    def _denoise_cancelled(self) -> None:
        self.viewer.set_working("")
        # A preview of the cancelled run may be on screen: show again exactly what Save writes.
        if self.session.cancel_denoise() is not None:
            self._refresh_display()
            made_with = self.session.result_strength()
            how = f" ({made_with.describe()})" if made_with is not None else ""
            self._say(f"Denoise cancelled; the previous result{how} is shown again, and Save writes it.")
        else:
            self._jobs.pop("display", None)  # a preview still being drawn is not shown
            self.viewer.set_result(None)
            self.info_panel.set_result_histogram(None)
            self._say("Denoise cancelled; there is no result to save yet.")

    def _noise_map_drawn(self, result: tuple[OpenedPhoto, QImage, list[QImage], list[str]]) -> None:
        photo, image, levels, legend = result
        if photo is self.photo:
            self.viewer.prime(image, levels)
            self.viewer.set_noise_map(image, legend, noise_map_key())

    def _noise_map_failed(self, message: str) -> None:
        self._noise_map_of = None  # choosing the mode again tries again
        self._say(f"Could not draw the noise map: {message}", error=True)

    def _display_ready(self, result: tuple[Any, ...]) -> None:
        (shown, shown_levels), (removed, removed_levels), shown_histogram = result
        self.viewer.prime(shown, shown_levels)
        self.viewer.prime(removed, removed_levels)
        self.viewer.set_result(shown, removed)
        self.info_panel.set_result_histogram(shown_histogram)
        if not self.bridge.is_busy("model", "denoise"):  # the whole result, not a preview, is on screen
            self.viewer.set_working("")

    def _saved(self, path: Path) -> None:
        self._say(f"Saved {path}.")
        if self.folder_pane.folder() == path.parent:
            self.folder_pane.add_files([path])

    def _on_progress(self, kind: str, event: Progress) -> None:
        if event.stage == "preview" and self.photo is not None and event.extra.get("path") == self.photo.path:
            self._refresh_display(preview=event.extra["preview"])
            self._say("Preview of the visible region; the whole photo follows...")
        elif event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(event.done)
            if kind == "denoise":
                percent, left = self._progress_clock.update(event.done, event.total)
                name = self._denoising.name if self._denoising is not None else "the photo"
                self._say(progress_text(f"Denoising {name}", percent, left))
                self.viewer.set_working(f"Denoising... {percent} %")
        elif event.message:
            self._say(event.message)

    def _update_busy(self) -> None:
        """Progress and Cancel show while the window's own model work (denoise, model loading) runs."""
        busy = any(self.bridge.is_busy("model", kind) for kind in ("denoise", "model"))
        if busy == self._busy:
            return
        self._busy = busy
        self.progress_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.panel.set_busy(busy)
        if busy:
            self.progress_bar.setRange(0, 0)

    def _say(self, message: str, error: bool = False) -> None:
        self.status_label.setText(message)
        self.status_label.setStyleSheet("color: #d33;" if error else "")

    # ----- settings, drops, closing ---------------------------------------------------------------------------
    def _mode_changed(self, mode: str) -> None:
        for name, act in self.mode_actions.items():
            act.setChecked(name == mode)
        self._show_noise_map()

    def _remember_folder(self, folder: Path) -> None:
        self.settings.setValue("last_folder", str(folder))
        recent = [str(folder)] + [f for f in self._recent_folders() if f != str(folder)]
        self.settings.setValue("recent_folders", recent[:MAX_RECENT])
        self._fill_recent_menu()

    def _recent_folders(self) -> list[str]:
        value = self.settings.value("recent_folders", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or []]

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for folder in self._recent_folders():
            act = self.recent_menu.addAction(folder)
            act.triggered.connect(lambda _=False, f=folder: self.open_folder(Path(f)))
        self.recent_menu.setEnabled(bool(self._recent_folders()))

    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = self.settings.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        mode = str(self.settings.value("view_mode", "side"))
        self.viewer.set_mode(mode if mode in MODES else "side")
        self._mode_changed(self.viewer.mode())
        auto = str(self.settings.value("auto_strength", "true")).lower() == "true"
        try:
            sigma = float(str(self.settings.value("strength", 25)))
        except ValueError:
            sigma = 25.0  # a hand-edited settings file: keep the default
        self.panel.set_strength(auto, sigma, *(_stored_amount(self.settings, key)
                                               for key in ("amount", "luminance", "color")))
        self.panel.set_devices(available_devices(), str(self.settings.value("device", "auto")))
        try:
            self.panel.set_passes(int(str(self.settings.value("passes", 1))))
        except ValueError:
            pass  # a hand-edited settings file: keep the default quality
        self.panel.set_latents_expanded(str(self.settings.value("latents_expanded", "false")).lower() == "true")
        self._fill_recent_menu()
        last = self.settings.value("last_folder")
        if last and Path(str(last)).is_dir():
            # Reopened once the event loop runs, unless something was opened first (a command-line argument).
            self._restore_folder = Path(str(last))
            QTimer.singleShot(0, self._restore_last_folder)

    def _restore_last_folder(self) -> None:
        """Reopen the remembered folder (and its first photo), unless a folder or photo was opened since."""
        folder, self._restore_folder = self._restore_folder, None
        if folder is not None and not self._closing:
            self.open_folder(folder)

    def save_settings(self) -> None:
        """Remember geometry, view mode, model, strength (and its amounts) and device for the next run."""
        settings = self.panel.settings()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        self.settings.setValue("view_mode", self.viewer.mode())
        self.settings.setValue("model", self.model_name or settings.model)
        self.settings.setValue("auto_strength", "true" if settings.auto_strength else "false")
        self.settings.setValue("strength", settings.strength)
        self.settings.setValue("amount", settings.amount)
        self.settings.setValue("luminance", settings.luminance)
        self.settings.setValue("color", settings.color)
        self.settings.setValue("device", settings.device)
        self.settings.setValue("passes", settings.passes)
        self.settings.sync()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        self.open_paths(paths)
        event.acceptProposedAction()

    def open_paths(self, paths: list[Path]) -> None:
        """What a drop or the command line does: a folder opens in the pane with its first photo; a photo opens
        with its folder listed (further photos from elsewhere are added to the list); with both, the photos are
        added to the folder's list and the first one opens."""
        paths = [Path(p).absolute() for p in paths]
        folders = [p for p in paths if p.is_dir()]
        files = [p for p in paths if p.is_file() and is_image_path(p)]
        if folders:
            self.open_folder(folders[0], open_first=not files)
            if files:
                self.folder_pane.add_files(files)
                self.folder_pane.select(files[0])
                self._photo_activated(files[0])
        elif files:
            self.show_photo(files[0])
            self.folder_pane.add_files(files[1:])
        if not folders and not files:
            self._say("Nothing to open in what was dropped (no folder or supported photo).", error=True)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self._closing = True
        self.save_settings()
        for dialog in self._batch_dialogs:
            dialog.close()  # cancels its batch; what is written stays
        self._batch_dialogs.clear()
        self.bridge.shutdown()
        event.accept()

