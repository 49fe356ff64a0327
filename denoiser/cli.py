"""The ``denoiser`` command: the top-level parser and dispatch, and the ``estimate-noise`` command.

The other sub-commands live in their own modules (:mod:`~denoiser.denoise_cli`, :mod:`~denoiser.models_cli`,
:mod:`~denoiser.train_cli`,
:mod:`~denoiser.estimator_cli`, :mod:`~denoiser.bench`); what they share is in :mod:`~denoiser.cli_common`,
with the conventions every command keeps (results on stdout, the rest on stderr; ``-q``/``-v``; bars only at a
terminal; a reader that goes away ends a command quietly).

Every expected failure is a :class:`~denoiser.errors.DenoiserError` and is printed as one line naming the
file and the problem, never as a traceback. Exit status: 0 all good, 1 some files failed, 2 nothing done.

Only light modules are imported at the top (no torch, and nothing that imports it): ``--help``, ``--version``
and every parse error answer in a fraction of a second, and each command imports what it runs. A test checks
that importing this module leaves torch unloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from denoiser import __version__
from denoiser.bench import add_bench_arguments, bench_command
from denoiser.cli_common import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_SOME_FAILED,
    Console,
    add_verbosity_arguments,
    completes_files,
    settle_verbosity,
    silence_stdout,
    stdout_is_a_pipe,
)
from denoiser.denoise_cli import OutputUsageError, add_denoise_parser, cmd_denoise
from denoiser.errors import Cancelled, DenoiserError
from denoiser.estimator_cli import add_estimator_parser, cmd_train_estimator
from denoiser.formats_cli import add_formats_parser, cmd_formats
from denoiser.models_cli import add_models_parser, cmd_models
from denoiser.train_cli import add_train_parser, cmd_train

if TYPE_CHECKING:
    pass

COMPLETION_SHELLS = ("bash", "zsh", "tcsh")
"""The shells ``--print-completion`` writes a script for (through shtab)."""
"""shtab's ``FILE``, written out so that building the parser does not import shtab."""
VERBOSITY_COMMANDS = ("denoise", "estimate-noise", "models", "train", "train-estimator")
"""The sub-commands that also take ``-q``/``-v`` after their name (``denoiser -q CMD`` works for all)."""
class _PrintCompletion(argparse.Action):
    """``--print-completion SHELL``: print shtab's completion script for the whole parser, then exit (shtab is
    imported only here)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        import shtab

        print(shtab.complete(parser, shell=values))
        parser.exit()




def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(prog="denoiser", description="Clean noisy photos with denoising autoencoders.")
    parser.add_argument("--version", action="version", version=f"denoiser {__version__}")
    parser.add_argument("--print-completion", choices=COMPLETION_SHELLS, action=_PrintCompletion, metavar="SHELL",
                        help="print the shell completion script for bash, zsh or tcsh and exit")
    add_verbosity_arguments(parser, top_level=True)
    commands = parser.add_subparsers(dest="command", required=True)
    add_denoise_parser(commands)
    _add_estimate_parser(commands)
    add_models_parser(commands)
    add_formats_parser(commands)
    add_train_parser(commands)
    add_estimator_parser(commands)
    bench = commands.add_parser("bench", help="benchmark the model against CBM3D and OpenCV NLM (pip install .[bench])",
                                description="PSNR, SSIM, seconds per megapixel and peak memory per method, one table.")
    add_bench_arguments(bench)
    for name in VERBOSITY_COMMANDS:
        add_verbosity_arguments(commands.choices[name])
    return parser


def _add_estimate_parser(commands: argparse._SubParsersAction) -> None:
    est = commands.add_parser("estimate-noise", help="print each image's luminance and colour noise (sigma, 0-255)",
                              description="Print each image's luminance and colour noise as auto strength reads "
                                          "it, with the PCA white-noise estimate as a check. Unreadable files are "
                                          "named on stderr.")
    completes_files(est.add_argument("files", nargs="+", metavar="FILE"))
    est.add_argument("--json", action="store_true", help="print one JSON list on stdout: per file luminance, "
                                                         "color, method, colour subsampled, PCA check (or the "
                                                         "failure)")


# --- denoise: where the results go ------------------------------------------------------------------------------


def noise_record(file: str) -> tuple[dict[str, Any], str]:
    """One file's noise as auto reads it: (plain JSON values, the line ``estimate-noise`` prints)."""
    from denoiser.io import read_image
    from denoiser.noise_estimation import estimate_noise, workable_patch
    from denoiser.strength import estimate_noise_map

    pixels = read_image(file).color()
    estimate = estimate_noise_map(pixels)
    patch = workable_patch(pixels.shape[0], pixels.shape[1], pixels.shape[2] if pixels.ndim == 3 else 1)
    pca = float(estimate_noise(pixels, patch=patch)) if patch is not None else None
    check = f"PCA white-noise check {pca:.2f}" if pca is not None else "no PCA check: too small"
    grey = None if estimate.grey is None else round(float(estimate.grey), 4)
    record = {"file": file, "status": "ok", "luminance": round(estimate.luminance, 4),
              "color": round(estimate.color, 4), "grey": grey, "spread": round(estimate.spread, 4),
              "method": estimate.method, "measured": estimate.measured, "rough": estimate.rough,
              "subsampled": estimate.subsampled,
              "pca_check": round(pca, 4) if pca is not None else None}
    return record, f"{file}\t{estimate.summary()}\t({estimate.method}; {check})"


def _cmd_estimate(args: argparse.Namespace) -> int:
    """Print each file's noise as auto reads it (saying when it is assumed or rough, the photo being too small),
    with the PCA white-noise estimate beside it as a check; ``--json``: one list at the end."""
    console = Console.for_args(args)
    records: list[dict[str, Any]] = []
    failed = 0
    for file in args.files:
        started = time.monotonic()
        try:
            record, line = noise_record(file)
        except DenoiserError as err:
            failed += 1
            console.error(f"FAILED  {err}")
            records.append({"file": file, "status": "failed", "message": str(err)})
            continue
        records.append(record)
        if not args.json:
            console.result(line)
        console.detail(f"  {file}: map read by {record['method']}, spread {record['spread']:.1f}, "
                       f"{time.monotonic() - started:.2f} s")
    if args.json:
        console.result(json.dumps(records, indent=2))
    return EXIT_OK if failed == 0 else EXIT_SOME_FAILED


COMMANDS = {
    "denoise": cmd_denoise,
    "estimate-noise": _cmd_estimate,
    "models": cmd_models,
    "formats": cmd_formats,
    "train": cmd_train,
    "train-estimator": cmd_train_estimator,
    "bench": bench_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (also used by the console script).

    A reader of stdout that goes away (``denoiser formats | head -1``) ends the command quietly with status 0:
    no traceback, no "Exception ignored" at exit (``denoise`` goes on with its files, its lines unread).
    """
    try:
        status = _run(argv)
    except SystemExit:  # --help, --version, a usage error: their text may meet a closed pipe at the last flush
        _flush_stdout()
        raise
    except BrokenPipeError:
        silence_stdout()
        return EXIT_OK
    _flush_stdout()
    return status


def _flush_stdout() -> None:
    """Flush stdout now, so that a reader gone away is met here, and silenced, not in the interpreter's last
    flush (which would print "Exception ignored ... BrokenPipeError" and exit with 120)."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        silence_stdout()


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    conflict = settle_verbosity(args)
    if conflict:
        _command_parser(parser, args.command).error(conflict)  # usage, message, exit status 2
    try:
        return COMMANDS[args.command](args)
    except OutputUsageError as err:
        _command_parser(parser, args.command).error(str(err))  # usage, message, exit status 2
    except Cancelled:
        print("stopped", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: files already written are complete, none is half-written", file=sys.stderr)
        return 130
    except DenoiserError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        print(f"error: 'denoiser {args.command}' needs PyTorch, which this installation leaves out (the desktop "
              "bundle denoises only); install Denoiser with pip to train and manage models", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - a user sees one line; DENOISER_DEBUG=1 shows the traceback
        if isinstance(err, BrokenPipeError) and stdout_is_a_pipe():
            raise  # the reader went away: main ends quietly
        if os.environ.get("DENOISER_DEBUG"):
            raise
        print(f"error: unexpected {type(err).__name__}: {err} (set DENOISER_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_ERROR


def _command_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    """The sub-command ``name``'s parser (for its usage line in an error)."""
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices[name]


if __name__ == "__main__":
    sys.exit(main())
