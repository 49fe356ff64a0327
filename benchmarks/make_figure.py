"""The comparison picture: noisy / CBM3D / ours / clean crops of benchmark images, side by side.

Run: ``python benchmarks/make_figure.py [--sigma 25] [--out docs/comparison.png]`` (needs ``pip install .[bench]``).
Noise follows the benchmark protocol (seed = the image's index in its sorted set), crops are 192 x 192.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw

from denoiser.bench_methods import method_denoiser
from denoiser.bench_sets import load_set
from denoiser.metrics import psnr
from denoiser.noise import add_gaussian_noise

CROPS = [("kodak24", "kodim23.png", (120, 300)), ("cbsd68", "108005.png", (100, 180))]
SIZE = 192


def main() -> None:
    """Denoise two benchmark images with CBM3D and the model and lay the crops out in a grid."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--model", default="default")
    parser.add_argument("--out", type=Path, default=Path("docs/comparison.png"))
    args = parser.parse_args()
    ours, cbm3d = method_denoiser("ours", args.model), method_denoiser("cbm3d", args.model)
    rows = []
    for set_name, file_name, (top, left) in CROPS:
        images = load_set(set_name)
        index = [name for name, _ in images].index(file_name)
        clean = images[index][1]
        noisy = add_gaussian_noise(clean, args.sigma, index)
        results = {"noisy": noisy, "CBM3D": cbm3d(noisy, args.sigma), "ours": ours(noisy, args.sigma), "clean": clean}
        tiles = []
        for label, image in results.items():
            figure = f" {psnr(clean, image):.2f} dB" if label != "clean" else ""
            tile = PILImage.fromarray(image[top : top + SIZE, left : left + SIZE])
            ImageDraw.Draw(tile).text((6, 4), f"{label}{figure}", fill=(255, 255, 0))
            tiles.append(tile)
        rows.append(tiles)
    sheet = PILImage.new("RGB", (4 * SIZE + 3 * 4, len(rows) * SIZE + (len(rows) - 1) * 4), (32, 32, 32))
    for r, tiles in enumerate(rows):
        for c, tile in enumerate(tiles):
            sheet.paste(tile, (c * (SIZE + 4), r * (SIZE + 4)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} (sigma {args.sigma:g}; the figures are PSNR over the whole image)")


if __name__ == "__main__":
    main()
