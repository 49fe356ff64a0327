"""The app's icon, from the bundled resources (``resources/icons``, inside the wheel too)."""

from __future__ import annotations

from PySide6.QtGui import QIcon

from denoiser.resources import app_icon_path

__all__ = ["app_icon"]


def app_icon() -> QIcon:
    """The window icon (a null icon if the file is missing: the app still starts)."""
    path = app_icon_path()
    return QIcon(str(path)) if path.is_file() else QIcon()
