"""``learnboard sweep``: a grid of learning runs into one tidy table plus per-run histories."""

from __future__ import annotations

import argparse

HELP = "run a grid of learning runs (locally or on Dask) into one results table"
DESCRIPTION = """\
Run every combination of a sweep spec (TOML): lambda values or log ranges, tolerance-
controller runs, k0 and init modes, task seeds or notebook trials, target noise, steps, on
reference network files, generated networks or board profiles (with their device models,
optionally with the twin networks' mismatch and the ADC's resolution: imperfect = true).

Writes DIR/results.csv (one row per run: relative error C/C0, power in the paper's ½
convention, physical power Σ k dV² in W, training energy, tolerance tail means, timing)
and DIR/runs/<id>.npz (each run's history). Runs already finished in DIR are skipped, so
an interrupted sweep continues where it stopped; a failed run is recorded with its error
(status, error_message) and the sweep goes on. Spec format: docs/sweep.md."""

EPILOG = """\
example spec (lambda scan on a reference network and a generated one):
  steps = 100000
  [grid]
  lam = {log = [1e-10, 1e-4], num = 7, zero = true}
  tolerance = [1e-3]
  [[networks]]
  file = "data_N00064_Lp0.0100_r1.txt"      # relative to the spec file
  [[networks]]
  generate = "disordered:N=128,seed=2"

examples:
  learnboard sweep scan.toml --out sweeps/scan
      all local cores (one worker process per core)
  learnboard sweep scan.toml --out sweeps/scan --scheduler tcp://10.0.0.5:8786
      the same runs on a Dask distributed cluster (pip install 'learnboard[cluster]';
      workers need learnboard installed)
  learnboard sweep scan.toml --dry-run
      list the runs without running them
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC.toml", help="sweep spec (TOML), see docs/sweep.md")
    p.add_argument("--out", metavar="DIR", default=None,
                   help="output folder (default: sweeps/<spec name>)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                   help="run on this Dask distributed scheduler instead of local processes")
    p.add_argument("--workers", type=int, metavar="N", default=None,
                   help="local worker processes (default: number of cores; 1 = in this process)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary table")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from learnboard.studies.sweep import expand, run_sweep
    from learnboard.studies.sweep.execute import finished
    from learnboard.studies.sweep.spec import load_spec

    from learnboard.errors import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError("must be at least 1", field="--workers")
    runs = expand(args.spec)
    data, _ = load_spec(args.spec)
    out = Path(args.out or Path("sweeps") / str(data.get("name") or Path(args.spec).stem))
    if args.dry_run:
        for r in runs:
            print(f"{r['id']}{'  (done)' if finished(out, r['id']) else ''}")
        print(f"{len(runs)} runs")
        return 0
    res = run_sweep(runs, out, scheduler=args.scheduler, workers=args.workers,
                    progress=not args.quiet, label=out.name)
    if not args.quiet:
        _print_summary(res)
    print(f"{len(res.rows)} runs ({res.ran} run now, {res.skipped} already done, {res.failed} "
          f"failed) in {res.seconds:.1f} s -> {res.csv_path}")
    return 1 if res.failed else 0


def _print_summary(res) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="sweep results (power: ½ Σ k dV², physical W for boards)")
    for col in ("run", "status", "C/C0", "power", "tail C/C0", "s"):
        t.add_column(col)
    for r in res.rows[:40]:
        power = r.get("power") if r.get("power") is not None else r.get("power_watts")
        t.add_row(r["id"], r["status"] if r["status"] == "ok" else f"[red]{r.get('error_message')}",
                  _g(r.get("relative_error")), _g(power), _g(r.get("tail_relative_error")),
                  _g(r.get("seconds")))
    if len(res.rows) > 40:
        t.add_row(f"... {len(res.rows) - 40} more in results.csv", "", "", "", "", "")
    Console(stderr=True).print(t)


def _g(v) -> str:
    return "" if v is None else f"{v:.4g}"
