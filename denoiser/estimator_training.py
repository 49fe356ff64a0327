"""Training the noise-map estimator on the noise the denoisers train on.

Each batch is a :class:`~denoiser.datasets.DeviceMixSource` batch: clean patches whose noise is synthesised on the
training device (:mod:`denoiser.synthesis`: Gaussian of every kind, spatially varying, camera pipeline with JPEG)
and, optionally, real noisy/clean pairs. The target is the luminance/colour noise map that the denoiser is given
for the same patch, at the estimator's quarter resolution; a share of the patches is left without noise (target
zero) so that a clean photo reads clean.

A share of each batch is grey (:func:`grey_patches`, :func:`grey_pairs`): the patch made grey (Rec. 601 luma on
8-bit levels, replicated to R = G = B, which is how the estimator sees a grey photo) with the noise a grey photo
really has, the same in every channel: the synthesis kinds made on the grey patch (white clipped, float and 16-bit
noise; the camera pipeline's colour noise developed, demosaiced, averaged to grey and JPEG-compressed as grey),
spatially correlated noise (:func:`correlated_noise`: the grain of scanned and resized grey photos, which the
other kinds never showed and the estimator then read as texture), and the luma of the real pairs' camera noise.
Its target is the grey noise's own local standard deviation in both channels (what
:func:`~denoiser.noise_maps.local_noise_maps` makes of one-channel noise): a grey photo's level in the units of a
sigma, which :func:`denoiser.strength.estimate_noise_map` turns into the map the colour denoisers are given for a
grey photo (:data:`denoiser.strength.GREY_MAP`).

Validation: held-out clean photos, in colour and made grey, with seeded Gaussian noise of known sigma (and none;
grey ones also with correlated noise), scored by the error of the median level read, in 0-255 units.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from denoiser.config import VersionedConfig, require
from denoiser.datasets import Batch, DeviceMixSource, StepBatches, synthesize_on_device
from denoiser.estimator import SCALE, EstimatorConfig, NoiseMapEstimator, estimate_map
from denoiser.io import from_float
from denoiser.noise import add_gaussian_noise
from denoiser.noise_maps import draw_uniform, gaussian_taps, local_noise_maps, per_patch, separable_blur
from denoiser.progress import Progress, StopFn, check_stop
from denoiser.synthesis import SynthesisMix, synthesize_batch

VALIDATION_SIGMAS = (0.0, 5.0, 15.0, 25.0, 50.0)
"""Gaussian sigmas (clipped 8-bit protocol) of the validation photos; 0 is the photo as it is."""

LUMA = (0.299, 0.587, 0.114)
"""Rec. 601 luma weights: how photo software (PIL's ``L`` mode, OpenCV, JPEG's Y) makes a colour photo grey."""

CORRELATION_BLUR = (0.4, 1.2)
"""Range of the Gaussian blur (std, pixels) that makes correlated noise of white noise: a neighbour correlation of
about 0.1 to 0.85."""

CORRELATED_SIGMA_MAX = 40.0
"""Largest sigma (0-255 units) of the correlated noise: grain of that strength is already coarse texture; above it
the level read is ambiguous and its large errors made training and validation unsteady."""

CORRELATED_SIGMAS = (5.0, 15.0, 25.0)
"""Sigmas of the grey validation photos' correlated noise."""

VALIDATION_BLUR = 0.8
"""The blur of the grey validation photos' correlated noise."""

_GREY_SEED_OFFSET = 0x6772_6579
"""Added to a batch's seed for the generator of its grey patches, so they draw apart from the colour ones."""


@dataclass
class EstimatorTraining(VersionedConfig):
    """One estimator training run."""

    steps: int = 3000
    batch_size: int = 16
    patch: int = 96
    """Patch edge; a multiple of 16."""
    learning_rate: float = 1e-3
    """Adam's rate; cosine decay to 1 % by the last step."""
    clean_share: float = 0.1
    """Share of each batch left without noise (target: no noise); grey patches are left clean at the same rate."""
    grey_share: float = 0.2
    """Share of each batch made grey (of the synthesised patches and of the pairs alike): see :func:`grey_patches`."""
    grey_correlated_share: float = 0.5
    """Share of the synthesised grey patches whose noise is spatially correlated (:func:`correlated_noise`)."""
    validation_fraction: float = 0.03
    """Held-out share of the clean photos (the same seeded split as the denoiser's training)."""
    validation_every: int = 500
    seed: int = 0
    estimator: dict[str, Any] | None = None
    """:class:`~denoiser.estimator.EstimatorConfig` fields (None: the defaults)."""

    def validate(self) -> None:
        require(self.steps >= 1 and self.batch_size >= 1, "steps and batch_size must be >= 1")
        require(self.patch >= 32 and self.patch % 16 == 0, "patch must be a multiple of 16, at least 32")
        require(self.learning_rate > 0, "learning_rate must be positive")
        require(0 <= self.clean_share < 1, "clean_share must be in [0, 1)")
        require(0 <= self.grey_share < 1, "grey_share must be in [0, 1)")
        require(0 <= self.grey_correlated_share <= 1, "grey_correlated_share must be in [0, 1]")
        require(0 <= self.validation_fraction < 1, "validation_fraction must be in [0, 1)")
        require(self.validation_every >= 1, "validation_every must be >= 1")


def quarter_targets(maps: torch.Tensor) -> torch.Tensor:
    """Full-resolution noise maps (N x 2 x H x W, 0-1 units) at the estimator's resolution: the root mean variance
    over each 4 x 4 cell."""
    return torch.sqrt(torch.nn.functional.avg_pool2d(maps * maps, SCALE))


def to_grey(rgb: Tensor) -> Tensor:
    """N x 3 x H x W RGB in 0-1 -> N x 1 x H x W Rec. 601 luma (:data:`LUMA`)."""
    weights = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * weights).sum(dim=1, keepdim=True)


def grey_photo(photo: np.ndarray) -> np.ndarray:
    """A uint8 colour photo (H x W x 3) as the grey photo photo software makes of it: H x W x 1 uint8 luma."""
    luma = photo.astype(np.float32) @ np.array(LUMA, dtype=np.float32)
    return np.clip(np.round(luma), 0, 255).astype(np.uint8)[:, :, None]


def _on_8bit(image: Tensor) -> Tensor:
    return torch.round(image * 255.0).clamp_(0.0, 255.0) / 255.0


def correlated_noise(shape: torch.Size, sigma: Tensor, blur: Tensor, generator: torch.Generator) -> Tensor:
    """Spatially correlated Gaussian noise N x C x H x W: white noise blurred by a Gaussian of std ``blur`` pixels
    (N values), scaled to standard deviation ``sigma`` (N values, the units of the result)."""
    device = sigma.device
    white = torch.randn(shape, generator=generator, device=device)
    taps = gaussian_taps(blur.to(device), math.ceil(3.0 * CORRELATION_BLUR[1]))
    blurred = separable_blur(white, taps.repeat_interleave(shape[1], dim=0))
    # A separable blur leaves white noise of std 1 with std sum(taps^2) (one factor sum(taps^2) per axis, squared).
    return blurred * per_patch(sigma / (taps * taps).sum(dim=1))


def grey_patches(clean: Tensor, mix: SynthesisMix, clean_share: float, generator: torch.Generator,
                 correlated_share: float = 0.5) -> tuple[Tensor, Tensor]:
    """Grey photos' noise for colour patches N x 3 x H x W: (input N x 3 x H x W with R = G = B, target map
    N x 2 x H x W in 0-1 units).

    Each patch is made grey (luma on 8-bit levels, like a saved grey photo) and gets its noise from
    :func:`~denoiser.synthesis.synthesize_batch` on the one grey channel, so the noise is the same in every
    channel: white (clipped, float, 16-bit, varying) or the camera pipeline's (raw noise developed in colour,
    demosaiced, averaged to grey, then maybe JPEG-compressed as a grey JPEG is). A share ``correlated_share``
    gets correlated noise instead (:func:`correlated_noise`: sigma in the mix's range up to
    :data:`CORRELATED_SIGMA_MAX`, blur in :data:`CORRELATION_BLUR`; rounded and clipped to 8 bits). The map is the
    grey noise's local standard deviation (the correlated noise's sigma) in both channels. A share ``clean_share``
    of the patches stays clean, with a zero map. Everything is drawn from ``generator``.
    """
    grey = _on_8bit(to_grey(clean))
    count, device = len(grey), grey.device
    made = synthesize_batch(grey, mix, generator)
    top = min(mix.sigma_max, CORRELATED_SIGMA_MAX)
    sigma = draw_uniform(count, min(mix.sigma_min, top), top, generator, device) / 255.0
    blur = draw_uniform(count, *CORRELATION_BLUR, generator, device)
    correlated = _on_8bit(grey + correlated_noise(grey.shape, sigma, blur, generator))
    use_correlated = per_patch(torch.rand(count, generator=generator, device=device) < correlated_share)
    quiet = per_patch(torch.rand(count, generator=generator, device=device) < clean_share)
    noisy = torch.where(quiet, grey, torch.where(use_correlated, correlated, made.noisy))
    correlated_maps = per_patch(sigma).expand_as(made.maps)
    maps = torch.where(quiet, torch.zeros_like(made.maps), torch.where(use_correlated, correlated_maps, made.maps))
    return noisy.expand(-1, 3, -1, -1).contiguous(), maps


def grey_pairs(noisy: Tensor, clean: Tensor) -> tuple[Tensor, Tensor]:
    """Real camera noise as a grey photo has it: the luma of a noisy/clean pair (N x 3 x H x W each), the noisy one
    on 8-bit levels, replicated to R = G = B; the map is the local standard deviation of the luma's noise."""
    grey_noisy = _on_8bit(to_grey(noisy))
    maps = local_noise_maps(grey_noisy - to_grey(clean))
    return grey_noisy.expand(-1, 3, -1, -1).contiguous(), maps


def estimator_batch(batch: Batch, mix: SynthesisMix, config: EstimatorTraining,
                    device: torch.device) -> tuple[Tensor, Tensor]:
    """The estimator's inputs (N x 3 x H x W) and full-resolution target maps (N x 2 x H x W, 0-1 units) for a
    :class:`~denoiser.datasets.DeviceMixSource` batch, made on ``device`` from the batch's seed.

    ``grey_share`` of the synthesised patches and of the pairs (rounded) become grey (:func:`grey_patches`,
    :func:`grey_pairs`); the rest get the colour synthesis, the first ``clean_share`` of the whole batch (rounded)
    of them left clean with a zero map. Order: grey synthesised, colour, grey pairs.
    """
    clean, pair_input, pair_target = batch["clean"], batch["pair_input"], batch["pair_target"]
    grey_count = int(round(config.grey_share * len(clean)))
    grey_pair_count = int(round(config.grey_share * len(pair_input)))
    colour_batch = {"clean": clean[grey_count:], "pair_input": pair_input[grey_pair_count:],
                    "pair_target": pair_target[grey_pair_count:], "seed": batch["seed"]}
    inputs: list[Tensor] = []
    maps: list[Tensor] = []
    if grey_count:
        generator = torch.Generator(device=device)
        generator.manual_seed((int(batch["seed"]) + _GREY_SEED_OFFSET) % 2**63)
        noisy, grey_maps = grey_patches(clean[:grey_count].to(device), mix, config.clean_share, generator,
                                        config.grey_correlated_share)
        inputs.append(noisy)
        maps.append(grey_maps)
    if len(colour_batch["clean"]) or len(colour_batch["pair_input"]):
        made = synthesize_on_device(colour_batch, mix, device)
        colour, colour_maps = made["input"], made["noise_map"]
        quiet = min(len(colour), int(round(config.clean_share * (len(clean) + len(pair_input)))))
        if quiet:  # the first patches go in clean: their noise map is zero
            colour = torch.cat([made["target"][:quiet], colour[quiet:]])
            colour_maps = torch.cat([torch.zeros_like(colour_maps[:quiet]), colour_maps[quiet:]])
        inputs.append(colour)
        maps.append(colour_maps)
    if grey_pair_count:
        noisy, grey_maps = grey_pairs(pair_input[:grey_pair_count].to(device), pair_target[:grey_pair_count].to(device))
        inputs.append(noisy)
        maps.append(grey_maps)
    return torch.cat(inputs), torch.cat(maps)


def add_correlated_noise(photo: np.ndarray, sigma: float, blur: float = VALIDATION_BLUR,
                         seed: int = 0) -> np.ndarray:
    """A uint8 photo (H x W x C) plus seeded correlated Gaussian noise (:func:`correlated_noise`, the same in every
    channel) of std ``sigma`` (0-255 units), rounded and clipped to uint8."""
    generator = torch.Generator().manual_seed(seed)
    shape = torch.Size((1, 1, *photo.shape[:2]))
    noise = correlated_noise(shape, torch.tensor([float(sigma)]), torch.tensor([float(blur)]), generator)
    noisy = photo.astype(np.float32) + noise[0, 0].numpy()[:, :, None]
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def validation_errors(estimator: NoiseMapEstimator, photos: list[np.ndarray], seed: int = 0,
                      grey: bool = True) -> dict[str, float]:
    """Mean absolute error (0-255 units) of the median luminance and colour level read on ``photos`` (uint8 clean
    colour photos) with seeded clipped Gaussian noise at each of :data:`VALIDATION_SIGMAS`, per sigma and overall.

    With ``grey``, the photos made grey (:func:`grey_photo`) count as well, with the same white noise (under
    ``error_grey_sigma_*``) and with correlated noise at :data:`CORRELATED_SIGMAS` (:func:`add_correlated_noise`,
    ``error_grey_correlated_*``); the overall error is the mean over every sigma of all."""
    errors: dict[str, float] = {}
    greys = [grey_photo(p) for p in photos] if grey else []
    kinds = [("", photos, add_gaussian_noise)]
    if grey:
        kinds += [("grey_", greys, add_gaussian_noise), ("grey_correlated_", greys, add_correlated_noise)]
    for prefix, images, add_noise in kinds:
        for sigma in CORRELATED_SIGMAS if prefix == "grey_correlated_" else VALIDATION_SIGMAS:
            values = []
            for k, photo in enumerate(images):
                noisy = photo if sigma == 0 else add_noise(photo, sigma, seed=seed + k)
                levels = estimate_map(estimator, noisy)
                values.append(abs(float(np.median(levels[:, :, 0])) - sigma))
                values.append(abs(float(np.median(levels[:, :, 1])) - sigma))
            errors[f"error_{prefix}sigma_{sigma:g}"] = float(np.mean(values))
    errors["error"] = float(np.mean(list(errors.values())))
    return errors


def _learning_rate(step: int, steps: int, base: float) -> float:
    warmup = max(1, min(100, steps // 20))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train_estimator(source: DeviceMixSource, config: EstimatorTraining, *, device: str = "auto",
                    should_stop: StopFn | None = None, start: NoiseMapEstimator | None = None) -> Iterator[Progress]:
    """Train a noise-map estimator on ``source``; yields progress, the last event's ``extra["result"]`` is
    ``(estimator, info)`` with the best (lowest validation error) weights. Cancelled when ``should_stop`` says so.

    ``start``: fine-tune these weights (a copy; its shape replaces ``config.estimator``) instead of new ones.
    """
    from denoiser.inference import resolve_device
    from denoiser.validation import split_images

    config.validate()
    target_device = resolve_device(device)
    torch.manual_seed(config.seed)
    if start is not None:
        config = dataclasses.replace(config, estimator=start.config.to_dict())
    estimator = NoiseMapEstimator(EstimatorConfig.from_dict(config.estimator or {}))
    if start is not None:
        estimator.load_state_dict(start.state_dict())
    estimator = estimator.to(target_device)
    optimizer = torch.optim.Adam(estimator.parameters(), lr=config.learning_rate)
    train_ids, held_ids = split_images(len(source), config.validation_fraction, config.seed)
    held = [from_float(source.clean[i].transpose(1, 2, 0), 8) for i in held_ids]
    batches = StepBatches(source, train_ids, config.batch_size, config.patch, config.seed)
    best: dict[str, float] | None = None
    best_state = {k: v.detach().clone() for k, v in estimator.state_dict().items()}
    history: list[dict[str, float]] = []
    started = time.monotonic()
    for step in range(config.steps):
        check_stop(should_stop, "estimator training cancelled")
        for group in optimizer.param_groups:
            group["lr"] = _learning_rate(step, config.steps, config.learning_rate)
        inputs, maps = estimator_batch(batches[step], source.mix, config, target_device)
        estimator.train()
        predicted = estimator(inputs)
        loss = torch.nn.functional.l1_loss(predicted * 255, quarter_targets(maps) * 255)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        record: dict[str, float] = {"step": step + 1, "loss": loss.item(), "seconds": time.monotonic() - started}
        if held and ((step + 1) % config.validation_every == 0 or step + 1 == config.steps):
            errors = validation_errors(estimator.eval(), held, config.seed)
            record.update(errors)
            # Only the second half's checkpoints compete: early on, while the rate is high, the weights swing, and
            # a lucky early validation (a share of one kind of noise read well) would keep a half-trained network.
            settled = 2 * (step + 1) > config.steps
            if settled and (best is None or errors["error"] < best["error"]):
                best = errors
                best_state = {k: v.detach().clone() for k, v in estimator.state_dict().items()}
        history.append(record)
        yield Progress("train", step + 1, config.steps, extra=record)
    if best is not None:
        estimator.load_state_dict(best_state)
    info = {"training": {**config.to_dict(), "seconds": round(time.monotonic() - started, 1),
                         "device": target_device.type, "mix": source.mix.to_dict(),
                         "pairs": len(source.pairs), "pair_share": source.pair_share},
            "validation": {"photos": len(held), "protocol": "clipped Gaussian, seeded", **(best or {})}}
    estimator.reads_grey = config.grey_share > 0
    yield Progress("done", config.steps, config.steps, "estimator trained",
                   extra={"result": (estimator.eval().cpu(), info), "history": history})
