"""``torchrun`` DDP helpers: rank discovery, process group set-up, device choice.

Under ``torchrun`` (``WORLD_SIZE > 1``) the process group uses gloo on CPU and nccl on
CUDA; without it everything degrades to a single process and no group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def setup(device: str | torch.device | None = None) -> Context:
    """Join the torchrun process group if there is one; pick this rank's device once."""
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    local = int(os.environ.get("LOCAL_RANK", 0))
    if device is None:
        dev = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(device)
        if dev.type == "cuda" and dev.index is None:
            dev = torch.device(f"cuda:{local}")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    return Context(rank, world, dev)


def teardown() -> None:
    """Leave the process group of a torchrun rank (no-op in a single process)."""
    if dist.is_initialized():
        dist.destroy_process_group()
