"""Sweeps: grids of learning runs, run locally or on Dask, into one tidy table.

Main names: :func:`expand` (spec -> runs), :func:`run_sweep` (runs -> table and
histories), :func:`load_history`, :func:`read_csv`, :func:`notebook_trial`.
"""

from learnboard.studies.sweep.execute import SweepResult, load_history, read_csv, run_sweep
from learnboard.studies.sweep.runs import COLUMNS, execute, notebook_trial
from learnboard.studies.sweep.spec import expand, run_id

__all__ = ["COLUMNS", "SweepResult", "execute", "expand", "load_history", "notebook_trial",
           "read_csv", "run_id", "run_sweep"]
