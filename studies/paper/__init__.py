"""``learnboard paper``: reproduce the findings of Stern et al., APL Machine Learning 2,
016114 (2024) as a report folder.

Main names: :func:`default_plan` / :class:`Plan` (what runs), :func:`run_paper` (runs the
sweeps, writes report.md, PNG figures and CSV tables), :func:`compare` (the
reference results table).
"""

from learnboard.studies.paper.compare import compare
from learnboard.studies.paper.plan import Plan, default_plan
from learnboard.studies.paper.report import Report, run_paper

__all__ = ["Plan", "Report", "compare", "default_plan", "run_paper"]
