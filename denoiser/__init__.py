"""Denoiser's engine: image I/O, autoencoder families, tiled inference, model files, training.

Pure Python and PyTorch; it never imports Qt, so the CLI, notebooks and tests use it directly.
"""

__version__ = "0.1.0"
