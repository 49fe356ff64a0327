"""Entry script of the bundle's ``denoiser-gui`` executable (windowed): the desktop app, as ``ui.app:main``."""

from __future__ import annotations

import multiprocessing
import sys

from ui.app import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process runs its task here instead of a second app
    sys.exit(main())
