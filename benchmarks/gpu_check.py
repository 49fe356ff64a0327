"""Check the CUDA inference path of trained models and time it (run on a GPU machine).

    python benchmarks/gpu_check.py MODEL.safetensors [MODEL ...]

For each model: the whole-image result on the GPU must match the CPU's on a crop (tiling and device must not
change the output beyond float rounding), then seconds per megapixel on a 4-megapixel synthetic photo, one and
four passes. Prints one line per figure; exits 1 when a check fails or no GPU is present.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from denoiser.inference import TileSettings, denoise_array
from denoiser.modelstore import load_model_file
from denoiser.noise import add_gaussian_noise


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with edges: enough structure for the model to keep, uint8."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(seed)
    channels = [np.sin(x * rng.uniform(5, 30) + y * rng.uniform(5, 30)) for _ in range(3)]
    image = (np.stack(channels, axis=2) * 0.4 + 0.5) * 255
    image[height // 3: height // 2, width // 4: width // 2] = 30  # a dark block with sharp edges
    return image.clip(0, 255).astype(np.uint8)


def check(path: str, device: str = "cuda", size: int = 2048) -> bool:
    """Run the checks for one model file on ``device`` (a size x size photo); True when they pass."""
    model, _ = load_model_file(path)
    clean = synthetic_photo(size, size)
    noisy = add_gaussian_noise(clean, 25.0, seed=1)
    crop = noisy[:384, :384]
    on_cpu = denoise_array(crop, model, 25.0, device="cpu")
    on_gpu = denoise_array(crop, model, 25.0, device=device)
    difference = float(np.abs(on_cpu - on_gpu).max() * 255)
    size_text = f"{crop.shape[1]}x{crop.shape[0]}"
    print(f"{path}: largest CPU/GPU difference on a {size_text} crop {difference:.3f} (0-255 levels)")
    ok = difference < 0.5
    for passes in (1, 4):
        settings = TileSettings(passes=passes)
        denoise_array(noisy[:512, :512], model, 25.0, device=device, tiles=settings)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        out = denoise_array(noisy, model, 25.0, device=device, tiles=settings)
        seconds = time.perf_counter() - started
        psnr = 10 * np.log10(255**2 / np.mean((np.clip(np.round(out * 255), 0, 255) - clean) ** 2))
        where = torch.cuda.get_device_name() if device.startswith("cuda") else device
        print(f"{path}: {passes} pass(es): {seconds / (size * size / 1e6):.3f} s/MP on {where}, "
              f"PSNR {psnr:.2f} dB on the synthetic photo")
    return ok


def main(argv: list[str] | None = None) -> int:
    """Check every model named; 0 when all pass."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--device", default="cuda", help="the device checked against the CPU (default cuda)")
    parser.add_argument("--size", type=int, default=2048, help="edge of the timed synthetic photo")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 1
    results = [check(path, args.device, args.size) for path in args.models]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
