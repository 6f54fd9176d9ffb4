"""Run a list of sweep runs locally (process pool) or on a Dask cluster, resumably.

Layout of an output folder::

    results.csv          one row per run of the sweep (columns: runs.COLUMNS)
    replicas.json        with grid.replicas: per grid point its runs, median, iqr, modes
    runs/<id>.json       the run's definition and its row (written last, atomically)
    runs/<id>.npz        the run's history (step, error, relative_error, power, ...)

A run whose ``runs/<id>.json`` says ``status = "ok"`` is skipped when the sweep is run
again; failed runs are retried.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from learnboard.studies.sweep.runs import COLUMNS, execute

from learnboard.errors import InputError


@dataclass
class SweepResult:
    """What :func:`run_sweep` did. ``rows`` are in the order of the runs given."""

    out: Path
    rows: list[dict]
    ran: int
    skipped: int
    failed: int
    seconds: float

    @property
    def csv_path(self) -> Path:
        return self.out / "results.csv"


def _run_file(out: Path, run_id: str) -> Path:
    return out / "runs" / f"{run_id}.json"


def finished(out: Path, run_id: str) -> dict | None:
    """The stored row of a run that completed successfully, else None."""
    path = _run_file(out, run_id)
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    row = stored.get("row", {})
    return row if row.get("status") == "ok" else None


def load_history(out: str | Path, run_id: str) -> dict[str, np.ndarray]:
    """The history arrays of a run (empty if it failed or has none)."""
    path = Path(out) / "runs" / f"{run_id}.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _store(out: Path, run: dict, row: dict, history: dict) -> None:
    runs_dir = out / "runs"
    if history:
        tmp = runs_dir / f"{run['id']}.tmp.npz"
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in history.items()})
        os.replace(tmp, runs_dir / f"{run['id']}.npz")
    tmp = runs_dir / f"{run['id']}.json.tmp"
    tmp.write_text(json.dumps({"run": run, "row": row}, indent=1, default=_jsonable) + "\n")
    os.replace(tmp, _run_file(out, run["id"]))  # last: its presence means "done"


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot store {type(v).__name__}")


def write_csv(path: Path, rows: Iterable[dict]) -> None:
    """The tidy table: one row per run, fixed columns, empty cells for missing values."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(["" if r.get(c) is None or (isinstance(r.get(c), float) and math.isnan(r[c]))
                        else r[c] for c in COLUMNS])
    os.replace(tmp, path)


INT_COLUMNS = {"n_nodes", "n_edges", "seed", "steps", "s0", "worker", "bursts", "replica"}


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a results table with numbers parsed (empty cells become None)."""
    with Path(path).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k, v in r.items():
            if v == "":
                r[k] = None
            elif v in ("True", "False"):
                r[k] = v == "True"
            else:
                try:
                    r[k] = int(v) if k in INT_COLUMNS else float(v)
                except ValueError:
                    pass
    return rows


def _check_unique(runs: list[dict]) -> list[dict]:
    seen, unique = set(), []
    for r in runs:
        if r["id"] not in seen:
            seen.add(r["id"])
            unique.append(r)
    return unique


POINT_KEYS = ("network", "imperfect", "task", "seed", "noise", "init", "k0", "lam",
              "tolerance", "steps", "alpha", "eta", "perturb")
"""What makes a grid point: every setting of a row but its replica number."""


def replica_points(rows: list[dict]) -> list[dict]:
    """Per grid point of replica runs: ``point`` (its settings), ``replicas`` (the rows,
    the same keys as any run's row), and ``median``, ``iqr``, ``range``, ``modes``,
    ``steady_runs``, ``below_floor_runs`` over its successful runs."""
    from learnboard.engine.replicas import distribution

    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("replica") is None:
            continue
        key = json.dumps([r.get(k) for k in POINT_KEYS])
        groups.setdefault(key, []).append(r)
    out = []
    for sel in groups.values():
        ok = [r for r in sel if r.get("status") == "ok"]
        summary = distribution([{k: v for k, v in r.items() if k not in ("replica", "worker")}
                                for r in ok])
        out.append({"point": {k: sel[0].get(k) for k in POINT_KEYS}, "failed": len(sel) - len(ok),
                    "replicas": sel, **summary})
    return out


def run_sweep(runs: list[dict], out: str | Path, *, scheduler=None, workers: int | None = None,
              progress: bool = True, label: str = "sweep",
              on_row: Callable[[dict], None] | None = None) -> SweepResult:
    """Run every run not finished yet in ``out``; write the table; return all rows.

    Args:
        runs: run dicts from :func:`learnboard.studies.sweep.spec.expand` (duplicates run once).
        out: output folder (created).
        scheduler: None for local processes, a Dask scheduler address (``tcp://host:port``)
            or a ``distributed.Client``.
        workers: local worker processes (default: all cores; 1 runs in this process).
        progress: show a rich progress bar on stderr.
    """
    import time

    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror}", source=str(out)) from None
    runs = _check_unique(runs)
    rows: dict[str, dict] = {}
    pending = []
    for r in runs:
        done = finished(out, r["id"])
        if done is not None:
            rows[r["id"]] = done
        else:
            pending.append(r)
    skipped = len(runs) - len(pending)
    t0 = time.perf_counter()
    failed = 0
    bar = _Bar(len(runs), skipped, label, enabled=progress)
    try:
        for run, (row, history) in _results(pending, scheduler, workers):
            _store(out, run, row, history)
            row.pop("traceback", None)
            rows[run["id"]] = row
            failed += row["status"] != "ok"
            bar.advance(failed)
            if on_row is not None:
                on_row(row)
    finally:
        bar.close()
        ordered = [rows[r["id"]] for r in runs if r["id"] in rows]
        write_csv(out / "results.csv", ordered)
        if any(r.get("replica") is not None for r in ordered):
            tmp = out / "replicas.json.tmp"
            tmp.write_text(json.dumps({"points": replica_points(ordered)}, indent=1,
                                      default=_jsonable) + "\n")
            os.replace(tmp, out / "replicas.json")
    return SweepResult(out, ordered, len(pending), skipped, failed, time.perf_counter() - t0)


def warm_worker() -> None:
    """A local worker's start: the engine's imports and its compiled kernels loaded once per
    process (from numba's cache), not inside the first run."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from learnboard.engine.compiled import warm_up

    warm_up()


def _results(pending: list[dict], scheduler, workers: int | None):
    """Yield (run, (row, history)) as runs complete."""
    if not pending:
        return
    if scheduler is not None:
        yield from _dask_results(pending, scheduler)
        return
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(pending) == 1:
        for r in pending:
            yield r, execute(r)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: workers start clean (no inherited BLAS threads or locks), one BLAS thread each
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=min(workers, len(pending)),
                             mp_context=mp.get_context("spawn"), initializer=warm_worker) as pool:
        futures = {pool.submit(execute, r): r for r in pending}
        try:
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise


def _dask_results(pending: list[dict], scheduler):
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError("--scheduler needs Dask distributed: pip install 'learnboard[cluster]'",
                         field="--scheduler") from None
    own = not isinstance(scheduler, Client)
    if own:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler: {exc}", field="--scheduler") from None
    else:
        client = scheduler
    try:
        futures = client.map(execute, pending, key=[f"learnboard-{r['id']}" for r in pending],
                             pure=False)
        by_key = {f.key: r for f, r in zip(futures, pending, strict=True)}
        for fut in as_completed(futures):
            yield by_key[fut.key], fut.result()
    finally:
        if own:
            client.close()


class _Bar:
    """A rich progress bar over the whole sweep (no-op when disabled)."""

    def __init__(self, total: int, done: int, label: str, enabled: bool):
        self.progress = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(file=sys.stderr))
        self.progress.start()
        self.task = self.progress.add_task(label, total=total, completed=done,
                                           status=f"{done} skipped" if done else "")
        self.skipped = done

    def advance(self, failed: int) -> None:
        if self.progress is not None:
            status = (f"{self.skipped} skipped, " if self.skipped else "") + f"{failed} failed"
            self.progress.update(self.task, advance=1, status=status)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
