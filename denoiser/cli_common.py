"""What the ``denoiser`` sub-command modules share: exit statuses, argument types and the y/N question.

Light on purpose (standard library only): every command module imports it at the top, and ``denoiser --help``
must not wait for torch.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
"""All good; some files failed; nothing done."""


def positive_int(text: str) -> int:
    """An argparse type: a whole number above zero."""
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def at_terminal() -> bool:
    """Whether a person can answer a question: stdin is a terminal (a script piping input cannot be trusted to
    have meant "yes")."""
    return sys.stdin is not None and sys.stdin.isatty()


def confirm(question: str) -> bool:
    """Ask ``question [y/N]`` (on stderr, so stdout stays the command's output); only "y"/"yes" agree."""
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()  # "" at end of input: no
    return answer.strip().lower() in ("y", "yes")
