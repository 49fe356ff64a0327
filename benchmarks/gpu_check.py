"""Check the CUDA inference path of trained models and time it (run on a GPU machine).

    python benchmarks/gpu_check.py MODEL.safetensors [MODEL ...]

For each model: the tiled result on the GPU must match one plain forward pass over the whole crop on the CPU
(tiling and device must not change the output beyond float rounding), then seconds per megapixel on a
4-megapixel synthetic photo, one and four passes. Prints one line per figure; exits 1 when a check fails or no
GPU is present.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from denoiser.inference import TileSettings, denoise_array
from denoiser.io import to_float
from denoiser.modelfile import load_model_file
from denoiser.models import Autoencoder
from denoiser.noise import add_gaussian_noise
from denoiser.tiling import canvas_padding, pad_image


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with edges: enough structure for the model to keep, uint8."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    rng = np.random.default_rng(seed)
    channels = [np.sin(x * rng.uniform(5, 30) + y * rng.uniform(5, 30)) for _ in range(3)]
    image = (np.stack(channels, axis=2) * 0.4 + 0.5) * 255
    image[height // 3: height // 2, width // 4: width // 2] = 30  # a dark block with sharp edges
    return image.clip(0, 255).astype(np.uint8)


def whole_forward(image: np.ndarray, model: Autoencoder, sigma: float) -> np.ndarray:
    """The reference: one forward pass of the model over the whole padded image on the CPU, no tiles."""
    height, width = image.shape[:2]
    padding = canvas_padding(height, width, model.receptive_radius, model.size_multiple)
    canvas = torch.from_numpy(to_float(pad_image(image, padding))).permute(2, 0, 1)[None]
    model.eval().to("cpu")
    with torch.inference_mode():
        out = model(canvas, sigma / 255.0)[0].permute(1, 2, 0).numpy()
    return out[padding.top : padding.top + height, padding.left : padding.left + width]


def check(path: str, device: str = "cuda", size: int = 2048, tile: int = 128) -> bool:
    """Run the checks for one model file on ``device`` (a size x size photo); True when they pass.

    The crop is denoised on ``device`` in tiles of ``tile`` pixels and compared with :func:`whole_forward`.
    """
    model, _ = load_model_file(path)
    clean = synthetic_photo(size, size)
    noisy = add_gaussian_noise(clean, 25.0, seed=1)
    crop = noisy[:384, :384]
    reference = whole_forward(crop, model, 25.0)
    on_device = denoise_array(crop, model, 25.0, device=device, tiles=TileSettings(tile=tile))
    difference = float(np.abs(reference - on_device).max() * 255)
    size_text = f"{crop.shape[1]}x{crop.shape[0]}"
    print(f"{path}: largest difference between {tile}-pixel tiles on {device} and one pass on the CPU on a "
          f"{size_text} crop {difference:.3f} (0-255 levels)")
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
    parser.add_argument("--tile", type=int, default=128, help="tile edge of the checked run (default 128)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 1
    results = [check(path, args.device, args.size, args.tile) for path in args.models]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
