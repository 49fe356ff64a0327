"""The noise-map estimator: a small network that reads, per pixel, how much noise a photo holds.

It answers in the units of the denoisers' noise-map input (sigma, 0-1 inside, 0-255 outside) and for luminance
and colour apart (camera noise has strong colour blotches, scans and film mostly luminance grain), so "auto"
gives each region of a photo the strength its own noise needs, for white and camera noise alike, and leaves a
clean photo alone. It works at a quarter of the resolution (noise is a property of a region, not of a pixel),
costs about 16 GMAC per megapixel (the bundled U-Net: 143) and runs over tiles with a margin of context, so a
photo of any size fits in memory. The bundled one lives in ``resources/estimator`` (not among the models: it
denoises nothing) and is trained by :mod:`denoiser.estimator_training`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_to_bytes
from torch import nn

from denoiser.config import ConfigError, VersionedConfig, require, short
from denoiser.errors import ModelLoadError, first_line
from denoiser.io import atomic_write_bytes
from denoiser.models.blocks import ResBlock, conv3x3
from denoiser.noise_reader import SCALE, read_noise_map
from denoiser.resources import bundled_estimator_dir
from denoiser.safetensors_checks import read_header, refuse_non_finite

ESTIMATOR_FILE = "noise-map.safetensors"
HEADER_KEY = "denoiser_estimator"
OUTPUT_SCALE = 0.1
"""The network's output units, in 0-1 sigma units."""


@dataclass
class EstimatorConfig(VersionedConfig):
    """The estimator's shape: a few residual blocks at 1/4 and 1/8 resolution."""

    width: int = 48
    """Channels of every block."""
    blocks: int = 3
    """Residual blocks at each of the two resolutions."""

    def validate(self) -> None:
        require(4 <= self.width <= 256, "width must be 4 to 256")
        require(1 <= self.blocks <= 8, "blocks must be 1 to 8")


class NoiseMapEstimator(nn.Module):
    """RGB in 0-1 (N x 3 x H x W, H and W multiples of 8) -> N x 2 x H/4 x W/4 noise levels (0-1 units)."""

    smallest_side = 16
    """Photos smaller than this on a side are left to the PCA estimate."""
    reads_grey = False
    """Whether it learnt grey photos (trained with a grey share, :mod:`denoiser.estimator_training`); one that did
    not reads a grey photo's noise as next to nothing, and grey photos are left to the PCA estimate."""

    def __init__(self, config: EstimatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or EstimatorConfig()
        width, blocks = self.config.width, self.config.blocks
        self.head = nn.Sequential(nn.PixelUnshuffle(SCALE), conv3x3(3 * 3 * SCALE * SCALE, width), nn.ReLU())
        self.fine = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.down = nn.Conv2d(width, width, kernel_size=2, stride=2)
        self.coarse = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.up = nn.ConvTranspose2d(width, width, kernel_size=2, stride=2)
        self.tail = nn.Sequential(conv3x3(width, width), nn.ReLU(), nn.Conv2d(width, 2, kernel_size=1))

    @staticmethod
    def features(rgb: torch.Tensor) -> torch.Tensor:
        """The image, its finest detail (each pixel less its 3 x 3 mean) and that detail squared: noise lives in
        the detail, and its squares average to the variance the network reads, so little has to be learnt."""
        detail = rgb - nn.functional.avg_pool2d(nn.functional.pad(rgb, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        return torch.cat([rgb - 0.5, 4.0 * detail, 16.0 * detail * detail], dim=1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """Levels at 1/4 resolution; softplus keeps them positive and lets them reach 0 for clean photos (scaled so
        that an untrained network starts mid-range, about sigma 18, with gradients that are not vanishingly small)."""
        fine = self.fine(self.head(self.features(rgb)))
        merged = fine + self.up(self.coarse(self.down(fine)))
        return OUTPUT_SCALE * nn.functional.softplus(self.tail(merged))


def estimate_map(estimator: NoiseMapEstimator, pixels: np.ndarray, *, tile: int = 1024,
                 margin: int = 64) -> np.ndarray:
    """The (luminance, colour) noise levels of ``pixels`` read by ``estimator`` through torch: see
    :func:`~denoiser.noise_reader.read_noise_map` (the tiling, shared with the exported graph)."""
    estimator.eval()
    device = next(estimator.parameters()).device

    def run(tile_pixels: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return estimator(torch.from_numpy(tile_pixels).to(device)).float().cpu().numpy()

    return read_noise_map(run, pixels, tile=tile, margin=margin)


def save_estimator(estimator: NoiseMapEstimator, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write the weights, with the config and ``info`` (how it was trained, its validation) in the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"config": estimator.config.to_dict(), "info": info or {}}
    tensors = {k: v.detach().cpu().contiguous() for k, v in estimator.state_dict().items()}
    atomic_write_bytes(path, safetensors_to_bytes(tensors, metadata={HEADER_KEY: json.dumps(header)}))
    return path


def load_estimator(path: str | Path) -> tuple[NoiseMapEstimator, dict[str, Any]]:
    """The estimator in ``path`` and its info; :class:`ModelLoadError` naming the file when it is not one.

    As for models (:func:`~denoiser.modelfile.load_model_file`), the header is checked against the network its
    config describes before any tensor is read, and weights holding NaN or infinity are refused.
    """
    path = Path(path)
    advice = "train it again, or reinstall the app to restore the bundled one"
    table = read_header(path, advice)
    try:
        header = json.loads(table.metadata[HEADER_KEY])
        config = header["config"]
        info = header.get("info", {})
        if not isinstance(config, dict) or not isinstance(info, dict):
            raise ValueError("config and info must be JSON objects")
        estimator = NoiseMapEstimator(EstimatorConfig.from_dict(config))
        expected = {key: tuple(value.shape) for key, value in estimator.state_dict().items()}
        found = {key: entry.shape for key, entry in table.tensors.items()}
        if found != expected:
            raise ValueError(f"its tensors do not match the estimator its config describes ({short(config, 80)})")
        with safe_open(str(path), framework="pt") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}
        refuse_non_finite(path, state, "noise-map estimator")
        estimator.load_state_dict(state)
    except (OSError, SafetensorError, KeyError, ValueError, TypeError, AttributeError, RuntimeError, RecursionError,
            ConfigError) as err:
        raise ModelLoadError(path, f"not a noise-map estimator ({first_line(err)}); {advice}") from err
    training = info.get("training")
    estimator.reads_grey = isinstance(training, dict) and bool(training.get("grey_share"))
    return estimator.eval(), info


def bundled_estimator_path() -> Path:
    """Where the app's noise-map estimator is shipped."""
    return bundled_estimator_dir() / ESTIMATOR_FILE


@functools.lru_cache(maxsize=1)
def bundled_estimator() -> NoiseMapEstimator | None:
    """The shipped estimator (loaded once), or None when this installation has none."""
    path = bundled_estimator_path()
    if not path.is_file():
        return None
    return load_estimator(path)[0]
