"""Compare runs: tables (markdown, rich) and figures (matplotlib, imported only when plotting).

Example:
    >>> from labelforge.report import ReportConfig, write_report  # doctest: +SKIP
    >>> write_report(ReportConfig(runs=("runs/base", "runs/overlay"), out="report"))  # doctest: +SKIP
"""

from .build import Entry, RatioPoint, Report, ReportConfig, ReportResult, build_report, write_report
from .load import Run, load_run, load_runs

__all__ = [
    "Entry",
    "RatioPoint",
    "Report",
    "ReportConfig",
    "ReportResult",
    "Run",
    "build_report",
    "load_run",
    "load_runs",
    "write_report",
]
