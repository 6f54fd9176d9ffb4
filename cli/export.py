"""``learnboard export``: tidy CSV tables from a run folder's telemetry log."""

from __future__ import annotations

import argparse

HELP = ("write a run folder's telemetry, events, checkpoints and summary as tidy CSV tables, "
        "or the run as one NetCDF file")
DESCRIPTION = """\
Read a run folder's append-only telemetry log (a record cut by a crash at the end is
ignored; damaged records inside it are skipped with one warning line giving their count and
byte offsets — `learnboard repair` writes a repaired copy) and write one CSV per table, with a header row and one row per record:
telemetry.csv (step, err, rel_err, pwr, lam, ... and `superseded` = 1 for rows a
restore redid: keep the rows with 0 for one value per step), events.csv, checkpoints.csv
(checkpoints and restores), summary.csv (key, value), and edges.csv / nodes.csv (long
tables of per-edge states and node voltages) when the telemetry carries them.
Numbers are written in their shortest exact form: reading them back gives the logged
values bit for bit. Columns: docs/tasks.md#export.

With --format netcdf: one NetCDF3 file, RUN_DIR/export/<run>.nc, for xarray, MATLAB or
R: per-step variables on a `step` dimension (one value per step), the edge states `k`
on (step, edge) and node voltages `v` on (step, node) when recorded, and the run's
metadata (firmware, description hash, board, calibration, seed, schedule) as
attributes. Needs xarray: pip install 'learnboard[lab]'."""
EPILOG = """\
examples:
  learnboard export runs/20261128-171502-regression --csv
      tables into runs/20261128-171502-regression/export/
  learnboard export runs/20261128-171502-regression --csv --out tables/
  learnboard export runs/20261128-171502-regression --format netcdf
      runs/20261128-171502-regression/export/20261128-171502-regression.nc
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `learnboard train`")
    parser.add_argument("--format", choices=("csv", "netcdf"), default=None,
                        help="csv: tidy tables (the default); netcdf: one NetCDF3 file (needs xarray)")
    parser.add_argument("--csv", action="store_true", help="write CSV tables (same as --format csv)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: RUN_DIR/export)")


def run(args: argparse.Namespace) -> int:
    from learnboard.errors import InputError

    if args.csv and args.format == "netcdf":
        raise InputError("--csv and --format netcdf ask for two formats; give one", field="--format")
    if args.format == "netcdf":
        from learnboard.host.netcdf import export_netcdf

        print(export_netcdf(args.run_dir, args.out))
        return 0
    from learnboard.host.tables import export_csv

    paths = export_csv(args.run_dir, args.out)
    for p in paths:
        print(p)
    return 0
