"""Entry script of the bundle's ``denoiser`` executable (console): the command line, as ``denoiser.cli:main``."""

from __future__ import annotations

import multiprocessing
import sys

from denoiser.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process runs its task here instead of a second command
    sys.exit(main())
