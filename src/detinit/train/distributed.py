"""Data-parallel training through ``torchrun``: gloo on CPU, NCCL on CUDA.

``torchrun --nproc_per_node=N -m detinit train ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`setup` joins the process group. Each rank
takes an equal shard of every global batch, DDP averages the gradients, so
the update equals the single-process one on the whole batch (up to float
reduction order). BatchNorm statistics are per rank, as in plain DDP.
With ``parallel: fsdp`` the model is sharded instead of replicated (:mod:`detinit.train.fsdp`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    joined: bool = False  # this process is in a process group (also with one rank, for FSDP)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device_type: str, *, sharded: bool = False) -> DistInfo:
    """Join the process group if launched by torchrun with more than one process, or with any number
    when ``sharded`` (FSDP needs a group even of one); ``sharded`` without torchrun is a ``ConfigError``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if sharded and "RANK" not in os.environ:
        from .config import ConfigError

        raise ConfigError(
            "parallel='fsdp' shards the model across processes started by torchrun: run "
            "'torchrun --nproc_per_node=N -m detinit train ...' (N >= 1), or set parallel='ddp' for one process"
        )
    if world_size <= 1 and not sharded:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")), joined=True)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def teardown(info: DistInfo, *, finished: bool = True) -> None:
    """Leave the process group. After a run that ``finished`` on this rank, first wait for every rank (gloo
    aborts a rank whose peer tears down while it still talks); after an error, leave at once, so that
    torchrun sees the failure and stops the other ranks instead of them waiting for this one."""
    if info.joined and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum a tensor over ranks (identity without DDP)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values
