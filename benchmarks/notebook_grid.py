"""The published notebook's full grid: 18 lambda values x 5 trials, 1e5 steps each, on r1.

Run: ``python benchmarks/notebook_grid.py [--workers 2] [--steps 100000] [--out DIR]``.
Trials are drawn as the notebook draws them (:func:`learnboard.studies.sweep.notebook_trial`):
one ``RandomState(0)`` stream; trial 0 is the published task (A = [[0.2, 0.3], [0.1, 0.5]],
edges 45, 118 -> 16, 56); each later trial draws A + 0.1 N(0, 1), then fresh source and
target edges and inputs. Lambda: 0 and 17 values at half decades from 1e-10 to 1e-2.
Prints the wall time and the table of C/C0 and P (½ convention) per lambda and trial.
Runs through ``learnboard.studies.sweep`` (local process pool), so a re-run with the same --out
skips finished runs; by default a fresh temporary folder is used so the time is honest.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from learnboard.studies.sweep import expand, run_sweep  # noqa: E402

from learnboard.reference import reference_file, require_folder  # noqa: E402

LAMBDAS = {"log": [1e-10, 1e-2], "num": 17, "zero": True}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--network", default=None,
                    help="network file (default: r1 in the folder $LEARNBOARD_REFERENCE)")
    ap.add_argument("--out", default=None, help="keep the sweep here (default: a temporary folder)")
    args = ap.parse_args()
    if args.network is None:
        folder, setting = require_folder(None, option_name="--network")
        args.network = str(reference_file(folder, "r1", setting))
    spec = {"steps": args.steps, "task": {"kind": "trials"},
            "grid": {"lam": LAMBDAS, "seeds": args.trials},
            "networks": [{"file": args.network, "label": "r1"}]}
    runs = expand(spec)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        t0 = time.perf_counter()
        res = run_sweep(runs, out, workers=args.workers, label="notebook grid")
        wall = time.perf_counter() - t0
    rows = [r for r in res.rows if r["status"] == "ok"]
    lams = sorted({r["lam"] for r in rows})
    trials = sorted({r["seed"] for r in rows})
    cell = {(r["lam"], r["seed"]): r for r in rows}
    print(f"\nnotebook grid: {len(lams)} lambda x {len(trials)} trials x {args.steps} steps on "
          f"{Path(args.network).name}, {args.workers} workers: {wall:.1f} s wall "
          f"({res.ran} runs, {res.skipped} skipped, {res.failed} failed; "
          f"run time sum {sum(r['seconds'] for r in rows):.1f} s)")
    head = "lambda    " + "".join(f"  trial {t} C/C0   P    " for t in trials)
    print(head)
    for lam in lams:
        parts = []
        for t in trials:
            r = cell.get((lam, t))
            parts.append(f"{r['relative_error']:10.3g} {r['power']:8.3g}  " if r else " " * 21)
        print(f"{lam:<9.3g} " + "".join(parts))
    sel = [lam for lam in lams if 1e-10 <= lam <= 1e-8]
    if len(sel) >= 2:  # trials whose lambda-0 run has an error floor break the law: shown per trial
        slopes = [np.polyfit(np.log10(sel), np.log10([cell[(lam, t)]["relative_error"]
                                                       for lam in sel]), 1)[0] for t in trials]
        print("log-log slope of C/C0 over lambda 1e-10..1e-8 per trial (paper: 2): "
              + ", ".join(f"{s:.2f}" for s in slopes))

if __name__ == "__main__":
    from learnboard.errors import LearnboardError

    try:
        main()
    except LearnboardError as exc:  # a missing reference folder: the message says what to set
        raise SystemExit(f"error: {exc}") from None
