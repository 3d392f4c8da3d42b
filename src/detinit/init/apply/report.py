"""What :func:`detinit.initialize` did to each parameter, as a table and a dict."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

from ..._table import format_table
from ...contract import check_fields

UNKNOWN = "unknown"
FROZEN = "frozen"


class ParamRecord(NamedTuple):
    """One parameter: where it lives, the rule applied and why (a named tuple: one is built per parameter)."""

    name: str
    module_type: str
    shape: tuple[int, ...]
    role: str
    rule: str
    reason: str


@dataclass
class InitReport:
    """The record of one :func:`detinit.initialize` call.

    ``records`` has one entry per parameter, in ``named_parameters()`` order.
    Parameters of modules no rule knows have ``rule == "unknown"`` and were
    left unchanged; :attr:`unknown` lists them.

    >>> import torch
    >>> from detinit import initialize
    >>> report = initialize(torch.nn.Linear(4, 8), "zero")
    >>> report.counts()
    {'hadamard': 1, 'zeros': 1}
    """

    scheme: str
    options: dict[str, object]
    seed: int | None
    records: list[ParamRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what tracing assumed, or why a promise is not kept
    open_blocks: list[str] = field(default_factory=list)  # entry blocks started with their branch on (ZerO)

    def __post_init__(self) -> None:
        """A report built by hand (or read back) holds what :func:`detinit.initialize` would have put in it:
        :func:`detinit.train.param_groups` and the trainer read its records by name and role."""
        check_fields(self)  # records: a list of ParamRecord (the contract's list[X]); notes: of str

    @property
    def unknown(self) -> list[ParamRecord]:
        """Parameters left unchanged because no rule knows their module."""
        return [r for r in self.records if r.rule == UNKNOWN]

    def counts(self) -> dict[str, int]:
        """How many parameters each rule hit."""
        return dict(sorted(Counter(r.rule for r in self.records).items()))

    def __getitem__(self, name: str) -> ParamRecord:
        for record in self.records:
            if record.name == name:
                return record
        raise KeyError(f"no parameter {name!r} in the report")

    def to_dict(self) -> dict[str, object]:
        """Plain-data form (JSON-serialisable) for run records."""
        return {
            "scheme": self.scheme,
            "options": dict(self.options),
            "seed": self.seed,
            "counts": self.counts(),
            "parameters": [r._asdict() | {"shape": list(r.shape)} for r in self.records],
            "notes": list(self.notes),
            "open_blocks": list(self.open_blocks),
        }

    def table(self) -> str:
        """A fixed-width table: parameter, module, shape, role, rule, reason."""
        rows = [
            (r.name, r.module_type, "x".join(map(str, r.shape)) or "scalar", r.role, r.rule, r.reason)
            for r in self.records
        ]
        return format_table(("parameter", "module", "shape", "role", "rule", "reason"), rows)

    def __str__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in self.options.items())
        title = f"detinit.initialize: scheme={self.scheme}" + (f" ({opts})" if opts else "")
        if self.seed is not None:
            title += f", seed={self.seed}"
        summary = ", ".join(f"{rule}: {n}" for rule, n in self.counts().items())
        text = f"{title}\n{self.table()}\n{len(self.records)} parameters -- {summary}"
        if self.unknown:
            names = sorted({f"{r.name.rsplit('.', 1)[0]} ({r.module_type})" for r in self.unknown})
            text += "\nleft unchanged, no rule for: " + "; ".join(names)
        if self.open_blocks:
            text += "\nentry blocks started on (open_blocks='entries'): " + ", ".join(self.open_blocks)
        for note in self.notes:
            text += f"\nnote: {note}"
        return text
