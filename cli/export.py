"""``learnboard export``: tidy CSV tables from a run folder's telemetry log."""

from __future__ import annotations

import argparse

HELP = "write a run folder's telemetry, events, checkpoints and summary as tidy CSV tables"
DESCRIPTION = """\
Read a run folder's append-only telemetry log (a record cut by a crash at the end is
ignored; damaged records inside it are skipped with one warning line giving their count and
byte offsets — `learnboard repair` writes a repaired copy) and write one CSV per table, with a header row and one row per record:
telemetry.csv (step, err, rel_err, pwr, lam, ... and `superseded` = 1 for rows a
restore redid: keep the rows with 0 for one value per step), events.csv, checkpoints.csv
(checkpoints and restores), summary.csv (key, value), and edges.csv / nodes.csv (long
tables of per-edge states and node voltages) when the telemetry carries them.
Numbers are written in their shortest exact form: reading them back gives the logged
values bit for bit. Columns: docs/tasks.md#export."""
EPILOG = """\
examples:
  learnboard export runs/20261128-171502-regression --csv
      tables into runs/20261128-171502-regression/export/
  learnboard export runs/20261128-171502-regression --csv --out tables/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `learnboard train`")
    parser.add_argument("--csv", action="store_true", help="write CSV tables (the only format so far)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: RUN_DIR/export)")


def run(args: argparse.Namespace) -> int:
    from learnboard.host.tables import export_csv

    paths = export_csv(args.run_dir, args.out)
    for p in paths:
        print(p)
    return 0
