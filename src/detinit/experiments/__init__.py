"""Experiments: grids of runs from one config, resumable, with a report (markdown + PNG plots)."""

from .records import collect
from .report import write_report
from .runner import run_study
from .study import RunSpec, Study, load_study, parse_study, select_runs
from .tables import mean_std, text_table

__all__ = [
    "RunSpec",
    "Study",
    "collect",
    "load_study",
    "mean_std",
    "parse_study",
    "run_study",
    "select_runs",
    "text_table",
    "write_report",
]
