"""Training on several processes with ``torch.distributed``: one process per GPU (or several on CPUs), launched by
``torchrun``, on one machine or many.

:func:`process_group` joins the group that ``torchrun`` describes in the environment (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``: the ``env://`` rendezvous): NCCL when the process trains on a GPU
(the one of its ``LOCAL_RANK``), gloo on CPUs. It hands back a :class:`World`, the loop's view of the group: who
this process is, the few collectives the loop needs (agreeing to stop, the mean loss, rank 0's decisions, a
checkpoint's files), the data-parallel wrapper, and the sharding rule.

The sharding rule (:meth:`World.shard`): every rank builds the whole batch of a step, exactly as one process would
(:mod:`denoiser.datasets`: from the seed and the step alone), and keeps its rank's consecutive share of it: rank
``r`` of ``n`` trains on patches ``r*B/n .. (r+1)*B/n - 1`` of the global batch of ``B``. With gradients averaged
over equal shares, ``n`` processes compute what one process does with the whole batch (within float rounding),
and a checkpoint means the same whatever the number of processes that wrote it or resumes it. The price is that
each rank builds the whole batch (its background workers do; with noise made on the training device, each GPU
makes the noise of the whole batch): see ``docs/scale.md``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from denoiser.errors import DenoiserError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What ``torchrun`` sets for every process it starts, and :func:`process_group` reads."""
TORCHRUN_HINT = "run under torchrun: torchrun --nproc-per-node N -m denoiser train ... --distributed"
"""What ``--distributed`` says when the process was not started by ``torchrun``."""
DEFAULT_TIMEOUT = timedelta(minutes=30)
"""How long a collective waits for the other processes before the run fails (a rank validating or writing a
checkpoint keeps the others waiting that long at most)."""

Batch = dict[str, torch.Tensor]


def launched_by_torchrun(environ: dict[str, str] | os._Environ[str] | None = None) -> bool:
    """Whether this process was started by ``torchrun`` (or another launcher that sets its variables)."""
    environ = os.environ if environ is None else environ
    return all(environ.get(name) for name in TORCHRUN_VARIABLES)


def environment_rank(environ: dict[str, str] | os._Environ[str] | None = None) -> int:
    """This process's ``RANK`` as ``torchrun`` set it (0 without it): rank 0 alone speaks and writes."""
    environ = os.environ if environ is None else environ
    try:
        return int(environ.get("RANK", "0"))
    except ValueError:
        return 0


def rank_device(requested: str, local_rank: int) -> torch.device:
    """The device of the process with ``local_rank`` on its machine: its own GPU (``cuda:LOCAL_RANK``) for
    ``auto`` where CUDA is available or for ``cuda``, else the CPU. A GPU index is refused: ``torchrun`` gives each
    process its GPU (``CUDA_VISIBLE_DEVICES`` chooses which GPUs a machine lends)."""
    kind = requested.strip().lower()
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if kind != "cuda":
        raise DenoiserError(f"device {requested!r}: a distributed run trains on cuda (one GPU per process) or cpu")
    if not torch.cuda.is_available():
        raise DenoiserError("device 'cuda' asked for, but CUDA is not available on this machine; "
                            "use --device cpu (gloo) or start the run on a machine with GPUs")
    if local_rank >= torch.cuda.device_count():
        raise DenoiserError(f"process {local_rank} on this machine has no GPU of its own: "
                            f"{torch.cuda.device_count()} visible; start at most that many (--nproc-per-node)")
    return torch.device("cuda", local_rank)


def shard_bounds(size: int, rank: int, world_size: int) -> tuple[int, int]:
    """The first and one-past-last index of rank ``rank``'s share of a batch of ``size`` (equal shares)."""
    if size % world_size:
        raise DenoiserError(f"a batch of {size} patches does not split evenly among {world_size} processes: "
                            f"give a batch size that is a multiple of {world_size}")
    share = size // world_size
    return rank * share, (rank + 1) * share


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of torch's generator for ``step`` on ``rank``: see :meth:`World.seed_step`."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)


class _TrainingForward(torch.nn.Module):
    """The model's ``forward_train`` as a module's ``forward``: what :class:`DistributedDataParallel` wraps, since it
    averages gradients only of what goes through its own ``forward``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's training output and penalty."""
        return self.model.forward_train(x, noise_level)  # type: ignore[operator]


@dataclass(frozen=True)
class World:
    """This process's place in a group of training processes, and the collectives the training loop uses.

    Every method that communicates must be called by every rank, in the same order.
    """

    rank: int
    size: int
    local_rank: int
    device: torch.device
    """Where this process trains (and where its collectives' tensors live: NCCL needs them on the GPU)."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, writes checkpoints, saves the model and speaks."""
        return self.rank == 0

    def _tensor(self, values: list[float]) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (a stop asked for on one rank stops them all at the same step)."""
        tensor = self._tensor([float(flag)])
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The mean of a scalar over the ranks: the loss of the whole batch, from each rank's loss on its share."""
        tensor = value.detach().to(self.device, torch.float64).reshape(1)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return (tensor / self.size).to(value.dtype).reshape(value.shape)

    def from_main(self, values: list[float]) -> list[float]:
        """Rank 0's ``values`` on every rank (what rank 0 alone decides: the end of the run, the schedule's
        horizon)."""
        tensor = self._tensor(values)
        dist.broadcast(tensor, src=0)
        return tensor.tolist()

    def object_from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self.device)
        return box[0]

    def seed_step(self, seed: int, step: int) -> None:
        """Seed torch's generators (the CPU's and this rank's GPU's) for ``step``: random draws in the model (a
        variational model's sampling) then differ between ranks and depend on the seed, the step and the rank
        alone, not on a random state that a checkpoint of one rank would have to carry."""
        value = step_seed(seed, step, self.rank)
        torch.default_generator.manual_seed(value)
        if self.device.type == "cuda":
            torch.cuda.manual_seed(value)  # the current device: this rank's GPU

    def barrier(self) -> None:
        """Wait until every rank gets here (the others, while rank 0 writes a checkpoint before they all stop)."""
        if self.device.type == "cuda":
            dist.barrier(device_ids=[self.device.index])
        else:
            dist.barrier()

    def shard(self, batch: Batch) -> Batch:
        """This rank's consecutive share of a step's global batch, whose tensors share their first (batch)
        dimension (see the module's docstring): each cut along it; a tensor without one (a seed) is kept."""
        count = next(len(v) for v in batch.values() if v.dim())
        first, last = shard_bounds(count, self.rank, self.size)
        return {key: value[first:last] if value.dim() and len(value) == count else value
                for key, value in batch.items()}

    def data_parallel(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model``'s training forward wrapped so that the backward pass averages gradients over the ranks
        (rank 0's weights are copied to every rank first). Call the result as ``model.forward_train``."""
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        # A 1 x C x 1 x 1 weight (NAFNet's) in channels_last gets gradients of other (equivalent) strides; DDP
        # copies them into its buckets, a few hundred numbers, and would warn about it at the first step.
        warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
        return DistributedDataParallel(_TrainingForward(model), device_ids=device_ids)

    def files_from_main(self, folder: Path, names: list[str]) -> Path:
        """A folder holding rank 0's files ``names`` of ``folder`` (rank 0: ``folder`` itself; the others: a
        temporary copy, removed when the run ends): how ranks on other machines read rank 0's checkpoint."""
        contents = None
        if self.is_main:
            contents = {name: (folder / name).read_bytes() for name in names if (folder / name).is_file()}
        contents = self.object_from_main(contents)
        if self.is_main:
            return folder
        copy = Path(tempfile.mkdtemp(prefix="denoiser-checkpoint-"))
        _TEMPORARY_FOLDERS.append(copy)
        for name, data in contents.items():
            (copy / name).write_bytes(data)
        return copy


_TEMPORARY_FOLDERS: list[Path] = []


def _remove_temporary_folders() -> None:
    while _TEMPORARY_FOLDERS:
        shutil.rmtree(_TEMPORARY_FOLDERS.pop(), ignore_errors=True)


@contextmanager
def process_group(device: str = "auto", timeout: timedelta = DEFAULT_TIMEOUT) -> Iterator[World]:
    """This process's place in the group of training processes ``torchrun`` started, for one run.

    The first run joins the group (``env://``: NCCL when this process trains on a GPU, ``cuda:LOCAL_RANK``, gloo on
    the CPU) and the process leaves it when it exits: joining again in the same process is not reliable (a second
    group reads the first one's addresses from ``torchrun``'s store), so later runs, and a script's own group,
    are used as they are. Without ``torchrun``'s variables this raises :class:`~denoiser.errors.DenoiserError`
    saying how to start the run.
    """
    if not dist.is_available():
        raise DenoiserError("this PyTorch build has no torch.distributed: a distributed run cannot start")
    joined = dist.is_initialized()
    if not joined and not launched_by_torchrun():
        raise DenoiserError(TORCHRUN_HINT)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = rank_device(device, local_rank)
    backend = "nccl" if target.type == "cuda" else "gloo"
    if not joined:
        if target.type == "cuda":
            torch.cuda.set_device(target)  # NCCL's communicator and every collective's tensors live there
        dist.init_process_group(backend, init_method="env://", timeout=timeout)
        atexit.register(_leave)
    elif dist.get_backend() != backend:
        raise DenoiserError(f"this process's group runs {dist.get_backend()}, not the {backend} that training on "
                            f"{target} needs")
    try:
        yield World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank, device=target)
    finally:
        _remove_temporary_folders()


def _leave() -> None:
    """Leave the group at exit (NCCL complains about a group never destroyed)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def processes_on_this_machine() -> int:
    """``LOCAL_WORLD_SIZE`` (how many training processes share this machine's cores), 1 without it."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    except ValueError:
        return 1
