"""A study's runs read back from their run directories, and grouped over seeds."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..contract import checked_arguments
from .runner import run_dir
from .study import RunSpec, Study


@dataclass
class RunRecord:
    """What one run of a study recorded in its run directory."""

    spec: RunSpec
    status: str
    history: list[dict[str, Any]]
    diagnostics: list[dict[str, Any]]
    signal_at_init: list[dict[str, Any]] | None = None  # None for runs that predate the record
    damage: str | None = None  # what makes a complete run's records not whole (RunDir.damage), for the report


@dataclass
class GroupSummary:
    """Runs sharing every label but the seed."""

    key: tuple[Any, ...]
    runs: list[RunRecord] = field(default_factory=list)

    def values(self, metric: str, best: bool = False, lower_is_better: bool = False) -> list[float]:
        """The final (or best: largest, smallest with ``lower_is_better``) value of each complete run."""
        out = []
        for r in self.runs:
            if r.status == "complete" and r.history:
                series = [h[metric] for h in r.history]
                out.append((min(series) if lower_is_better else max(series)) if best else series[-1])
        return out


@checked_arguments()
def collect(study: Study) -> list[RunRecord]:
    """Every run's status, metrics and diagnostics, read from its directory."""
    records = []
    for spec in study.runs:
        run = run_dir(study, spec)
        status, changed = run.status(), run.changed_keys(spec.config)
        damage = run.damage(spec.config.epochs) if status == "complete" else None
        if changed:  # a run of another config (the study file was edited): never reported as this study's
            status, damage = "changed", f"its directory holds a run of another config (keys {', '.join(changed)})"
        records.append(RunRecord(spec, status, run.metrics(), run.diagnostics(), run.signal_at_init(), damage))
    return records


def group(study: Study, records: list[RunRecord]) -> list[GroupSummary]:
    groups: OrderedDict[tuple, GroupSummary] = OrderedDict()
    for r in records:
        key = tuple(r.spec.labels.get(g) for g in study.group_by)
        groups.setdefault(key, GroupSummary(key)).runs.append(r)
    return list(groups.values())


def is_language_model(records: list[RunRecord]) -> bool:
    """Whether the runs are language modelling (their configs' task; a study does not mix tasks)."""
    return any(r.spec.config.task == "language_modelling" for r in records)
