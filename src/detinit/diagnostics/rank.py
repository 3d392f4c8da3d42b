r"""Rank of weights: effective, stable and numerical rank, and the rank of ``W - I``.

For singular values :math:`\sigma_1 \ge \dots \ge \sigma_r` of a matrix:

* effective rank (Roy & Vetterli 2007): :math:`\exp(-\sum_i p_i \log p_i)`,
  :math:`p_i = \sigma_i / \sum_j \sigma_j`;
* stable rank: :math:`\|W\|_F^2 / \|W\|_2^2 = \sum_i \sigma_i^2 / \sigma_1^2`;
* numerical rank: :math:`\#\{i : \sigma_i > \text{tol}\}` with, by default,
  :math:`\text{tol} = \sigma_1 \cdot \max(P, Q) \cdot \varepsilon` (numpy's
  ``matrix_rank`` rule, :math:`\varepsilon` the machine epsilon of the weight's dtype).

ZerO's "low-rank learning trajectory" is the numerical rank of :math:`W - I`
(for convolutions :math:`W` minus the identity kernel on the centre tap,
flattened to ``(out, in * prod(k))``), defined for square layers, tracked over
training: it starts at 0 and grows only as far as learning needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..contract import checked_arguments
from ..init.roles.layers import MATRIX_LAYER_TYPES, layer_geometry
from ..init.tensor.zero import identity_
from ._checks import check_initial, check_matrix


def _matrix(weight: torch.Tensor) -> torch.Tensor:
    return weight.detach().double().reshape(weight.shape[0], -1)


def singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """Singular values (float64, descending) of a 2-D matrix or a weight flattened to ``(dim0, rest)``."""
    return torch.linalg.svdvals(_matrix(matrix))


def _effective_rank(s: torch.Tensor) -> float:
    total = s.sum()
    if total == 0:
        return 0.0
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def _stable_rank(s: torch.Tensor) -> float:
    return float((s.square().sum() / s[0].square()).item()) if s.numel() and s[0] > 0 else 0.0


def _tolerance(s: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> float:
    return float(s[0]) * max(shape) * torch.finfo(dtype).eps if s.numel() else 0.0


def _numerical_rank(s: torch.Tensor, tol: float) -> int:
    return int((s > tol).sum()) if s.numel() and s[0] > 0 else 0


@checked_arguments()
def effective_rank(matrix: torch.Tensor) -> float:
    """Roy & Vetterli's effective rank (0 for the zero matrix).

    >>> round(effective_rank(torch.eye(5)), 6)
    5.0
    """
    return _effective_rank(singular_values(check_matrix("effective_rank", matrix)))


@checked_arguments()
def stable_rank(matrix: torch.Tensor) -> float:
    r"""Squared Frobenius over squared spectral norm (0 for the zero matrix).

    >>> stable_rank(torch.diag(torch.tensor([2.0, 1.0])))
    1.25
    """
    return _stable_rank(singular_values(check_matrix("stable_rank", matrix)))


@checked_arguments(ranges={"tol": (0.0, math.inf)})
def numerical_rank(matrix: torch.Tensor, tol: float | None = None, eps_dtype: torch.dtype | None = None) -> int:
    """Number of singular values above ``tol``.

    Default ``tol = sigma_max * max(P, Q) * eps``, with ``eps`` of ``eps_dtype``
    (by default the matrix's own dtype).
    """
    s = singular_values(check_matrix("numerical_rank", matrix))
    if tol is None:
        tol = _tolerance(s, tuple(_matrix(matrix).shape), eps_dtype or matrix.dtype)
    return _numerical_rank(s, tol)


@checked_arguments()
def minus_identity(module: nn.Module) -> torch.Tensor | None:
    """``W - I`` of a square Linear / conv layer (identity kernel on the centre tap), else ``None``."""
    weight = module.weight.detach()
    groups, transposed = layer_geometry(module)
    out_ch = module.out_features if isinstance(module, nn.Linear) else module.out_channels
    in_ch = module.in_features if isinstance(module, nn.Linear) else module.in_channels
    if out_ch != in_ch:
        return None
    eye = identity_(torch.empty_like(weight), groups=groups, transposed=transposed)
    return weight - eye


@dataclass(frozen=True)
class RankRow:
    """Rank measures of one layer."""

    name: str
    shape: tuple[int, ...]
    effective_rank: float
    stable_rank: float
    numerical_rank: int
    rank_w_minus_i: int | None  # None for non-square layers
    tol_w_minus_i: float | None
    rank_update: int | None = None  # rank of W - W0, when initial weights are given


@checked_arguments(ranges={"tol": (0.0, math.inf)})
def rank_table(
    model: nn.Module, tol: float | None = None, initial: dict[str, torch.Tensor] | None = None
) -> list[RankRow]:
    """Rank measures of every Linear / conv weight (one SVD per weight and one per ``W - I``).

    Numerical ranks use ``tol`` if given, else the default rule with the weight's dtype.
    With ``initial`` (``{module name: weight at init}``) each row also has
    ``rank_update``, the numerical rank of the learned update :math:`W - W_0`:
    the measure of what training added for layers that do not start at the
    identity (ZerO's Hadamard and zero layers, every layer of a random init).
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, MATRIX_LAYER_TYPES)}
    check_initial("rank_table", {name: m.weight for name, m in layers.items()}, initial)
    rows = []
    for name, module in layers.items():
        w = module.weight.detach()
        shape = tuple(_matrix(w).shape)
        s = singular_values(w)
        rank = _numerical_rank(s, tol if tol is not None else _tolerance(s, shape, w.dtype))
        delta = minus_identity(module)
        rank_delta = tol_delta = None
        if delta is not None:
            s_delta = singular_values(delta)
            tol_delta = tol if tol is not None else _tolerance(s_delta, shape, w.dtype)
            rank_delta = _numerical_rank(s_delta, tol_delta)
        rank_update = None
        if initial is not None and name in initial:
            s_update = singular_values(w - initial[name].to(w.device))
            rank_update = _numerical_rank(s_update, tol if tol is not None else _tolerance(s_update, shape, w.dtype))
        rows.append(
            RankRow(name, tuple(w.shape), _effective_rank(s), _stable_rank(s), rank, rank_delta, tol_delta, rank_update)
        )
    return rows
