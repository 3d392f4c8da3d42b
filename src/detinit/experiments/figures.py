"""The figures of a study report: learning curves, symmetry and rank trajectories (mean ± std over seeds),
and signal propagation at initialisation, as PNGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .records import GroupSummary
from .study import Study


def label(study: Study, g: GroupSummary, panel: bool = False) -> str:
    """A group's legend label: its labels as ``key=value`` (inside a panel, without the label that names it)."""
    keys = [(k, v) for k, v in zip(study.group_by, g.key) if not (panel and k in study.panel_by)]
    return ", ".join(f"{k}={v}" for k, v in keys) or "all runs"


def plot_curves(
    study: Study,
    groups: list[GroupSummary],
    metric: str | Callable[[dict[str, Any]], float | None],
    ylabel: str,
    path: Path,
    source: str = "history",
    log: bool = False,
    scale: float = 1.0,
) -> Path | None:
    """One curve per group over training steps (mean over its runs, ± std shaded) of a metric in each run's
    ``history`` (metrics.jsonl) or ``diagnostics``, one panel per value of the study's ``panel_by`` label; over
    epochs where a run recorded no step counts. ``None`` when no run has the metric."""
    from ..diagnostics.plots import pyplot, save_figure

    value_of = metric if callable(metric) else (lambda row: row.get(metric))
    points = [(g, _run_points(g, value_of, source)) for g in groups]
    by_step = all(epoch in steps for _, runs in points for run, steps in runs for epoch, _ in run)
    curves = [(g, [[(steps[e] if by_step else e, v) for e, v in run] for run, steps in runs]) for g, runs in points]
    panels = _panels(study, [(g, series) for g, series in curves if series])
    if not panels:
        return None
    plt = pyplot()
    rows = list(dict.fromkeys(r for r, _, _ in panels))
    columns = list(dict.fromkeys(c for _, c, _ in panels))
    wide = max(len(members) for _, _, members in panels) > 6
    size = ((10 if wide else 7) + 4 * (len(columns) - 1), (4.5 if wide else 4) * (1 + 0.8 * (len(rows) - 1)))
    fig, axes = plt.subplots(len(rows), len(columns), figsize=size, sharey=True, squeeze=False, layout="constrained")
    order: dict[str, list[str]] = {}  # a curve's colour: its place among the curves of its row of panels
    for row, _, members in panels:
        order.setdefault(row, [])
        order[row] += [name for g, _ in members if (name := label(study, g, panel=True)) not in order[row]]
    for row, column, members in panels:
        ax = axes[rows.index(row)][columns.index(column)]
        for g, series in members:
            _draw(ax, study, g, series, order[row].index(label(study, g, panel=True)), log=log, scale=scale)
        ax.set_title(", ".join(t for t in (row, column) if t), fontsize=9)
        if not wide:
            ax.legend(fontsize=7)
    if wide:  # many groups: one legend a row, beside its last axes, not over the curves
        for line in axes:
            handles: dict[str, tuple[Any, list[str]]] = {}  # a curve's name -> (its line, its run counts by panel)
            for ax in line:
                for drawn, name in zip(*ax.get_legend_handles_labels()):
                    base, _, count = name.rpartition(" (n=")
                    counts = handles.setdefault(base, (drawn, []))[1]
                    counts.extend([count.rstrip(")")] if count.rstrip(")") not in counts else [])
            names = [f"{base} (n={'/'.join(counts)})" for base, (_, counts) in handles.items()]
            legend_lines = [drawn for drawn, _ in handles.values()]
            line[-1].legend(legend_lines, names, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    for ax in axes.flat:
        ax.set_xlabel("training step" if by_step else "epoch")
        ax.grid(alpha=0.3)
        if log:
            ax.set_yscale("log")
    for line in axes:
        line[0].set_ylabel(ylabel + (" (exact 0 drawn at 1e-16)" if log else ""))
    fig.suptitle(f"{study.name}: {ylabel}")
    return save_figure(fig, path)


Series = list[list[tuple[float, float]]]


def _run_points(
    g: GroupSummary, value_of: Callable[[dict[str, Any]], float | None], source: str
) -> list[tuple[list[tuple[int, float]], dict[int, int]]]:
    """Per run of the group with the metric: its ``[(epoch, value)]`` and its history's epoch -> step map (epoch 0,
    the initialisation, is step 0)."""
    out = []
    for r in g.runs:
        rows = r.history if source == "history" else r.diagnostics
        points = [(row["epoch"], v) for row in rows if (v := value_of(row)) is not None]
        if points:
            out.append((points, {0: 0, **{h["epoch"]: h["step"] for h in r.history if "step" in h}}))
    return out


def _panels(
    study: Study, curves: list[tuple[GroupSummary, Series]]
) -> list[tuple[str, str, list[tuple[GroupSummary, Series]]]]:
    """``[(row title, column title, curves)]``: one panel per value of the study's ``panel_by`` labels (the last:
    columns; a first of two: rows), in the order the groups come; one panel without them."""
    if not curves:
        return []
    where = [study.group_by.index(k) for k in study.panel_by]
    panels: dict[tuple[str, str], list[tuple[GroupSummary, Series]]] = {}
    for g, series in curves:
        titles = [f"{k}={g.key[i]}" for k, i in zip(study.panel_by, where)]
        row, column = ("", *titles)[-2:] if titles else ("", "")
        panels.setdefault((row, column), []).append((g, series))
    return [(row, column, members) for (row, column), members in panels.items()]


def _draw(ax: Any, study: Study, g: GroupSummary, series: Series, index: int, *, log: bool, scale: float) -> None:
    """The mean of a group's runs (over the points every run has), ± std shaded."""
    length = min(len(s) for s in series)
    xs = [p[0] for p in series[0][:length]]
    values = torch.tensor([[p[1] * scale for p in s[:length]] for s in series], dtype=torch.float64)
    if log:
        values = values.clamp(min=1e-16)
    mean = values.mean(0)
    style = ("-", "--", ":", "-.")[(index // 10) % 4]  # the colour cycle has 10 colours
    name = f"{label(study, g, panel=True)} (n={len(series)})"
    (line,) = ax.plot(xs, mean.tolist(), style, color=f"C{index % 10}", marker="o", ms=3, label=name)
    if len(series) > 1:
        std = values.std(0)
        ax.fill_between(xs, (mean - std).tolist(), (mean + std).tolist(), color=line.get_color(), alpha=0.15)


def rank_sum(key: str) -> Callable[[dict[str, Any]], float | None]:
    """A diagnostics row's per-layer ranks under ``key`` (``rank_w_minus_i``, ``rank_update``), summed."""

    def total(diag: dict[str, Any]) -> float | None:
        ranks = diag.get(key)
        return float(sum(ranks.values())) if ranks is not None else None

    return total


def plot_signal_at_init(study: Study, groups: list[GroupSummary], path: Path) -> Path | None:
    """Channel variance over depth at initialisation, one line per group (its first run with the record
    ``signal_init.json``); ``None`` when no run has one (runs that predate it)."""
    from ..diagnostics.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    drawn = False
    for g in groups:
        rows = next((r.signal_at_init for r in g.runs if r.signal_at_init), None)
        if rows is None:
            continue
        ax.plot(range(len(rows)), [max(r["var"], 1e-16) for r in rows], marker="o", ms=3, label=label(study, g))
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_yscale("log")
    ax.set_xlabel("block / layer index")
    ax.set_ylabel("average channel variance at init")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{study.name}: signal propagation at initialisation (64 test examples)")
    return save_figure(fig, path)


def report_figures(
    study: Study, groups: list[GroupSummary], out: Path, *, language_model: bool
) -> list[tuple[str, Path | None]]:
    """Draw the report's figures into ``out``: ``[(title, path or None when there was nothing to draw)]``."""
    if language_model:
        return [
            (
                "Validation loss",
                plot_curves(study, groups, "test_loss", "validation loss (nats/token)", out / "val_loss.png"),
            ),
            (
                "Training loss",
                plot_curves(study, groups, "train_loss", "training loss (nats/token)", out / "train_loss.png"),
            ),
            (
                "Rank of the learned update W - W0, summed over layers",
                plot_curves(
                    study,
                    groups,
                    rank_sum("rank_update"),
                    "sum over layers of rank(W - W0)",
                    out / "rank_update.png",
                    source="diagnostics",
                ),
            ),
        ]
    return [
        (
            "Test accuracy",
            plot_curves(study, groups, "test_acc", "test accuracy (%)", out / "test_acc.png", scale=100),
        ),
        (
            "Training loss",
            plot_curves(study, groups, "train_loss", "training loss", out / "train_loss.png", log=True),
        ),
        (
            "Symmetry: max relative channel difference",
            plot_curves(
                study,
                groups,
                "max_channel_difference",
                "max relative channel difference",
                out / "symmetry.png",
                source="diagnostics",
                log=True,
            ),
        ),
        (
            "Rank of W - I, summed over square layers",
            plot_curves(
                study,
                groups,
                rank_sum("rank_w_minus_i"),
                "sum over layers of rank(W - I)",
                out / "rank.png",
                source="diagnostics",
            ),
        ),
        ("Signal propagation at initialisation", plot_signal_at_init(study, groups, out / "signal_init.png")),
    ]
