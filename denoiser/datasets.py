"""Where training batches come from: clean photos + synthetic noise, clean/noisy pairs, or noisy photos alone.

Every source builds the batch of step ``s`` from ``numpy.random.default_rng([seed, s])``, so a batch depends
only on the seed and the step: a resumed run sees exactly the batches it would have seen, and batches can be
built ahead in a background worker (:class:`StepBatches` with a ``DataLoader``) without changing results.

Self-supervised training (noisy photos only) uses Neighbor2Neighbor (Huang et al., CVPR 2021): each 2x2 cell
of a noisy patch gives one pixel to each of two half-size sub-images; they show the same scene with
independent noise, so one is a training target for the other. Unlike Noise2Void's blind-spot masking it
trains a normal network on every pixel, which converges faster on a CPU; its regulariser corrects the
small misalignment between the two sub-images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as tvf

from denoiser.errors import DenoiserError
from denoiser.io import to_float
from denoiser.noise import MAX_SIGMA, NoiseMix, synthesize
from denoiser.noise_estimation import estimate_noise
from denoiser.noise_maps import local_noise_maps
from denoiser.synthesis import SynthesisMix, synthesize_batch

Batch = dict[str, torch.Tensor]


def _augment(stack: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Random 90-degree turn and horizontal flip (torchvision) of a C x H x W stack; one draw for all channels."""
    tensor = torch.from_numpy(np.ascontiguousarray(stack))
    turns = int(rng.integers(4))
    if turns:
        tensor = torch.rot90(tensor, turns, dims=(1, 2))
    if rng.integers(2):
        tensor = tvf.horizontal_flip(tensor)
    return tensor


def _crop(images: list[np.ndarray], index: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``size`` x ``size`` window (smaller if the image is) of image ``index``, stacked C x H x W."""
    image = images[index]
    height, width = image.shape[1:]
    size = min(size, height, width)
    top, left = int(rng.integers(height - size + 1)), int(rng.integers(width - size + 1))
    return image[:, top : top + size, left : left + size]


def to_chw_float(image: np.ndarray) -> np.ndarray:
    """H x W x C uint8/uint16 (or float 0-1) to C x H x W float32 in 0-1."""
    return np.ascontiguousarray(to_float(image, copy=True).transpose(2, 0, 1))


class SyntheticSource:
    """Clean photos; each batch gets fresh noise from a :class:`~denoiser.noise.NoiseMix`."""

    kind = "synthetic"

    def __init__(self, clean: list[np.ndarray], mix: NoiseMix) -> None:
        self.clean = [to_chw_float(image) for image in clean]
        self.mix = mix

    def __len__(self) -> int:
        return len(self.clean)

    def batch(self, indices: list[int], size: int, patch: int, rng: np.random.Generator) -> Batch:
        """``size`` noisy/clean patches from the images in ``indices``."""
        patches = [_augment(_crop(self.clean, indices[rng.integers(len(indices))], patch, rng), rng)
                   for _ in range(size)]
        clean = _same_size(patches)
        noisy, noise_map = synthesize(clean.numpy(), self.mix, rng)
        return {"input": torch.from_numpy(noisy), "target": clean, "noise_map": torch.from_numpy(noise_map)}


class PairSource:
    """Aligned noisy/clean photos. The noise level given to the model is each noisy photo's estimate,
    as the app's "auto" strength will give it at inference."""

    kind = "pairs"

    def __init__(self, noisy: list[np.ndarray], clean: list[np.ndarray]) -> None:
        self.stacks = [np.concatenate([to_chw_float(n), to_chw_float(c)]) for n, c in zip(noisy, clean, strict=True)]
        self.sigmas = [min(MAX_SIGMA, estimate_noise(n)) / 255.0 for n in noisy]
        self.channels = noisy[0].shape[2]

    def __len__(self) -> int:
        return len(self.stacks)

    def batch(self, indices: list[int], size: int, patch: int, rng: np.random.Generator) -> Batch:
        """``size`` aligned noisy/clean patches (the same crop and turn for both)."""
        chosen = [indices[rng.integers(len(indices))] for _ in range(size)]
        stacks = _same_size([_augment(_crop(self.stacks, i, patch, rng), rng) for i in chosen])
        c = self.channels
        sigma = torch.tensor([self.sigmas[i] for i in chosen], dtype=torch.float32).view(-1, 1, 1, 1)
        noise_map = sigma.expand(-1, 1, *stacks.shape[2:]).contiguous()
        return {"input": stacks[:, :c], "target": stacks[:, c:], "noise_map": noise_map}


class DeviceMixSource:
    """Clean photos whose noise is made on the training device (:mod:`denoiser.synthesis`), plus real pairs.

    A batch carries only clean patches (and, for ``pair_share`` of it, real noisy/clean patch pairs) and a seed;
    :func:`synthesize_on_device` turns it into the model's input, target and luminance/colour noise maps where the
    model trains, so a GPU is not left waiting on batches built by CPU workers. The pairs must already be the
    training part of their set: validation uses held-out clean photos only (as the synthetic source does).
    """

    kind = "device_mix"

    def __init__(self, clean: list[np.ndarray], mix: SynthesisMix, pair_noisy: list[np.ndarray] | None = None,
                 pair_clean: list[np.ndarray] | None = None, pair_share: float = 0.0) -> None:
        mix.validate()
        if not 0 <= pair_share <= 1:
            raise DenoiserError(f"pair_share must be in [0, 1], not {pair_share}")
        self.clean = [to_chw_float(image) for image in clean]
        self.mix = mix
        self.pairs = [np.concatenate([to_chw_float(n), to_chw_float(c)])
                      for n, c in zip(pair_noisy or [], pair_clean or [], strict=True)]
        self.pair_share = pair_share if self.pairs else 0.0
        self.channels = self.clean[0].shape[0] if self.clean else 3

    def __len__(self) -> int:
        return len(self.clean)

    def batch(self, indices: list[int], size: int, patch: int, rng: np.random.Generator) -> Batch:
        """Clean patches from the images in ``indices``, pair patches, and the seed of the device's noise."""
        pair_count = int(round(size * self.pair_share))
        clean = [_augment(_crop(self.clean, indices[rng.integers(len(indices))], patch, rng), rng)
                 for _ in range(size - pair_count)]
        pairs = [_augment(_crop(self.pairs, int(rng.integers(len(self.pairs))), patch, rng), rng)
                 for _ in range(pair_count)]
        height = min(p.shape[1] for p in clean + pairs)
        width = min(p.shape[2] for p in clean + pairs)
        c = self.channels
        empty = torch.zeros((0, c, height // SIZE_STEP * SIZE_STEP, width // SIZE_STEP * SIZE_STEP))
        stacked_clean = _same_size(clean, height, width) if clean else empty
        stacked_pairs = _same_size(pairs, height, width) if pairs else torch.cat([empty, empty], dim=1)
        return {"clean": stacked_clean, "pair_input": stacked_pairs[:, :c], "pair_target": stacked_pairs[:, c:],
                "seed": torch.tensor(int(rng.integers(2**62)), dtype=torch.int64)}


def synthesize_on_device(batch: Batch, mix: SynthesisMix, device: torch.device) -> Batch:
    """The model's ``input``, ``target`` and ``noise_map`` (N x 2: luminance, colour) for a
    :class:`DeviceMixSource` batch, made on ``device`` from the batch's seed."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(batch["seed"]))
    inputs, targets, maps = [], [], []
    clean = batch["clean"].to(device, non_blocking=True)
    if len(clean):
        made = synthesize_batch(clean, mix, generator)
        inputs.append(made.noisy)
        targets.append(made.target)
        maps.append(made.maps)
    if len(batch["pair_input"]):
        noisy, target = batch["pair_input"].to(device), batch["pair_target"].to(device)
        inputs.append(noisy)
        targets.append(target)
        maps.append(local_noise_maps(noisy - target))
    return {"input": torch.cat(inputs), "target": torch.cat(targets), "noise_map": torch.cat(maps)}


NEIGHBOUR_PAIRS = np.array([[0, 1], [0, 2], [1, 0], [1, 3], [2, 0], [2, 3], [3, 1], [3, 2]])
"""Ordered pairs of adjacent positions in a 2x2 cell numbered 0 1 / 2 3."""


def draw_neighbours(count: int, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Neighbor2Neighbor's sampler: for each 2x2 cell of ``count`` images of height x width, two different
    adjacent positions. Shape count x height/2 x width/2 x 2."""
    return NEIGHBOUR_PAIRS[rng.integers(len(NEIGHBOUR_PAIRS), size=(count, height // 2, width // 2))]


def subsample_with(images: torch.Tensor, choice: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two half-size sub-images that ``choice`` (from :func:`draw_neighbours`) picks out of ``images``.

    For pixel-independent noise the two show the same scene with independent noise.
    """
    n, c, h, w = images.shape
    h2, w2 = h // 2, w // 2
    cells = images[:, :, : 2 * h2, : 2 * w2].reshape(n, c, h2, 2, w2, 2).permute(0, 1, 2, 4, 3, 5)
    cells = cells.reshape(n, c, h2, w2, 4)
    picks = torch.as_tensor(choice, device=images.device).long()
    first = picks[..., 0].view(n, 1, h2, w2, 1).expand(n, c, h2, w2, 1)
    second = picks[..., 1].view(n, 1, h2, w2, 1).expand(n, c, h2, w2, 1)
    return cells.gather(4, first).squeeze(4), cells.gather(4, second).squeeze(4)


class NoisyOnlySource:
    """Noisy photos without clean versions, for self-supervised (Neighbor2Neighbor) training."""

    kind = "noisy"

    def __init__(self, noisy: list[np.ndarray]) -> None:
        self.noisy = [to_chw_float(image) for image in noisy]
        self.sigmas = [min(MAX_SIGMA, estimate_noise(image)) / 255.0 for image in noisy]

    def __len__(self) -> int:
        return len(self.noisy)

    def batch(self, indices: list[int], size: int, patch: int, rng: np.random.Generator) -> Batch:
        """``size`` noisy patches of twice ``patch`` (the sub-images are ``patch`` square) and their sampler."""
        chosen = [indices[rng.integers(len(indices))] for _ in range(size)]
        noisy = _same_size([_augment(_crop(self.noisy, i, 2 * patch, rng), rng) for i in chosen])
        choice = draw_neighbours(noisy.shape[0], noisy.shape[2], noisy.shape[3], rng)
        sigma = torch.tensor([self.sigmas[i] for i in chosen], dtype=torch.float32).view(-1, 1, 1, 1)
        noise_map = sigma.expand(-1, 1, noisy.shape[2] // 2, noisy.shape[3] // 2).contiguous()
        return {"input": noisy, "choice": torch.from_numpy(choice), "noise_map": noise_map}


SIZE_STEP = 16
"""Patch sides are cut to a multiple of this, which every family's size multiple divides (up to 4 halvings)."""


def _same_size(patches: list[torch.Tensor], height: int | None = None, width: int | None = None) -> torch.Tensor:
    """Stack patches, cropping all to the smallest (images smaller than the patch give smaller crops), or to
    ``height`` x ``width``, rounded down to a multiple of :data:`SIZE_STEP`."""
    height = height or min(p.shape[1] for p in patches)
    width = width or min(p.shape[2] for p in patches)
    if min(height, width) < SIZE_STEP:
        raise DenoiserError(f"training images must be at least {SIZE_STEP} x {SIZE_STEP} pixels")
    height, width = height // SIZE_STEP * SIZE_STEP, width // SIZE_STEP * SIZE_STEP
    return torch.stack([p[:, :height, :width] for p in patches])


class StepBatches(torch.utils.data.Dataset):
    """Item ``s`` is the batch of step ``s``; a ``DataLoader`` over it builds batches in background workers."""

    def __init__(self, source: object, indices: list[int], batch_size: int, patch: int, seed: int) -> None:
        self.source, self.indices = source, indices
        self.batch_size, self.patch, self.seed = batch_size, patch, seed

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        return self.source.batch(self.indices, self.batch_size, self.patch, rng)  # type: ignore[attr-defined]


# ----- pairs on disk -------------------------------------------------------------------------------------------


@dataclass
class PairReport:
    """What matching two folders of noisy and clean photos found, before any training starts."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    missing_clean: list[Path] = field(default_factory=list)
    missing_noisy: list[Path] = field(default_factory=list)
    size_mismatch: list[tuple[Path, Path, str]] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every file found its partner and every pair can be used."""
        return not (self.missing_clean or self.missing_noisy or self.size_mismatch or self.unreadable)

    def problems(self) -> list[str]:
        """One line per problem, naming the file(s)."""
        lines = [f"{p}: no clean partner (no file with the same name in the clean folder)" for p in self.missing_clean]
        lines += [f"{p}: no noisy partner (no file with the same name in the noisy folder)" for p in self.missing_noisy]
        lines += [f"{n} and {c}: sizes differ ({why})" for n, c, why in self.size_mismatch]
        lines += [f"{p}: {why}" for p, why in self.unreadable]
        return lines

    def summary(self) -> str:
        """One line: how many pairs are usable, how many problems."""
        problems = len(self.problems())
        return f"{len(self.pairs)} usable pairs, {problems} problem{'s' if problems != 1 else ''}"


def resolve_pair_folders(noisy: str | Path, clean: str | Path | None) -> tuple[Path, Path]:
    """Two folders, or one folder holding ``noisy/`` and ``clean/``."""
    noisy = Path(noisy)
    if clean is not None:
        return noisy, Path(clean)
    if (noisy / "noisy").is_dir() and (noisy / "clean").is_dir():
        return noisy / "noisy", noisy / "clean"
    raise DenoiserError(f"{noisy}: give a clean folder too, or a folder with noisy/ and clean/ inside")


def match_pairs(noisy_dir: str | Path, clean_dir: str | Path | None = None) -> PairReport:
    """Match photos by file name (extension ignored) and check that each pair is readable and equal in size."""
    from denoiser.io import find_images, read_image

    noisy_dir, clean_dir = resolve_pair_folders(noisy_dir, clean_dir)
    for folder in (noisy_dir, clean_dir):
        if not folder.is_dir():
            raise DenoiserError(f"{folder}: not a folder")
    noisy = {p.relative_to(noisy_dir).with_suffix("").as_posix(): p for p in find_images([noisy_dir])}
    clean = {p.relative_to(clean_dir).with_suffix("").as_posix(): p for p in find_images([clean_dir])}
    report = PairReport()
    report.missing_clean = [noisy[k] for k in sorted(set(noisy) - set(clean))]
    report.missing_noisy = [clean[k] for k in sorted(set(clean) - set(noisy))]
    for key in sorted(set(noisy) & set(clean)):
        sizes = []
        for path in (noisy[key], clean[key]):
            try:
                image = read_image(path)
                sizes.append((image.width, image.height, image.color_pixels().shape[2]))
            except DenoiserError as err:
                report.unreadable.append((path, getattr(err, "problem", str(err))))
        if len(sizes) < 2:
            continue
        if sizes[0] != sizes[1]:
            why = f"{sizes[0][0]}x{sizes[0][1]}x{sizes[0][2]} vs {sizes[1][0]}x{sizes[1][1]}x{sizes[1][2]}"
            report.size_mismatch.append((noisy[key], clean[key], why))
            continue
        report.pairs.append((noisy[key], clean[key]))
    return report


def with_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """H x W or H x W x C pixels as H x W x ``channels`` (grey repeated to colour, colour averaged to grey)."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if channels == 3 and pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    if channels == 1 and pixels.shape[2] == 3:
        return np.round(pixels.mean(axis=2, keepdims=True)).astype(pixels.dtype)
    return pixels


def load_image_for_training(path: Path, channels: int = 3) -> np.ndarray:
    """A photo's colour as uint8/uint16 H x W x ``channels`` (grey repeated to colour or colour averaged)."""
    from denoiser.io import read_image

    return with_channels(read_image(path).color_pixels(), channels)


def load_images(folder: str | Path, channels: int = 3) -> tuple[list[np.ndarray], list[Path], list[str]]:
    """Every image under ``folder``; returns the images, their paths and a line per unreadable file."""
    from denoiser.io import find_images

    images, paths, problems = [], [], []
    for path in find_images([folder]):
        try:
            images.append(load_image_for_training(path, channels))
            paths.append(path)
        except DenoiserError as err:
            problems.append(str(err))
    if not images:
        raise DenoiserError(f"{folder}: no readable images to train on")
    return images, paths, problems


def load_pair_images(report: PairReport, channels: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The usable pairs of a report as uint8/uint16 H x W x channels arrays."""
    noisy = [load_image_for_training(n, channels) for n, _ in report.pairs]
    clean = [load_image_for_training(c, channels) for _, c in report.pairs]
    return noisy, clean
