"""The main window: folder pane, before/after viewer, side panel, status bar with progress and Cancel.

Every piece of model or file work goes through the one :class:`~ui.worker.WorkerBridge`; this module only
wires widgets to jobs and jobs' results back to widgets. The jobs themselves call the engine (:mod:`ui.photo_jobs`);
the menus are built in :mod:`ui.window_menus`, the batch, training and model windows in :mod:`ui.tool_windows`,
what Save writes in :mod:`ui.saving`, the status bar's progress in :mod:`ui.status_bar`, what is remembered in
:mod:`ui.window_settings`, the view maths and session state in :mod:`ui.state`.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow

from denoiser.batch import find_reference
from denoiser.devices import resolve_device
from denoiser.exported import ExportedModel
from denoiser.inference import TileSettings
from denoiser.io import SUPPORTED_EXTENSIONS, Image, is_image_path
from denoiser.model_loading import DEFAULT_MODEL, load_model_for_inference
from denoiser.preview import Region
from denoiser.progress import Progress
from denoiser.strength import Strength
from ui import saving
from ui.captions import reference_text, window_title
from ui.file_filters import open_filters
from ui.folder_pane import FolderPane
from ui.help import HelpMenuSlots
from ui.icon import app_icon
from ui.info_panel import InfoPanel, depth_text
from ui.panel import PanelScrollArea, SidePanel
from ui.photo_jobs import (
    DenoiseOutcome,
    OpenedPhoto,
    QuickViews,
    Views,
    compare_with_reference,
    compose_display_quick_first,
    compose_region_preview,
    denoise_photo,
    draw_noise_map,
    noise_map_key,
    read_pair,
    read_photo,
)
from ui.qimage import array_to_qimage
from ui.state import Session, photo_after, photo_to_open
from ui.status_bar import StatusBarReport
from ui.tool_windows import ToolWindows
from ui.torch_parts import LATENTS_NEED_PYTORCH, model_entries, model_note
from ui.viewer import ImageViewer
from ui.window_jobs import LatestJobs
from ui.window_menus import build_window_actions
from ui.window_settings import (
    DEFAULT_SAVE_QUALITY,
    RecentFolders,
    default_settings,
    last_folder,
    restore_controls,
    restore_geometry,
    store_window,
)
from ui.worker import WorkerBridge

if TYPE_CHECKING:  # torch types: the app runs without torch (the desktop bundle)
    from denoiser.models import Autoencoder
    from ui.batch_dialog import BatchDialog
    from ui.model_manager import ModelManager
    from ui.train_dialog import TrainDialog

__all__ = ["MainWindow", "default_settings", "window_title"]

PHOTO_COLUMNS = 2
"""Thumbnail columns the Photos dock is wide enough for on a first start."""


class MainWindow(HelpMenuSlots, QMainWindow):
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
        self.jobs = LatestJobs(self.bridge, progress=self._on_progress, activity=self._update_busy,
                               failed=lambda kind, text: self.say(f"{kind.capitalize()} failed: {text}", error=True))
        self._noise_map_of: OpenedPhoto | None = None  # the photo whose noise map is shown or being drawn
        self._restore_folder: Path | None = None  # the remembered folder, until something else is opened
        self._opening: Path | None = None  # the photo an "open" job is reading
        self._denoising: Path | None = None  # the photo the running denoise is for

        self.tools = ToolWindows(self, self)  # batch dialogs, training, the model library
        self.viewer = ImageViewer()
        self.setCentralWidget(self.viewer)
        self.folder_pane = FolderPane(self.bridge)
        self.panel = SidePanel()
        # The panel scrolls rather than squeezing its wrapped texts (model note, warnings) into clipped lines
        # when the window is short.
        self.panel_scroll = PanelScrollArea(self.panel)
        self.info_panel = InfoPanel()
        self.docks = self._add_docks()
        self.status = StatusBarReport(self.statusBar(), self.cancel)
        self.status_label, self.progress_bar, self.cancel_button = (self.status.label, self.status.progress_bar,
                                                                    self.status.cancel_button)
        actions = build_window_actions(self, self)
        self.open_action, self.save_action, self.cancel_action = (actions.open_action, actions.save_action,
                                                                  actions.cancel_action)
        self.mode_actions, self.fit_action, self.zoom_100_action = (actions.mode_actions, actions.fit_action,
                                                                    actions.zoom_100_action)
        self.zoom_readout, self.next_action, self.previous_action = (actions.zoom_readout, actions.next_action,
                                                                     actions.previous_action)
        self.train_action, self.manage_models_action = actions.train_action, actions.manage_models_action
        self.open_folder_action, self.save_as_action, self.denoise_action, self.recent_menu = (
            actions.open_folder_action, actions.save_as_action, actions.denoise_action, actions.recent_menu)
        self.recent = RecentFolders(self.settings, actions.recent_menu, self.open_folder)
        self._wire_widgets()
        self._restore_settings()
        self.refresh_models()
        self.choose_model(self.panel.model_name())

    def _add_docks(self) -> dict[str, QDockWidget]:
        """The folder pane on the left; the controls and, as a tab behind them, the photo's info on the right."""
        docks: dict[str, QDockWidget] = {}
        for dock_title, widget, area in (("Photos", self.folder_pane, Qt.DockWidgetArea.LeftDockWidgetArea),
                                         ("Denoise", self.panel_scroll, Qt.DockWidgetArea.RightDockWidgetArea),
                                         ("Info", self.info_panel, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock = QDockWidget(dock_title, self)
            dock.setObjectName(f"dock-{dock_title}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, dock)
            docks[dock_title] = dock
        self.tabifyDockWidget(docks["Denoise"], docks["Info"])
        docks["Denoise"].raise_()
        return docks

    def _wire_widgets(self) -> None:
        self.folder_pane.image_activated.connect(self._photo_activated)
        self.folder_pane.folder_changed.connect(self.recent.remember)
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

    @property
    def last_error(self) -> str:
        """The message of the last job that failed."""
        return self.jobs.last_error

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
            gone = self.model_name
            self.choose_model(self.panel.model_name())
            self.say(f"The model {gone!r} is no longer in your library: {self.panel.model_name()!r} takes over.",
                     error=True)

    def model_renamed(self, old: str, new: str) -> None:
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
            self.say(f"Could not list {folder}: {self.folder_pane.title.text()}", error=True)
            return
        self.recent.remember(folder)
        paths = self.folder_pane.paths()
        target = photo_to_open(paths, Path(photo) if photo is not None else None,
                               self.photo.path if self.photo is not None else None, open_first)
        if target is not None:
            self.folder_pane.select(target)
            self._photo_activated(target)
        elif not paths:
            self.say(f"No photos in {folder} (supported: {', '.join(SUPPORTED_EXTENSIONS)}).")
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
        target = photo_after(paths, current, delta)
        if target is None:
            self.say(f"{'Last' if delta > 0 else 'First'} photo of the folder.")
            return
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
        photo = self.photo
        self.panel.set_noise_estimate(photo.estimate if photo is not None else None,
                                      photo.noise_summary if photo is not None else "")

    def denoise(self) -> None:
        """Denoise the open photo: the visible region first when the photo is large, then all of it."""
        if self.photo is None or self.model is None:
            self.say("Open a photo first." if self.photo is None else "No model is loaded.")
            return
        photo, model, strength = self.photo, self.model, self._strength()
        device = self.panel.settings().device
        tiles = TileSettings(passes=self.panel.settings().passes)
        job = partial(denoise_photo, photo, model, strength, self._visible_region(), self.viewer.zoom(), tiles, device)

        self.status.start_measuring()
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

    def _visible_region(self) -> Region:
        """The part of the photo in view, in whole pixels (one more at each far edge: partly seen pixels count)."""
        rect = self.viewer.visible_image_rect()
        return Region(int(rect.left()), int(rect.top()), int(rect.width()) + 1, int(rect.height()) + 1)

    def _refresh_display(self, preview: np.ndarray | None = None, region: Region | None = None) -> None:
        """Re-blend the result with the detail setting and rebuild the viewer's images, in the background: the
        visible region (or, viewed whole, the screen's scale) first, then the whole photo. A ``preview`` of a
        ``region`` alone (its pixels) is composed there only and drawn over what is shown."""
        if self.photo is None or (self.outcome is None and preview is None):
            return
        original, detail = self.photo.image.color_pixels(), self._detail()
        shown = self.viewer.result_levels()
        job: Any
        if preview is not None and region is not None:
            patch_job = partial(compose_region_preview, original, preview, region, detail, shown)
            job = lambda on_progress: patch_job()  # noqa: E731 - one job shape for both
        else:
            denoised = preview if preview is not None else self.outcome.denoised  # type: ignore[union-attr]
            job = partial(compose_display_quick_first, original, denoised, detail, self._visible_region(),
                          self.viewer.zoom(), shown, preview=preview is not None)
        self._start("display", "", lambda _stop, progress: job(on_progress=progress), lane="display",
                    succeeded=self._display_ready, failed=lambda text: self._view_job_failed("display", text))

    # ----- saving -------------------------------------------------------------------------------------------
    def _detail(self) -> float:
        """How much of the original the result gets back: the panel's Detail, but none for a saved result shown
        beside its input (a batch's), which is shown as it was saved."""
        saved_result = self.outcome is not None and self.outcome.strength is None
        return 0.0 if saved_result else self.panel.settings().detail

    def _result_image(self) -> Image | None:
        if self.photo is None or self.outcome is None:
            return None
        return saving.result_image(self.photo.image, self.outcome.denoised, self._detail())

    def suggested_path(self) -> Path | None:
        """``{stem}_denoised{ext}`` beside the photo, numbered when taken (a camera RAW photo gives ``.tif``)."""
        return saving.suggested_path(self.photo.path) if self.photo is not None else None

    def save(self) -> None:
        """Save beside the photo under a new name (never over the original); JPEG and WebP at the remembered
        quality."""
        if self.photo is not None:
            self.save_to(saving.plan_save(self.photo.path, self.settings))

    def save_as(self) -> None:
        """Ask where to save (the filter shown is the proposed name's format); format follows the extension;
        JPEG and WebP ask for a quality (remembered); the original needs an explicit confirmation."""
        if self.photo is not None:
            plan = saving.plan_save_as(self, self.photo.path, self.settings, self.ask_quality)
            if plan is not None:
                self.save_to(plan)

    def ask_quality(self, fmt: str, current: int) -> int | None:
        """Ask for the JPEG or WebP quality (1-100) to write at; None when cancelled. (Tests replace it.)"""
        return saving.ask_quality(self, fmt, current)

    def save_to(self, plan: saving.SavePlan | Path, quality: int = DEFAULT_SAVE_QUALITY) -> None:
        """Write the result (blended with the detail setting, full bit depth, metadata kept) in the background,
        as ``plan`` says (a bare path: a new file at ``quality``)."""
        result = self._result_image()
        if result is None:
            return
        if not isinstance(plan, saving.SavePlan):
            plan = saving.SavePlan(Path(plan), quality)
        self._start("save", f"Saving {plan.target.name}...", saving.write_job(plan, result, self.photo.path),
                    lane="io", replace=False, succeeded=self._saved,
                    failed=lambda text: self.say(f"Not saved: {text}", error=True))

    # ----- tools: batch, training, model library (ui.tool_windows), reference ----------------------------------
    def open_batch_dialog(self) -> BatchDialog:
        """Batch-denoise folders (non-modal: the window stays usable; it closes the dialog on close)."""
        return self.tools.open_batch_dialog()

    def bring_to_front(self) -> None:
        """Un-minimise, raise and activate the window (as far as the window manager allows)."""
        if self.isMinimized():
            self.showNormal()
        self.raise_()
        self.activateWindow()

    def open_train_dialog(self) -> TrainDialog | None:
        """Train or fine-tune a model (None without torch: the status bar says what training needs)."""
        return self.tools.open_train_dialog()

    def open_model_manager(self) -> ModelManager | None:
        """The model library (None without torch: the status bar says what it needs)."""
        return self.tools.open_model_manager()

    def choose_reference(self) -> None:
        """Pick a clean reference for the open photo by hand (one in a sibling clean/ folder is found alone)."""
        if self.photo is None:
            self.say("Open a photo first.")
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
        job = partial(compare_with_reference, self.photo.image, self._result_image(), reference)
        self._start("reference", "", lambda _stop, _progress: job(), lane="io", replace=False,
                    succeeded=lambda result: self.panel.set_reference_text(reference_text(*result)))

    def open_pair(self, source: Path, output: Path) -> None:
        """Show a batch output beside its input: the input as the original, the output as the result."""

        def job(_stop: Any, _progress: Any) -> tuple[OpenedPhoto, DenoiseOutcome]:
            return read_pair(source, output)

        self._start("pair", f"Opening {source.name} and {output.name}...", job, lane="display",
                    succeeded=self._pair_opened)

    # ----- job results -------------------------------------------------------------------------------------
    def _start(self, kind: str, message: str, fn: Any, lane: str = "model", replace: bool = True,
               **slots: Any) -> None:
        """Start the window's job of ``kind`` with its result ``slots`` (succeeded, failed, cancelled) and say
        ``message``; only the latest job of each kind reaches the widgets."""
        if self.jobs.start(kind, fn, lane, replace, **slots) is not None and message:
            self.say(message)

    def _model_loaded(self, result: tuple[Autoencoder | ExportedModel, Any]) -> None:
        self.model, info = result
        self.session.model_loaded(info.name)
        self.panel.set_models(model_entries() or [(info.name, "")], info.name)
        self.panel.set_model_note(model_note(info))
        if isinstance(self.model, ExportedModel):  # a graph gives the result only: no bottleneck to show
            self.panel.set_latents_note(LATENTS_NEED_PYTORCH)
        self.panel.device_label.setText(self._device_text())
        self.status.note(f"Model {info.name} ready.")
        self._show_noise()
        if self.photo is not None and self.auto_denoise:
            self.denoise()

    def _model_failed(self, message: str) -> None:
        self.panel.set_models(model_entries(), self.model_name)
        kept = f" Still using {self.model_name}." if self.model_name else ""
        self.say(f"Could not load the model: {message}.{kept}", error=True)

    def _pair_opened(self, result: tuple[OpenedPhoto, DenoiseOutcome]) -> None:
        opened, outcome = result
        self._photo_opened(opened, auto_denoise=False)
        self._denoised(outcome)
        # The pane lists the photo's folder with it selected, as for any photo opened (the photo is open already,
        # so selecting it opens nothing again).
        if self.folder_pane.folder() != opened.path.parent:
            self.open_folder(opened.path.parent, photo=opened.path)
        self.folder_pane.select(opened.path)
        self.say(f"{outcome.path.name} beside the saved result, shown as saved (Detail does not apply to it).")

    def _photo_opened(self, result: OpenedPhoto, auto_denoise: bool = True) -> None:
        if self._opening == result.path:
            self._opening = None
        self.session.open(result)
        self.viewer.prime(result.display, result.levels)
        self.viewer.set_original(result.display)
        self._show_noise()
        self._show_noise_map()
        self._clear_result_panel()
        image = result.image
        self.info_panel.set_photo(result.path, image.width, image.height, image.bit_depth, image.channels,
                                  image.format, result.facts, result.histogram)
        self._update_title()
        self.say(f"{result.path.name}: {image.width}x{image.height}, {depth_text(image.bit_depth, image.channels)}, "
                  f"noise found: {result.noise_summary or result.estimate.summary()}.")
        if auto_denoise and self.auto_denoise and self.model is not None:
            self.denoise()

    def _open_failed(self, message: str) -> None:
        failed, self._opening = self._opening, None
        self.say(f"Could not open the photo: {message}", error=True)
        # A photo that fails in the open one's folder leaves it shown; one in a folder opened since (the pane
        # lists it now) must not leave a photo of another folder on screen, titled and savable.
        listed = self.folder_pane.folder()
        if failed is not None and self.photo is not None and listed not in (None, self.photo.path.parent):
            self._close_photo()

    def _close_photo(self) -> None:
        """No photo open: the viewer, the panel's result and the title are cleared, Save has nothing to write."""
        self.bridge.cancel("model", "denoise")
        self.jobs.forget("display")
        self.session.open(None)
        self.viewer.set_working("")
        self.viewer.set_original(None)
        self._show_noise()
        self._clear_result_panel()
        self.info_panel.clear()
        self._update_title()

    def _clear_result_panel(self) -> None:
        """The side panel says nothing of a result: none yet for the photo just opened, or no photo at all."""
        self.panel.set_has_result(False)
        self.panel.set_findings([])
        self.panel.set_reference_text("")
        self.panel.latents.clear()

    def _open_cancelled(self) -> None:
        self._opening = None

    def _denoised(self, result: DenoiseOutcome) -> None:
        if self.photo is None or result.path != self.photo.path:
            return  # the photo it was made for is no longer open
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
        self.say(message)

    def _view_job_failed(self, kind: str, message: str) -> None:
        """A denoise or a display job failed: the viewer stops saying it works."""
        self.viewer.set_working("")
        self.say(f"{kind.capitalize()} failed: {message}", error=True)

    def _denoise_cancelled(self) -> None:
        self.viewer.set_working("")
        # A preview of the cancelled run may be on screen: show again exactly what Save writes.
        if self.session.cancel_denoise() is not None:
            self._refresh_display()
            made_with = self.session.result_strength()
            how = f" ({made_with.describe()})" if made_with is not None else ""
            self.say(f"Denoise cancelled; the previous result{how} is shown again, and Save writes it.")
        else:
            self.jobs.forget("display")  # a preview still being drawn is not shown
            self.viewer.set_result(None)
            self.info_panel.set_result_histogram(None)
            self.say("Denoise cancelled; there is no result to save yet.")

    def _noise_map_drawn(self, result: tuple[OpenedPhoto, QImage, list[QImage], list[str]]) -> None:
        photo, image, levels, legend = result
        if photo is self.photo:
            self.viewer.prime(image, levels)
            self.viewer.set_noise_map(image, legend, noise_map_key())

    def _noise_map_failed(self, message: str) -> None:
        self._noise_map_of = None  # choosing the mode again tries again
        self.say(f"Could not draw the noise map: {message}", error=True)

    def _show_views(self, views: Views | QuickViews) -> None:
        (shown, shown_levels), (removed, removed_levels) = views[:2]
        self.viewer.prime(shown, shown_levels)
        self.viewer.prime(removed, removed_levels)
        self.viewer.set_result(shown, removed)

    def _display_ready(self, result: Views) -> None:
        self._show_views(result)
        self.info_panel.set_result_histogram(result[2])
        if not self.bridge.is_busy("model", "denoise"):  # the whole result, not a preview, is on screen
            self.viewer.set_working("")

    def _saved(self, path: Path) -> None:
        self.say(f"Saved {path}.")
        if self.folder_pane.folder() == path.parent:
            self.folder_pane.add_files([path])

    def _on_progress(self, kind: str, event: Progress) -> None:
        if kind == "display" and event.stage == "quick":
            self._show_views(event.extra["views"])
        elif event.stage == "preview" and self.photo is not None and event.extra.get("path") == self.photo.path:
            self._refresh_display(preview=event.extra["preview"], region=event.extra.get("region"))
            self.say("Preview of the visible region; the whole photo follows...")
        elif event.total and kind == "denoise":
            name = self._denoising.name if self._denoising is not None else "the photo"
            percent = self.status.show_denoise_progress(f"Denoising {name}", event)
            self.viewer.set_working(f"Denoising... {percent} %")
        elif event.total:
            self.status.show_counts(event)
        elif event.message:
            self.say(event.message)

    def _update_busy(self) -> None:
        """Progress and Cancel show while the window's own model work (denoise, model loading) runs."""
        busy = any(self.bridge.is_busy("model", kind) for kind in ("denoise", "model"))
        if self.status.set_busy(busy):
            self.panel.set_busy(busy)

    def say(self, message: str, error: bool = False) -> None:
        """Say ``message`` in the status bar (and the log, as an error when ``error``)."""
        self.status.say(message, error)

    # ----- settings, drops, closing ---------------------------------------------------------------------------
    def _mode_changed(self, mode: str) -> None:
        for name, act in self.mode_actions.items():
            act.setChecked(name == mode)
        self._show_noise_map()

    def _restore_settings(self) -> None:
        if not restore_geometry(self.settings, self):  # a first start: the Photos dock shows two columns
            self.resizeDocks([self.docks["Photos"]], [self.folder_pane.width_for_columns(PHOTO_COLUMNS)],
                             Qt.Orientation.Horizontal)
        restore_controls(self.settings, self.panel, self.viewer)
        self._mode_changed(self.viewer.mode())
        last = last_folder(self.settings)
        if last is not None:
            # Reopened once the event loop runs, unless something was opened first (a command-line argument).
            self._restore_folder = last
            QTimer.singleShot(0, self._restore_last_folder)

    def _restore_last_folder(self) -> None:
        """Reopen the remembered folder (and its first photo), unless a folder or photo was opened since."""
        folder, self._restore_folder = self._restore_folder, None
        if folder is not None and not self.jobs.closed:
            self.open_folder(folder)

    def save_settings(self) -> None:
        """Remember geometry, view mode, model, strength (and its amounts) and device for the next run."""
        store_window(self.settings, self, self.viewer.mode(), self.model_name, self.panel.settings())

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
        self._restore_folder = None  # what was given wins over the remembered folder, even when it cannot open
        paths = [Path(p).absolute() for p in paths]
        folders = [p for p in paths if p.is_dir()]
        files = [p for p in paths if p.is_file() and is_image_path(p)]
        left_out = [p for p in paths if p not in folders and p not in files]
        if folders:
            self.open_folder(folders[0], open_first=not files)
            if files:
                self.folder_pane.add_files(files)
                self.folder_pane.select(files[0])
                self._photo_activated(files[0])
        elif files:
            self.show_photo(files[0])
            self.folder_pane.add_files(files[1:])
        if left_out:
            why = "; ".join(f"{p.name} ({'not found' if not p.exists() else 'not a supported photo'})"
                            for p in left_out)
            self.say(f"Could not open {why}.", error=True)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.jobs.closed = True
        self.save_settings()
        self.tools.close_all()
        self.bridge.shutdown()
        event.accept()

