"""The study report: ``report.md`` (the tables of :mod:`.tables`, the figures of :mod:`.figures`) and
``summary.json`` in the study folder."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

from .. import __version__
from ..contract import checked_arguments
from ..train.checkpoint import write_json, write_text
from .figures import report_figures
from .records import collect, group, is_language_model
from .study import Study
from .tables import markdown_table, metric_summary, panel_rows, rank_rows, summary_rows, update_rank_rows


@checked_arguments(ranges={"wall_seconds": (0.0, float("inf"))})
def write_report(study: Study, command: str = "", wall_seconds: float | None = None) -> Path:
    """Write ``report.md`` (+ PNGs, ``summary.json``) into the study folder; returns its path. A study none of
    whose runs has started has nothing to report: a ``ValueError`` (a report of it would read as a study that ran).
    """
    records = collect(study)
    if all(record.status == "pending" for record in records):
        raise ValueError(
            f"write_report: none of the {len(records)} runs of study {study.name!r} in {study.out} has started; "
            "run it first (run_study)"
        )
    groups = group(study, records)
    headers, rows = summary_rows(study, groups)
    out = study.out
    lm = is_language_model(records)
    figures = report_figures(study, groups, out, language_model=lm)
    total = sum(h["seconds"] for r in records for h in r.history)
    lines = [f"# Study: {study.name}", ""]
    if study.description:
        lines += [study.description.strip(), ""]
    lines += [
        f"- command: `{command or 'detinit study --config <file>'}`",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; "
        f"torch {torch.__version__}; detinit {__version__}",
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
        *(
            (
                f"- **warning**: run {r.spec.run_id}: {r.damage}; it is left out of this report"
                if r.status == "changed"
                else f"- **warning**: run {r.spec.run_id} is complete but {r.damage}: this report reads what is "
                "left (run the study again to restore its records from the checkpoint)"
            )
            for r in records
            if r.damage
        ),
        "",
        markdown_table(headers, rows),
        "",
    ]
    panels = panel_rows(study, groups)
    if panels is not None:
        lines += [f"## By {study.panel_by[-1]}", "", markdown_table(*panels), ""]
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
