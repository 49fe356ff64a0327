"""The main window: folder pane, before/after viewer, side panel, status bar with progress and Cancel.

Every piece of model or file work goes through the one :class:`~ui.worker.WorkerBridge`; this module only
wires widgets to jobs and jobs' results back to widgets. The jobs themselves call the engine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QColor, QDragEnterEvent, QDropEvent, QImage, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolBar,
)

from denoiser.batch import find_reference, reference_metrics, typical_level
from denoiser.display import (
    NOISE_MAP_KEY,
    LatentView,
    blend,
    compose_views,
    latent_view,
    noise_map_image,
    noise_map_legend,
    to_uint8,
)
from denoiser.errors import DenoiserError
from denoiser.findings import Finding, assess
from denoiser.inference import TileSettings, available_devices, extract_latent, resolve_device
from denoiser.io import SUPPORTED_EXTENSIONS, Image, is_image_path, read_image, write_image
from denoiser.models import Autoencoder
from denoiser.modelstore import DEFAULT_MODEL, describe, list_models, load_model
from denoiser.noise import MAX_SIGMA
from denoiser.preview import Region, denoise_visible_first
from denoiser.progress import Progress
from denoiser.strength import NoiseEstimate, Strength, estimate_noise_map, levels_for
from ui.batch_dialog import BatchDialog
from ui.folder_pane import FolderPane
from ui.model_manager import ModelManager
from ui.panel import SidePanel
from ui.qimage import array_to_qimage
from ui.train_dialog import TrainDialog
from ui.viewer import MODES, ImageViewer, display_levels
from ui.worker import WorkerBridge

MODE_TITLES = {"side": "Side by side", "split": "Split", "toggle": "Toggle", "residual": "Residual",
               "noise": "Noise map"}
MAX_RECENT = 8


@dataclass
class OpenedPhoto:
    """A photo read by a job: the image, what auto found in it and what the viewer shows."""

    path: Path
    image: Image
    estimate: NoiseEstimate
    display: QImage
    levels: list[QImage]

    @property
    def sigma(self) -> float:
        """The typical noise level auto found (0-255 units, luminance and colour together)."""
        return typical_level(self.estimate.levels)


@dataclass
class DenoiseOutcome:
    """A finished denoise: the float result, the strength used, the latent thumbnails and the warnings."""

    path: Path
    denoised: np.ndarray
    sigma: float
    """The typical level of the noise map the model was given (0-255 units)."""
    latents: LatentView
    strength: Strength | None = None
    """The setting it was made with (None: not made here, e.g. a batch result shown beside its input)."""
    levels: np.ndarray | None = None
    """The noise map the model was given (covering the photo, 1 x 1 x 2 when flat; luminance and colour sigma)."""
    findings: list[Finding] = field(default_factory=list)
    """Warnings about the result (noise beyond the model's range, detail removed)."""


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


def default_settings() -> QSettings:
    """The app's persistent settings (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Denoiser", "Denoiser")


class MainWindow(QMainWindow):
    """Open photos or folders, denoise them in the background, compare, look at the latent space, save."""

    def __init__(self, settings: QSettings | None = None, auto_denoise: bool = True) -> None:
        super().__init__()
        self.setWindowTitle("Denoiser")
        self.setAcceptDrops(True)
        self.settings = settings or default_settings()
        self.auto_denoise = auto_denoise
        self.bridge = WorkerBridge(self)
        self.model: Autoencoder | None = None
        self.model_name: str | None = None
        self.photo: OpenedPhoto | None = None
        self.outcome: DenoiseOutcome | None = None
        self.last_error = ""
        self._jobs: dict[str, int] = {}  # job kind -> id of the latest one; older results are ignored
        self._noise_map_of: OpenedPhoto | None = None  # the photo whose noise map is shown or being drawn
        self._closing = False
        self._busy = False

        self.viewer = ImageViewer()
        self.setCentralWidget(self.viewer)
        self.folder_pane = FolderPane(self.bridge)
        self.folder_pane.image_activated.connect(self._photo_activated)
        self.folder_pane.folder_changed.connect(self._remember_folder)
        self.panel = SidePanel()
        for dock_title, widget, area in (("Photos", self.folder_pane, Qt.DockWidgetArea.LeftDockWidgetArea),
                                         ("Denoise", self.panel, Qt.DockWidgetArea.RightDockWidgetArea)):
            dock = QDockWidget(dock_title, self)
            dock.setObjectName(f"dock-{dock_title}")
            dock.setWidget(widget)
            dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                             | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
            self.addDockWidget(area, dock)

        self.status_label = QLabel("Open a photo or a folder (or drop one here).")
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
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
        self.viewer.mode_changed.connect(self._mode_changed)

        self.bridge.succeeded.connect(self._on_succeeded)
        self.bridge.failed.connect(self._on_failed)
        self.bridge.cancelled.connect(self._on_cancelled)
        self.bridge.progress.connect(self._on_progress)
        self.bridge.started.connect(lambda *_: self._update_busy())
        for signal in (self.bridge.succeeded, self.bridge.failed, self.bridge.cancelled):
            signal.connect(lambda *_: self._update_busy())

        self._restore_settings()
        self.refresh_models()
        self.choose_model(self.panel.model_name())

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
        action("Fit", self.viewer.zoom_to_fit, "Ctrl+0", (view_menu, toolbar))
        action("100 %", self.viewer.zoom_100, "Ctrl+1", (view_menu, toolbar))
        tools = self.menuBar().addMenu("&Tools")
        action("Batch Denoise...", self.open_batch_dialog, "Ctrl+B", (tools,))
        action("Train a Model...", self.open_train_dialog, "Ctrl+T", (tools,))
        action("Manage Models...", self.open_model_manager, "Ctrl+M", (tools,))
        tools.addSeparator()
        action("Compare with a Clean Reference...", self.choose_reference, None, (tools,))

    # ----- models ---------------------------------------------------------------------------------------
    def refresh_models(self) -> None:
        """Re-read the bundled and saved models into the chooser."""
        entries = [(info.name, describe(info)) for info in list_models()]
        if not entries:
            entries = [(DEFAULT_MODEL, "bundled default model (missing)")]
        wanted = self.model_name or str(self.settings.value("model", DEFAULT_MODEL))
        self.panel.set_models(entries, wanted)

    def choose_model(self, name: str) -> None:
        """Load model ``name`` in the background; the loaded one stays in use until it succeeds."""
        if name == self.model_name and self.model is not None:
            return

        def job(should_stop: Any, on_progress: Any) -> tuple[Autoencoder, Any]:
            return load_model(name)

        self._start("model", f"Loading model {name}...", job)

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
        patterns = " ".join(f"*{ext}" for ext in SUPPORTED_EXTENSIONS)
        start = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open Photo", start, f"Images ({patterns})")
        if path:
            self.folder_pane.add_files([Path(path)])
            self.open_photo(Path(path))

    def open_folder_dialog(self) -> None:
        """Ask for a folder and list its photos."""
        start = str(self.settings.value("last_folder", str(Path.home())))
        folder = QFileDialog.getExistingDirectory(self, "Open Folder", start)
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        """List the photos of ``folder`` in the folder pane (thumbnails fill in lazily)."""
        self.folder_pane.open_folder(folder)
        self._remember_folder(folder)

    def _photo_activated(self, path: Path) -> None:
        """A click in the folder pane: open the photo unless it is the one already open."""
        if self.photo is None or self.photo.path != Path(path):
            self.open_photo(path)

    def open_photo(self, path: Path) -> None:
        """Read ``path`` in the background; the viewer keeps the current photo until it is read."""
        path = Path(path)

        self._start("open", f"Opening {path.name}...", lambda stop, progress: self._read_photo(path), lane="display")

    @staticmethod
    def _read_photo(path: Path) -> OpenedPhoto:
        """Read a photo, find its noise map (what auto uses) and make its display images (runs in a worker)."""
        image = read_image(path)
        pixels = image.color_pixels()
        estimate = estimate_noise_map(pixels)
        shown = array_to_qimage(to_uint8(pixels if pixels.shape[2] == 3 else pixels[:, :, 0]))
        return OpenedPhoto(path, image, estimate, shown, display_levels(shown))

    def _show_noise_map(self) -> None:
        """In noise map mode, draw the open photo's noise map in the background (once per photo)."""
        photo = self.photo
        if photo is None or self.viewer.mode() != "noise" or self._noise_map_of is photo:
            return
        self._noise_map_of = photo
        estimate, size = photo.estimate, (photo.image.height, photo.image.width)

        def job(should_stop: Any, on_progress: Any) -> tuple[OpenedPhoto, QImage, list[QImage], list[str]]:
            image = array_to_qimage(noise_map_image(estimate.levels, size, MAX_SIGMA))
            legend = noise_map_legend(estimate.levels, MAX_SIGMA, estimate.method)
            return photo, image, display_levels(image), legend

        self._start("noisemap", "", job, lane="display")

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

        def job(should_stop: Any, on_progress: Any) -> DenoiseOutcome:
            pixels = photo.image.color_pixels()
            levels, _ = levels_for(pixels, strength, photo.estimate)
            sigma = typical_level(levels)

            def report(event: Progress) -> None:
                if event.stage == "preview":
                    event.extra["path"] = photo.path
                on_progress(event)

            denoised = denoise_visible_first(pixels, model, levels, visible, zoom=zoom, tiles=tiles, device=device,
                                             on_progress=report, should_stop=should_stop)
            # The photo's estimate goes in for a fixed strength too: noise beyond the model's range is the
            # photo's, whatever strength was asked for.
            findings = assess(pixels, denoised, photo.estimate)
            latents = latent_view(extract_latent(pixels, model, sigma, device=device), model.family)
            return DenoiseOutcome(photo.path, denoised, sigma, latents, strength, levels, findings)

        self._start("denoise", f"Denoising {photo.path.name} at {strength.describe()}...", job)

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

        def job(should_stop: Any, on_progress: Any) -> tuple[tuple[QImage, list[QImage]], ...]:
            shown, removed = (array_to_qimage(view) for view in compose_views(original, denoised, detail))
            return (shown, display_levels(shown)), (removed, display_levels(removed))

        self._start("display", "", job, lane="display")

    # ----- saving -------------------------------------------------------------------------------------------
    def _result_image(self) -> Image | None:
        if self.photo is None or self.outcome is None:
            return None
        original = self.photo.image
        return original.with_color(blend(original.color(), self.outcome.denoised, self.panel.settings().detail))

    def suggested_path(self) -> Path | None:
        """``{stem}_denoised{ext}`` beside the photo, numbered when taken."""
        if self.photo is None:
            return None
        source = self.photo.path
        candidate, number = source.with_name(f"{source.stem}_denoised{source.suffix}"), 1
        while candidate.exists():
            number += 1
            candidate = source.with_name(f"{source.stem}_denoised-{number}{source.suffix}")
        return candidate

    def save(self) -> None:
        """Save beside the photo under a new name (never over the original)."""
        target = self.suggested_path()
        if target is not None:
            self.save_to(target)

    def save_as(self) -> None:
        """Ask where to save; format follows the extension; the original needs an explicit confirmation."""
        suggestion = self.suggested_path()
        if suggestion is None:
            return
        patterns = ";;".join(f"{fmt} (*{ext})" for ext, fmt in SUPPORTED_EXTENSIONS.items())
        path, _ = QFileDialog.getSaveFileName(self, "Save As", str(suggestion), patterns)
        if path:
            target = Path(path)
            if self.photo is not None and target.resolve() == self.photo.path.resolve():
                answer = QMessageBox.warning(
                    self, "Overwrite the original?",
                    f"{target.name} is the original photo. Replace it with the denoised result? "
                    "The original cannot be recovered.",
                    QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                    QMessageBox.StandardButton.Cancel)
                if answer != QMessageBox.StandardButton.Yes:
                    return
                self.save_to(target, replace_original=True)
            else:
                self.save_to(target, overwrite=target.exists())  # the dialog already asked about replacing

    def save_to(self, target: Path, overwrite: bool = False, replace_original: bool = False) -> None:
        """Write the result (blended with the detail setting, full bit depth, metadata kept) in the background."""
        result = self._result_image()
        if result is None:
            return
        protected = [] if replace_original else [self.photo.path]  # type: ignore[union-attr]
        if replace_original:
            result = dataclasses.replace(result, source=None)

        def job(should_stop: Any, on_progress: Any) -> Path:
            return write_image(target, result, protected=protected, overwrite=overwrite or replace_original)

        self._start("save", f"Saving {target.name}...", job, lane="io", replace=False)

    # ----- tools: batch, training, model library, reference -----------------------------------------------
    def open_batch_dialog(self) -> BatchDialog:
        """Batch-denoise folders (non-modal: the window stays usable)."""
        names = [info.name for info in list_models()] or [DEFAULT_MODEL]
        settings = self.panel.settings()
        dialog = BatchDialog(self.bridge, names, self.model_name or DEFAULT_MODEL, self, passes=settings.passes)
        dialog.set_strength(settings.auto_strength, settings.strength, settings.amount, settings.luminance,
                            settings.color)
        dialog.open_pair.connect(self.open_pair)
        dialog.show()
        self.batch_dialog = dialog
        return dialog

    def open_train_dialog(self) -> TrainDialog:
        """Train or fine-tune a model; a saved model appears in the chooser."""
        dialog = TrainDialog(self.bridge, self)
        dialog.model_saved.connect(lambda name: self.refresh_models())
        dialog.show()
        self.train_dialog = dialog
        return dialog

    def open_model_manager(self) -> ModelManager:
        """The model library: rename, delete, import, export."""
        dialog = ModelManager(self.bridge, self)
        dialog.models_changed.connect(self.refresh_models)
        dialog.show()
        self.model_manager = dialog
        return dialog

    def choose_reference(self) -> None:
        """Pick a clean reference for the open photo by hand (one in a sibling clean/ folder is found alone)."""
        if self.photo is None:
            self._say("Open a photo first.")
            return
        patterns = " ".join(f"*{ext}" for ext in SUPPORTED_EXTENSIONS)
        path, _ = QFileDialog.getOpenFileName(self, "Clean Reference", str(self.photo.path.parent),
                                              f"Images ({patterns})")
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

        self._start("reference", "", job, lane="io", replace=False)

    def open_pair(self, source: Path, output: Path) -> None:
        """Show a batch output beside its input: the input as the original, the output as the result."""

        def job(should_stop: Any, on_progress: Any) -> tuple[OpenedPhoto, DenoiseOutcome]:
            opened = self._read_photo(source)
            result = read_image(output)
            if (result.width, result.height) != (opened.image.width, opened.image.height):
                raise DenoiserError(f"{output}: its size differs from {source.name}'s")
            denoised = result.color()
            if denoised.shape[2] != opened.image.color_pixels().shape[2]:
                denoised = denoised.mean(axis=2, keepdims=True) if denoised.shape[2] == 3 else np.repeat(
                    denoised, 3, axis=2)
            empty = LatentView(f"latents are not shown for a saved result ({output.name})", np.zeros((1, 1, 3),
                               np.uint8), [])
            return opened, DenoiseOutcome(source, denoised, opened.sigma, empty)

        self._start("pair", f"Opening {source.name} and {output.name}...", job, lane="display")

    # ----- job plumbing ---------------------------------------------------------------------------------------
    def _start(self, kind: str, message: str, fn: Any, lane: str = "model", replace: bool = True) -> None:
        if self._closing:
            return
        self._jobs[kind] = self.bridge.submit(kind, fn, lane=lane, replace=replace)
        self._update_busy()
        if message:
            self._say(message)

    def _current(self, job_id: int, kind: str) -> bool:
        return self._jobs.get(kind) == job_id

    def _on_succeeded(self, job_id: int, kind: str, result: Any, force: bool = False) -> None:
        if not force and not self._current(job_id, kind):
            return
        if kind == "model":
            self.model, info = result
            self.model_name = info.name
            self.panel.set_models([(i.name, describe(i)) for i in list_models()] or [(info.name, "")], info.name)
            self.panel.set_model_note(f"{info.family}; {info.trained_on or 'trained on unknown data'}")
            self.panel.device_label.setText(self._device_text())
            self._say(f"Model {info.name} ready.")
            self._show_noise()
            if self.photo is not None and self.auto_denoise:
                self.denoise()
        elif kind == "pair":
            opened, outcome = result
            self._on_succeeded(job_id, "open", opened, force=True)
            self._on_succeeded(job_id, "denoise", outcome, force=True)
            self._say(f"{outcome.path.name} beside the saved result.")
        elif kind == "reference":
            reference, figures, note = result
            self.panel.set_reference_text(reference_text(reference, figures, note))
        elif kind == "open":
            self.photo, self.outcome = result, None
            self.panel.set_reference_text("")
            self.viewer.prime(result.display, result.levels)
            self.viewer.set_original(result.display)
            self._show_noise()
            self._show_noise_map()
            self.panel.set_has_result(False)
            self.panel.set_findings([])
            self.panel.latents.clear()
            image = result.image
            self.setWindowTitle(f"{result.path.name} - Denoiser")
            self._say(f"{result.path.name}: {image.width}x{image.height}, {image.bit_depth}-bit, "
                      f"noise found: {result.estimate.summary()}.")
            if self.auto_denoise and self.model is not None and not force:
                self.denoise()
        elif kind == "denoise":
            self.outcome = result
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
        elif kind == "noisemap":
            photo, image, levels, legend = result
            if photo is self.photo:
                self.viewer.prime(image, levels)
                self.viewer.set_noise_map(image, legend, noise_map_key())
        elif kind == "display":
            (shown, shown_levels), (removed, removed_levels) = result
            self.viewer.prime(shown, shown_levels)
            self.viewer.prime(removed, removed_levels)
            self.viewer.set_result(shown, removed)
        elif kind == "save":
            self._say(f"Saved {result}.")
            if self.folder_pane.folder() == result.parent:
                self.folder_pane.add_files([result])

    def _on_failed(self, job_id: int, kind: str, message: str) -> None:
        if not self._current(job_id, kind):
            return
        self.last_error = message
        if kind == "model":
            self.panel.set_models([(i.name, describe(i)) for i in list_models()], self.model_name)
            kept = f" Still using {self.model_name}." if self.model_name else ""
            self._say(f"Could not load the model: {message}.{kept}", error=True)
        elif kind == "open":
            self._say(f"Could not open the photo: {message}", error=True)
        elif kind == "save":
            self._say(f"Not saved: {message}", error=True)
        elif kind == "noisemap":
            self._noise_map_of = None  # choosing the mode again tries again
            self._say(f"Could not draw the noise map: {message}", error=True)
        else:
            self._say(f"{kind.capitalize()} failed: {message}", error=True)

    def _on_cancelled(self, job_id: int, kind: str) -> None:
        if kind == "denoise" and self._current(job_id, kind):
            self._say("Denoise cancelled; the previous result is kept.")

    def _on_progress(self, job_id: int, kind: str, event: Progress) -> None:
        if not self._current(job_id, kind):
            return
        if event.stage == "preview" and self.photo is not None and event.extra.get("path") == self.photo.path:
            self._refresh_display(preview=event.extra["preview"])
            self._say("Preview of the visible region; the whole photo follows...")
        elif event.total:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(event.done)
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
        self._fill_recent_menu()
        last = self.settings.value("last_folder")
        if last and Path(str(last)).is_dir():
            QTimer.singleShot(0, lambda: self.folder_pane.open_folder(Path(str(last))))

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
        """What a drop does: a folder opens in the pane; photos are added and the first one opens."""
        folders = [p for p in paths if p.is_dir()]
        files = [p for p in paths if p.is_file() and is_image_path(p)]
        if folders:
            self.open_folder(folders[0])
        if files:
            self.folder_pane.add_files(files)
            self.open_photo(files[0])
        if not folders and not files:
            self._say("Nothing to open in what was dropped (no folder or supported photo).", error=True)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self._closing = True
        self.save_settings()
        self.bridge.shutdown()
        event.accept()

