r"""Initialising models that live on the meta device or are sharded (DTensor, FSDP2 ``fully_shard``).

Two jobs, both used by :func:`detinit.initialize`:

* :func:`write_` fills one parameter with a rule's fill function. A plain tensor
  is filled in place. A DTensor (``distribute_tensor``, FSDP2) is filled
  shard by shard, with no communication (:func:`local_block` gives the global
  indices a rank holds):

  - a deterministic fill (a :class:`~detinit.init.tensor.row_fills.RowFill`: zeros, ones,
    identity, partial identity, Hadamard, ZerO embeddings, ConstNet averaging) writes
    just the rows of the local shard, from their global indices, straight into it.
    The time and memory of a rank follow its shard;
  - a random fill runs on a tensor of the parameter's global shape and the rank keeps
    its block: every rank draws the whole tensor from the same generator state, so
    the values are those of the unsharded initialisation for the same seed, whatever the
    world size. The price is one parameter's full size in temporary memory and its full
    draw on each rank (per parameter, not per model).

  Either way every rank holds exactly the values of the unsharded initialisation.
* :func:`materialize_` moves a model built on the meta device to a real device
  without copying it (as ``nn.Module.to_empty``, keeping tied parameters tied and
  tensors that are not on meta) and recomputes its buffers:
  BatchNorm running statistics reset, ``num_batches_tracked`` 0, and constant
  buffers through a module's ``detinit_buffers_()`` hook (sinusoidal positions).
  A buffer nothing can recompute is an error, never left as garbage.

>>> from torch import nn
>>> with torch.device("meta"):
...     net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
>>> _ = materialize_(net, "cpu")
>>> net[1].running_var.tolist(), net[0].weight.device.type
([1.0, 1.0, 1.0, 1.0], 'cpu')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from ...devices import parse_device
from ...hooks import BUFFERS_HOOK, callable_hook
from ..tensor.row_fills import rows_of

Fill = Callable[[torch.Tensor, torch.Generator], object]


def is_dtensor(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is a ``torch.distributed.tensor.DTensor`` (without importing it when unused)."""
    return type(tensor).__name__ == "DTensor" and hasattr(tensor, "to_local")


def local_block(tensor: torch.Tensor) -> tuple[slice, ...]:
    """The global indices, one slice per dimension, of the values a DTensor's local shard holds.

    ``Shard(d)`` placements split dimension ``d`` as ``torch.chunk`` does (FSDP2 shards dimension 0 this
    way); ``Replicate`` keeps all of it. ``Partial`` placements hold no values of their own and are refused.
    """
    from torch.distributed.tensor import Partial
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    if any(isinstance(p, Partial) for p in tensor.placements):
        raise ValueError(
            f"a DTensor of shape {tuple(tensor.shape)} with placements {tensor.placements} holds partial sums, not "
            "values; initialise parameters placed with Shard or Replicate"
        )
    shape, offset = compute_local_shape_and_global_offset(tensor.shape, tensor.device_mesh, tensor.placements)
    return tuple(slice(start, start + size) for start, size in zip(offset, shape))


def write_(param: torch.Tensor, fill: Fill, generator: torch.Generator) -> torch.Tensor:
    """Fill ``param`` with ``fill(tensor, generator)``; a DTensor gets its local shard of the global fill. A
    parameter with no elements (a layer of width 0, as MobileBERT's extra output rows where the embedding is as
    wide as the model) has nothing to write and is left as it is, as ``torch.nn.init`` leaves it.

    Call it under ``torch.no_grad()`` (:func:`detinit.initialize` runs under it: a decorator here would cost
    more than filling a small tensor).

    >>> w = torch.empty(2, 3)
    >>> write_(w, lambda t, g: t.fill_(1.0), torch.Generator()).sum().item()
    6.0
    """
    if param.numel() == 0:
        return param
    if not is_dtensor(param):
        fill(param, generator)
        return param
    local, block = param.to_local(), local_block(param)
    rows = rows_of(fill)
    if rows is None or param.dim() == 0:
        full = torch.empty(param.shape, dtype=param.dtype, device=local.device)
        fill(full, generator)
        local.copy_(full[block])
        return param
    if local.numel() == 0:
        return param
    start, total = block[0].start, param.shape[0]
    if all(cut == slice(0, size) for cut, size in zip(block[1:], param.shape[1:])):
        rows(local, start, total, generator)  # the shard is whole rows (FSDP2's Shard(0))
    else:  # also cut along other dimensions: fill its rows, keep its columns
        strip = torch.empty((len(local), *param.shape[1:]), dtype=param.dtype, device=local.device)
        rows(strip, start, total, generator)
        local.copy_(strip[(slice(None), *block[1:])])
    return param


@torch.no_grad()
def materialize_(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Give every parameter and buffer of a meta-device ``model`` storage on ``device``, and recompute buffers.

    Parameters get uninitialised storage (:func:`detinit.initialize` fills them next); buffers are set as
    the model's constructor would have set them: norm running statistics by ``reset_running_stats()``,
    others by the owning module's ``detinit_buffers_()`` hook. Returns ``model``.
    """
    device = parse_device(device)
    meta_buffers = {
        name: model.get_submodule(name.rpartition(".")[0]) for name, buf in model.named_buffers() if buf.is_meta
    }
    unrecomputable = [
        name
        for name, module in meta_buffers.items()
        if not isinstance(module, nn.modules.batchnorm._NormBase) and callable_hook(module, BUFFERS_HOOK) is None
    ]
    if unrecomputable:
        raise ValueError(
            f"initialize(device=...): the meta-device buffers {', '.join(unrecomputable)} hold values detinit cannot "
            f"recompute; give their modules a {BUFFERS_HOOK}() method that sets them, or build the model on a real "
            "device"
        )
    shared: dict[int, list[tuple[nn.Module, str]]] = {}  # tied parameters: to_empty would untie them
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            shared.setdefault(id(param), []).append((module, name))

    def allocate(t: torch.Tensor) -> torch.Tensor:
        if not t.is_meta:
            return t.to(device)
        if is_dtensor(t):  # empty_like keeps the DTensor and its placements
            return torch.empty_like(t, device=device)
        # empty_like from meta runs torch's Python refs (and imports sympy on first use)
        return torch.empty_strided(t.size(), t.stride(), dtype=t.dtype, device=device)

    model._apply(allocate)
    for (first, first_name), *others in (uses for uses in shared.values() if len(uses) > 1):
        for module, name in others:
            setattr(module, name, getattr(first, first_name))
    reset_buffers_(dict.fromkeys(meta_buffers.values()))
    return model


def reset_buffers_(modules: Iterable[nn.Module]) -> None:
    """Set the buffers of ``modules`` as a new model has them: norm running statistics by
    ``reset_running_stats()``, others by the module's ``detinit_buffers_()`` hook (modules with neither are
    left alone). :func:`materialize_` calls it on the modules it gave storage; :func:`detinit.initialize` on
    every module, whatever they held before (statistics of an earlier run, NaN, the garbage of ``to_empty()``)."""
    for module in modules:
        if isinstance(module, nn.modules.batchnorm._NormBase):
            module.reset_running_stats()
        elif callable_hook(module, BUFFERS_HOOK) is not None:
            getattr(module, BUFFERS_HOOK)()
