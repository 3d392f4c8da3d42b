"""The one rule type, :class:`ParamRule`, and the helpers schemes build rules with.

A rule is what the resolver (:mod:`detinit.init.apply.resolve`) decides for one parameter: a short
name for the report, the reason, and the fill. A fill is a function ``fill(tensor, generator)``, or a
:class:`~detinit.init.tensor.row_fills.RowFill` where it can also write any block of the tensor's rows
alone (a shard's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...values import interval, is_number
from ..roles.layers import Matrix
from ..tensor.row_fills import ZEROS, RowFill, row_blocks_fill

Fill = Callable[[torch.Tensor, torch.Generator], object]


@dataclass(frozen=True)
class ParamRule:
    """How one parameter is filled: a short rule name, the reason, the fill.

    ``role`` is the parameter's own role where it is not its module's (a traced position table, token
    or layer scale); ``evidence`` says how a traced use was found (both set by the resolver). ``end``: the
    parameter is the scale that starts a residual branch or the output at 0 (a norm's scale or a layer
    scale; :mod:`detinit.init.apply.end_gain`).
    """

    rule: str
    reason: str
    fill: Fill
    role: str | None = None
    evidence: str = ""
    end: bool = False


WeightRule = ParamRule  # the name of detinit 0.1


def zeros(reason: str) -> ParamRule:
    """The rule ``zeros`` with ``reason``."""
    return ParamRule("zeros", reason, ZEROS)


def row_blocks_rule(blocks: list[tuple[int, int, ParamRule]], reason: str) -> ParamRule:
    """One rule for a weight whose output rows ``start:stop`` are blocks with rules of their own (fused
    projections, recurrent gates): each block is filled by its rule, in row order.

    >>> ones = ParamRule("ones", "", lambda w, g: w.fill_(1.0))
    >>> rule = row_blocks_rule([(0, 1, zeros("")), (1, 3, ones)], "0 then 1")
    >>> rule.rule, rule.fill(torch.empty(3, 2), torch.Generator())[:, 0].tolist()
    ('zeros+ones', [0.0, 1.0, 1.0])
    """
    fill = row_blocks_fill([(start, stop, rule.fill) for start, stop, rule in blocks])
    return ParamRule("+".join(dict.fromkeys(rule.rule for *_, rule in blocks)), reason, fill)


def index_fill(whole: Fill, rows: Callable[..., object], matrix: Matrix, **options: object) -> RowFill:
    """``whole`` with its block form ``rows(out, start, total, **options)`` (a :class:`RowFill`); for a
    Linear also the blocks of its transpose, which are ``rows`` of the ConvTranspose-like layout
    ``(in, out)`` (``transposed=True``)."""

    def blocks(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> object:
        return rows(out, start, total, **options)

    def transposed_blocks(out: torch.Tensor, start: int, total: int, generator: torch.Generator) -> object:
        return rows(out, start, total, **(options | {"transposed": True}))

    return RowFill(whole, blocks, transposed_blocks if matrix.kind == "linear" else None)


def check_bool(name: str, value: object) -> bool:
    """A scheme option that must be ``True`` or ``False`` (a string "false" would read as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"scheme option {name}={value!r} is not supported; {name} must be true or false")
    return value


def check_number(name: str, value: object, low: float, high: float = math.inf, *, open_low: bool = False) -> float:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    if not is_number(value, low, high, open_low=open_low):
        why = f"{name} must be a number in {interval(low, high, open_low=open_low)}"
        raise ValueError(f"scheme option {name}={value!r} is not supported; {why}")
    return float(value)  # type: ignore[arg-type]


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """One of ``choices``."""
    if value not in choices:
        raise ValueError(f"scheme option {name}={value!r} is not supported; choose one of {choices}")
    return value  # type: ignore[return-value]
