"""What the model "sees": its bottleneck activations for a downscaled copy of a photo, for the app's latent
thumbnails. Needs the torch model (an exported graph gives only the result)."""

from __future__ import annotations

import numpy as np
import torch

from denoiser.devices import resolve_device
from denoiser.inference import match_channels
from denoiser.io import to_float
from denoiser.models.base import Autoencoder

__all__ = ["extract_latent"]


def extract_latent(
    image: np.ndarray, model: Autoencoder, sigma: float, *, max_side: int = 384, device: str = "auto"
) -> np.ndarray:
    """The bottleneck for a downscaled copy of the image: latent_channels x h x w float32.

    Thumbnails only need the gist, so the image is shrunk so its longer side is at most ``max_side``.
    """
    if image.ndim == 2:
        image = image[:, :, None]
    image, _ = match_channels(model, image)
    if image.shape[2] != model.config.channels:  # colour image, grey model: look at the luminance
        image = image.mean(axis=2, keepdims=True)
    tensor = torch.from_numpy(to_float(image)).permute(2, 0, 1)[None]
    scale = max_side / max(tensor.shape[2:])
    if scale < 1:
        tensor = torch.nn.functional.interpolate(tensor, scale_factor=scale, mode="area")
    multiple = model.size_multiple
    pad_h, pad_w = -tensor.shape[2] % multiple, -tensor.shape[3] % multiple
    if pad_h or pad_w:
        tensor = torch.nn.functional.pad(tensor, (0, pad_w, 0, pad_h), mode="replicate")
    target = resolve_device(device)
    model.eval().to(target)
    with torch.inference_mode():
        latent = model.encode(tensor.to(target), sigma / 255.0)
    return latent[0].float().cpu().numpy()
