"""The study report: a markdown table of mean +/- std over seeds, learning curves, symmetry and rank
trajectories, and signal propagation at initialisation, as PNGs embedded in ``report.md``."""

from __future__ import annotations

import math
import os
import platform
import re
import statistics
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._table import format_table
from ..train.checkpoint import write_json, write_text
from .runner import run_dir
from .study import RunSpec, Study


@dataclass
class RunRecord:
    spec: RunSpec
    status: str
    history: list[dict[str, Any]]
    diagnostics: list[dict[str, Any]]


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


def mean_std(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    """``"m ± s"`` (sample std over seeds), ``"m"`` for one value, ``"-"`` for none.

    >>> mean_std([0.9, 0.92], scale=100)
    '91.00 ± 1.41'
    """
    if not values:
        return "-"
    m = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{m:.{digits}f}"
    return f"{m:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def collect(study: Study) -> list[RunRecord]:
    """Every run's status, metrics and diagnostics, read from its directory."""
    records = []
    for spec in study.runs:
        run = run_dir(study, spec)
        records.append(RunRecord(spec, run.status(), run.metrics(), run.diagnostics()))
    return records


def group(study: Study, records: list[RunRecord]) -> list[GroupSummary]:
    groups: OrderedDict[tuple, GroupSummary] = OrderedDict()
    for r in records:
        key = tuple(r.spec.labels.get(g) for g in study.group_by)
        groups.setdefault(key, GroupSummary(key)).runs.append(r)
    return list(groups.values())


def is_language_model(records: list[RunRecord]) -> bool:
    """Whether the runs are language modelling (their metrics count tokens, not images)."""
    return any("tokens_per_s" in h for r in records for h in r.history)


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
    return [*study.group_by, "epochs", *layers], rows


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
    return [*study.group_by, "epoch", *kinds], rows


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _label(study: Study, g: GroupSummary) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(study.group_by, g.key)) or "all runs"


def _plot_curves(
    study: Study,
    groups: list[GroupSummary],
    metric: str | Callable[[dict[str, Any]], float | None],
    ylabel: str,
    path: Path,
    source: str = "history",
    log: bool = False,
    scale: float = 1.0,
) -> Path | None:
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
        (line,) = ax.plot(epochs, mean.tolist(), style, marker="o", ms=3, label=f"{_label(study, g)} (n={len(series)})")
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


def _rank_sum(key: str) -> Callable[[dict[str, Any]], float | None]:
    """A diagnostics row's per-layer ranks under ``key`` (``rank_w_minus_i``, ``rank_update``), summed."""

    def total(diag: dict[str, Any]) -> float | None:
        ranks = diag.get(key)
        return float(sum(ranks.values())) if ranks is not None else None

    return total


def _signal_at_init(study: Study, groups: list[GroupSummary], path: Path) -> Path | None:
    """Channel variance over depth at initialisation, one line per group (first run of each)."""
    from ..data import load_dataset, to_float
    from ..diagnostics import signal_propagation
    from ..diagnostics.plots import pyplot, save_figure
    from ..train.trainer import build_model

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for g in groups:
        cfg = g.runs[0].spec.config
        data = load_dataset(cfg.data, "test", root=cfg.data_root, subset=64, seed=cfg.seed, **cfg.data_args)
        if not hasattr(data, "images"):  # token windows: the probe is for image models
            plt.close(fig)
            return None
        model = build_model(cfg, data)
        rows = signal_propagation(model, to_float(data.images, data.mean, data.std), data.labels)
        ax.plot(range(len(rows)), [max(r.var, 1e-16) for r in rows], marker="o", ms=3, label=_label(study, g))
    ax.set_yscale("log")
    ax.set_xlabel("block / layer index")
    ax.set_ylabel("average channel variance at init")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"{study.name}: signal propagation at initialisation (64 test images)")
    return save_figure(fig, path)


def write_report(study: Study, command: str = "", wall_seconds: float | None = None) -> Path:
    """Write ``report.md`` (+ PNGs, ``summary.json``) into the study folder; returns its path."""
    records = collect(study)
    groups = group(study, records)
    headers, rows = summary_rows(study, groups)
    out = study.out
    lm = is_language_model(records)
    if lm:
        figures = [
            (
                "Validation loss",
                _plot_curves(study, groups, "test_loss", "validation loss (nats/token)", out / "val_loss.png"),
            ),
            (
                "Training loss",
                _plot_curves(study, groups, "train_loss", "training loss (nats/token)", out / "train_loss.png"),
            ),
            (
                "Rank of the learned update W - W0, summed over layers",
                _plot_curves(
                    study,
                    groups,
                    _rank_sum("rank_update"),
                    "sum over layers of rank(W - W0)",
                    out / "rank_update.png",
                    source="diagnostics",
                ),
            ),
        ]
    else:
        figures = [
            (
                "Test accuracy",
                _plot_curves(study, groups, "test_acc", "test accuracy (%)", out / "test_acc.png", scale=100),
            ),
            (
                "Training loss",
                _plot_curves(study, groups, "train_loss", "training loss", out / "train_loss.png", log=True),
            ),
            (
                "Symmetry: max relative channel difference",
                _plot_curves(
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
                _plot_curves(
                    study,
                    groups,
                    _rank_sum("rank_w_minus_i"),
                    "sum over layers of rank(W - I)",
                    out / "rank.png",
                    source="diagnostics",
                ),
            ),
            ("Signal propagation at initialisation", _signal_at_init(study, groups, out / "signal_init.png")),
        ]
    total = sum(h["seconds"] for r in records for h in r.history)
    lines = [f"# Study: {study.name}", ""]
    if study.description:
        lines += [study.description.strip(), ""]
    lines += [
        f"- command: `{command or 'detinit study --config <file>'}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; "
        f"torch {torch.__version__}",
        f"- runs: {len(records)} ({sum(r.status == 'complete' for r in records)} complete); "
        f"training time summed over runs {total / 60:.1f} min"
        + (f"; wall time of this invocation {wall_seconds / 60:.1f} min" if wall_seconds is not None else ""),
        (
            "- losses in nats per token (bits = nats / ln 2): mean ± sample std over seeds; 'spread' is max - min "
            "of the final validation loss over seeds"
            if lm
            else "- accuracy: mean ± sample std over seeds; 'spread' is max - min of the final accuracy over seeds"
        ),
        "",
        markdown_table(headers, rows),
        "",
    ]
    updates = update_rank_rows(study, groups) if lm else None
    if updates is not None:
        lines += [
            "## Rank of the learned update W - W0 per layer kind (mean over blocks and seeds; numerical rank, "
            "tolerance sigma_max * n * eps)",
            "",
            markdown_table(*updates),
            "",
        ]
    ranks = rank_rows(study, groups) if not lm else None
    if ranks is not None:
        lines += [
            "## Rank of W - I per square layer (numerical rank, tolerance sigma_max * n * eps of the weight dtype)",
            "",
            markdown_table(*ranks),
            "",
        ]
    for title, fig in figures:
        if fig is not None:
            lines += [f"## {title}", "", f"![{title}]({fig.name})", ""]
    text = "\n".join(lines)
    write_text(out / "report.md", text)
    write_json(
        out / "summary.json",
        {
            "headers": headers,
            "rows": rows,
            "metrics": metric_summary(study, groups),
            "runs": {r.spec.run_id: r.status for r in records},
        },
    )
    return out / "report.md"


def text_table(study: Study) -> str:
    """The summary table for a terminal, under a line saying what it measures."""
    records = collect(study)
    what = "validation loss" if is_language_model(records) else "accuracy on the test split"
    headers, rows = summary_rows(study, group(study, records))
    return f"{study.name}: {what}, mean ± std over seeds\n\n{format_table(headers, rows)}"
