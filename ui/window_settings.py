"""What the main window remembers between runs, in its QSettings: the geometry and dock layout, the view mode, the
panel's controls (model, strength and its amounts, device, quality passes, the latents section), the recent
folders, and the JPEG/WebP quality Save writes at. Hand-edited or missing values read as the defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QMenu

from denoiser.devices import available_devices
from ui.panel import PanelSettings, SidePanel
from ui.viewer import MODES, ImageViewer

__all__ = ["DEFAULT_SAVE_QUALITY", "MAX_RECENT", "RecentFolders", "default_settings", "remember_quality",
           "restore_controls", "restore_geometry", "store_window", "stored_quality"]

MAX_RECENT = 8
DEFAULT_SAVE_QUALITY = 95
"""The JPEG/WebP quality until the user chooses one (the engine's default too)."""
DEFAULT_SIZE = (1280, 800)
"""The window's size on a first start."""


def default_settings() -> QSettings:
    """The app's persistent settings (an INI file in the user's config folder)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "Denoiser", "Denoiser")


def _stored_amount(settings: QSettings, key: str) -> float:
    """An amount (1.0 = 100 %) from the settings; a missing or hand-mangled value reads 100 %."""
    try:
        return float(str(settings.value(key, 1.0)))
    except ValueError:
        return 1.0


def stored_quality(settings: QSettings) -> int:
    """The remembered JPEG/WebP quality (1-100); a missing or hand-mangled value reads the default."""
    try:
        return min(100, max(1, int(str(settings.value("save_quality", DEFAULT_SAVE_QUALITY)))))
    except ValueError:
        return DEFAULT_SAVE_QUALITY


def remember_quality(settings: QSettings, quality: int) -> None:
    """Remember the quality Save As was given: Save writes at it too until another is chosen."""
    settings.setValue("save_quality", quality)


def restore_geometry(settings: QSettings, window: QMainWindow) -> bool:
    """The window's last size, position and dock layout; the default size on a first start. True when a dock
    layout was restored (False: the window lays its docks out itself)."""
    geometry = settings.value("geometry")
    if isinstance(geometry, QByteArray):
        window.restoreGeometry(geometry)
    else:
        window.resize(*DEFAULT_SIZE)
    state = settings.value("window_state")
    return isinstance(state, QByteArray) and window.restoreState(state)


def restore_controls(settings: QSettings, panel: SidePanel, viewer: ImageViewer) -> None:
    """The view mode and the panel's strength, amounts, device, quality passes and latents section."""
    mode = str(settings.value("view_mode", "side"))
    viewer.set_mode(mode if mode in MODES else "side")
    auto = str(settings.value("auto_strength", "true")).lower() == "true"
    try:
        sigma = float(str(settings.value("strength", 25)))
    except ValueError:
        sigma = 25.0  # a hand-edited settings file: keep the default
    panel.set_strength(auto, sigma, *(_stored_amount(settings, key) for key in ("amount", "luminance", "color")))
    panel.set_devices(available_devices(), str(settings.value("device", "auto")))
    try:
        panel.set_passes(int(str(settings.value("passes", 1))))
    except ValueError:
        pass  # a hand-edited settings file: keep the default quality
    panel.set_latents_expanded(str(settings.value("latents_expanded", "false")).lower() == "true")


def last_folder(settings: QSettings) -> Path | None:
    """The folder open when the app last closed, if it still exists."""
    last = settings.value("last_folder")
    return Path(str(last)) if last and Path(str(last)).is_dir() else None


def store_window(settings: QSettings, window: QMainWindow, view_mode: str, model: str | None,
                 controls: PanelSettings) -> None:
    """Remember geometry, dock layout, view mode, the model in use (else the chooser's), the strength (and its
    amounts), device and quality passes; written to disk at once."""
    settings.setValue("geometry", window.saveGeometry())
    settings.setValue("window_state", window.saveState())
    settings.setValue("view_mode", view_mode)
    settings.setValue("model", model or controls.model)
    settings.setValue("auto_strength", "true" if controls.auto_strength else "false")
    settings.setValue("strength", controls.strength)
    settings.setValue("amount", controls.amount)
    settings.setValue("luminance", controls.luminance)
    settings.setValue("color", controls.color)
    settings.setValue("device", controls.device)
    settings.setValue("passes", controls.passes)
    settings.sync()


class RecentFolders:
    """File > Recent Folders: the last :data:`MAX_RECENT` folders opened, newest first, remembered in the
    settings with the last one (which the next start reopens)."""

    def __init__(self, settings: QSettings, menu: QMenu, open_folder: Callable[[Path], None]) -> None:
        self._settings = settings
        self._menu = menu
        self._open_folder = open_folder
        self.fill_menu()

    def folders(self) -> list[str]:
        """The remembered folders, newest first."""
        value = self._settings.value("recent_folders", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or []]

    def remember(self, folder: Path) -> None:
        """``folder`` was opened: it becomes the last folder and the first recent one."""
        self._settings.setValue("last_folder", str(folder))
        recent = [str(folder)] + [f for f in self.folders() if f != str(folder)]
        self._settings.setValue("recent_folders", recent[:MAX_RECENT])
        self.fill_menu()

    def fill_menu(self) -> None:
        """One menu entry per remembered folder (the menu disabled when there is none)."""
        self._menu.clear()
        folders = self.folders()
        for folder in folders:
            act = self._menu.addAction(folder)
            act.triggered.connect(lambda _=False, f=folder: self._open_folder(Path(f)))
        self._menu.setEnabled(bool(folders))
