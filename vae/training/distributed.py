"""Data-parallel training across processes, as `torchrun` starts them.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK in each process's environment; `world_from_env` reads them
and joins the process group (gloo on a CPU, NCCL on CUDA). The Trainer then wraps its model in
DistributedDataParallel, which averages the gradients of every step over the processes; each process
takes its own slice of every global batch (all draw the same permutation from the same seed), the test
set is split between them and their sums added, and only rank 0 reports and saves.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

TIMEOUT = datetime.timedelta(minutes=10)  # a collective that waits longer than this ends the run


@dataclass(frozen=True)
class World:
    """This process's place among the training processes: rank 0 of 1 when it runs alone."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """The process that prints, records the replay and saves."""
        return self.rank == 0


SINGLE = World()


def world_from_env(device: torch.device) -> World:
    """Joins the process group torchrun's environment describes (a no-op World for one process)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return SINGLE
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=TIMEOUT)
    return world


def device_for(world: World, device: torch.device) -> torch.device:
    """Each process on a machine takes its own GPU (LOCAL_RANK); a CPU stays the CPU."""
    if device.type == "cuda" and world.distributed:
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def shard(indices: torch.Tensor, world: World) -> torch.Tensor:
    """This process's contiguous slice of a global batch (N,) of indices: sizes differ by at most one."""
    return indices.tensor_split(world.size)[world.rank] if world.distributed else indices


def sum_over_processes(values: list[float], world: World, device: torch.device) -> list[float]:
    """Each value summed over every process (float64)."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def weights_digest(model: torch.nn.Module) -> str:
    """A SHA-256 of every parameter and buffer, bit for bit: equal across processes when they agree."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()


def digests(model: torch.nn.Module, world: World) -> list[str]:
    """Every process's weights_digest, in rank order (one for one process)."""
    mine = weights_digest(model)
    if not world.distributed:
        return [mine]
    out: list = [None] * world.size
    dist.all_gather_object(out, mine)
    return out


def leave(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
