"""The benchmark's data: its sets and pair sets on disk, and the noisy inputs each protocol makes from them.

A *set* is a folder of clean photos (``kodak24``, ``cbsd68``, ``set12`` under ``../shared/data/bench``, or any
folder); a *pair set* holds real ``noisy/`` and ``clean/`` photos and is scored on its seeded validation split.
A *protocol* (``clipped`` or ``float``, see :mod:`denoiser.bench`) says how a clean photo's noisy input is made;
a :class:`Trial` is one photo ready for the methods. No model and no timing here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from denoiser.errors import DenoiserError, UnknownNameError

CHECKOUT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""Where a development checkout finds the benchmark data (beside the repository)."""
DATA_VARIABLE = "DENOISER_BENCH_DATA"
PAIR_SET_PATHS = {"polyu": Path("pairs") / "polyu"}
PAIR_VALIDATION_FRACTION = 0.1
PAIR_SEED = 0
REAL_NOISE = -1.0
"""The sigma recorded for a pair set's rows: each image's noise is estimated, not known (sigma 0 means no noise)."""
PROTOCOLS = ("clipped", "float")
"""How the synthetic noisy input is made (see :mod:`denoiser.bench`); ``clipped`` is the default."""
PAIRS_PROTOCOL = "pairs"
"""The protocol recorded for a pair set's rows: real noise, neither synthetic protocol applies."""
PROTOCOL_DESCRIPTIONS = {
    "clipped": "noisy = clip(round(clean + N(0, sigma^2)), 0, 255) as uint8",
    "float": "noisy = clean/255 + N(0, sigma^2)/255 in float32, neither rounded nor clipped",
    PAIRS_PROTOCOL: "real noisy/clean pairs, no synthetic noise",
}


@dataclass
class Trial:
    """One image of a run: the input the methods get, the clean image, and the input as 8-bit pixels."""

    noisy: np.ndarray
    """The protocol's noisy input: uint8 (clipped protocol, pair sets) or float32 in 0-1 units (float protocol)."""
    clean: np.ndarray
    rounded: np.ndarray
    """``noisy`` rounded and clipped to uint8 (``noisy`` itself when it is uint8): what 8-bit-only methods get."""


def data_root() -> Path:
    """The benchmark data folder (holding ``bench/`` and ``pairs/``): ``$DENOISER_BENCH_DATA`` (``denoiser bench
    --data``) or, in a development checkout, ``../shared/data``."""
    configured = os.environ.get(DATA_VARIABLE)
    return Path(configured) if configured else CHECKOUT_DATA


def set_folder(name: str | Path) -> Path:
    """A benchmark set by name (``kodak24``, ``cbsd68``, ``set12``, ``polyu``) or any folder."""
    folder = Path(name)
    if not folder.is_dir():
        root = data_root()
        folder = root / PAIR_SET_PATHS.get(str(name), Path("bench") / str(name))
    if not folder.is_dir():
        raise DenoiserError(f"{name}: no such benchmark set or folder (looked in {data_root()}; name a folder of "
                            "photos, or give the benchmark data with --data DIR)")
    return folder


def is_pair_set(name: str | Path) -> bool:
    """True for a set of real noisy/clean pairs (a folder holding ``noisy/`` and ``clean/``)."""
    folder = set_folder(name)
    return (folder / "noisy").is_dir() and (folder / "clean").is_dir()


def load_pairs(name: str | Path, limit: int | None = None,
               part: str = "validation") -> list[tuple[str, np.ndarray, np.ndarray]]:
    """One part of a pair set's seeded split (``validation``, what the benchmark scores, or ``training``, what a
    calibration may look at) as (name, noisy, clean) uint8 triples, in the split's order."""
    from denoiser.datasets import match_pairs
    from denoiser.validation import split_images

    if part not in ("validation", "training"):
        raise DenoiserError(f"part must be 'validation' or 'training', not {part!r}")
    report = match_pairs(set_folder(name))
    if not report.pairs:
        raise DenoiserError(f"{name}: no matching noisy/clean pairs")
    train, held = split_images(len(report.pairs), PAIR_VALIDATION_FRACTION, PAIR_SEED)
    chosen = [report.pairs[i] for i in (held if part == "validation" else train)][:limit]
    return [(noisy.name, read_uint8(noisy), read_uint8(clean)) for noisy, clean in chosen]


def read_uint8(path: Path) -> np.ndarray:
    """An image's colour as 8-bit pixels (16-bit ones scaled down), H x W for grey."""
    from denoiser.io import read_image

    pixels = read_image(path).color_pixels()
    if pixels.dtype != np.uint8:
        pixels = (pixels >> 8).astype(np.uint8)
    return pixels[:, :, 0] if pixels.shape[2] == 1 else pixels


def load_set(name: str | Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    """The clean images of a set, sorted by file name, as uint8 (RGB, or H x W for a grey set)."""
    from denoiser.io import find_images

    return [(path.name, read_uint8(path)) for path in find_images([set_folder(name)])[:limit]]


def check_protocol(protocol: str) -> None:
    """Raise :class:`UnknownNameError` unless ``protocol`` is one of :data:`PROTOCOLS`."""
    if protocol not in PROTOCOLS:
        raise UnknownNameError("benchmark protocol", protocol, PROTOCOLS)


def protocol_trial(clean: np.ndarray, sigma: float, seed: int, protocol: str = "clipped") -> Trial:
    """The noisy input of one clean uint8 image under ``protocol`` (sigma 0: noisy = clean)."""
    from denoiser.noise import add_gaussian_noise, float_noisy

    check_protocol(protocol)
    # Both protocols draw the same noise; the uint8 one is rounded and clipped from the float64 sum, not from
    # the float32 input, so 8-bit-only methods get exactly the clipped protocol's input.
    rounded = add_gaussian_noise(clean, sigma, seed)
    noisy = float_noisy(clean, sigma, seed) if protocol == "float" else rounded
    return Trial(noisy, clean, rounded)


def load_trials(set_name: str, sigma: float, limit: int | None, protocol: str = "clipped") -> list[Trial]:
    """A pair set's validation split (uint8, the protocol does not apply), or a clean set with the protocol's
    noise (the i-th image in sorted order seeded with i)."""
    if is_pair_set(set_name):
        return [Trial(noisy, clean, noisy) for _, noisy, clean in load_pairs(set_name, limit)]
    return [protocol_trial(clean, sigma, index, protocol) for index, (_, clean) in enumerate(load_set(set_name, limit))]
