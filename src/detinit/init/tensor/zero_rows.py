r"""ZerO's fills for a block of rows alone: what one shard of a sharded weight holds.

Each function writes into ``out`` the rows ``start : start + len(out)`` of what its whole-tensor
counterpart in :mod:`detinit.init.tensor.zero` writes into a tensor of shape ``(total, *out.shape[1:])``, bitwise
(:mod:`detinit.init.tensor.row_fills` states the contract). The work and the scratch memory follow ``len(out)``:

* partial identity: row ``r`` of group ``g = r div R`` (``R = total / groups``) has its one at column
  ``r - gR`` on the centre tap, if that column exists;
* Hadamard block: row ``i`` of a group's matrix is :math:`c\,H[i, \text{cols}]`, the product of two small
  cached factors (:func:`~detinit.init.tensor.hadamard._product_rows_`), started at any row;
* unfolded kernel: the rows of the ``(P, QK)`` patch matrix, laid out per tap;
* embedding: token ``i`` is Hadamard row ``first + i mod period``, periodic from any start.

A ConvTranspose weight's rows are its inputs, the columns of each group's matrix: its block is the
Hadamard rows ``0 .. P - 1`` at the block's columns.

>>> from detinit.init.tensor.zero import zero_
>>> torch.equal(zero_rows_(torch.empty(3, 4), 5, 12), zero_(torch.empty(12, 4))[5:8])
True
"""

from __future__ import annotations

import math

import torch

from ...contract import checked_arguments
from ._no_grad import no_grad
from .embedding import _repeat_rows_, check_table, embedding_rows
from .hadamard import _product_columns_, _product_rows_, _sylvester_entries_
from .layout import centre_plane, check_choice_argument
from .row_fills import check_block, check_window, group_spans
from .zero import COLUMNS, _check_norm, _hadamard_factors, hadamard_scale, unfolded_kernel


@no_grad
@checked_arguments(at_least={"start": 0})
def partial_identity_rows_(
    out: torch.Tensor, start: int, total: int, *, groups: int = 1, transposed: bool = False
) -> torch.Tensor:
    """Rows ``start : start + len(out)`` of :func:`~detinit.init.tensor.zero.partial_identity_` on a
    ``total``-row weight.

    >>> partial_identity_rows_(torch.empty(2, 3), 1, 4)
    tensor([[0., 1., 0.],
            [0., 0., 1.]])
    """
    check_block(out, start, total, "partial_identity_rows_", groups, transposed)
    out.zero_()
    plane, per_group, columns = centre_plane(out), total // groups, out.shape[1]
    for g, lo, hi in group_spans(start, len(out), per_group):
        first = lo - g * per_group  # the group's row, which is also its column on the diagonal
        count = max(0, min(hi - lo, columns - first))
        if count:
            plane[lo - start : lo - start + count, first : first + count].diagonal().fill_(1)
    return out


@no_grad
@checked_arguments(at_least={"start": 0})
def zero_rows_(
    out: torch.Tensor,
    start: int,
    total: int,
    *,
    norm: str = "orthonormal",
    groups: int = 1,
    transposed: bool = False,
    columns: str = "first",
) -> torch.Tensor:
    """Rows ``start : start + len(out)`` of :func:`~detinit.init.tensor.zero.zero_` on a ``total``-row weight.

    >>> zero_rows_(torch.empty(2, 2), 1, 4)
    tensor([[ 0.5000, -0.5000],
            [ 0.5000,  0.5000]])
    """
    _check_norm(norm)
    check_choice_argument("zero_rows_", "columns", columns, COLUMNS)
    check_block(out, start, total, "zero_rows_", groups, transposed)
    per_group = total // groups
    p, q = (out.shape[1], per_group) if transposed else (per_group, out.shape[1])
    if p <= q:
        return partial_identity_rows_(out, start, total, groups=groups, transposed=transposed)
    scale = hadamard_scale(p, norm)
    if out.dim() > 2 and math.prod(out.shape[2:]) > 1:  # the other taps
        out.zero_()
    plane = centre_plane(out)
    high, low = _hadamard_factors(p, q, columns, scale, out.dtype, out.device)
    block = _product_columns_ if transposed else _product_rows_  # transposed: rows are the group's inputs
    for g, lo, hi in group_spans(start, len(out), per_group):
        block(plane[lo - start : hi - start], high, low, first=lo - g * per_group)
    return out


@no_grad
@checked_arguments(at_least={"start": 0})
def zero_unfolded_rows_(
    out: torch.Tensor, start: int, total: int, *, norm: str = "orthonormal", groups: int = 1, columns: str = "spanning"
) -> torch.Tensor:
    """Rows ``start : start + len(out)`` of :func:`~detinit.init.tensor.zero.zero_unfolded_` on a ``total``-row kernel.

    >>> from detinit.init.tensor.zero import zero_unfolded_
    >>> torch.equal(zero_unfolded_rows_(torch.empty(2, 1, 3, 3), 1, 3), zero_unfolded_(torch.empty(3, 1, 3, 3))[1:])
    True
    """
    _check_norm(norm)
    check_block(out, start, total, "zero_unfolded_rows_", groups)
    per_group, in_features = total // groups, out.shape[1]
    taps = math.prod(out.shape[2:])
    if taps == 1 or per_group <= in_features:
        return zero_rows_(out, start, total, norm=norm, groups=groups, columns=columns)
    for g, lo, hi in group_spans(start, len(out), per_group):
        matrix = torch.empty(hi - lo, in_features * taps, dtype=out.dtype, device=out.device)
        zero_rows_(matrix, lo - g * per_group, per_group, norm=norm, columns=columns)
        out[lo - start : hi - start] = unfolded_kernel(matrix, tuple(out.shape[2:]))
    return out


@no_grad
@checked_arguments(at_least={"start": 0})
def zero_embedding_rows_(
    out: torch.Tensor, start: int, total: int, *, norm: str = "orthonormal", constant_token: bool = False
) -> torch.Tensor:
    """Rows ``start : start + len(out)`` of :func:`~detinit.init.tensor.embedding.zero_embedding_` on a
    ``total``-token table.

    >>> from detinit.init.tensor.embedding import zero_embedding_
    >>> torch.equal(zero_embedding_rows_(torch.empty(4, 8), 6, 20), zero_embedding_(torch.empty(20, 8))[6:10])
    True
    """
    _check_norm(norm)
    check_table(out, "zero_embedding_rows_", block=True)
    check_window(out, start, total, "zero_embedding_rows_")
    dim = out.shape[1]
    if total == dim:  # the identity
        out.zero_()[:, start : start + len(out)].diagonal().fill_(1)
        return out
    first, period = embedding_rows(dim, constant_token)
    head = min(len(out), period)  # token start + j has row first + (start + j) % period: periodic from any start
    rows = first + (start + torch.arange(head, device=out.device)) % period
    _sylvester_entries_(out[:head], rows, torch.arange(dim, device=out.device), hadamard_scale(dim, norm))
    return _repeat_rows_(out, head)


__all__ = ["partial_identity_rows_", "zero_embedding_rows_", "zero_rows_", "zero_unfolded_rows_"]
