"""The training loop: any autoencoder family on clean photos + synthetic noise, clean/noisy pairs, or noisy photos.

The loop is a generator of :class:`~denoiser.progress.Progress` events that polls ``should_stop`` every step.
Batches are built from the seed and the step number alone (see :mod:`denoiser.datasets`), in a background
worker when ``workers`` > 0; the checkpoint (:mod:`denoiser.checkpoints`) holds the weights, the optimiser, the
best weights so far, the history and torch's random state, so a run killed at any moment resumes with the same
results. The state records each training session (process) that contributed: device, steps, wall seconds; the
model's ``training_info`` sums them per device kind (``device_minutes``).

Validation (:mod:`denoiser.validation`) runs every "epoch" (``validation_every`` steps) on a seeded held-out
split of the user's data. The best model is kept; ``patience`` epochs without improvement stop the run early;
``minutes`` caps the wall time, the learning-rate schedule fitted to it. What a run is asked to do, and how a
request becomes a :class:`~denoiser.train_request.TrainConfig`, is :mod:`denoiser.train_request`'s job.

Given a :class:`~denoiser.distributed.World`, the loop is one of several processes training together
(``torchrun``): each trains on its share of every step's batch (:meth:`~denoiser.distributed.World.shard`), the
gradients are averaged, and rank 0 alone validates, decides when the run ends and writes checkpoints, which hold
what a single process's would: a run resumes with any number of processes.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from denoiser.checkpoints import (
    checkpoint_file_names,
    device_minutes,
    load_checkpoint,
    memory_format_of,
    save_checkpoint,
)
from denoiser.datasets import (
    NoisyOnlySource,
    PairSource,
    StepBatches,
    SyntheticSource,
    subsample_with,
    synthesize_on_device,
)
from denoiser.distributed import World, shard_bounds
from denoiser.errors import Cancelled, DenoiserError
from denoiser.machine import cpu_description
from denoiser.modelfile import ModelInfo
from denoiser.models import Autoencoder, create_model
from denoiser.progress import Progress, StopFn
from denoiser.synthesis import SynthesisMix
from denoiser.train_request import TrainConfig
from denoiser.validation import Validator, run_split, validation_protocols


@dataclass
class TrainingResult:
    """What a finished run hands back."""

    model: Autoencoder
    metric: str
    best: float | None
    start: float | None
    steps: int
    seconds: float
    history: list[dict[str, float]]
    stopped_early: bool
    runs: list[dict[str, Any]] = field(default_factory=list)
    """The sessions (processes) that trained it, with a resumed run's earlier ones: see ``_State.runs``."""
    start_kept: bool = False
    """A fine-tune in which no validated step beat the starting model: ``model`` is its weights, unchanged."""

    @property
    def gain(self) -> float | None:
        """Improvement of the best model over the starting one on the validation split (dB or loss)."""
        if self.best is None or self.start is None:
            return None
        return self.best - self.start if self.metric == "val_psnr" else self.start - self.best


def learning_rate_at(step: int, horizon: int, base: float) -> float:
    """Linear warm-up over the first 5 % (at most 100 steps), then cosine decay to 1 % at ``horizon``."""
    warmup = max(1, min(100, horizon // 20))
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, horizon - warmup))
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class _State:
    """What a run carries from one step to the next, and from one session to the next through the checkpoint."""

    step: int = 0
    horizon: int = 0
    elapsed: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)
    best: float | None = None
    start: float | None = None
    bad_epochs: int = 0
    skipped_steps: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    """One record per training session (process) that did steps: ``device`` (cuda, cpu...), ``device_name``,
    ``steps`` and wall ``seconds`` in that session, and when it ``started`` (ISO time, UTC); a distributed
    session's record also says how many ``processes`` trained (rank 0's device and time stand for them all)."""


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_description()


class _Session:
    """This process's share of a run: its record in ``state.runs``, added once it has done a step."""

    def __init__(self, state: _State, device: torch.device, processes: int = 1) -> None:
        self.first_step, self.first_elapsed = state.step, state.elapsed
        self.record: dict[str, Any] = {
            "device": device.type, "device_name": _device_name(device), "steps": 0, "seconds": 0.0,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        if processes > 1:
            self.record["processes"] = processes

    def update(self, state: _State, elapsed: float) -> None:
        """Bring the record up to ``state``'s step and the run's ``elapsed`` seconds (the run's, not the session's)."""
        self.record["steps"] = state.step - self.first_step
        self.record["seconds"] = round(elapsed - self.first_elapsed, 3)
        if self.record["steps"] and not any(run is self.record for run in state.runs):
            state.runs.append(self.record)


def _batches(source: Any, indices: list[int], config: TrainConfig, first_step: int) -> Iterator[dict]:
    dataset = StepBatches(source, indices, config.batch_size, config.patch, config.seed)
    if config.workers == 0:
        step = first_step
        while True:
            yield dataset[step]
            step += 1
    # Forking a process that runs other threads (the app's Qt threads, a training job's worker thread) can
    # copy a lock mid-use; from any thread but the main one the workers start from a clean forkserver.
    context = None if threading.current_thread() is threading.main_thread() else "forkserver"
    # The loader draws its workers' base seed when it starts: from a generator of its own, not from torch's global
    # one, which a model's random draws (a variational model's sampling) share and a checkpoint restores. Drawn
    # from the global one, a resumed run's draws were shifted by one against the uninterrupted run's.
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=range(first_step, 2**31 - 1), num_workers=config.workers,
        prefetch_factor=2, persistent_workers=False, multiprocessing_context=context,
        generator=torch.Generator().manual_seed(config.seed),
    )
    yield from loader


def _loss(model: Autoencoder, batch: dict, config: TrainConfig, device: torch.device,
          mix: SynthesisMix | None = None, world: World | None = None,
          forward_train: Callable[..., tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
    """The loss of one step's batch; with a ``world``, of this rank's share of it (cut after the noise is made, so
    that the shares are those of the batch one process would train on), through ``forward_train`` (the model's
    data-parallel wrapper)."""
    if "seed" in batch:  # a device_mix batch: its noise is made here, on the training device, from ``mix``
        if mix is None:
            raise DenoiserError("a device_mix batch needs its synthesis mix")
        batch = synthesize_on_device(batch, mix, device)
    if world is not None:
        batch = world.shard(batch)
    forward_train = forward_train or model.forward_train
    noisy = batch["input"].to(device, non_blocking=True)
    noise_map = batch["noise_map"].to(device, non_blocking=True)
    if "choice" not in batch:
        output, penalty = forward_train(noisy, noise_map)
        return torch.nn.functional.l1_loss(output, batch["target"].to(device)) + penalty
    # Neighbor2Neighbor: one sub-image is the target of the other; the regulariser asks the network's
    # output on the full patch, sub-sampled the same way, to differ as the two sub-images' outputs do.
    first, second = subsample_with(noisy, batch["choice"])
    output, penalty = forward_train(first, noise_map)
    with torch.no_grad():
        full_map = noise_map[:, :, :1, :1].expand(-1, -1, noisy.shape[2], noisy.shape[3])
        full = model(noisy, full_map)
        full_first, full_second = subsample_with(full, batch["choice"])
    residual = output - second
    regulariser = torch.mean((residual - (full_first - full_second)) ** 2)
    return torch.mean(residual**2) + config.neighbour_weight * regulariser + penalty


def train(
    source: SyntheticSource | PairSource | NoisyOnlySource,
    config: TrainConfig,
    *,
    start_model: Autoencoder | None = None,
    checkpoint_dir: str | Path | None = None,
    should_stop: StopFn | None = None,
    device: str = "auto",
    world: World | None = None,
) -> Iterator[Progress]:
    """Train on ``source``; yields progress; the last event's ``extra["result"]`` is a :class:`TrainingResult`.

    ``start_model`` is fine-tuned (a copy: the caller's model is untouched). Stopping saves a checkpoint and
    raises :class:`~denoiser.errors.Cancelled`.

    ``world``: this process is one rank of a distributed run (:mod:`denoiser.distributed`) and trains on
    ``world.device`` (``device`` is not used). ``config.batch_size`` is the batch of all ranks together; each trains
    on its equal share of it. Rank 0 alone validates, writes the checkpoint and keeps the best model; a stop asked
    for on any rank stops them all at the same step. The other ranks' result holds the last weights, and no
    validation figures.
    """
    from denoiser.inference import resolve_device

    config.validate()
    if world is not None:
        shard_bounds(config.batch_size, world.rank, world.size)  # a batch that does not split is refused first
    torch.manual_seed(config.seed)
    target = world.device if world is not None else resolve_device(device)
    main = world is None or world.is_main  # the process that validates, writes checkpoints and keeps the best
    if start_model is not None:
        model = copy.deepcopy(start_model)
    else:
        model = create_model(config.family, config.model or None)
    model.to(target).train()
    if target.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch size: let cuDNN pick its fastest kernels once
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    use_amp = target.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    train_ids, held_ids = run_split(config, len(source))
    mix = SynthesisMix.from_dict(config.synthesis) if config.mode == "device_mix" else None  # once, not per step
    validator = Validator(source, held_ids, config)
    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
    folder = Path(checkpoint_dir) if checkpoint_dir else None
    saved = _resume(folder, model, best, optimizer, config, world, scaler) if folder else None
    if saved is not None:
        state = _State(**saved)
        yield Progress("train", state.step, config.steps, f"resumed at step {state.step}")
    else:
        state = _State(horizon=config.steps)
        if held_ids and main:
            state.start, sample = validator.score(model)
            state.best = state.start if start_model is not None else None
            yield Progress("validate", 0, config.steps, "starting model",
                           extra={validator.metric: state.start, "sample": sample})
    forward_train = None
    if world is not None:
        _take_layout(model, bool(world.from_main([float(_uses_channels_last(model))])[0]))  # rank 0 validated
        forward_train = world.data_parallel(model)
    stopped_early = False
    session = _Session(state, target, world.size if world is not None else 1)  # this process's record in state.runs
    session_start = time.monotonic()
    batches = _batches(source, train_ids, config, state.step)
    try:
        while state.step < min(config.steps, state.horizon):
            stop = should_stop is not None and should_stop()
            if stop if world is None else world.any(stop):
                state.elapsed += time.monotonic() - session_start
                session_start = time.monotonic()
                session.update(state, state.elapsed)
                if folder is not None and main:
                    save_checkpoint(folder, model, best, optimizer, asdict(state), config, scaler)
                if world is not None:
                    world.barrier()  # no rank ends before rank 0 has written the checkpoint
                raise Cancelled("training cancelled")
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(state.step, state.horizon, config.learning_rate)
            if world is not None:  # random draws in the model (a variational model's) differ between ranks
                world.seed_step(config.seed, state.step)
            batch = next(batches)
            with torch.autocast(target.type, enabled=use_amp):
                own_loss = _loss(model, batch, config, target, mix, world, forward_train)
            # The whole batch's loss (the mean of the ranks' equal shares): every rank skips a non-finite one alike.
            loss = own_loss if world is None else world.mean(own_loss)
            optimizer.zero_grad(set_to_none=True)
            if torch.isfinite(loss):
                scaler.scale(own_loss).backward()
                # One extreme batch (very dark Poisson noise, say) once blew a run up from loss 0.03 to 400:
                # clipping the gradient's norm keeps any single step from throwing the weights away.
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
            else:
                state.skipped_steps += 1  # a non-finite loss would poison the weights and Adam's moments
            state.step += 1
            elapsed = state.elapsed + time.monotonic() - session_start
            record: dict[str, Any] = {"step": state.step, "loss": loss.item(),
                                      "lr": optimizer.param_groups[0]["lr"], "seconds": elapsed}
            last = state.step >= min(config.steps, state.horizon)
            out_of_time = bool(config.minutes) and elapsed >= config.minutes * 60
            extra: dict[str, Any] = {}
            if held_ids and main and (state.step % config.validation_every == 0 or last or out_of_time):
                value, extra["sample"] = validator.score(model)
                record[validator.metric] = value
                if validator.better(value, state.best):
                    state.best, state.bad_epochs = value, 0
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                else:
                    state.bad_epochs += 1
                    if config.patience and state.bad_epochs >= config.patience:
                        stopped_early, last = True, True
            elapsed = state.elapsed + time.monotonic() - session_start  # validation time counts too
            if config.minutes and (state.step in (20, 200) or record.keys() & {"val_psnr", "val_loss"}):
                # Fit the schedule's end to the time left, at the pace so far (validations included). A slow
                # start (a GPU's first kernels, the workers' first batches) can set it short: a later fit that
                # finds time left moves the end out again rather than stopping there.
                state.horizon = max(state.step + 1, min(config.steps, int(config.minutes * 60 * state.step / elapsed)))
                last = stopped_early or state.step >= min(config.steps, state.horizon)
            if world is not None:  # rank 0's clock and validation decide for every rank
                last, out_of_time, stopped_early, state.horizon = _agree(world, model, last, out_of_time,
                                                                         stopped_early, state.horizon)
            state.history.append(record)
            if folder is not None and main and (state.step % config.checkpoint_every == 0 or last or out_of_time):
                state.elapsed, session_start = elapsed, time.monotonic()  # the checkpoint's own write counts next
                session.update(state, state.elapsed)
                save_checkpoint(folder, model, best, optimizer, asdict(state), config, scaler)
            # Time left: at this pace to the step limit, or the budget's rest (the horizon fit is no guide to the end).
            left = elapsed / state.step * (config.steps - state.step)
            record["eta_s"] = min(left, max(0.0, config.minutes * 60 - elapsed)) if config.minutes else left
            yield Progress("train", state.step, min(config.steps, state.horizon), extra={**record, **extra})
            if last or out_of_time:
                break
    finally:
        if hasattr(batches, "close"):
            batches.close()
    if held_ids and state.best is not None:
        model.load_state_dict(best)
    model.eval()
    seconds = state.elapsed + time.monotonic() - session_start
    session.update(state, seconds)
    kept = start_model is not None and state.start is not None and state.best == state.start  # nothing beat it
    result = TrainingResult(model, validator.metric, state.best, state.start, state.step, seconds, state.history,
                            stopped_early, state.runs, kept)
    yield Progress("done", state.step, state.step, "training finished", extra={"result": result})


def _resume(folder: Path, model: Autoencoder, best: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
            config: TrainConfig, world: World | None, scaler: torch.amp.GradScaler) -> dict[str, Any] | None:
    """Load the checkpoint in ``folder`` (see :func:`~denoiser.checkpoints.load_checkpoint`); in a distributed run
    rank 0 reads it and sends its files to the others, which need not see the folder (another machine)."""
    if world is not None:
        folder = world.files_from_main(folder, checkpoint_file_names(folder) if world.is_main else [])
    return load_checkpoint(folder, model, best, optimizer, config, scaler)


def _uses_channels_last(model: Autoencoder) -> bool:
    return memory_format_of(model) == "channels_last"


def _take_layout(model: Autoencoder, channels_last: bool) -> None:
    """Give ``model``'s weights rank 0's memory layout (validating leaves them ``channels_last``): the same weights
    in another layout compute slightly differently, and the ranks must compute alike."""
    if _uses_channels_last(model) != channels_last:
        model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def _agree(world: World, model: Autoencoder, last: bool, out_of_time: bool, stopped_early: bool,
           horizon: int) -> tuple[bool, bool, bool, int]:
    """Rank 0's decisions after a step, taken by every rank: whether the run ends (its validation and its clock
    decide), the schedule's horizon, and its weights' memory layout."""
    is_last, timed_out, early, new_horizon, channels_last = world.from_main(
        [float(last), float(out_of_time), float(stopped_early), float(horizon), float(_uses_channels_last(model))])
    _take_layout(model, bool(channels_last))
    return bool(is_last), bool(timed_out), bool(early), int(new_horizon)


def training_info(result: TrainingResult, config: TrainConfig, trained_on: str, command: str = "",
                  name: str = "model") -> ModelInfo:
    """The description saved beside a trained model: data, settings, time and validation figures. The time is
    ``steps_done``, ``seconds``, ``runs`` (one record per training session, see ``_State.runs``) and
    ``device_minutes``, the minutes per device kind over those sessions (e.g. ``{"cuda": 21.3, "cpu": 4.0}``)."""
    validation: dict[str, Any] = {"metric": result.metric, "split": f"seeded {config.validation_fraction:.0%} held out"}
    if result.metric == "val_psnr" and result.best is not None:
        validation["psnr"] = round(result.best, 3)
    for key, value in (("best", result.best), ("start", result.start), ("gain", result.gain)):
        if value is not None:
            validation[key] = round(value, 5)
    if config.mode in ("synthetic", "device_mix"):
        validation["sigma"] = config.validation_sigma
        validation["protocols"] = list(validation_protocols(config))
    # A fine-tune that no step beat is its starting model, unchanged: the record says so, for `models info`.
    kept = {"start_kept": True} if result.start_kept else {}
    return ModelInfo(
        name=name,
        family=result.model.family,
        config={},
        description=(f"The starting model ({config.start_from}), unchanged: no training step beat it on the held-out "
                     "photos, so these are its weights.") if result.start_kept else "",
        trained_on=trained_on,
        training={**config.to_dict(), "steps_done": result.steps, "seconds": round(result.seconds, 1),
                  "device_minutes": device_minutes(result.runs), "runs": result.runs,
                  "command": command, "stopped_early": result.stopped_early, **kept},
        validation=validation,
    )
