"""The app's icon, from the bundled resources (``resources/icons``, inside the wheel too).

``denoiser.svg`` is the drawing; ``denoiser-N.png`` are its renderings at the sizes desktops ask for
(``packaging/linux/make_icons.py`` makes them all). The window icon carries every PNG size, so the title bar, the
task switcher and the dock each get a picture drawn at their size rather than one scaled from 128 pixels.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from denoiser.resources import app_icon_path

__all__ = ["ICON_SIZES", "app_icon", "icon_files"]

ICON_SIZES: tuple[int, ...] = (16, 32, 48, 64, 128, 256, 512)
"""The sizes (pixels, square) the icon is rendered at: the freedesktop hicolor sizes apps usually ship."""


def icons_dir() -> Path:
    """The folder of the icon files."""
    return app_icon_path().parent


def icon_files() -> dict[int, Path]:
    """Size -> PNG rendering, for the sizes present (all of :data:`ICON_SIZES` in a complete install)."""
    return {size: path for size in ICON_SIZES if (path := icons_dir() / f"denoiser-{size}.png").is_file()}


def app_icon() -> QIcon:
    """The window icon: every PNG size there is; else the SVG, else the single PNG; a null icon if none of them
    is there (the app still starts)."""
    icon = QIcon()
    for size, path in icon_files().items():
        icon.addFile(str(path), QSize(size, size))
    if not icon.isNull():
        return icon
    for fallback in (icons_dir() / "denoiser.svg", app_icon_path()):
        if fallback.is_file():
            return QIcon(str(fallback))
    return QIcon()
