"""Diagnostics during training: the measures a run records every ``diagnostics_every`` epochs.

:func:`measure_diagnostics` takes the symmetry and rank measures of ConstNet's and ZerO's
claims on a fixed probe batch (features identical? weights of rank 1 away from
the identity?); :func:`initial_weights` keeps the weights at init, the
reference of ``rank_update`` (the numerical rank of :math:`W - W_0`);
:func:`signal_at_init` the signal propagation a study report plots, measured
when the run starts so the report never rebuilds a model.

>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
>>> record = measure_diagnostics(model, torch.randn(8, 4), 0, initial_weights(model))
>>> sorted(record["rank_update"].values())
[0, 0]
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn

from ..contract import checked_arguments
from ..init.roles.layers import MATRIX_LAYER_TYPES
from ._checks import check_batch
from .diversity import feature_diversity
from .rank import rank_table
from .signal import signal_propagation


@checked_arguments()
def initial_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copies of every Linear / conv weight, by module name (the reference of ``rank_update``)."""
    return {name: m.weight.detach().clone() for name, m in model.named_modules() if isinstance(m, MATRIX_LAYER_TYPES)}


@torch.no_grad()
@checked_arguments(at_least={"epoch": 0})
def measure_diagnostics(
    model: nn.Module, probe: torch.Tensor, epoch: int, initial: dict[str, torch.Tensor] | None = None
) -> dict[str, Any]:
    """Symmetry and rank measures on a fixed probe batch (model in eval mode, restored after).

    Feature measures need float inputs (images); for token inputs only the
    weight ranks are recorded. ``initial`` (weights at init, by module name)
    adds ``rank_update``, the numerical rank of :math:`W - W_0` per layer.
    """
    check_batch("measure_diagnostics", "probe", probe)
    was_training = model.training
    model.eval()
    features = feature_diversity(model, probe) if probe.is_floating_point() else []
    ranks = rank_table(model, initial=initial)
    model.train(was_training)
    record: dict[str, Any] = {"epoch": epoch}
    if features:
        record["max_channel_difference"] = max(r.max_channel_difference for r in features)
        record["min_participation_ratio"] = min(r.participation_ratio for r in features)
    record["rank_w_minus_i"] = {r.name: r.rank_w_minus_i for r in ranks if r.rank_w_minus_i is not None}
    record["stable_rank"] = {r.name: r.stable_rank for r in ranks}
    record["numerical_rank"] = {r.name: r.numerical_rank for r in ranks}
    if initial is not None:
        record["rank_update"] = {r.name: r.rank_update for r in ranks}
    return record


@checked_arguments()
def signal_at_init(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> list[dict[str, Any]]:
    """Signal propagation (:func:`~detinit.diagnostics.signal_propagation`) as JSON rows, on a copy of ``model``
    (a forward pass in train mode would move BatchNorm's running statistics and the training run with them)."""
    rows = signal_propagation(copy.deepcopy(model).train(), inputs, targets)
    return [dataclasses.asdict(row) for row in rows]
