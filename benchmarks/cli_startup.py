"""How fast the ``denoiser`` command answers when it has nothing to compute: ``--version`` and ``--help``.

Run: ``python benchmarks/cli_startup.py [--repeat 5]``.
Each command runs in a fresh Python process (as a user's shell starts it); the script prints the median wall time
over the runs, the median CPU time (user + system: what the command costs, which other work on a busy machine
changes far less than the wall time) and that process's peak resident memory. Beside them it prints the same for
``python -c "import torch"``: what every command paid before the CLI imported torch only inside the commands that
need it.
POSIX only: the CPU time and peak memory are the child's own ``ru_utime + ru_stime`` and ``ru_maxrss`` from
``os.wait4``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "denoiser --version": [sys.executable, "-m", "denoiser", "--version"],
    "denoiser --help": [sys.executable, "-m", "denoiser", "--help"],
    "denoiser train --help": [sys.executable, "-m", "denoiser", "train", "--help"],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
}


def measure(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident memory (MB) of one run of ``argv``; raises if it fails."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}: {errors.strip()}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux reports kilobytes


def main(argv: list[str] | None = None) -> int:
    """Measure every command of :data:`COMMANDS` ``--repeat`` times; print one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command; the median time is printed")
    args = parser.parse_args(argv)
    width = max(len(label) for label in COMMANDS)
    for label, command in COMMANDS.items():
        measure(command)  # one run to warm the file cache: the first start after a build reads every file
        runs = [measure(command) for _ in range(args.repeat)]
        times = [seconds for seconds, _, _ in runs]
        cpu = statistics.median(cpu for _, cpu, _ in runs)
        print(f"{label:<{width}}  {statistics.median(times):6.2f} s (median of {args.repeat}, fastest "
              f"{min(times):.2f} s), CPU {cpu:5.2f} s, peak memory {max(mb for _, _, mb in runs):6.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
