"""What a failed file says, and whether its failure means the output folder takes no more writes.

One file's failure, foreseen or not, becomes one line naming the file (:func:`failure_message`); a batch goes on
after it unless the folder itself refuses writes (disk full, read-only, over quota: :func:`folder_refuses_writes`),
when every later file would fail the same way. The local batch, the Ray driver and its workers, and
``denoiser denoise IN -o OUT`` on one file all word their failures here.
"""

from __future__ import annotations

import errno
from pathlib import Path

from denoiser.errors import DenoiserError

FOLDER_REFUSES = frozenset({errno.ENOSPC, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)})
"""The OS errors after which a folder takes no more writes: no space, a read-only file system, over quota."""


def failure_message(source: Path, err: BaseException) -> str:
    """A one-line message naming the file and the problem."""
    if isinstance(err, DenoiserError):
        text = str(err)
        return text if str(source) in text or source.name in text else f"{source}: {text}"
    if isinstance(err, MemoryError) or type(err).__name__ == "OutOfMemoryError":  # torch's, without importing it
        return f"{source}: out of memory ({err})"
    return f"{source}: unexpected {type(err).__name__}: {err}"


def os_error_in(err: BaseException) -> OSError | None:
    """The OSError that caused ``err`` (itself, or up its chain of causes), if any."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def folder_refuses_writes(err: BaseException) -> bool:
    """Whether ``err`` (or an error behind it) says the folder written to takes no more writes."""
    os_error = os_error_in(err)
    return os_error is not None and os_error.errno in FOLDER_REFUSES
