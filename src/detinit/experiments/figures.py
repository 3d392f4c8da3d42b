"""The figures of a study report: learning curves, symmetry and rank trajectories (mean ± std over seeds),
and signal propagation at initialisation, as PNGs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .records import GroupSummary
from .study import Study


def label(study: Study, g: GroupSummary) -> str:
    """A group's legend label: its labels as ``key=value``."""
    return ", ".join(f"{k}={v}" for k, v in zip(study.group_by, g.key)) or "all runs"


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
    """One curve per group over epochs (mean over its runs, ± std shaded) of a metric in each run's
    ``history`` (metrics.jsonl) or ``diagnostics``; ``None`` when no run has the metric."""
    from ..diagnostics.plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(10, 4.5) if len(groups) > 6 else (7, 4))
    drawn = False
    value_of = metric if callable(metric) else (lambda row: row.get(metric))
    for index, g in enumerate(groups):
        series = []
        for r in g.runs:
            rows = r.history if source == "history" else r.diagnostics
            points = [(row["epoch"], v) for row in rows if (v := value_of(row)) is not None]
            if points:
                series.append(points)
        if not series:
            continue
        length = min(len(s) for s in series)
        epochs = [p[0] for p in series[0][:length]]
        values = torch.tensor([[p[1] * scale for p in s[:length]] for s in series], dtype=torch.float64)
        if log:
            values = values.clamp(min=1e-16)
        mean = values.mean(0)
        style = ("-", "--", ":", "-.")[(index // 10) % 4]  # the colour cycle has 10 colours
        (line,) = ax.plot(epochs, mean.tolist(), style, marker="o", ms=3, label=f"{label(study, g)} (n={len(series)})")
        if len(series) > 1:
            std = values.std(0)
            ax.fill_between(epochs, (mean - std).tolist(), (mean + std).tolist(), color=line.get_color(), alpha=0.15)
        drawn = True
    if not drawn:
        plt.close(fig)
        return None
    title = f"{study.name}: {ylabel}"
    if log:
        ax.set_yscale("log")
        ylabel += " (exact 0 drawn at 1e-16)"
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if len(groups) > 6:  # many groups: the legend goes beside the axes, not over the curves
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7)
    ax.set_title(title)
    return save_figure(fig, path)


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
