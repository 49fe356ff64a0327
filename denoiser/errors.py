"""Typed errors whose messages are fit to show a user: they name the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DenoiserError(Exception):
    """Base of every error the engine raises on purpose; ``str(err)`` is a user-facing message."""


class FileProblem(DenoiserError):
    """A problem with one file: keeps the path and a short description apart for callers."""

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = Path(path) if path is not None else None
        self.problem = problem
        where = f"{self.path}: " if self.path is not None else ""
        super().__init__(f"{where}{problem}")


class ImageReadError(FileProblem):
    """An image could not be read (not an image, truncated, unsupported mode, too many pixels...)."""


class ImageWriteError(FileProblem):
    """An image could not be written (would overwrite an input, unsupported format, disk error...)."""


class ModelLoadError(FileProblem):
    """A model file could not be loaded (corrupt, truncated, unsafe pickle, mismatched config...)."""


class ModelNameError(DenoiserError):
    """A name given for a library model breaks the naming rule; the message says which part of it."""


class UnknownNameError(DenoiserError, KeyError):
    """A name looked up in one of the engine's tables (format, family, noise model, device) is unknown."""

    def __init__(self, kind: str, name: str, known: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known) or 'none'}")

    def __str__(self) -> str:  # KeyError would add quotes around the message
        return str(self.args[0])


class Cancelled(DenoiserError):
    """A long job was stopped because its ``should_stop()`` returned True."""

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


def reason(exc: BaseException) -> str:
    """The short "why" of ``exc`` for a user-facing message: an OS error's text, else the message or the type."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class SettingsChanged(DenoiserError):
    """Files of a batch were done before with another model or other settings: redoing them needs a yes."""

    def __init__(self, folder: str | Path, files: list[Path], differences: list[str]) -> None:
        self.folder = Path(folder)
        self.files = files
        self.differences = differences
        what = "; ".join(differences) or "other settings"
        super().__init__(f"{len(files)} file(s) in {self.folder} were done before with {what}. Denoise them again "
                         "with this run's settings (--redo; earlier outputs are kept), or choose another output folder")


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an error's message, cut to about ``limit`` characters (PyTorch adds C++ traces)."""
    lines = str(err).strip().splitlines()
    text = lines[0].strip() if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
