r"""Fully sharded data-parallel training (FSDP2 ``fully_shard``): ``parallel: fsdp`` in a config.

Under ``torchrun`` with ``parallel: fsdp`` the trainer builds the model on the meta device, shards it
(:func:`shard_model`: every block, then the root), and initialises it shard by shard
(:func:`detinit.initialize` with ``device=``): no rank ever holds the whole model, and each rank's
shard is bitwise that rank's part of the plain initialisation. Each rank holds about
``1 / world_size`` of the parameters, gradients and optimiser state.

Numerics against one process on the whole batch: each rank computes the gradient of its share of
the batch; FSDP reduce-scatters their mean, so the update is the single-process one up to the order
of float additions (a few ulps per step, which training then amplifies; the tests compare within a
stated tolerance). BatchNorm statistics are per rank during an epoch, as under DDP; at the end of
each epoch :func:`broadcast_buffers_` gives every rank rank 0's, so evaluation and the checkpoint
see one set and a resumed run starts where the uninterrupted one stood.

Checkpoints (:func:`save_sharded_checkpoint`) are written with ``torch.distributed.checkpoint``:
each rank writes its own shards, in parallel, to ``checkpoint_sharded/epoch_NNNN/``; the trainer
state (schedule, epoch, history) goes beside them, and ``checkpoint_sharded/latest.json`` is
switched to the new epoch atomically once every rank has finished, with the SHA-256 of every shard file,
which a resume checks before loading. A kill at any moment leaves the previous epoch's checkpoint in force.

>>> from torch import nn
>>> class Block(nn.Module):
...     def __init__(self) -> None:
...         super().__init__()
...         self.fc = nn.Linear(2, 2)
>>> net = nn.Sequential(nn.Linear(2, 2), Block(), nn.Sequential(Block(), nn.ReLU()))
>>> [type(m).__name__ for m in shard_units(net)]  # the blocks; the leaf Linear stays with the root
['Block', 'Block']
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from .checkpoint import CheckpointError, file_sha256, load_checkpoint, save_checkpoint, write_json

CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
LATEST = "latest.json"
TRAINER_STATE = "trainer.pt"


def shard_units(model: nn.Module) -> list[nn.Module]:
    """The modules :func:`shard_model` gives their own FSDP group: the blocks of the model.

    A block is a module held in a container (``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``)
    that has submodules of its own and is not itself a container: ResNet blocks, Transformer layers,
    ConstNet blocks, Hugging Face ``...Layer`` / ``...Block`` modules. Leaf layers in a container
    (a stem's conv and norm) stay with the root. Returned children first, the order ``fully_shard``
    needs.
    """
    units: dict[int, nn.Module] = {}
    for container in model.modules():
        if not isinstance(container, CONTAINERS):
            continue
        for child in container.children():
            has_children = next(child.children(), None) is not None
            owns_parameters = next(child.parameters(), None) is not None
            if has_children and owns_parameters and not isinstance(child, CONTAINERS):
                units[id(child)] = child
    return [module for module in reversed(list(model.modules())) if id(module) in units]


def replicated_parameters(model: nn.Module) -> set[nn.Parameter]:
    """The parameters :func:`shard_model` leaves whole on every rank: the 0-dim ones (Fixup's scalar
    biases and multipliers, ReZero's and SkipInit's gates), which FSDP2 cannot shard (it splits
    dimension 0). :func:`average_replicated_gradients_` keeps them equal on every rank."""
    return {p for p in model.parameters() if p.dim() == 0}


def shard_model(model: nn.Module, mesh: Any = None) -> nn.Module:
    """Shard ``model`` in place with FSDP2: ``fully_shard`` on each of :func:`shard_units`, then the root.

    ``mesh``: a 1-D ``DeviceMesh`` (default: all ranks, on the default device type). Works on a model
    on the meta device (initialise it afterwards with ``detinit.initialize(model, scheme, device=...)``)
    or one already on its device. 0-dim parameters stay replicated (:func:`replicated_parameters`):
    call :func:`average_replicated_gradients_` after each backward pass. Returns ``model``.
    """
    from torch.distributed.fsdp import fully_shard

    replicated = replicated_parameters(model) or None
    for unit in shard_units(model):
        fully_shard(unit, mesh=mesh, ignored_params=replicated)
    return fully_shard(model, mesh=mesh, ignored_params=replicated)


@torch.no_grad()
def average_replicated_gradients_(model: nn.Module) -> None:
    """Average the gradients of the parameters FSDP does not manage (:func:`replicated_parameters`) over
    the ranks, in one all-reduce, as DDP would: FSDP averages the sharded ones itself. Collective."""
    params = [p for p in model.parameters() if not hasattr(p, "to_local") and p.requires_grad]
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(dist.get_world_size())
    offset = 0
    for param, grad in zip(params, grads):
        param.grad = flat[offset : offset + grad.numel()].view_as(param).clone()
        offset += grad.numel()


@torch.no_grad()
def broadcast_buffers_(model: nn.Module, src: int = 0) -> None:
    """Give every rank rank ``src``'s buffers (BatchNorm running statistics): FSDP shards parameters
    only, and each rank's statistics follow its own share of the data."""
    for buffer in model.buffers():
        dist.broadcast(buffer, src=src)


@torch.no_grad()
def all_finite(model: nn.Module) -> bool:
    """Whether every rank's shard of every parameter is finite (the same answer on every rank)."""
    local = [p.to_local() if hasattr(p, "to_local") else p for p in model.parameters()]
    device = local[0].device if local else torch.device("cpu")
    flag = torch.tensor([float(all(bool(torch.isfinite(t).all()) for t in local))], device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item() == 1.0)


def latest_sharded_checkpoint(root: str | Path, *, verify: bool = False) -> Path | None:
    """The folder of the last completed sharded checkpoint under ``root`` (None if there is none). With
    ``verify``, every shard file's SHA-256 is checked against the digests ``latest.json`` recorded when it was
    written: a damaged, missing, extra or unverifiable file is a :class:`CheckpointError` naming it."""
    pointer = Path(root) / LATEST
    if not pointer.exists():
        return None
    try:
        record = json.loads(pointer.read_text())
        folder = Path(root) / record["dir"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(
            f"{pointer} is damaged; delete {root} to restart the run from epoch 0, or restore it from a copy"
        ) from None
    if not folder.is_dir():
        raise CheckpointError(f"{pointer} names {folder}, which does not exist; delete {root} to restart the run")
    if verify:
        _verify_shards(folder, record.get("sha256"), pointer)
    return folder


def _shard_digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file DCP wrote in ``folder`` (the trainer state has its own digest file)."""
    own = (TRAINER_STATE, TRAINER_STATE + ".sha256")
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name not in own}


def _verify_shards(folder: Path, recorded: object, pointer: Path) -> None:
    advice = f"delete {folder.parent} to restart the run from epoch 0, or restore it from a copy"
    if not isinstance(recorded, dict):
        raise CheckpointError(f"sharded checkpoint {folder} cannot be verified: {pointer} records no digests; {advice}")
    found = _shard_digests(folder)
    missing, extra = sorted(set(recorded) - set(found)), sorted(set(found) - set(recorded))
    damaged = sorted(name for name in set(found) & set(recorded) if found[name] != recorded[name])
    if missing or extra or damaged:
        what = "; ".join(
            f"{label} {names}"
            for label, names in (("damaged", damaged), ("missing", missing), ("extra", extra))
            if names
        )
        raise CheckpointError(f"sharded checkpoint {folder} is not the one written: {what}; {advice}")


def save_sharded_checkpoint(
    root: str | Path, epoch: int, model: nn.Module, optimizer: torch.optim.Optimizer, trainer_state: dict[str, Any]
) -> Path:
    """Every rank writes its shards of the model and the optimiser for ``epoch``; rank 0 then writes
    ``trainer_state`` (plain data: schedule, history) and switches ``latest.json`` to the new folder.

    Collective: every rank calls it. Returns the new checkpoint's folder.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    root = Path(root)
    folder = root / f"epoch_{epoch:04d}"
    if dist.get_rank() == 0:
        shutil.rmtree(folder, ignore_errors=True)  # a killed save of this epoch
        folder.mkdir(parents=True)
    dist.barrier()
    model_state, optim_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=str(folder))
    if dist.get_rank() == 0:  # DCP's coordinator wrote the metadata after every rank's files: all are there
        save_checkpoint(folder / TRAINER_STATE, trainer_state)
        write_json(root / LATEST, {"epoch": epoch, "dir": folder.name, "sha256": _shard_digests(folder)})
        for old in root.iterdir():
            if old.is_dir() and old != folder:
                shutil.rmtree(old, ignore_errors=True)
    dist.barrier()  # no rank goes on (or exits) before the checkpoint is in force
    return folder


def load_sharded_checkpoint(folder: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Load a :func:`save_sharded_checkpoint` folder into the sharded ``model`` and ``optimizer`` (each
    rank reads its shards); returns the trainer state. Collective."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    folder = Path(folder)
    model_state, optim_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optim_state}
    try:
        dcp.load(state, checkpoint_id=str(folder))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
    except (Exception, CheckpointException) as err:  # DCP's (a BaseException) speak of storage plans
        raise CheckpointError(
            f"sharded checkpoint {folder} could not be loaded into this run's model and optimiser "
            f"({type(err).__name__}: {str(err)[:300]}); delete {folder.parent} to restart the run from epoch 0"
        ) from None
    return load_checkpoint(folder / TRAINER_STATE)
