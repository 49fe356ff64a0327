"""The app's log file: tracebacks of failed background jobs and of uncaught errors, in a rotating file under the
user's log folder, because an app started from a desktop has no terminal to print them to.

The folder is ``platformdirs.user_log_dir("denoiser")`` unless the ``DENOISER_LOG_DIR`` environment variable
names another (tests point it at a temporary folder). A failed background job is logged by the worker bridge
itself (logger ``denoiser.worker``, see :mod:`ui.worker`), on the worker thread where it happens.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType
from typing import Any

import platformdirs

__all__ = [
    "LOG_DIR_ENV",
    "install_excepthooks",
    "log_dir",
    "log_file",
    "setup_logging",
    "teardown_logging",
]

LOG_DIR_ENV = "DENOISER_LOG_DIR"
"""Environment variable naming the folder for the log file instead of the user's log folder."""
LOG_FILE_NAME = "denoiser.log"
MAX_BYTES = 1_000_000
"""The log file is rotated at this size..."""
BACKUP_COUNT = 3
"""...keeping this many older files (denoiser.log.1 ...)."""
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"

log = logging.getLogger("denoiser.app")
_handler: RotatingFileHandler | None = None
_previous_hooks: tuple[Any, Any] | None = None  # (sys.excepthook, threading.excepthook) before ours


def log_dir() -> Path:
    """The folder the log file goes in: ``$DENOISER_LOG_DIR`` when set, else the user's log folder."""
    override = os.environ.get(LOG_DIR_ENV)
    if override:
        return Path(override)
    return Path(platformdirs.user_log_dir("denoiser", appauthor=False))


def log_file() -> Path:
    """The current log file (it may not exist yet: it is created by the first record)."""
    return log_dir() / LOG_FILE_NAME


def setup_logging(directory: Path | None = None) -> Path | None:
    """Send INFO and above from every logger to a rotating file in ``directory`` (default :func:`log_dir`) and
    install :func:`install_excepthooks`. Calling it again replaces the file handler it installed before.

    Returns the log file, or None when the folder cannot be made (the app then runs without a log file).
    """
    global _handler
    teardown_logging()
    folder = Path(directory) if directory is not None else log_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(folder / LOG_FILE_NAME, maxBytes=MAX_BYTES, backupCount=BACKUP_COUNT,
                                      encoding="utf-8", delay=True)
    except OSError as err:
        print(f"denoiser-gui: cannot write a log file in {folder}: {err}", file=sys.stderr)
        return None
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    _handler = handler
    install_excepthooks()
    return folder / LOG_FILE_NAME


def teardown_logging() -> None:
    """Remove and close the file handler :func:`setup_logging` installed and put back the exception hooks
    that were there before (nothing installed: nothing happens)."""
    global _handler, _previous_hooks
    if _handler is not None:
        logging.getLogger().removeHandler(_handler)
        _handler.close()
        _handler = None
    if _previous_hooks is not None:
        if getattr(sys.excepthook, "_denoiser_logs", False):
            sys.excepthook = _previous_hooks[0]
        if getattr(threading.excepthook, "_denoiser_logs", False):
            threading.excepthook = _previous_hooks[1]
        _previous_hooks = None


def install_excepthooks() -> None:
    """Log uncaught exceptions (on the GUI thread, e.g. in a slot, and on plain threads) with their traceback,
    then hand them to the hook that was there before (which prints them to stderr)."""
    global _previous_hooks
    if getattr(sys.excepthook, "_denoiser_logs", False):
        return
    previous = sys.excepthook
    previous_thread_hook = threading.excepthook
    _previous_hooks = (previous, previous_thread_hook)

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.critical("uncaught %s", kind.__name__, exc_info=(kind, value, tb))
        previous(kind, value, tb)

    def thread_hook(args: Any) -> None:
        if args.exc_type is not None and args.exc_value is not None:
            log.critical("uncaught %s in thread %s", args.exc_type.__name__, getattr(args.thread, "name", "?"),
                         exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
        previous_thread_hook(args)

    hook._denoiser_logs = True  # type: ignore[attr-defined]
    thread_hook._denoiser_logs = True  # type: ignore[attr-defined]
    sys.excepthook = hook
    threading.excepthook = thread_hook
