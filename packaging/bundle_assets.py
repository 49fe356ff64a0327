"""Export what the desktop bundle denoises with, before PyInstaller packs it: the bundled default model and the
noise-map estimator as ONNX graphs with their sidecars (the bundle leaves PyTorch out, so it cannot export them
itself). Needs torch; run by ``make bundle``.

Run: ``python packaging/bundle_assets.py OUT_DIR`` -> OUT_DIR/models/default.onnx(.json),
OUT_DIR/estimator/noise-map.onnx(.json), merged into the bundle's resources folder by the spec.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from denoiser.onnx_export import export_bundle_assets


def main(argv: list[str] | None = None) -> int:
    """Export the assets into the folder given and list them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write models/ and estimator/ into")
    args = parser.parse_args(argv)
    for path in export_bundle_assets(args.out):
        print(f"{path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
