"""One sweep run: build its network, task and engine, train, and summarise as a table row.

:func:`execute` never raises: a failed run comes back as a row with ``status = "error"``
and the error text, so one bad run cannot stop a sweep. It is a plain module-level
function of a JSON-able dict, so local process pools and Dask workers can both call it.
"""

from __future__ import annotations

import os
import time
import traceback
from functools import lru_cache

import numpy as np

from learnboard.engine.steady import floor_flags, run_verdict

HISTORY_POINTS = 500  # history points kept per run (tolerance runs record every step, then thin)

# the tidy table's columns, in order (docs/sweep.md explains each)
COLUMNS = (
    "id", "status", "error_message", "network", "network_kind", "n_nodes", "n_edges", "imperfect",
    "task", "seed", "noise", "init", "k0", "lam", "tolerance", "steps", "alpha", "eta",
    "relative_error", "error", "initial_error", "clean_relative_error", "power", "power_watts",
    "initial_power", "initial_power_watts", "energy", "energy_watts",
    "tail_relative_error", "tail_power", "tail_power_watts", "tail_lam", "s0", "lam_final",
    "frac_at_min", "seconds", "steps_per_second", "solver", "newton_iterations_mean", "worker",
    # the steady-state verdict (learnboard.engine.steady), computed on the full history
    "steady_state", "below_floor", "bursts", "rise", "drift_relative_error", "drift_power",
    "fluctuation_relative_error", "fluctuation_power",
    # replica runs of a grid point (spec grid.replicas / grid.perturb), else empty
    "replica", "perturb",
)
VERDICT_KEYS = COLUMNS[COLUMNS.index("steady_state"):COLUMNS.index("replica")]


def notebook_trial(n_edges: int, trial: int, coeffs, n_examples: int = 20, noise: float = 0.0):
    """Source/target edges, data and coefficients of trial ``trial`` drawn as the notebook does.

    One legacy ``RandomState(0)`` stream runs through the trials. Trial 0 draws
    ``choice(range(E), 4, replace=False)`` (sources then targets) and ``rand(2, n)``: the
    published task (Stern et al., APL Machine Learning 2, 016114 (2024)). Each later trial first perturbs the coefficients,
    ``A + 0.1 * randn(2, 2)``, then draws fresh edges and inputs the same way.
    """
    from learnboard.tasks import Dataset

    a0 = np.atleast_2d(np.asarray(coeffs, dtype=float))
    ns, nt = a0.shape[1], a0.shape[0]
    rng = np.random.RandomState(0)
    for t in range(trial + 1):
        a = a0 if t == 0 else a0 + 0.1 * rng.randn(*a0.shape)
        chosen = rng.choice(range(n_edges), size=ns + nt, replace=False)
        x = rng.rand(ns, n_examples)
    data = Dataset(x.T, (a @ x).T, name=f"notebook trial {trial}")
    return chosen[:ns].astype(np.int64), chosen[ns:].astype(np.int64), data, a


@lru_cache(maxsize=16)
def _network(kind: str, value: str):
    if kind == "file":
        from learnboard.network import read_network

        return read_network(value)
    from learnboard.generate import from_spec

    return from_spec(value)


@lru_cache(maxsize=4)
def _board(value: str):
    from learnboard.boards import load_board

    return load_board(value)


def _with_noise(data, noise: float, seed: int):
    """Training targets with Gaussian noise of std ``noise`` (a fixed draw per seed)."""
    if noise <= 0:
        return data
    from learnboard.tasks import Dataset

    rng = np.random.default_rng([int(seed), 7919])
    return Dataset(data.inputs, data.targets + noise * rng.standard_normal(data.targets.shape),
                   name=f"{data.name} + noise {noise:g}")


def _thin(history: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    n = len(history["step"])
    if n <= HISTORY_POINTS:
        return history
    idx = np.unique(np.r_[np.linspace(0, n - 1, HISTORY_POINTS).astype(int), n - 1])
    return {k: np.asarray(v)[idx] for k, v in history.items()}


def _energy(history: dict[str, np.ndarray], column: str) -> float:
    """Σ over training steps of the free-state power (trapezoid over the recorded steps)."""
    s, p = np.asarray(history["step"], float), np.asarray(history[column], float)
    if s.size < 2:
        return 0.0
    return float(np.sum(0.5 * (p[1:] + p[:-1]) * np.diff(s)))


def _verdict(history: dict, relative_error: float) -> dict:
    """The table's steady-state columns (the full history, before thinning)."""
    v = run_verdict(history, relative_error)
    return {k: v[k] for k in VERDICT_KEYS}


def _base_row(run: dict) -> dict:
    net, task, learn = run["network"], run["task"], run["learning"]
    return {
        "id": run["id"], "network": net["label"], "network_kind": net["kind"],
        "imperfect": bool(net.get("imperfect", False)), "task": task["kind"], "seed": task["seed"],
        "noise": task["noise"], "init": run["init"], "k0": run["k0"], "lam": run["lam"],
        "tolerance": run["tolerance"], "steps": run["steps"],
        "alpha": learn.get("alpha"), "eta": learn.get("eta"), "worker": os.getpid(),
        "replica": run.get("replica"), "perturb": run.get("perturb"),
    }


def linear_setup(run: dict):
    """What a linear sweep run trains: ``(network, terminals, clean data, engine, k0)``
    (the engine sees the noisy data when the task has noise; k0 is perturbed for a replica)."""
    from learnboard.engine.config import LearningConfig, initial_conductances
    from learnboard.engine.linear import LinearEngine, Terminals
    from learnboard.tasks import notebook_task

    net = _network(run["network"]["kind"], run["network"]["value"])
    task = run["task"]
    if task["kind"] == "trials":
        src, tgt, clean, _ = notebook_trial(net.n_edges, task["seed"], task["coeffs"],
                                            task["train_size"])
    else:
        src, tgt, clean = notebook_task(net.n_edges, seed=task["seed"],
                                        n_examples=task["train_size"],
                                        coeffs=np.asarray(task["coeffs"]))
    data = _with_noise(clean, task["noise"], task["seed"])
    terms = Terminals(tuple(int(e) for e in src), tuple(int(e) for e in tgt))
    config = LearningConfig(lam=run["lam"], seed=task["seed"], **dict(run["learning"]))
    engine = LinearEngine(net, terms, data, config)
    k0 = initial_conductances(net.n_edges, run["init"], run["k0"] or 1.0, k_min=config.k_min,
                              k_max=config.k_max, seed=task["seed"])
    if "replica" in run:
        from learnboard.engine.replicas import perturbed

        k0 = perturbed(k0, run["perturb"], task["seed"], run["replica"])
    return net, terms, clean, engine, k0


def _linear(run: dict) -> tuple[dict, dict]:
    from learnboard.engine.controller import ToleranceController, tail_means
    from learnboard.engine.linear import LinearEngine

    net, terms, clean, engine, k0 = linear_setup(run)
    task, config = run["task"], engine.config
    ctl = ToleranceController(run["tolerance"]) if run["tolerance"] is not None else None
    steps = run["steps"]
    every = 1 if ctl else (run.get("record_every") or max(1, steps // HISTORY_POINTS))
    res = engine.train(k0, steps, record_every=every, controller=ctl)
    h = res.history
    row = {
        "n_nodes": net.n_nodes, "n_edges": net.n_edges,
        "relative_error": res.relative_error, "error": res.final.error,
        "initial_error": res.initial.error, "power": res.final.power,
        "power_watts": res.final.power_watts, "initial_power": res.initial.power,
        "initial_power_watts": res.initial.power_watts,
        "energy": _energy(h, "power"), "energy_watts": _energy(h, "power_watts"),
        "lam_final": float(h["lam"][-1]), "frac_at_min": res.final.frac_at_min,
        "seconds": res.seconds, "steps_per_second": res.steps_per_second,
        "solver": res.info.get("solver"),
    }
    if task["noise"] > 0:  # how well the noisy training recovers the clean targets
        ref = LinearEngine(net, terms, clean, config)
        e0 = ref.evaluate(k0).error
        row["clean_relative_error"] = ref.evaluate(res.conductances).error / e0 if e0 > 0 else 0.0
    else:
        row["clean_relative_error"] = row["relative_error"]
    if ctl is not None:
        tail = tail_means(h)
        row.update(tail_relative_error=tail["relative_error"], tail_power=tail["power"],
                   tail_power_watts=tail["power_watts"], tail_lam=tail["lam"], s0=ctl.s0)
    row.update(_verdict(h, row["relative_error"]))
    return row, _thin(h)


def _board_run(run: dict) -> tuple[dict, dict]:
    from learnboard.engine.board_engine import BoardEngine
    from learnboard.engine.config import LearningConfig
    from learnboard.engine.controller import ToleranceController, tail_means
    from learnboard.tasks import Dataset, regression_task

    board = _board(run["network"]["value"])
    task, learn = run["task"], dict(run["learning"])
    n_in = sum(1 for p in board.inputs if p.fixed is None)
    n_out = len(board.outputs)
    coeffs = np.atleast_2d(np.asarray(task["coeffs"], dtype=float))
    if coeffs.shape[0] < n_out or coeffs.shape[1] < n_in:
        from learnboard.errors import InputError

        raise InputError(f"the board has {n_in} inputs and {n_out} outputs: give a "
                         f"{n_out}x{n_in} (or larger) coefficient matrix", field="task.coeffs")
    raw = regression_task(coeffs[:n_out, :n_in], task["train_size"], seed=task["seed"])
    vmax = board.limits.max_node_volts  # inputs span the board's safe node range
    clean = Dataset(raw.inputs * vmax, raw.targets * vmax, name=f"regression on {board.name}")
    data = _with_noise(clean, task["noise"] * vmax, task["seed"])
    learn.setdefault("alpha", board.learning.alpha)
    learn.setdefault("eta", board.learning.eta)
    config = LearningConfig(lam=run["lam"], seed=task["seed"], **learn)
    rule = "sign" if board.learning.rule == "sign" else "accumulate"
    if run["network"].get("imperfect"):
        from learnboard.studies.sweep.imperfect_board import ImperfectBoardEngine

        eng = ImperfectBoardEngine(board, data, config, rule, mismatch=task["seed"])
    else:
        eng = BoardEngine(board, data, config, digipot_rule=rule)
    ctl = ToleranceController(run["tolerance"]) if run["tolerance"] is not None else None
    res = eng.train(eng.initial_state("low" if run["init"] == "low" else "uniform"), run["steps"],
                    controller=ctl, record_every=1)
    h = res.history
    row = {
        "n_nodes": board.n_nodes, "n_edges": board.n_edges,
        "relative_error": res.relative_error, "error": float(h["error"][-1]),
        "initial_error": float(h["error"][0]), "clean_relative_error": None,
        "power_watts": float(h["power_watts"][-1]),
        "initial_power_watts": float(h["power_watts"][0]),
        "energy_watts": _energy(h, "power_watts"), "lam_final": float(h["lam"][-1]),
        "seconds": res.seconds, "steps_per_second": res.steps / res.seconds if res.seconds else None,
        "solver": "newton", "newton_iterations_mean": res.newton_iterations_mean,
        "alpha": config.alpha, "eta": config.eta,
    }
    if ctl is not None:
        tail = tail_means(h, columns=("relative_error", "power_watts", "lam"))
        row.update(tail_relative_error=tail["relative_error"],
                   tail_power_watts=tail["power_watts"], tail_lam=tail["lam"], s0=ctl.s0)
    row.update(_verdict(h, row["relative_error"]))
    return row, _thin(h)


def _emulated(run: dict) -> tuple[dict, dict]:
    """A training session through the host on the in-process emulated board (firmware in the loop)."""
    import shutil
    import tempfile

    from learnboard.cli.connection import open_board
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.runlog import read_log
    from learnboard.host.schedule import schedule_from_flags
    from learnboard.host.session import TrainConfig, run_session

    task = run["task"]
    sched = schedule_from_flags(steps=run["steps"],
                                lam=run["lam"] if run["tolerance"] is None else None,
                                tolerance=run["tolerance"],
                                init="low" if run["init"] == "low" else None)
    folder = tempfile.mkdtemp(prefix="lb-sweep-")
    try:
        with open_board(port=f"emu:{run['network']['value']}", seed=task["seed"]) as conn:
            rf = RunFolder.create(folder, run["id"][:40])
            cfg = TrainConfig(task="regression", schedule=sched, seed=task["seed"],
                              name=run["id"][:40])
            s = run_session(conn, cfg, rf)
        tlm = [r for r in read_log(rf.log_path) if r.get("kind") == "tlm"]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    history = {"step": np.array([r["step"] for r in tlm]),
               "error": np.array([r["err"] for r in tlm]),
               "relative_error": np.array([r.get("rel_err", np.nan) for r in tlm]),
               # the free network's, as the simulation's power (a twin board's telemetry
               # power is the total of both networks; pwr_c its clamped part)
               "power_watts": np.array([r["pwr"] - (r.get("pwr_c") or 0.0) for r in tlm]),
               "lam": np.array([r["lam"] for r in tlm])}
    board = _board(run["network"]["value"])
    row = {"n_nodes": board.n_nodes, "n_edges": board.n_edges,
           "relative_error": s.relative_error, "clean_relative_error": s.test_error,
           "power_watts": s.true_power_free, "initial_power_watts": s.initial_true_power_free,
           "energy_watts": _energy(history, "power_watts") if tlm else None,
           "tail_relative_error": s.tail_relative_error,
           "tail_power_watts": float(np.mean(history["power_watts"][
               history["step"] > 0.9 * s.steps])) if tlm else None,
           "lam_final": s.lam, "solver": "emulated board (firmware)", "alpha": None, "eta": None}
    if tlm:
        row.update(_verdict(history, s.relative_error))
    return row, history


def _bias_run(run: dict) -> tuple[dict, dict]:
    """The learning-bias study's floor run: task A on the board twin with the twin
    mismatch scaled and a remedy (:mod:`learnboard.studies.paper.bias`)."""
    from learnboard.studies.paper import bias

    net, task = run["network"], run["task"]
    learn = run["learning"]
    board = bias.scaled_board(net["value"], mismatch=net["mismatch"])
    twin = bias.Twin(board, task["seed"], alpha=learn.get("alpha", 0.2), eta=learn.get("eta", 0.5))
    remedy = {"none": None, "null-offset": bias.NullOffset(10),
              "write-back": bias.NullCorrection(100, 25, 0.05)}[net["debias"]]
    every = 100 if remedy is not None else 50  # record where a remedy's cycle ends
    t0 = time.process_time()
    rows = bias.train(twin, "A", run["steps"], remedy=remedy, lam=run["lam"], record=every)
    seconds = time.process_time() - t0
    rel = np.array([r[1] for r in rows])
    history = {"step": np.array([r[0] for r in rows]), "relative_error": rel}
    row = {"n_nodes": board.n_nodes, "n_edges": board.n_edges, "relative_error": float(rel[-1]),
           "error": float(rel[-1] * twin.c0["A"]), "initial_error": twin.c0["A"],
           "tail_relative_error": bias.tail(rel, 0.1), "seconds": seconds,
           "steps_per_second": twin.steps / seconds if seconds else None,
           "solver": f"board twin, debias {net['debias']}", "alpha": learn.get("alpha", 0.2),
           "eta": learn.get("eta", 0.5), "lam_final": run["lam"]}
    return row, history


def execute(run: dict) -> tuple[dict, dict]:
    """Run one sweep run; returns (table row, history arrays). Errors become a row."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    row = _base_row(run)
    t0 = time.perf_counter()
    try:
        kind = run["network"]["kind"]
        body, history = {"board": _board_run, "emulate": _emulated,
                         "bias": _bias_run}.get(kind, _linear)(run)
        row.update(body)
        if "relative_error" in history:
            history = {**history, "below_floor": floor_flags(history["relative_error"])}
        row.setdefault("seconds", time.perf_counter() - t0)
        row["status"] = "ok"
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, never fatal
        row.update(status="error", error_message=f"{type(exc).__name__}: {exc}",
                   seconds=time.perf_counter() - t0)
        row["traceback"] = traceback.format_exc(limit=8)
        history = {}
    return row, history
