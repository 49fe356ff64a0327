"""Atomic file writes, the one implementation the engine uses: a temporary file in the target folder, fsync,
rename onto the target, fsync of the folder where the platform allows. A reader sees the old file or the new
one, never a partial one, and a crash right after the rename cannot leave an empty file behind. With
``replace=False`` the finished file is put in place only if nothing is there yet (a hard link, which fails
when the name is taken), so a file that appears meanwhile is never clobbered."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "sync_folder"]

_BINARY = getattr(os, "O_BINARY", 0)  # Windows only: no newline translation


@contextmanager
def atomic_write(path: str | Path, *, suffix: str | None = None, replace: bool = True,
                 before_place: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path`` in one step.

    The temporary file is hidden (``.name.tmp-XXXX.ext``) and keeps the real extension so encoders pick the
    right format (``suffix`` names another: a library that lists ``*.ext`` then never sees temporaries). If
    the block raises, the temporary file is deleted and the exception propagates: no partial file is ever left
    at ``path`` or beside it. Replacing a file keeps its permissions. The parent folder must exist.

    With ``replace=False`` an existing ``path`` is never replaced, even one that appeared while the block ran:
    :class:`FileExistsError` is raised instead (and the temporary file deleted).

    ``before_place`` is called with the finished temporary file just before it is moved into place (a batch
    records the output's hash then, so a run killed right after the move is known to have finished it).
    """
    target = Path(path)
    temporary = _create_temporary(target, target.suffix if suffix is None else suffix)
    try:
        yield temporary
        if replace and target.exists():
            with contextlib.suppress(OSError):
                shutil.copymode(target, temporary)  # replacing a file should not change who can read it
        _flush_to_disk(temporary)
        if before_place is not None:
            before_place(temporary)
        if replace:
            os.replace(temporary, target)
        else:
            _place_new(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    sync_folder(target.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_write` (the parent folder must exist)."""
    with atomic_write(path, suffix=".tmp") as temporary:
        temporary.write_bytes(data)


def sync_folder(folder: str | Path) -> None:
    """Make renames and new files in ``folder`` durable, where the system allows opening a folder (not Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temporary(target: Path, suffix: str) -> Path:
    stem = target.stem[:100]  # stay well inside file-name length limits
    for _ in range(100):
        candidate = target.parent / f".{stem}.tmp-{secrets.token_hex(4)}{suffix}"
        try:
            # O_EXCL claims the name; mode 0o666 lets the umask decide, as for any new file
            # (tempfile.mkstemp would make every output private to its owner).
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"no free temporary name beside {target}")


def _place_new(temporary: Path, target: Path) -> None:
    """Move ``temporary`` to ``target`` only if ``target`` does not exist; :class:`FileExistsError` if it does.

    ``os.link`` fails when the name is taken, so a file created by someone else between a caller's check and
    this moment is never clobbered; where the file system has no hard links, check and rename instead.
    """
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError:
        if target.exists():
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        os.replace(temporary, target)
        return
    with contextlib.suppress(OSError):
        temporary.unlink()


def _flush_to_disk(path: Path) -> None:
    # Without fsync a crash right after os.replace can leave an empty file where the photo should be.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDWR | _BINARY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
