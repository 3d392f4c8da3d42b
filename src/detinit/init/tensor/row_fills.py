r"""Fills that can write any block of a weight's rows alone: how a shard initialises itself.

A deterministic initialisation is a function of the index, so the rows ``start : start + n`` of a weight
with ``total`` rows can be written without the others. FSDP2 shards every parameter along dimension 0,
so a rank that holds rows ``start : start + n`` of a parameter computes just those
(:func:`detinit.init.apply.sharded.write_`): its time and memory follow its shard, not the model.

A :class:`RowFill` is a fill function (``fill(tensor, generator)``, as every rule has) that also has
``rows(out, start, total, generator)``, which writes into ``out`` the rows ``start : start + len(out)`` of the
fill of a ``(total, *out.shape[1:])`` tensor. The contract, held by the tests on random shapes and windows:

.. math::
    \text{rows}(out, s, T)\ \text{gives}\ out = \text{fill}(W)[s : s + \text{len}(out)]
    \quad\text{bitwise, for}\ W\ \text{of shape}\ (T, *out.shape[1:]).

A fill of a 2-D ``(out, in)`` weight may also have ``transposed_rows(out, start, total, generator)``: the rows
``start : start + len(out)`` of the transpose of the fill of an ``(out.shape[1], total)`` weight, for a weight
stored ``(in, out)`` (Hugging Face's ``Conv1D``), whose shards are blocks of the layer's input columns.

Random fills have no ``rows``: every rank draws the whole tensor from the same generator state and keeps
its block, so a sharded model gets exactly the values of the unsharded one.

>>> eye = RowFill(lambda w, g: w.copy_(torch.eye(len(w))), lambda out, s, t, g: out.copy_(torch.eye(t)[s : s + len(out)]))
>>> eye.rows(torch.empty(1, 3), 2, 3, torch.Generator()).tolist()
[[0.0, 0.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from ...values import is_int
from .layout import check_layout

Fill = Callable[[torch.Tensor, torch.Generator], object]
RowsFill = Callable[[torch.Tensor, int, int, torch.Generator], object]  # (out, start, total, generator)


@dataclass(frozen=True)
class RowFill:
    """A fill (``whole(tensor, generator)``) that can also write any block of rows alone (``rows``), and,
    for a Linear weight, any block of the rows of its transpose (``transposed_rows``)."""

    whole: Fill
    rows: RowsFill
    transposed_rows: RowsFill | None = None

    def __call__(self, tensor: torch.Tensor, generator: torch.Generator) -> object:
        return self.whole(tensor, generator)


def rows_of(fill: Fill) -> RowsFill | None:
    """``fill``'s row-block function, or ``None`` when it can only fill a whole tensor (random draws)."""
    return fill.rows if isinstance(fill, RowFill) else None


def constant_fill(value: float) -> RowFill:
    """Every entry ``value`` (zeros, a norm's ones): any block of rows is the same fill.

    >>> constant_fill(1.0).rows(torch.empty(2, 2), 5, 9, torch.Generator()).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """

    def whole(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return tensor.zero_() if value == 0 else tensor.fill_(value)

    def rows(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> torch.Tensor:
        return whole(out, generator)

    return RowFill(whole, rows, rows)


ZEROS = constant_fill(0.0)
ONES = constant_fill(1.0)
MINUS_ONES = constant_fill(-1.0)
KEEP = RowFill(lambda tensor, generator: None, lambda out, start, total, generator: None)  # left as it is


def transposed_rows_of(fill: Fill) -> RowsFill | None:
    """``fill``'s block function for a weight stored transposed, or ``None``."""
    return fill.transposed_rows if isinstance(fill, RowFill) else None


def check_window(out: torch.Tensor, start: int, total: int, fn: str, groups: int = 1) -> None:
    """Refuse a block of rows that is not inside a ``total``-row tensor split into ``groups`` equal groups."""
    if out.dim() == 0 or not 0 <= start <= start + len(out) <= total:
        raise ValueError(
            f"{fn}: a block of shape {tuple(out.shape)} starting at row {start} is not inside a tensor of {total} "
            "rows; give rows start : start + len(out) with 0 <= start and start + len(out) <= total"
        )
    if not is_int(groups, 1) or total % groups:
        raise ValueError(f"{fn}: total={total} rows are not divisible by groups={groups!r} (a positive int)")


def check_block(out: torch.Tensor, start: int, total: int, fn: str, groups: int = 1, transposed: bool = False) -> None:
    """Refuse anything but a floating-point block of a weight's rows (2-5-D: Linear or conv, no empty column or tap
    dimension, ``groups`` only on a conv: :func:`~detinit.init.tensor.layout.check_layout`) that lies inside a
    ``total``-row weight in ``groups`` equal groups (:func:`check_window`)."""
    check_layout(out, fn, groups=groups, transposed=transposed, what="block")
    check_window(out, start, total, fn, groups)


def group_spans(start: int, count: int, per_group: int) -> Iterator[tuple[int, int, int]]:
    """``(g, lo, hi)``: the global rows ``lo : hi`` of group ``g`` (rows ``g * per_group ...``) that fall in
    ``start : start + count``.

    >>> list(group_spans(3, 4, 4))
    [(0, 3, 4), (1, 4, 7)]
    """
    stop = start + count
    for g in range(start // per_group, -(-stop // per_group)):
        yield g, max(start, g * per_group), min(stop, (g + 1) * per_group)


def row_blocks_fill(blocks: Sequence[tuple[int, int, Fill]]) -> Fill:
    """One fill for a weight whose rows ``a : b`` have fills of their own (fused projections, gates), in row
    order; a :class:`RowFill` when every block's fill is one.

    >>> fill = row_blocks_fill([(0, 1, ZEROS), (1, 3, ONES)])
    >>> fill.rows(torch.empty(2, 2), 0, 3, torch.Generator())[:, 0].tolist()
    [0.0, 1.0]
    """

    def whole(weight: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for start, stop, fill in blocks:
            fill(weight[start:stop], generator)
        return weight

    if any(rows_of(fill) is None for *_, fill in blocks):
        return whole

    def rows(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> torch.Tensor:
        stop = start + len(out)
        for a, b, fill in blocks:
            lo, hi = max(a, start), min(b, stop)
            if lo < hi:
                fill.rows(out[lo - start : hi - start], lo - a, b - a, generator)  # type: ignore[attr-defined]
        return out

    transposed = None
    if all(transposed_rows_of(fill) is not None for *_, fill in blocks):

        def transposed(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> torch.Tensor:
            for a, b, fill in blocks:  # the blocks are columns of the transpose
                fill.transposed_rows(out[:, a:b], start, total, generator)  # type: ignore[attr-defined]
            return out

    return RowFill(whole, rows, transposed)


def followed_by(fill: Fill, after: Callable[[torch.Tensor], object], *, transposed: bool = True) -> Fill:
    """``fill``, then ``after`` on what it wrote -- the whole tensor or a block of its rows alike, so ``after`` must
    act row by row (a scale, a per-row normalisation); a :class:`RowFill` if ``fill`` is, with the transposed form
    kept unless ``transposed=False`` (an ``after`` whose rows are outputs).

    >>> followed_by(ONES, lambda w: w.mul_(3)).rows(torch.empty(1, 2), 4, 9, torch.Generator()).tolist()
    [[3.0, 3.0]]
    """

    def then(write: Callable[..., object]) -> Callable[..., torch.Tensor]:
        def written(tensor: torch.Tensor, *args: object) -> torch.Tensor:  # (tensor, generator) or a block's args
            write(tensor, *args)
            after(tensor)
            return tensor

        return written

    if not isinstance(fill, RowFill):
        return then(fill)
    kept = fill.transposed_rows if transposed else None
    return RowFill(then(fill.whole), then(fill.rows), then(kept) if kept else None)


def with_zero_row(fill: Fill, row: int) -> Fill:
    """``fill``, then row ``row`` set to 0 (an embedding's padding token); a :class:`RowFill` if ``fill`` is.

    >>> with_zero_row(ONES, 1).rows(torch.empty(2, 1), 1, 3, torch.Generator()).flatten().tolist()
    [0.0, 1.0]
    """

    def whole(tensor: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        fill(tensor, generator)
        tensor[row].zero_()
        return tensor

    inner = rows_of(fill)
    if inner is None:
        return whole

    def rows(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> torch.Tensor:
        inner(out, start, total, generator)
        if start <= row < start + len(out):
            out[row - start].zero_()
        return out

    return RowFill(whole, rows)
