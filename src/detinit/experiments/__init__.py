"""Experiments: grids of runs from one config, resumable, with a report (markdown + PNG plots)."""

from .report import collect, mean_std, text_table, write_report
from .runner import run_study
from .study import RunSpec, Study, load_study, parse_study

__all__ = [
    "RunSpec",
    "Study",
    "collect",
    "load_study",
    "mean_std",
    "parse_study",
    "run_study",
    "text_table",
    "write_report",
]
