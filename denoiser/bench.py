"""The benchmark: the project's model beside CBM3D and OpenCV's non-local means, in one run, one table.

Protocol (``../shared/data/README.md``), chosen with ``--protocol``:

* ``clipped`` (the default): clean 8-bit image; noisy = clip(round(clean + N(0, sigma^2))) as uint8, what a
  user's noisy 8-bit file looks like.
* ``float``: the protocol of the published DnCNN/FFDNet/DRUNet tables: noisy = clean/255 + N(0, sigma^2)/255 in
  float32 (0-1 units), neither rounded nor clipped, as 16-bit scans, float images and RAW developments are. The
  project's model and CBM3D take that float image; OpenCV's NLM takes only uint8, so it gets the rounded and
  clipped image (the clipped protocol's input), and the "noisy" row is that image's PSNR.

Both draw the noise with ``numpy.random.default_rng(i)`` for the i-th file in sorted order, the same draws, so the
two differ only by rounding and clipping. Sigma 0 adds no noise (noisy = clean): the rows then show how much each
method changes a clean photo. Every method's output is rounded to uint8; PSNR over the whole image and SSIM
(Wang et al.) on uint8, averaged over the set; seconds per megapixel timed per method in the same run. Each
(method, set, sigma) runs in a fresh process so that its peak memory can be read (``ru_maxrss``) and reported
beside the memory the process held before the method started.

CBM3D (``bm3d`` package) and scikit-image are optional: ``pip install .[bench]``.
Real camera noise: a *pair set* (``polyu``, or any folder with ``noisy/`` and ``clean/``) is scored on its
seeded validation split (the split ``denoiser train --pairs`` holds out, 10 %, seed 0), once per method rather
than per sigma: there is no true sigma, so every method gets the noise estimate of each noisy photo (ours:
auto strength; CBM3D and NLM: ``estimate_noise``). Its rows read "real" in the sigma column and "pairs" in the
protocol column: it has no synthetic noise, so ``--protocol`` does not apply to it.

Run: ``denoiser bench --sets cbsd68 kodak24 polyu --sigmas 15 25 50 --protocol float``
(or ``python -m denoiser.bench``).
"""

# This module's job: the benchmark's table, its JSON and its command line (the docstring above is the
# command's --help text). The sets and protocols are denoiser.bench_sets, the methods and runs denoiser.bench_methods.

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import time
from dataclasses import asdict
from pathlib import Path

from denoiser.bench_methods import METHOD_NAMES, MethodResult, run_bench
from denoiser.bench_sets import DATA_VARIABLE, PROTOCOL_DESCRIPTIONS, PROTOCOLS, REAL_NOISE
from denoiser.machine import cpu_description
from denoiser.tiling import PASS_COUNTS


def _sigma_text(sigma: float) -> str:
    return "real" if sigma == REAL_NOISE else f"{sigma:g}"


def format_table(results: list[MethodResult]) -> str:
    """A Markdown table, one row per (set, sigma, method), with a protocol column; each distinct note becomes a
    numbered footnote under the table, marked beside the method."""
    lines = ["| set | sigma | protocol | method | PSNR (dB) | SSIM | s/MP | peak memory (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    for r in results:
        method = r.method
        if r.note:
            if r.note not in notes:
                notes.append(r.note)
            method += f" [{notes.index(r.note) + 1}]"
        lines.append(f"| {r.set} ({r.images}) | {_sigma_text(r.sigma)} | {r.protocol} | {method} | {r.psnr:.2f} | "
                     f"{r.ssim:.4f} | {r.seconds_per_mp:.2f} | {r.peak_mb:.0f} (+{r.extra_mb:.0f}) |")
    if notes:
        lines.append("")
        lines.extend(f"[{number}] {note}" for number, note in enumerate(notes, 1))
    return "\n".join(lines)


def results_json(results: list[MethodResult]) -> str:
    """The results as a JSON list, one object per result with its ``protocol`` and ``note``.

    An infinite PSNR (output identical to the clean image, e.g. the "noisy" row at sigma 0) is written as
    ``null``, which strict JSON readers accept, where ``Infinity`` is not JSON.
    """
    rows = []
    for result in results:
        row = asdict(result)
        row.update({key: None for key, value in row.items() if isinstance(value, float) and not math.isfinite(value)})
        rows.append(row)
    return json.dumps(rows, indent=2)


def _sigma_argument(text: str) -> float:
    """``--sigmas`` values: 0 (no noise) or more."""
    try:
        sigma = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from err
    if not sigma >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"sigma must be 0 or more, not {text}")
    return sigma


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options (shared by ``denoiser bench`` and ``python -m denoiser.bench``)."""
    parser.add_argument("--data", type=Path, default=None, metavar="DIR",
                        help="the benchmark data: a folder holding bench/<set> and pairs/polyu (default: "
                             "$DENOISER_BENCH_DATA, or ../shared/data beside a development checkout)")
    parser.add_argument("--sets", nargs="+", default=["cbsd68", "kodak24"],
                        help="kodak24, cbsd68, set12, polyu (real pairs: their validation split) or folders")
    parser.add_argument("--sigmas", nargs="+", type=_sigma_argument, default=[15.0, 25.0, 50.0],
                        help="noise levels in 0-255 units; 0 adds no noise (how much a clean photo is changed)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="clipped",
                        help="clipped: noisy input rounded and clipped to uint8 (default); float: clean/255 + "
                             "N(0, sigma^2)/255 in float32, neither rounded nor clipped (the published tables; "
                             "OpenCV NLM still gets the rounded, clipped image). Pair sets ignore it")
    parser.add_argument("--methods", nargs="+", default=["ours", "cbm3d", "nlm"], choices=METHOD_NAMES)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=None, help="only the first N images of each set")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the project's model")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--passes", type=int, choices=PASS_COUNTS, default=1,
                        help="orientations the project's model averages (self-ensemble; default 1)")


def bench_command(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments and print the table."""
    protocol = getattr(args, "protocol", "clipped")
    if getattr(args, "data", None) is not None:
        os.environ[DATA_VARIABLE] = str(args.data)  # read by bench_sets.data_root for every set named
    results = []
    started = time.strftime("%Y-%m-%d %H:%M")
    for result in run_bench(args.sets, args.sigmas, args.methods, args.model, args.limit, args.threads,
                            passes=args.passes, protocol=protocol):
        results.append(result)
        print(f"{result.set} sigma {_sigma_text(result.sigma)} ({result.protocol}) {result.method}: "
              f"{result.psnr:.2f} dB, SSIM {result.ssim:.4f}, {result.seconds_per_mp:.2f} s/MP, "
              f"peak {result.peak_mb:.0f} MB", flush=True)
    print()
    print(f"{started}, {cpu_description()}, {multiprocessing.cpu_count()} cores, "
          f"model {args.model}" + (f", {args.passes} passes (self-ensemble)" if args.passes > 1 else ""))
    print(f"protocol {protocol}: {PROTOCOL_DESCRIPTIONS[protocol]}")
    print(format_table(results))
    if args.json:
        args.json.write_text(results_json(results))
    return 0


def main() -> None:
    """``python -m denoiser.bench``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bench_arguments(parser)
    raise SystemExit(bench_command(parser.parse_args()))


if __name__ == "__main__":
    main()
