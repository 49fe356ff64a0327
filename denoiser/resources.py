"""Where the bundled files (default model, sample images, the app icon) live, installed or in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resources_dir() -> Path:
    """The ``resources`` folder: inside the installed package (wheel) or at the root of a checkout."""
    installed = _PACKAGE_DIR / "_resources"
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / "resources"


def bundled_models_dir() -> Path:
    """Folder of the models shipped with the app."""
    return resources_dir() / "models"


def bundled_estimator_dir() -> Path:
    """Folder of the noise-map estimator shipped with the app (and, in the desktop bundle, its exported graph)."""
    return resources_dir() / "estimator"


def sample_images_dir() -> Path:
    """Folder of the sample noisy photos shipped with the app."""
    return resources_dir() / "samples"


def app_icon_path() -> Path:
    """The app's icon (a 128 x 128 PNG)."""
    return resources_dir() / "icons" / "denoiser.png"
