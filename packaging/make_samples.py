"""Rebuild ``resources/samples`` from ``../shared/data``: two Kodak photos with seeded Gaussian noise
(sigma 25, the benchmark protocol's uint8 noise) and two real noisy photos from RNI6.

Run from the repository root: ``python packaging/make_samples.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from denoiser.noise import add_gaussian_noise

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SAMPLES = ROOT / "resources" / "samples"
SYNTHETIC = {"kodim23.png": ("parrots_sigma25.png", 25, 23), "kodim03.png": ("caps_sigma25.png", 25, 3)}
REAL = ["Chupa_Chups.png", "Building.png"]


def main() -> None:
    """Write the sample images."""
    SAMPLES.mkdir(parents=True, exist_ok=True)
    for source, (name, sigma, seed) in SYNTHETIC.items():
        clean = np.asarray(Image.open(DATA / "bench" / "kodak24" / source).convert("RGB"))
        Image.fromarray(add_gaussian_noise(clean, sigma, seed)).save(SAMPLES / name, optimize=True)
    for name in REAL:
        shutil.copyfile(DATA / "real" / "rni6" / name, SAMPLES / f"real_{name.lower()}")


if __name__ == "__main__":
    main()
