"""Autoencoder families, built by name through :func:`create_model`.

Importing this package registers every family: ``unet`` (the flagship denoiser), ``nafnet`` (its layout with
NAFNet blocks), ``undercomplete``, ``sparse`` and ``variational``.
"""

from denoiser.models import nafnet, sparse, undercomplete, unet, variational  # noqa: F401  (registers families)
from denoiser.models.base import Autoencoder, ModelConfig
from denoiser.models.registry import config_class, create_model, families

__all__ = ["Autoencoder", "ModelConfig", "config_class", "create_model", "families"]
