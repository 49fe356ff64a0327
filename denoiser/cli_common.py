"""What the ``denoiser`` sub-command modules share: exit statuses, argument types, the y/N question, and the
:class:`Console` every command prints through.

The conventions (the README's "Command line" section says them to users):

- stdout holds results only (what a script reads); errors, warnings, notes, progress and summaries go to stderr.
- ``-q`` keeps errors and the results a command is asked for; ``-v`` adds details (timings, model, device).
- Progress bars only when stderr is a terminal; in a log, one plain line per unit of work and no escape codes.
- A reader that goes away (``| head -1``) ends a command quietly with status 0 (:func:`silence_stdout`).

Light on purpose (standard library only): every command module imports it at the top, and ``denoiser --help``
must not wait for torch (tqdm is imported when a bar is shown).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import stat
import sys
from typing import TextIO

EXIT_OK, EXIT_SOME_FAILED, EXIT_ERROR = 0, 1, 2
"""All good; some files failed; nothing done."""

QUIET, NORMAL, VERBOSE = 0, 1, 2
"""The verbosities ``-q``, none and ``-v`` give (``args.verbosity``)."""


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


COMMAND_VERBOSITY = "command_verbosity"
"""Where a sub-command's own ``-q``/``-v`` go, apart from the top level's, so that the two can be compared
(:func:`settle_verbosity`)."""


def add_verbosity_arguments(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """``-q/--quiet`` and ``-v/--verbose``: on the top level as ``args.verbosity``; on a sub-command apart, with no
    default (``SUPPRESS``), for :func:`settle_verbosity` to merge, so that ``denoiser -q denoise ...`` and
    ``denoiser denoise -q ...`` mean the same."""
    dest, default = ("verbosity", NORMAL) if top_level else (COMMAND_VERBOSITY, argparse.SUPPRESS)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", dest=dest, action="store_const", const=QUIET, default=default,
                       help="print only errors and the results asked for: no progress, notes, warnings or summary")
    group.add_argument("-v", "--verbose", dest=dest, action="store_const", const=VERBOSE, default=default,
                       help="print more: model, device, timings and other details (on stderr)")


def settle_verbosity(args: argparse.Namespace) -> str:
    """Merge a sub-command's ``-q``/``-v`` into ``args.verbosity``. Returns what is wrong ("" when nothing is) when
    ``-q`` and ``-v`` were both given, one before the command and one after it (``denoiser -q denoise ... -v``)."""
    command = vars(args).pop(COMMAND_VERBOSITY, None)
    top = getattr(args, "verbosity", NORMAL)
    if command is None or command == top:
        return ""
    if top != NORMAL:
        return "-q/--quiet and -v/--verbose: give one or the other, not both (one before the command, one after it)"
    args.verbosity = command
    return ""


def stderr_is_terminal() -> bool:
    """Whether stderr goes to a terminal, where progress bars may redraw themselves (in a log they would leave
    escape codes)."""
    return _is_terminal(sys.stderr)


def _is_terminal(stream: TextIO | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a stand-in without isatty, or a closed stream
        return False


def silence_stdout() -> None:
    """After a reader of stdout went away (``| head -1``): send whatever is still written, and Python's last
    flush at exit, to the null device, so that the command ends without a BrokenPipeError message."""
    silence("stdout")


def silence(name: str) -> None:
    """Point ``sys.<name>`` (``stdout`` or ``stderr``) at the null device, its descriptor included."""
    stream = getattr(sys, name)
    try:
        fd = stream.fileno()
    except (AttributeError, ValueError, io.UnsupportedOperation):
        setattr(sys, name, open(os.devnull, "w"))  # a stand-in stream (no descriptor): replaced for good
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def stdout_is_a_pipe() -> bool:
    """Whether stdout is a pipe or a socket, the only kinds of stdout whose reader can go away (so that a
    BrokenPipeError from elsewhere, with stdout a terminal or a file, is not taken for one)."""
    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


class Console:
    """Where a command's lines go, by kind and by verbosity.

    ``result``: stdout, always (what the command was asked to print). ``report``: stdout unless ``-q`` (a line
    per file a command worked on). ``error``: stderr, always. ``note``: stderr unless ``-q`` (warnings,
    summaries, progress lines). ``detail``: stderr with ``-v`` only. Lines are flushed one by one, so that
    stdout and stderr stay in order in a log that holds both.

    With ``keep_going`` a reader of stdout or stderr that goes away does not stop the command (``denoise`` goes
    on with its files); without, the BrokenPipeError goes up to :func:`denoiser.cli.main`, which ends quietly.
    While progress bars are open (``bars_open``), lines are written through tqdm so that they do not tear a bar.
    """

    def __init__(self, verbosity: int = NORMAL, *, keep_going: bool = False) -> None:
        self.verbosity = verbosity
        self.keep_going = keep_going
        self.bars_open = False
        self.gone: set[str] = set()
        """The streams whose reader went away (with ``keep_going``): written to no more."""

    @classmethod
    def for_args(cls, args: argparse.Namespace, *, keep_going: bool = False) -> Console:
        """The console for a parsed command line (its ``-q``/``-v``)."""
        return cls(getattr(args, "verbosity", NORMAL), keep_going=keep_going)

    @property
    def quiet(self) -> bool:
        """``-q`` was given."""
        return self.verbosity <= QUIET

    @property
    def verbose(self) -> bool:
        """``-v`` was given."""
        return self.verbosity >= VERBOSE

    @property
    def shows_bars(self) -> bool:
        """Whether progress is drawn as bars: not ``-q``, and stderr is a terminal."""
        return not self.quiet and stderr_is_terminal()

    def result(self, text: str) -> None:
        """A result on stdout, whatever the verbosity."""
        self._emit(text, "stdout")

    def report(self, text: str) -> None:
        """A line on stdout about the work done, left out with ``-q``."""
        if not self.quiet:
            self._emit(text, "stdout")

    def error(self, text: str) -> None:
        """A failure on stderr, whatever the verbosity."""
        self._emit(text, "stderr")

    def note(self, text: str) -> None:
        """A warning, note, summary or progress line on stderr, left out with ``-q``."""
        if not self.quiet:
            self._emit(text, "stderr")

    def detail(self, text: str) -> None:
        """A detail on stderr, only with ``-v``."""
        if self.verbose:
            self._emit(text, "stderr")

    def _emit(self, text: str, name: str) -> None:
        if name in self.gone:
            return
        try:
            self._write(text, getattr(sys, name))
        except BrokenPipeError:
            if not self.keep_going:
                raise
            silence(name)
            self.gone.add(name)

    def _write(self, text: str, stream: TextIO) -> None:
        if self.bars_open:
            from tqdm import tqdm

            tqdm.write(text, file=stream)
        else:
            stream.write(text + "\n")
        with contextlib.suppress(ValueError):  # a stream closed under us has nothing to flush
            stream.flush()


FILE_COMPLETION = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
"""What the completion scripts complete a path argument with, per shell (shtab's convention)."""


def completes_files(action: argparse.Action) -> argparse.Action:
    """Mark an argument as a path, for the completion scripts."""
    action.complete = FILE_COMPLETION  # type: ignore[attr-defined]
    return action
