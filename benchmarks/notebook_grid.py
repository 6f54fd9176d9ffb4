"""The published notebook's full grid: 18 lambda values x 5 trials, 1e5 steps each, on r1.

Run: ``python benchmarks/notebook_grid.py [--workers 2] [--steps 100000] [--out DIR] [--overhead]``.
Trials are drawn as the notebook draws them (:func:`learnboard.studies.sweep.notebook_trial`):
one ``RandomState(0)`` stream; trial 0 is the published task (A = [[0.2, 0.3], [0.1, 0.5]],
edges 45, 118 -> 16, 56); each later trial draws A + 0.1 N(0, 1), then fresh source and
target edges and inputs. Lambda: 0 and 17 values at half decades from 1e-10 to 1e-2.

The grid is written as a sweep spec and run by the ``learnboard sweep`` command in a child
process (the path users take); the time printed is that whole command's wall time, with its
CPU time, against the ideal: the runs' engine time summed, divided by the workers. Then the
table of C/C0 and P (½ convention) per lambda and trial. ``--overhead`` also measures what a
run costs besides its steps: the command's start, a worker's start (spawn, imports, loading
the compiled kernels), a run's setup and the writing of its result.
By default a fresh temporary folder is used so the time is honest (a re-run with the same
--out skips finished runs).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from learnboard.studies.sweep.execute import read_csv  # noqa: E402

from learnboard.reference import reference_file, require_folder  # noqa: E402

LAMBDAS = "{log = [1e-10, 1e-2], num = 17, zero = true}"


def write_spec(path: Path, network: str, steps: int, trials: int) -> None:
    """The grid as a ``learnboard sweep`` spec (TOML)."""
    path.write_text(f"""name = "notebook-grid"
steps = {steps}

[task]
kind = "trials"

[grid]
lam = {LAMBDAS}
seeds = {trials}

[[networks]]
file = {str(Path(network).resolve())!r}
label = "r1"
""".replace("'", '"'))


def run_cli(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (the child's user + system) of ``learnboard ARGS`` (output hidden)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "learnboard", *args], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _worker_start(submitted: float) -> dict:
    """In a fresh (spawned) worker: seconds from the submission to here (process start and
    imports), and to load the compiled kernels."""
    started = time.time() - submitted
    from learnboard.studies.sweep import runs  # noqa: F401 - imported by now: costs nothing
    from learnboard.studies.sweep.execute import warm_worker

    t1 = time.perf_counter()
    warm_worker()
    return {"start": started, "kernels": time.perf_counter() - t1}


def overhead(spec: Path, out: Path, workers: int) -> list[str]:
    """What each run costs besides its steps, measured piece by piece."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from learnboard.studies.sweep import expand
    from learnboard.studies.sweep.execute import _store, warm_worker
    from learnboard.studies.sweep.runs import execute

    lines = []
    dry, _ = run_cli(["sweep", str(spec), "--out", str(out / "dry"), "--dry-run"])
    lines.append(f"  command start (learnboard sweep --dry-run: interpreter, imports, spec): "
                 f"{dry:.2f} s once")
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        starts = [f.result() for f in [pool.submit(_worker_start, time.time())
                                       for _ in range(workers)]]
    pool_s = time.perf_counter() - t0
    lines.append(f"  pool start ({workers} spawned workers, imports and kernel loading included): "
                 f"{pool_s:.2f} s once; per worker: process start and imports "
                 f"{np.mean([s['start'] for s in starts]):.2f} s, engine imports (scipy, numba) "
                 f"and compiled kernels from numba's cache {np.mean([s['kernels'] for s in starts]):.2f} s")
    warm_worker()
    run = dict(expand(str(spec))[0])
    run["steps"] = 1000
    execute(run)  # first use in this process: kernel dispatch
    t = time.perf_counter()
    row, history = execute(run)
    setup = time.perf_counter() - t - row["seconds"]
    (out / "probe" / "runs").mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    for _ in range(10):
        _store(out / "probe", run, dict(row), history)
    store = (time.perf_counter() - t) / 10
    lines.append(f"  per run: setup (engine, task, evaluations, history) {setup * 1e3:.1f} ms, "
                 f"result writing (npz + json) {store * 1e3:.1f} ms")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--network", default=None,
                    help="network file (default: r1 in the folder $LEARNBOARD_REFERENCE)")
    ap.add_argument("--out", default=None, help="keep the sweep here (default: a temporary folder)")
    ap.add_argument("--overhead", action="store_true",
                    help="also measure the per-run overhead piece by piece")
    args = ap.parse_args()
    if args.network is None:
        folder, setting = require_folder(None, option_name="--network")
        args.network = str(reference_file(folder, "r1", setting))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or Path(tmp) / "grid")
        spec = Path(tmp) / "notebook-grid.toml"
        write_spec(spec, args.network, args.steps, args.trials)
        load = os.getloadavg()
        wall, cpu = run_cli(["sweep", str(spec), "--out", str(out), "--workers",
                             str(args.workers), "--quiet"])
        rows = [r for r in read_csv(out / "results.csv") if r["status"] == "ok"]
        extra = overhead(spec, Path(tmp), args.workers) if args.overhead else []
    engine = sum(r["seconds"] for r in rows)
    ideal = engine / args.workers
    print(f"\nnotebook grid: 18 lambda x {args.trials} trials x {args.steps} steps on "
          f"{Path(args.network).name}, learnboard sweep --workers {args.workers}: "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU ({len(rows)} runs ok; load average before "
          f"{load[0]:.2f})")
    print(f"ideal (engine time summed / workers): {ideal:.1f} s; wall / ideal {wall / ideal:.2f}; "
          f"overhead {wall - ideal:.1f} s in all, {(wall - ideal) / max(1, len(rows)) * 1e3:.0f} ms "
          f"per run; engine {engine / max(1, len(rows)) / args.steps * 1e6:.2f} µs/step")
    if extra:
        print("overhead, piece by piece:")
        print("\n".join(extra))
    lams = sorted({r["lam"] for r in rows})
    trials = sorted({r["seed"] for r in rows})
    cell = {(r["lam"], r["seed"]): r for r in rows}
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
