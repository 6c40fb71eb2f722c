"""Data-parallel training across processes and machines, launched by `torchrun`.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE in each process's environment; without them
a run is one process and none of this does anything. The backend is gloo on CPUs and NCCL
on GPUs, one GPU per process.

How the work is shared (what DistributedSampler with set_epoch does, on one tensor):
every process draws the same permutation of the training split from the same seeded
generator, which advances once per epoch, so each epoch has a new order and all processes
agree on it. Each optimizer step takes the next `batch_size` images of that order (the
global batch, as in a one-process run) and process r trains on every world_size-th of
them starting at r. DistributedDataParallel averages the gradients, so a step sees the
whole global batch and the schedule has the same number of steps as one process.

BatchNorm: by default each process normalises with the statistics of its own share of
the batch, and DistributedDataParallel copies rank 0's running averages to the others
before every forward pass, so the saved averages are rank 0's. `sync_bn` (CUDA only, as
PyTorch's SyncBatchNorm is) normalises with the statistics of the whole global batch,
which matters when each process's share is small.

Rank 0 judges each epoch (validation, best weights, early stopping) and is the only
process that writes the run directory; it tells the others when to stop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from fmnist.errors import FmnistError


@dataclass(frozen=True)
class Context:
    rank: int = 0  # this process, 0 .. world - 1
    world: int = 1  # processes in the run
    local_rank: int = 0  # this process on its machine (its GPU)

    @property
    def active(self) -> bool:
        return self.world > 1


SINGLE = Context()


def from_environment() -> Context:
    """The launcher's view of this process; one process when not started by torchrun."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as e:
        raise FmnistError(f"RANK, LOCAL_RANK and WORLD_SIZE must be integers ({e})") from None
    return Context(rank, world, local)


def rank() -> int:
    return from_environment().rank


def setup(device_name: str) -> tuple[Context, torch.device]:
    """Join the process group (once) and pick this process's device."""
    ctx = from_environment()
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if not ctx.active:
        return ctx, torch.device(device_name)
    if device_name == "cuda":
        if ctx.local_rank >= torch.cuda.device_count():
            raise FmnistError(
                f"process {ctx.rank} needs GPU {ctx.local_rank} but this machine has "
                f"{torch.cuda.device_count()}; lower --nproc-per-node"
            )
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return ctx, device


def teardown(ctx: Context) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()


def shard(batch: torch.Tensor, ctx: Context) -> torch.Tensor:
    """This process's share of a global batch of indices."""
    return batch[ctx.rank :: ctx.world] if ctx.active else batch


def sum_all(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    if ctx.active:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def agree(flag: bool, ctx: Context, device: torch.device) -> bool:
    """Rank 0's decision, told to every process."""
    if not ctx.active:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.broadcast(t, src=0)
    return bool(t.item())


def gather_states(states: dict[str, torch.Tensor], ctx: Context, device: torch.device):
    """Every process's uint8 generator states, as one list indexed by rank (on rank 0)."""
    if not ctx.active:
        return [states]
    out = [{} for _ in range(ctx.world)]
    for key, state in states.items():
        mine = state.to(device)
        parts = [torch.empty_like(mine) for _ in range(ctx.world)]
        dist.all_gather(parts, mine)
        for r, part in enumerate(parts):
            out[r][key] = part.cpu()
    return out


def barrier(ctx: Context) -> None:
    if ctx.active:
        dist.barrier()
