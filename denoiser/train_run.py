"""One training run carried out from a :class:`~denoiser.train_request.TrainRequest`: the use case that the
command line (``denoiser train``) and the app's training dialog share.

:func:`run_training` checks where the model goes, resolves the starting model (widening it to take luminance and
colour noise apart when asked), reads the photos into the engine's source (:func:`build_source`), resolves the
request into the loop's :class:`~denoiser.train_request.TrainConfig` (learning rate and step budget by the
request's rules), runs :func:`~denoiser.training.train` to the end and saves the model where the request says.
Like every long job it never prints: it reports :class:`~denoiser.progress.Progress` (``load`` while it reads,
``start`` once the run is set up, then the loop's own events) and polls ``should_stop``. A request with
``schedule.distributed`` runs as one rank of a group ``torchrun`` started (:mod:`denoiser.distributed`): every rank
reads the photos and trains on its share; rank 0 alone saves the model.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from denoiser.datasets import (
    DeviceMixSource,
    NoisyOnlySource,
    PairReport,
    PairSource,
    SyntheticSource,
    load_images,
    load_pair_images,
    match_pairs,
    with_channels,
)
from denoiser.distributed import World, process_group, processes_on_this_machine, shard_bounds
from denoiser.errors import Cancelled, DenoiserError
from denoiser.modelfile import save_model
from denoiser.models import Autoencoder
from denoiser.models.widen import with_colour_noise_input
from denoiser.modelstore import load_model, new_model_path, save_to_library
from denoiser.noise import NoiseMix
from denoiser.progress import Progress, ProgressFn, StopFn, check_stop, ignore_progress
from denoiser.synthesis import SynthesisMix
from denoiser.train_request import DataSpec, ModelSpec, OutputSpec, TrainConfig, TrainRequest
from denoiser.training import TrainingResult, train, training_info
from denoiser.validation import split_warning, trained_split_seed


class SessionOver(Cancelled):
    """The request's ``session_minutes`` ran out: the checkpoint is saved, and the same request goes on from it."""


@dataclass
class TrainOutcome:
    """A finished run: the loop's result, the settings it ran with, what it trained on, and where it was saved."""

    result: TrainingResult
    config: TrainConfig
    trained_on: str
    saved: list[Path] = field(default_factory=list)
    """Where :func:`run_training` saved the model (the request's ``output``); empty when the caller saves it."""

    def save(self, name: str = "", file: str = "", command: str = "") -> list[Path]:
        """Save the model into the library as ``name`` and/or to the new file ``file``, each with its
        :func:`~denoiser.training.training_info` (``command``: the command line that trained it); returns the
        paths written. A library name or a file that exists already is never replaced: that raises."""
        saved = []
        if name:
            info = training_info(self.result, self.config, self.trained_on, command, name)
            saved.append(save_to_library(self.result.model, name, info))
        if file:
            info = training_info(self.result, self.config, self.trained_on, command, Path(file).stem)
            saved.append(save_model(self.result.model, file, info))
        return saved


def check_destination(output: OutputSpec) -> None:
    """Raise now, before any training, when ``output`` names a library model that exists or an invalid name, or a
    file that exists: nothing is overwritten, and no run is thrown away at its end."""
    if output.name:
        new_model_path(output.name)
    if output.file and Path(output.file).exists():
        raise DenoiserError(f"{output.file} already exists; it is not overwritten")


def starting_model(spec: ModelSpec) -> tuple[Autoencoder | None, str, dict[str, Any], dict[str, Any]]:
    """The model to fine-tune (None for a fresh network), the family and the family config the run trains, and
    the starting model's saved training settings (empty for a fresh network)."""
    if not spec.start_from:
        return None, spec.family, spec.fresh_config(), {}
    model, info = load_model(spec.start_from)
    if spec.noise_channels == 2 and model.config.noise_channels == 1:
        model = with_colour_noise_input(model)
    elif spec.noise_channels == 1 and model.config.noise_channels == 2:
        raise DenoiserError(f"{spec.start_from} takes luminance and colour noise apart; it cannot be narrowed")
    return model, model.family, model.config.to_dict(), dict(info.training or {})


def check_pairs(data: DataSpec, on_progress: ProgressFn = ignore_progress,
                go_on: Callable[[PairReport], None] | None = None) -> PairReport:
    """Match the request's pair folders and report them (a ``pairs`` event, the report in ``extra["report"]``).

    A set without a usable pair is refused; one with problems too, unless ``data.skip_bad_pairs`` says to skip
    them or ``go_on(report)`` returns (it raises to stop: the caller may ask its user).
    """
    report = match_pairs(data.folders[0], data.folders[1] if len(data.folders) == 2 else None)
    on_progress(Progress("pairs", 0, 0, report.summary(), extra={"report": report}))
    if not report.pairs:
        raise DenoiserError("no usable pairs to train on")
    if not report.ok and not data.skip_bad_pairs:
        if go_on is None:
            raise DenoiserError(f"{report.summary()}: fix the pairs, or skip the problem ones (data.skip_bad_pairs)")
        go_on(report)
    return report


def build_source(request: TrainRequest, channels: int = 3, pairs: PairReport | None = None
                 ) -> tuple[Any, str, list[str]]:
    """The request's training source, read from disk, with a line saying what it trains on and one line per
    unreadable file that was skipped.

    ``pairs`` is the checked report of a pair run (its usable pairs are trained on); without one the request's
    folders are matched here (:func:`check_pairs`).
    """
    data, noise = request.data, request.noise
    folder = data.folders[0]
    if data.mode == "pairs":
        report = pairs if pairs is not None else check_pairs(data)
        if not report.pairs:
            raise DenoiserError("no usable pairs to train on")
        noisy, clean = load_pair_images(report, channels)
        return PairSource(noisy, clean), f"{len(report.pairs)} noisy/clean pairs from {' and '.join(data.folders)}", []
    if noise.synthesis is not None:
        return _device_mix_source(request, channels)
    images, paths, problems = load_images(folder, channels)
    if data.mode == "clean":
        mix = NoiseMix(models=tuple(noise.kinds), sigma_max=noise.sigma_max, quantize=noise.quantize,
                       quantize_probability=noise.quantize_probability)
        mix.validate()
        share = "" if noise.quantize_probability >= 1 else f" for {noise.quantize_probability:.0%} of patches"
        saved = f", rounded and clipped to 8 bits{share}" if noise.quantize else ""
        trained_on = f"{len(paths)} clean photos from {folder} + synthetic noise ({', '.join(noise.kinds)}{saved})"
        return SyntheticSource(images, mix), trained_on, problems
    trained_on = f"{len(paths)} noisy photos from {folder} (self-supervised, Neighbor2Neighbor)"
    return NoisyOnlySource(images), trained_on, problems


def _device_mix_source(request: TrainRequest, channels: int) -> tuple[Any, str, list[str]]:
    from denoiser.bench_sets import load_pairs

    data = request.data
    folder = data.folders[0]
    mix = SynthesisMix.from_dict(request.noise.synthesis or {})
    clean, paths, problems = load_images(folder, channels)
    noisy_pairs, clean_pairs = [], []
    if data.add_pairs:
        for _, noisy, reference in load_pairs(data.add_pairs, part="training"):
            noisy_pairs.append(with_channels(noisy, channels))
            clean_pairs.append(with_channels(reference, channels))
    source = DeviceMixSource(clean, mix, noisy_pairs, clean_pairs, request.noise.pair_share if data.add_pairs else 0.0)
    kinds = ", ".join(f"{k} {w:g}" for k, w in mix.weights.items() if w > 0)
    trained_on = f"{len(paths)} clean photos from {folder} + noise made on the training device ({kinds})"
    if data.add_pairs:
        trained_on += (f" + the training part of {data.add_pairs} ({len(noisy_pairs)} pairs, "
                       f"{source.pair_share:.0%} of each batch)")
    return source, trained_on, problems


def run_training(request: TrainRequest, should_stop: StopFn | None = None, on_progress: ProgressFn = ignore_progress,
                 *, pairs: PairReport | None = None, go_on: Callable[[PairReport], None] | None = None,
                 command: str = "") -> TrainOutcome:
    """Carry out ``request`` from the first check to the saved model; returns the outcome.

    Reports ``load`` events while it loads (a ``skipped`` list in ``extra`` when unreadable photos were left
    out), one ``start`` event once the run is set up (its message says what trains on what; ``total`` is the
    step budget, ``extra["config"]`` the loop's settings), then every event of :func:`~denoiser.training.train`.
    ``pairs``: the caller's checked pair report; without one a pair run matches its folders first
    (:func:`check_pairs`, with ``go_on``). ``command``: the command line recorded in the saved model's description.
    A stop request raises :class:`~denoiser.errors.Cancelled` (after saving a checkpoint when the request keeps
    one); the end of ``schedule.session_minutes`` raises :class:`SessionOver`.

    With ``schedule.distributed`` the process takes its place in the group ``torchrun`` started
    (:func:`~denoiser.distributed.process_group`); without ``torchrun`` that raises, saying how to start it. Every
    rank reports its events; rank 0 alone checks where the model goes and saves it.
    """
    request.validate()
    if not request.schedule.distributed:
        return _run(request, should_stop, on_progress, pairs, go_on, command, None)
    with process_group(request.schedule.device) as world:
        return _run(request, should_stop, on_progress, pairs, go_on, command, world)


def _threads_per_process() -> int:
    """CPU threads for each of the training processes that share this machine's cores (``torchrun`` sets
    ``OMP_NUM_THREADS=1``, which would leave most cores idle)."""
    return max(1, (os.cpu_count() or 1) // processes_on_this_machine())


def _run(request: TrainRequest, should_stop: StopFn | None, on_progress: ProgressFn, pairs: PairReport | None,
         go_on: Callable[[PairReport], None] | None, command: str, world: World | None) -> TrainOutcome:
    """:func:`run_training` once the process knows its place (``world``: a rank of a distributed run)."""
    schedule = request.schedule
    session_ends = time.monotonic() + schedule.session_minutes * 60 if schedule.session_minutes > 0 else math.inf
    if world is None or world.is_main:  # the model goes where rank 0 is (another machine has its own library)
        check_destination(request.output)
    if world is not None:
        shard_bounds(schedule.batch_size, world.rank, world.size)  # refused before the photos are read
    if schedule.threads:
        torch.set_num_threads(schedule.threads)
    elif world is not None and world.device.type == "cpu":
        torch.set_num_threads(_threads_per_process())
    start_from = request.model.start_from
    if start_from:
        on_progress(Progress("load", 0, 0, f"Loading {start_from}..."))
    start_model, family, model_config, trained = starting_model(request.model)
    if request.data.mode == "pairs" and pairs is None:
        pairs = check_pairs(request.data, on_progress, go_on)
    check_stop(should_stop, "training cancelled")
    on_progress(Progress("load", 0, 0, "Reading the photos..."))
    channels = 3 if start_model is None else start_model.config.channels
    source, trained_on, problems = build_source(request, channels, pairs)
    if problems:
        on_progress(Progress("load", 0, 0, f"skipped {len(problems)} unreadable file(s), e.g. {problems[0]}",
                             extra={"skipped": problems}))
    check_stop(should_stop, "training cancelled")
    config = request.train_config(
        mode=source.kind, family=family, model=model_config,
        noise=source.mix.to_dict() if source.kind == "synthetic" else {},
        synthesis=source.mix.to_dict() if source.kind == "device_mix" else {},
        pair_share=source.pair_share if source.kind == "device_mix" else 0.0,
    )
    inherited = trained_split_seed(trained) if start_from and request.data.split_seed is None else None
    if inherited is not None and inherited != config.held_out_seed and config.validation_fraction > 0:
        # Unless told otherwise, hold out what the starting model held out: another seed's split could hold photos
        # it trained on, and the run's validation figures would flatter it.
        config = replace(config, split_seed=inherited)
        note = f"holding out the photos {start_from} held out (the split of seed {inherited})"
        on_progress(Progress("load", 0, 0, note, extra={"note": note}))
    warning = split_warning(trained, config, start_from) if start_from else None
    if warning:
        on_progress(Progress("load", 0, 0, f"warning: {warning}", extra={"warning": warning}))
    on_progress(Progress("start", 0, config.steps, f"training a {family} model on {trained_on}"
                         + (f", starting from {start_from}" if start_from else ""), extra={"config": config}))

    def asked_to_stop() -> bool:
        return should_stop is not None and should_stop()

    result: TrainingResult | None = None
    try:
        for event in train(source, config, start_model=start_model, checkpoint_dir=schedule.checkpoint or None,
                           should_stop=lambda: asked_to_stop() or time.monotonic() >= session_ends,
                           device=schedule.device, world=world):
            if event.stage == "done":
                result = event.extra["result"]
            on_progress(event)
    except Cancelled as err:
        asked, over = asked_to_stop(), time.monotonic() >= session_ends
        if world is not None:  # every rank stopped at the same step: they agree on why
            asked, over = world.any(asked), world.any(over)
        if over and not asked:
            raise SessionOver(f"this session's {schedule.session_minutes:g} minutes are over; the checkpoint in "
                              f"{schedule.checkpoint} goes on") from err
        raise
    if result is None:  # pragma: no cover - train() always ends with "done" unless it raises
        raise DenoiserError("training ended without a result")
    outcome = TrainOutcome(result, config, trained_on)
    if world is None or world.is_main:
        outcome.saved = outcome.save(request.output.name, request.output.file, command)
    return outcome
