r"""A zero output layer that reads the same feature for every input is a saddle: :func:`escape_constant_readouts_`.

ZerO starts the output layer at 0 and every residual block as the identity.
Where the output layer reads a position the input never reaches at init, a
cls token carried unchanged through identity blocks (ViT, timm's
``global_pool="token"``), its input is one vector :math:`f` for every example.
Then the gradient of the output weight :math:`W` is :math:`(p - y) f^\top`, so
:math:`W` only ever grows along :math:`f`, and the gradient it sends back,
:math:`W^\top (p - y) \propto f`, is removed by the Jacobian of the final norm
(LayerNorm and RMSNorm are scale invariant: their Jacobian at :math:`x` kills
:math:`x`'s direction). Every other weight gets a gradient of exactly 0; Adam
escapes only through its :math:`\epsilon` and rounding, after tens of steps
(docs/results.md, section 8: a Hugging Face ViT stays at the batch's class
prior for 30 steps).

The escape keeps the logits exactly 0 with weights of zeros and ones, as
ZerO's: each row of :math:`W` is :math:`e_j \pm e_{j+1}` for neighbours of
equal magnitude in :math:`f` (or :math:`e_j` where :math:`f_j = 0`), signed
so that the two products cancel exactly, in any summation order; rows are
cycled when there are more classes than such pairs. ZerO makes a cls token a
Hadamard row, whose entries all have one magnitude, and so does the norm
after it. A readout with no such pair keeps its zero.

>>> import torch
>>> f = torch.tensor([0.5, -0.5, 0.0, 0.5])
>>> orthogonal_rows(f, 3)
tensor([[0., 0., 1., 0.],
        [1., 1., 0., 0.],
        [0., 0., 1., 0.]])
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from ..roles.trace import run_with_hooks
from ..tensor.row_fills import RowFill
from .sharded import write_


@torch.no_grad()
def readout_inputs(model: nn.Module, example: object, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """The input of each named module on one forward pass over ``example`` (eval mode, training flags restored)."""
    modules = dict(model.named_modules())
    seen: dict[str, torch.Tensor] = {}
    handles = [
        modules[name].register_forward_pre_hook(lambda _m, args, name=name: seen.setdefault(name, args[0].detach()))
        for name in names
    ]
    run_with_hooks(model, example, handles)
    return seen


def examples_differ(example: object) -> bool:
    """Whether some tensor of ``example`` holds at least two different rows along its first (batch) dimension."""
    tensors = [t for t in tree_flatten(example)[0] if isinstance(t, torch.Tensor) and t.dim() > 0 and len(t) > 1]
    return any(bool((t != t[:1]).any()) for t in tensors)


def constant_feature(inputs: torch.Tensor) -> torch.Tensor | None:
    """The one feature vector every row of ``inputs`` (``(..., d)``) holds, or ``None`` if the rows differ
    (or there is a single row, which says nothing)."""
    rows = inputs.reshape(-1, inputs.shape[-1])
    if rows.shape[0] < 2 or not bool((rows == rows[0]).all()):
        return None
    return rows[0]


def orthogonal_rows(feature: torch.Tensor, rows: int) -> torch.Tensor | None:
    r"""``rows`` rows of entries 0 and :math:`\pm 1` whose product with ``feature`` is exactly 0: :math:`e_j` where
    :math:`f_j = 0`, then :math:`e_j - \operatorname{sign}(f_j f_{j+1})\, e_{j+1}` where neighbours have the same
    magnitude, in order and cycled; ``None`` if there is none.

    Each row has at most two non-zero products, exact opposites (entries :math:`\pm 1` make every product
    exact), so the sum is exactly 0 in any order, fused multiply-adds included.
    """
    d = feature.numel()
    eye = torch.eye(d, dtype=feature.dtype, device=feature.device)
    zero = feature == 0
    pair = (feature[:-1].abs() == feature[1:].abs()) & ~zero[:-1]
    sign = torch.sign(feature[:-1] * feature[1:])
    pairs = eye[:-1] - sign[:, None] * eye[1:]
    chosen = torch.cat([eye[zero], pairs[pair]])
    if len(chosen) == 0:
        return None
    return chosen[torch.arange(rows, device=feature.device) % len(chosen)]


@torch.no_grad()
def escape_constant_readouts_(model: nn.Module, example: object, names: Iterable[str]) -> dict[str, str]:
    """For each named ``nn.Linear`` (zero output layers) whose input is the same for every example of
    ``example`` (whose examples differ): its weight becomes :func:`orthogonal_rows` of that input. Returns a
    reason per weight changed."""
    modules = dict(model.named_modules())
    linear = [n for n in names if isinstance(modules[n], nn.Linear)]
    changed: dict[str, str] = {}
    if not linear or not examples_differ(example):
        return changed  # identical examples would make every readout look constant
    for name, inputs in readout_inputs(model, example, linear).items():
        feature = constant_feature(inputs)
        if feature is None:
            continue
        weight = modules[name].weight
        rows = orthogonal_rows(feature.to(weight.dtype), weight.shape[0])
        if rows is None:
            continue
        copy = RowFill(
            lambda t, g, rows=rows: t.copy_(rows.to(t.device)),
            lambda out, start, total, g, rows=rows: out.copy_(rows[start : start + len(out)].to(out.device)),
        )
        write_(weight, copy, torch.Generator())
        changed[f"{name}.weight"] = (
            "output layer reading the same feature for every input at init (a cls token through identity "
            "blocks): a zero weight would be a saddle; rows e_j +- e_j+1 orthogonal to that feature keep the "
            "logits exactly 0 and let the gradient through (detinit.init.apply.readout)"
        )
    return changed
