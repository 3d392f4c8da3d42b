"""The tables of a study report: mean ± std over seeds, ranks per layer, and the numbers of ``summary.json``."""

from __future__ import annotations

import math
import re
import statistics
from typing import Any

from .._table import format_table
from ..contract import checked_arguments
from .records import GroupSummary, collect, group, is_language_model
from .study import Study


@checked_arguments(at_least={"digits": 0})
def mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """``"m ± s"`` (sample std over seeds), ``"m"`` for one value, ``"-"`` for none; values that are not
    finite (a run whose loss diverged) are left out of the statistics and counted in the cell.

    >>> mean_std([0.9, 0.92], scale=100)
    '91.00 ± 1.41'
    >>> mean_std([0.9, float("nan"), 0.92], scale=100)
    '91.00 ± 1.41 (1 of 3 not finite)'
    """
    if scale <= 0:
        raise ValueError(f"mean_std: scale={scale!r} must be > 0 (it multiplies the values and their spread)")
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        return f"{mean_std(finite, scale, digits)} ({len(values) - len(finite)} of {len(values)} not finite)"
    if not values:
        return "-"
    m = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def lm_summary_rows(study: Study, groups: list[GroupSummary]) -> tuple[list[str], list[list[str]]]:
    """Validation loss (nats per token, and bits), token accuracy, spread over seeds, time per epoch."""
    headers = [
        *study.group_by,
        "runs",
        "val loss (final)",
        "val loss (best)",
        "val bits/token (final)",
        "val token acc %",
        "train loss (final)",
        "spread of final val loss (max-min)",
        "s / epoch",
    ]
    rows = []
    for g in groups:
        final = g.values("test_loss")
        best = g.values("test_loss", best=True, lower_is_better=True)
        seconds = [h["seconds"] for r in g.runs for h in r.history]
        rows.append(
            [
                *(str(k) for k in g.key),
                _runs_cell(g),
                mean_std(final, 1, 3),
                mean_std(best, 1, 3),
                mean_std(final, 1 / math.log(2), 3),
                mean_std(g.values("test_acc"), 100),
                mean_std(g.values("train_loss"), 1, 3),
                f"{max(final) - min(final):.3f}" if len(final) > 1 else "-",
                f"{statistics.fmean(seconds):.1f}" if seconds else "-",
            ]
        )
    return headers, rows


def _runs_cell(g: GroupSummary) -> str:
    done = sum(r.status == "complete" for r in g.runs)
    other = [r.status for r in g.runs if r.status != "complete"]
    return f"{done}/{len(g.runs)}" + (f" ({', '.join(sorted(set(other)))})" if other else "")


def summary_rows(study: Study, groups: list[GroupSummary]) -> tuple[list[str], list[list[str]]]:
    if is_language_model([r for g in groups for r in g.runs]):
        return lm_summary_rows(study, groups)
    headers = [
        *study.group_by,
        "runs",
        "test acc % (final)",
        "test acc % (best)",
        "train loss (final)",
        "spread of final acc (max-min, pp)",
        "s / epoch",
    ]
    rows = []
    for g in groups:
        final = g.values("test_acc")
        seconds = [h["seconds"] for r in g.runs for h in r.history]
        runs = _runs_cell(g)
        spread = f"{(max(final) - min(final)) * 100:.2f}" if len(final) > 1 else "-"
        rows.append(
            [
                *(str(k) for k in g.key),
                runs,
                mean_std(final, 100),
                mean_std(g.values("test_acc", best=True), 100),
                mean_std(g.values("train_loss"), 1, 4),
                spread,
                f"{statistics.fmean(seconds):.1f}" if seconds else "-",
            ]
        )
    return headers, rows


def panel_rows(study: Study, groups: list[GroupSummary]) -> tuple[list[str], list[list[str]]] | None:
    """The final metric (test accuracy %, or validation loss for a language model) with one column per value of
    the study's last ``panel_by`` label (one budget a column) and one row per value of its other labels; a cell
    whose runs are not all complete says how many are (``"84.28 ± 0.88 (2 of 3; 1 diverged)"``). ``None`` without
    ``panel_by``."""
    if not study.panel_by:
        return None
    by = study.panel_by[-1]
    where = study.group_by.index(by)
    lm = is_language_model([r for g in groups for r in g.runs])
    columns: list[Any] = []
    table: dict[tuple[Any, ...], dict[Any, str]] = {}
    for g in groups:
        column, row = g.key[where], g.key[:where] + g.key[where + 1 :]
        if column not in columns:
            columns.append(column)
        final = g.values("test_loss") if lm else g.values("test_acc")
        cell = mean_std(final, 1, 3) if lm else mean_std(final, 100)
        done = sum(r.status == "complete" for r in g.runs)
        if done < len(g.runs):
            others = _status_counts(g)
            cell += f" ({done} of {len(g.runs)}{'; ' + others if others else ''})"
        table.setdefault(row, {})[column] = cell
    metric = "val loss (final)" if lm else "test acc % (final)"
    keys = [k for k in study.group_by if k != by]
    headers = [*keys, *(f"{metric}, {by}={c}" for c in columns)]
    return headers, [[*(str(k) for k in row), *(cells.get(c, "-") for c in columns)] for row, cells in table.items()]


def _status_counts(g: GroupSummary) -> str:
    """``"1 diverged, 1 pending"``: the runs of a group that are not complete, by status."""
    counts: dict[str, int] = {}
    for r in g.runs:
        if r.status != "complete":
            counts[r.status] = counts.get(r.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def _stats(values: list[float], scale: float = 1.0) -> dict[str, Any]:
    scaled = [v * scale for v in values]
    return {
        "mean": statistics.fmean(scaled) if scaled else None,
        "std": statistics.stdev(scaled) if len(scaled) > 1 else None,
        "values": scaled,
    }


def metric_summary(study: Study, groups: list[GroupSummary]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{group: {metric: {"mean", "std", "values"}}}`` over the complete runs of each group, for
    ``summary.json``: accuracies in %, losses as logged, ``std`` the sample std (``None`` for one run).
    The group is named by its labels joined with ", " (the variant name when grouping by variant)."""
    metrics = {
        "test_acc": ("test_acc", False, 100.0),
        "best_test_acc": ("test_acc", True, 100.0),
        "test_loss": ("test_loss", False, 1.0),
        "train_loss": ("train_loss", False, 1.0),
        "train_acc": ("train_acc", False, 100.0),
    }
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for g in groups:
        name = ", ".join(str(k) for k in g.key) or "all runs"
        history_keys = {k for r in g.runs for h in r.history for k in h}
        out[name] = {
            metric: _stats(g.values(key, best=best), scale)
            for metric, (key, best, scale) in metrics.items()
            if key in history_keys
        }
    return out


def rank_rows(study: Study, groups: list[GroupSummary]) -> tuple[list[str], list[list[str]]] | None:
    """rank(W - I) of every square layer at the first and the last diagnostics epoch, mean over seeds."""
    layers: list[str] = []
    for g in groups:
        for r in g.runs:
            for name in r.diagnostics[-1].get("rank_w_minus_i", {}) if r.diagnostics else {}:
                if name not in layers:
                    layers.append(name)
    if not layers:
        return None
    rows = []
    for g in groups:
        runs = [r for r in g.runs if r.diagnostics]
        if not runs:
            continue
        cells = []
        for name in layers:
            first = [r.diagnostics[0]["rank_w_minus_i"].get(name) for r in runs]
            last = [r.diagnostics[-1]["rank_w_minus_i"].get(name) for r in runs]
            if None in first or None in last:
                cells.append("-")
            else:
                cells.append(f"{statistics.fmean(first):.0f} → {statistics.fmean(last):.0f}")
        epochs = f"{runs[0].diagnostics[0]['epoch']} → {runs[0].diagnostics[-1]['epoch']}"
        rows.append([*(str(k) for k in g.key), epochs, *cells])
    return [*study.group_by, "diagnostics at epochs", *layers], rows


def layer_kind(name: str) -> str:
    """A layer's name with block indices replaced by ``*`` (``blocks.3.attn.qkv`` -> ``blocks.*.attn.qkv``).

    >>> layer_kind("blocks.11.mlp.fc")
    'blocks.*.mlp.fc'
    """
    return re.sub(r"\.\d+\.", ".*.", name)


def update_rank_rows(study: Study, groups: list[GroupSummary]) -> tuple[list[str], list[list[str]]] | None:
    """rank(W - W0) at the last diagnostics epoch per layer kind, mean over blocks and seeds, of its full rank."""
    kinds: dict[str, int] = {}
    for g in groups:
        for r in g.runs:
            last = r.diagnostics[-1] if r.diagnostics else {}
            for name in last.get("rank_update", {}):
                kinds.setdefault(layer_kind(name), 0)
    if not kinds:
        return None
    rows = []
    for g in groups:
        runs = [r for r in g.runs if r.diagnostics and "rank_update" in r.diagnostics[-1]]
        if not runs:
            continue
        cells = []
        for kind in kinds:
            values = [v for r in runs for n, v in r.diagnostics[-1]["rank_update"].items() if layer_kind(n) == kind]
            cells.append(f"{statistics.fmean(values):.1f}" if values else "-")
        rows.append([*(str(k) for k in g.key), str(runs[0].diagnostics[-1]["epoch"]), *cells])
    return [*study.group_by, "diagnostics at epoch", *kinds], rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


@checked_arguments()
def text_table(study: Study) -> str:
    """The summary table for a terminal, under a line saying what it measures."""
    records = collect(study)
    what = "validation loss" if is_language_model(records) else "accuracy on the test split"
    headers, rows = summary_rows(study, group(study, records))
    return f"{study.name}: {what}, mean ± std over seeds\n\n{format_table(headers, rows)}"
