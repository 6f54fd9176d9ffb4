"""``learnboard paper``: reproduce Stern et al. 2024's findings as a report folder.

Main names: :func:`default_plan` / :class:`Plan` (what runs), :func:`run_paper` (runs the
sweeps, writes report.md, PNG figures and CSV tables), :func:`compare` (BRIEF §2 table).
"""

from learnboard.paper.compare import compare
from learnboard.paper.plan import Plan, default_plan
from learnboard.paper.report import Report, run_paper

__all__ = ["Plan", "Report", "compare", "default_plan", "run_paper"]
