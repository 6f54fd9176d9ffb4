"""The report's task screening, made honest: a filter, and a representability check per task.

The screening keeps a task for the λ scan when its λ = 0 run reaches C/C0 < τ
(``Plan.screen_below``). That is a *filter* decision, not a pass/fail of anything. For the
tasks filtered out, the inverse problem (:mod:`learnboard.engine.inverse`) decides, as
evidence, whether the network could represent the task (the local rule stalls) or not.

The check re-runs the task's λ = 0 run (deterministic, well under a second) to get the
rule's end state as the first start; results are cached in the report folder
(``screening_inverse.json``, keyed by run id and budget), so a redraw does not repeat them.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

FILE = "screening_inverse.json"


def task_engine(run: dict):
    """The :class:`LinearEngine` and start conductances of a linear sweep run, as the sweep
    builds them."""
    from learnboard.studies.sweep.runs import linear_setup

    _, _, _, engine, k0 = linear_setup(run)
    return engine, k0


def check_task(run: dict, threshold: float, *, random_starts: int = 8, more_starts: int = 24,
               maxiter: int = 3000) -> dict:
    """Re-run the λ = 0 task ``run``, then solve its inverse problem; a table row."""
    from learnboard.engine.inverse import check

    engine, k0 = task_engine(run)
    trained = engine.train(k0, run["steps"])
    inv = check(engine, trained.conductances, threshold, plateau=trained.relative_error,
                plateau_clipped=trained.final.frac_at_min, random_starts=random_starts,
                more_starts=more_starts, seed=int(run["task"]["seed"]), maxiter=maxiter)
    return {"inverse_relative_error": inv["relative_error"],
            "inverse_best_start": inv["best_start"], "inverse_frac_at_min": inv["frac_at_min"],
            "inverse_starts": inv["n_starts"],
            "inverse_iterations": sum(s["iterations"] for s in inv["starts"]),
            "representable": inv["representable"], "verdict": inv["verdict"],
            "rule_relative_error": trained.relative_error,
            "rule_frac_at_min": trained.final.frac_at_min}


def screening_rows(screen_runs: list[dict], screen_rows: list[dict], threshold: float,
                   out: Path, *, check: str = "filtered", random_starts: int = 8,
                   more_starts: int = 24, maxiter: int = 3000,
                   workers: int | None = None) -> list[dict]:
    """One row per screened task: plateau, clipped fraction, filter decision and (for the
    tasks ``check`` selects: ``filtered``, ``all`` or ``none``) the inverse verdict.

    Unchecked tasks run in up to ``workers`` local processes (default: all cores).
    """
    cache_path = Path(out) / FILE
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    runs = {r["id"]: r for r in screen_runs}
    rows = []

    def key(r: dict) -> str:
        return f"{r['id']}:{threshold:g}:{random_starts}+{more_starts}:{maxiter}"

    def wanted(r: dict) -> bool:
        used = r.get("status") == "ok" and r["relative_error"] < threshold
        return (r.get("status") == "ok" and r["id"] in runs
                and (check == "all" or (check == "filtered" and not used)))

    todo = [r for r in screen_rows if wanted(r) and key(r) not in cache]
    for r, result in zip(todo, _check_all([runs[r["id"]] for r in todo], threshold,
                                          random_starts, more_starts, maxiter, workers),
                         strict=True):
        cache[key(r)] = result
    for r in screen_rows:
        ok = r.get("status") == "ok"
        used = ok and r["relative_error"] < threshold
        row = {"network": r["network"], "seed": r["seed"],
               "relative_error_lam0": r.get("relative_error"),
               "frac_at_min": r.get("frac_at_min"),
               "used": used,
               "decision": ("used" if used else
                            f"filtered out: plateau above τ = {threshold:g}" if ok else
                            "run failed: " + str(r.get("error_message", ""))[:80])}
        if wanted(r):
            row.update(cache[key(r)])
        rows.append(row)
    cache_path.write_text(json.dumps(cache, indent=1) + "\n")
    return rows


def _safe_check(run: dict, **kwargs) -> dict:
    """:func:`check_task`, with a failure as a row (one bad task must not stop the report)."""
    from learnboard.errors import LearnboardError

    try:
        return check_task(run, **kwargs)
    except (LearnboardError, ValueError, np.linalg.LinAlgError) as exc:
        return {"representable": None, "verdict": f"check failed: {exc}"}


def _check_all(runs: list[dict], threshold: float, random_starts: int, more_starts: int,
               maxiter: int, workers: int | None) -> list[dict]:
    workers = min(workers or os.cpu_count() or 1, len(runs))
    if workers <= 1:
        return [_safe_check(r, threshold=threshold, random_starts=random_starts,
                            more_starts=more_starts, maxiter=maxiter) for r in runs]
    # spawn, as the sweep's pool: clean workers without inherited BLAS threads or locks
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=workers,
                             mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(partial(_safe_check, threshold=threshold,
                                     random_starts=random_starts, more_starts=more_starts,
                                     maxiter=maxiter), runs))


def markdown(rows: list[dict], threshold: float, candidate_seeds: int, *,
             random_starts: int = 8, more_starts: int = 24) -> list[str]:
    """The report section: the filter, then every task with its plateau and verdict."""
    from learnboard.studies.paper.report import md_table

    used = sum(1 for r in rows if r["used"])
    checked = [r for r in rows if "verdict" in r]
    lines = [
        "## Tasks screened\n",
        f"Each network's candidate tasks (notebook draws with seeds 0..{candidate_seeds - 1}) "
        f"were first trained at λ = 0. The λ-dependent sections use only tasks whose λ = 0 "
        f"run reaches C/C0 < τ = {threshold:g}: a **filter** (a plateau above τ would hide "
        f"every λ effect), not a test result. {used} of {len(rows)} tasks passed it. "
        "Table: `screened_tasks.csv`.\n",
    ]
    if checked:
        rep = sum(1 for r in checked if r["representable"] is True)
        nrep = sum(1 for r in checked if r["representable"] is False)
        bad = len(checked) - rep - nrep
        failed = f"; {bad} check(s) failed (see the verdict column)" if bad else ""
        lines.append(
            f"For the tasks filtered out, the inverse problem was solved directly: the best "
            f"conductances in [k_min, k_max] by multi-start L-BFGS-B on the exact loss "
            f"(`learnboard.engine.inverse`: starts = the rule's end state, uniform, "
            f"{random_starts} random, then up to {more_starts} more while no start is below τ; "
            f"C/C0 relative to uniform conductances). {rep} of {len(checked)} reach C/C0 < τ: "
            f"*representable, the local rule stalls*; {nrep} of {len(checked)} stay above τ: *not "
            f"representable* as far as this search finds{failed}. Evidence, not proof: a non-convex search that finds nothing has not shown that "
            "nothing exists.\n")
    lines.append(md_table(rows, [("network", "network"), ("seed", "seed"),
                                 ("relative_error_lam0", "plateau C/C0 (λ=0)"),
                                 ("frac_at_min", "edges at k_min"),
                                 ("decision", "filter"),
                                 ("inverse_relative_error", "inverse C/C0"),
                                 ("inverse_frac_at_min", "inverse at k_min"),
                                 ("verdict", "verdict")]))
    return lines
