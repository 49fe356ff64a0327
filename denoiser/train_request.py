"""What a training run is asked to do: the nested, versioned request, and the flat settings the loop runs on.

:class:`TrainRequest` is what a person or a program asks for, in sections (as CAREamics nests its configuration):
``model`` (a fresh network or a model to fine-tune), ``data`` (which photos, how they are held out), ``noise`` (how
clean photos are made noisy), ``schedule`` (budget, batches, learning rate, checkpoints, device) and ``output``
(where the model goes). The command line (``denoiser train``) and the app's training dialog both build one, and
:func:`denoiser.train_run.run_training` carries it out. What a request leaves open is decided here, once: the
learning rate (:func:`default_learning_rate`: gentler when fine-tuning) and the step budget
(:meth:`TrainRequest.steps`: the cap of a time-budgeted run).

:class:`TrainConfig` is the flat record the training loop (:mod:`denoiser.training`) runs on, which checkpoints
compare and model files keep; :meth:`TrainRequest.train_config` resolves a request into one. Neither imports torch,
so that ``denoiser train --help`` answers at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from denoiser.config import VersionedConfig, require
from denoiser.noise import MAX_SIGMA, NoiseMix

FRESH_LEARNING_RATE = 1e-3
"""Adam's rate for a network trained from scratch."""
FINE_TUNE_LEARNING_RATE = 2e-4
"""A gentler rate when fine-tuning: a trained model is near a good minimum already."""
DEFAULT_STEPS = 1000
"""Optimiser steps of a run that names neither steps nor minutes."""
MINUTES_STEP_CAP = 1_000_000
"""Step budget of a time-budgeted run: an upper bound only, since the loop fits its schedule to the minutes."""
DISTRIBUTED_DEVICES = ("auto", "cuda", "cpu")
"""The devices a distributed run names: each process takes the GPU of its ``LOCAL_RANK`` (auto: where CUDA is)."""
DATA_MODES = ("clean", "pairs", "noisy")
"""The ways in: clean photos + noise, noisy/clean pairs, noisy photos alone (self-supervised)."""


def default_learning_rate(fine_tuning: bool) -> float:
    """The learning rate of a run that does not name one: :data:`FINE_TUNE_LEARNING_RATE` when fine-tuning,
    else :data:`FRESH_LEARNING_RATE`."""
    return FINE_TUNE_LEARNING_RATE if fine_tuning else FRESH_LEARNING_RATE


MODES = ("synthetic", "pairs", "noisy", "device_mix")
"""The loop's ways to train (:attr:`TrainConfig.mode`)."""


@dataclass
class TrainConfig(VersionedConfig):
    """One training run. Defaults suit a CPU: small patches, a few thousand steps."""

    VERSION = 2

    mode: str = "synthetic"
    """synthetic: clean photos + noise; pairs: noisy/clean photos; noisy: noisy photos only (self-supervised);
    device_mix: clean photos + noise made on the training device (``synthesis``), plus real pairs."""
    family: str = "unet"
    """Autoencoder family to train (ignored when fine-tuning: the starting model's family is kept)."""
    model: dict[str, Any] = field(default_factory=dict)
    """The family's config fields (empty: the family's defaults)."""
    start_from: str = ""
    """The model fine-tuned (a name or path, recorded for the report); empty when training from scratch."""
    steps: int = DEFAULT_STEPS
    """Optimiser steps (with ``minutes``: an upper bound)."""
    minutes: float = 0.0
    """Wall-time budget; 0 for none. The learning-rate schedule is fitted to it after the first steps."""
    batch_size: int = 16
    patch: int = 64
    """Patch edge in pixels (self-supervised: the edge of each half-size sub-image)."""
    noise: dict[str, Any] = field(default_factory=dict)
    """NoiseMix fields for synthetic noise (empty: Gaussian, sigma 0-75)."""
    learning_rate: float = FRESH_LEARNING_RATE
    """Adam's rate after warm-up; cosine decay to 1 % of it by the end."""
    validation_fraction: float = 0.1
    """Share of the images held out (seeded split)."""
    validation_every: int = 250
    """Steps per epoch: validation, best-model tracking and early stopping happen every this many steps."""
    validation_sigma: float = 25.0
    """Gaussian sigma of the validation noise when only clean photos are given."""
    patience: int = 0
    """Epochs without improvement before stopping early; 0 never stops early."""
    checkpoint_every: int = 100
    workers: int = 1
    """Background processes building batches (0: build them in the training process)."""
    neighbour_weight: float = 1.0
    """Weight of Neighbor2Neighbor's regulariser (self-supervised mode)."""
    synthesis: dict[str, Any] = field(default_factory=dict)
    """:class:`~denoiser.synthesis.SynthesisMix` fields of a ``device_mix`` run (empty: the defaults)."""
    pair_share: float = 0.0
    """Share of each ``device_mix`` batch taken from real noisy/clean pairs."""
    grad_clip: float = 1.0
    """Largest gradient norm a step may apply (larger gradients are scaled down to it)."""
    seed: int = 0
    split_seed: int | None = None
    """Seed of the held-out split (None: ``seed``). A chain of fine-tunes that varies ``seed`` for new batches keeps
    this at the first run's seed, so that no run trains on the photos the others held out."""

    @property
    def held_out_seed(self) -> int:
        """The seed the held-out split is drawn from: ``split_seed``, else ``seed``."""
        return self.seed if self.split_seed is None else self.split_seed

    def validate(self) -> None:
        """Raise :class:`~denoiser.config.ConfigError` for a setting out of bounds or an unknown noise."""
        from denoiser.synthesis import SynthesisMix  # torch comes with it: only where a run is checked

        require(self.mode in MODES, f"mode must be one of {', '.join(MODES)}")
        require(self.steps >= 1, "steps must be >= 1")
        require(self.minutes >= 0, "minutes must be >= 0")
        require(self.batch_size >= 1, "batch_size must be >= 1")
        require(self.patch >= 16 and self.patch % 16 == 0, "patch must be a multiple of 16, at least 16")
        require(self.learning_rate > 0, "learning_rate must be positive")
        require(0 <= self.validation_fraction < 1, "validation_fraction must be in [0, 1)")
        require(self.validation_every >= 1 and self.checkpoint_every >= 1, "intervals must be >= 1")
        require(self.patience >= 0 and self.workers >= 0, "patience and workers must be >= 0")
        require(self.grad_clip > 0, "grad_clip must be positive")
        NoiseMix.from_dict(self.noise) if self.noise else None
        SynthesisMix.from_dict(self.synthesis) if self.synthesis else None
        require(0 <= self.pair_share <= 1, "pair_share must be in [0, 1]")


@dataclass
class ModelSpec(VersionedConfig):
    """The network that trains: a fresh one of ``family``, or the model ``start_from`` fine-tuned."""

    family: str = TrainConfig.family
    """Autoencoder family of a fresh network (a fine-tuned model keeps its own)."""
    widths: tuple[int, ...] = ()
    """Channel widths per level of a fresh network; empty: the family's default."""
    options: dict[str, Any] = field(default_factory=dict)
    """Other fields of a fresh network's family config (``blocks``, ``latent_channels``...); empty: its defaults."""
    start_from: str = ""
    """The model to fine-tune (``default``, a library name or a file); empty: a fresh network."""
    noise_channels: int = 0
    """1 or 2 noise inputs (2: luminance and colour noise apart; a starting model with one is widened first, a
    starting model with two cannot be narrowed); 0: the family's default, or the starting model's own."""

    def validate(self) -> None:
        """Raise :class:`~denoiser.config.ConfigError` for a malformed model choice."""
        require(bool(self.family), "model family must be named")
        require(all(isinstance(w, int) and w >= 1 for w in self.widths), "widths must be whole numbers >= 1")
        require(self.noise_channels in (0, 1, 2), "noise_channels must be 1, 2, or 0 for the model's own")
        require(not {"widths", "noise_channels"} & set(self.options),
                "widths and noise_channels are fields of their own, not options")

    def fresh_config(self) -> dict[str, Any]:
        """The family config fields of a fresh network (empty: the family's defaults)."""
        config: dict[str, Any] = {"widths": list(self.widths)} if self.widths else {}
        config.update(self.options)
        if self.noise_channels:
            config["noise_channels"] = self.noise_channels
        return config


@dataclass
class DataSpec(VersionedConfig):
    """The photos a run learns from, and how a share of them is held out to validate on."""

    mode: str = "clean"
    """One of :data:`DATA_MODES`."""
    folders: tuple[str, ...] = ()
    """clean, noisy: the one folder; pairs: NOISY and CLEAN matched by file name, or one folder holding noisy/ and
    clean/."""
    add_pairs: str = ""
    """With noise made on the training device (``noise.synthesis``): a pair set whose training part is mixed in."""
    skip_bad_pairs: bool = False
    """pairs: train on the usable pairs when some have problems (else such a set is refused)."""
    validation_fraction: float = TrainConfig.validation_fraction
    """Share of the photos held out (seeded split)."""
    seed: int = TrainConfig.seed
    split_seed: int | None = TrainConfig.split_seed
    """Seed of the held-out split (None: ``seed``)."""

    def validate(self) -> None:
        """Raise :class:`~denoiser.config.ConfigError` for an unknown way in or the wrong number of folders."""
        require(self.mode in DATA_MODES, f"data mode must be one of {', '.join(DATA_MODES)}")
        require(all(isinstance(f, str) and f for f in self.folders), "folders must be named")
        if self.mode == "pairs":
            require(len(self.folders) in (1, 2), "pairs take one folder (holding noisy/ and clean/) or two "
                                                 "(noisy, clean)")
        else:
            require(len(self.folders) == 1, f"{self.mode} photos come from one folder")


@dataclass
class NoiseSpec(VersionedConfig):
    """How clean photos are made noisy (``data.mode`` clean; ignored by the other ways in)."""

    kinds: tuple[str, ...] = NoiseMix.models
    """Noise models drawn from (:data:`~denoiser.noise.NOISE_MODELS`), made on the CPU by the batch builders."""
    sigma_max: float = MAX_SIGMA
    """Largest Gaussian sigma (0-255)."""
    quantize: bool = NoiseMix.quantize
    """Round and clip the noisy patches to 8 bits, as saved photos (and the benchmark) are."""
    quantize_probability: float = NoiseMix.quantize_probability
    """With ``quantize``: the share of patches rounded and clipped (the rest keep float noise)."""
    synthesis: dict[str, Any] | None = None
    """:class:`~denoiser.synthesis.SynthesisMix` fields: the noise is made on the training device from this mix
    instead of from ``kinds`` ({}: the default mix); None: ``kinds``."""
    pair_share: float = 0.25
    """With ``data.add_pairs``: the share of each batch taken from the pairs."""


@dataclass
class ScheduleSpec(VersionedConfig):
    """How long and how a run trains, where it keeps its checkpoint, and on what."""

    steps: int | None = None
    """Optimiser steps; None: :meth:`TrainRequest.steps` decides."""
    minutes: float = TrainConfig.minutes
    """Time budget of the whole run; 0 for none."""
    batch_size: int = TrainConfig.batch_size
    patch: int = TrainConfig.patch
    """Patch edge, a multiple of 16."""
    learning_rate: float | None = None
    """None: :func:`default_learning_rate` decides."""
    validation_every: int = TrainConfig.validation_every
    """Steps per epoch."""
    patience: int = TrainConfig.patience
    """Epochs without improvement before stopping early; 0 never stops early."""
    checkpoint: str = ""
    """Checkpoint folder (a run resumes from the checkpoint there); empty: none."""
    checkpoint_every: int = TrainConfig.checkpoint_every
    session_minutes: float = 0.0
    """End this session after this wall time, keeping the checkpoint (the same request goes on); 0: no limit."""
    device: str = "auto"
    threads: int = 0
    """CPU threads for torch; 0: all cores."""
    workers: int = TrainConfig.workers
    """Background processes building batches."""
    distributed: bool = False
    """Train as one of several processes that ``torchrun`` started (:mod:`denoiser.distributed`): ``batch_size`` is
    the batch of all of them, each trains on its share on its own GPU (``device`` auto or cuda) or on the CPU;
    ``threads`` and ``workers`` are per process. A request written before the field existed reads as false."""

    def validate(self) -> None:
        """Raise :class:`~denoiser.config.ConfigError` for a bound the loop's config does not check itself."""
        require(self.steps is None or self.steps >= 1, "steps must be >= 1, or None for the default")
        require(self.session_minutes >= 0 and self.threads >= 0, "session_minutes and threads must be >= 0")
        require(bool(self.device), "device must be named ('auto' chooses)")
        require(isinstance(self.distributed, bool), "distributed must be true or false")
        require(not self.distributed or self.device.strip().lower() in DISTRIBUTED_DEVICES,
                f"a distributed run trains on device {', '.join(DISTRIBUTED_DEVICES)} (each process on its own GPU, "
                "or on the CPU)")


@dataclass
class OutputSpec(VersionedConfig):
    """Where the trained model goes when the run ends (both empty: the caller saves it later)."""

    name: str = ""
    """A new model in the user's library."""
    file: str = ""
    """A new ``.safetensors`` file."""

    def validate(self) -> None:
        """Raise :class:`~denoiser.errors.ModelNameError` for a name the library refuses."""
        if self.name:
            from denoiser.modelstore import validate_model_name  # torch comes with it

            validate_model_name(self.name)


_SECTIONS: dict[str, type[VersionedConfig]] = {
    "model": ModelSpec, "data": DataSpec, "noise": NoiseSpec, "schedule": ScheduleSpec, "output": OutputSpec}


@dataclass
class TrainRequest(VersionedConfig):
    """One training run as asked for, in sections; each section and the whole carry a version in JSON.

    Sections may be given as dicts (as JSON has them): they are read with their own ``from_dict``.
    """

    VERSION = 1

    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    noise: NoiseSpec = field(default_factory=NoiseSpec)
    schedule: ScheduleSpec = field(default_factory=ScheduleSpec)
    output: OutputSpec = field(default_factory=OutputSpec)

    def __post_init__(self) -> None:
        for name, section in _SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, section.from_dict(value))
            else:
                require(isinstance(value, section), f"{name} must be a {section.__name__}")

    def to_dict(self) -> dict[str, Any]:
        """Every section as its own dict with its version, plus the request's ``version``."""
        return {**{name: getattr(self, name).to_dict() for name in _SECTIONS}, "version": self.VERSION}

    def validate(self) -> None:
        """Check every section, the rules between them, and the loop's bounds on the settings resolved so far."""
        for name in _SECTIONS:
            getattr(self, name).validate()
        data, noise = self.data, self.noise
        require(noise.synthesis is None or data.mode == "clean",
                "noise made on the training device (noise.synthesis) is for clean photos")
        require(not data.add_pairs or noise.synthesis is not None,
                "data.add_pairs goes with noise made on the training device (noise.synthesis)")
        require(self.schedule.session_minutes == 0 or bool(self.schedule.checkpoint),
                "schedule.session_minutes needs schedule.checkpoint: the folder the next session goes on from")
        mode = self.loop_mode()
        mix = NoiseMix(models=tuple(noise.kinds), sigma_max=noise.sigma_max, quantize=noise.quantize,
                       quantize_probability=noise.quantize_probability)
        self.train_config(
            mode=mode, family=self.model.family, model={} if self.fine_tuning else self.model.fresh_config(),
            noise=mix.to_dict() if mode == "synthetic" else {},
            synthesis=(noise.synthesis or {}) if mode == "device_mix" else {},
            pair_share=noise.pair_share if data.add_pairs else 0.0,
        ).validate()

    @property
    def fine_tuning(self) -> bool:
        """Whether the run starts from a trained model."""
        return bool(self.model.start_from)

    def loop_mode(self) -> str:
        """The loop's :attr:`TrainConfig.mode` for this request's data and noise."""
        if self.data.mode == "clean":
            return "synthetic" if self.noise.synthesis is None else "device_mix"
        return self.data.mode

    def learning_rate(self) -> float:
        """The rate the run uses: the schedule's, else :func:`default_learning_rate` (the one place it is decided)."""
        return self.schedule.learning_rate or default_learning_rate(self.fine_tuning)

    def steps(self) -> int:
        """The step budget: the schedule's steps, else :data:`MINUTES_STEP_CAP` for a time-budgeted run (the loop
        fits its schedule to the minutes), else :data:`DEFAULT_STEPS` (the one place it is decided)."""
        return self.schedule.steps or (MINUTES_STEP_CAP if self.schedule.minutes else DEFAULT_STEPS)

    def train_config(self, *, mode: str, family: str, model: dict[str, Any], noise: dict[str, Any] | None = None,
                     synthesis: dict[str, Any] | None = None, pair_share: float = 0.0) -> TrainConfig:
        """The loop's settings for this request, given what only the run knows: the ``mode`` of its source, the
        network's ``family`` and ``model`` config (a starting model's own when fine-tuning), and the source's
        ``noise`` (:class:`~denoiser.noise.NoiseMix` fields), ``synthesis`` mix and ``pair_share``."""
        schedule, data = self.schedule, self.data
        return TrainConfig(
            mode=mode, family=family, model=model, start_from=self.model.start_from, steps=self.steps(),
            minutes=schedule.minutes, batch_size=schedule.batch_size, patch=schedule.patch, noise=noise or {},
            synthesis=synthesis or {}, pair_share=pair_share, learning_rate=self.learning_rate(),
            validation_fraction=data.validation_fraction, validation_every=schedule.validation_every,
            patience=schedule.patience, checkpoint_every=schedule.checkpoint_every, workers=schedule.workers,
            seed=data.seed, split_seed=data.split_seed,
        )
