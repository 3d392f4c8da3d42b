r"""Signal propagation: per-layer activation statistics and gradients for one batch.

For an output ``y`` of shape ``(N, C, *spatial)`` at each probe point (or
``(N, T, C)`` for Transformers, which declare ``detinit_channel_dim = -1``), the
quantities of the NF-Nets "signal propagation plot" (Brock et al. 2021):

* ``mean_sq``: average over channels of the squared channel mean,
  :math:`\frac1C\sum_c (\mathbb E_{n,s}\, y_{n,c,s})^2`;
* ``var``: average over channels of the channel variance,
  :math:`\frac1C\sum_c \mathrm{Var}_{n,s}\, y_{n,c,s}`;
* ``grad_rms``: root mean square of :math:`\partial L / \partial y` (cross-entropy
  on the given labels), the size of the signal flowing back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import hooks
from ..contract import checked_arguments
from ..nn import cross_entropy
from ._checks import check_activations, run_forward, run_loss
from ._hooks import probe_points, record_outputs


@dataclass(frozen=True)
class SignalRow:
    """Statistics at one probe point."""

    name: str
    channels: int
    mean_sq: float
    var: float
    grad_rms: float


@checked_arguments(at_least={"channel_dim": None})
def channel_stats(y: torch.Tensor, channel_dim: int = 1) -> tuple[float, float]:
    """``(mean_sq, var)`` of an activation tensor (channels on ``channel_dim``).

    >>> channel_stats(torch.ones(4, 3, 2, 2))
    (1.0, 0.0)
    """
    check_activations("channel_stats", "y", y, channel_dim)
    flat = y.detach().movedim(channel_dim, 0).reshape(y.shape[channel_dim], -1).double()
    return float(flat.mean(1).square().mean()), float(flat.var(1, unbiased=False).mean())


@checked_arguments(at_least={"channel_dim": None})
def signal_propagation(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    *,
    at: str = "auto",
    channel_dim: int | None = None,
) -> list[SignalRow]:
    """Activation mean^2, variance and gradient RMS at every probe point (model in train mode, no update).

    Channels are on dim 1, or on ``channel_dim``; by default the model's
    ``detinit_channel_dim`` attribute if it declares one (Transformers: -1).
    Language models take token ``inputs`` and ``targets`` of shape ``(B, T)``.
    """
    channel_dim = channel_dim if channel_dim is not None else hooks.channel_dim(model)
    points = probe_points(model, at)
    model.zero_grad(set_to_none=True)
    with record_outputs(points, retain_grad=targets is not None) as outputs:
        logits = run_forward("signal_propagation", model, inputs)
        if targets is not None:
            run_loss("signal_propagation", cross_entropy, logits, targets).backward()
    rows = []
    for name, _ in points:
        if name not in outputs:
            continue
        y = outputs[name]
        mean_sq, var = channel_stats(y, channel_dim)
        grad = y.grad if targets is not None and y.requires_grad else None
        grad_rms = float(grad.double().square().mean().sqrt()) if grad is not None else float("nan")
        rows.append(SignalRow(name, y.shape[channel_dim] if y.dim() > 1 else 1, mean_sq, var, grad_rms))
    model.zero_grad(set_to_none=True)
    return rows
