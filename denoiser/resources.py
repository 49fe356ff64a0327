"""Where the bundled files (default model, sample images, the app icon) live, installed or in a checkout, and the
user's own data folder (model library, the working copy of the samples)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import platformdirs

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


def user_data_dir() -> Path:
    """The user's Denoiser folder (``$DENOISER_HOME`` when that variable is set, for tests)."""
    home = os.environ.get("DENOISER_HOME")
    return Path(home) if home else Path(platformdirs.user_data_dir("denoiser", appauthor=False))


def user_samples_dir() -> Path:
    """The sample photos copied into the user's folder (files missing there are copied again, none is replaced),
    so that a result saved beside a sample never goes into the installation, which may be read-only."""
    copy = user_data_dir() / "samples"
    copy.mkdir(parents=True, exist_ok=True)
    for sample in sorted(sample_images_dir().iterdir()):
        target = copy / sample.name
        if sample.is_file() and not target.exists():
            shutil.copy2(sample, target)
    return copy
