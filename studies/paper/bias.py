"""Learning bias on the emulated gen2-clln board: its signatures and a remedy.

The board twin (:class:`~learnboard.engine.board_engine.BoardEngine`, ``model="board"``)
carries the emulated board's own bias sources: the twin networks' device mismatch (the
clamped network is another set of transistors than the free one), the converters'
rounding, the gates' idle leak and the spread of their switch-off lag. With the nudge at
zero the rule's update ``<(dV^C)^2 - (dV^F)^2>`` is not zero on such a board: that
deterministic remainder is the learning bias. This module measures its signatures (a
precision floor that grows with the twin mismatch, limit cycles under periodic two-task
training, the memory of an earlier task) and two remedies that use only what a board
measures (no model):

* :class:`NullOffset` — every few steps the zero-nudge update (the targets replaced by the
  board's own free outputs) is measured and subtracted per edge from each step's update.
  It removes the mismatch floor on the twin; on a board it is ``learnboard train
  --null-offset-every N`` (the firmware's parameter ``null_every``).
* :class:`NullCorrection` — host-only, through ``read_edges`` / ``write_edges``: the drift
  of a zero-nudge chunk is written back out of the gates. Measured here because it is what
  a host can do today; it does not help (gate writes are coarse pulses).

The floors are runs of the product's own path (:func:`floor_run`: ``BoardEngine.train``
with ``null_offset_every``, what ``learnboard sim --board`` runs), long enough to compare
floors rather than transients (at 1500 steps the offset's runs are still falling and a
plain run may be passing through a low error its bias then leaves). The cycles and the
memory drive the twin chunk by chunk (:class:`Twin`) through the engine's own step
methods, as a host drives a board switching its examples. Everything is deterministic for
a seed; ``run(quick=True)`` takes about 90 s of CPU, the default about 8 minutes, split
over ``workers`` processes.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np

from learnboard.boards import load_board
from learnboard.boards.schema import TransistorPart
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import FIRMWARE_KEEP_MS, gate_spread
from learnboard.engine.config import LearningConfig
from learnboard.tasks import Dataset

BOARD = "gen2-clln"
TASK_A = (0.2, 0.3)  # the board's regression task: y = 0.2 x1 + 0.3 x2
ALPHA = 0.2  # constant: the end of the annealed rate `learnboard train` uses


def scaled_board(name: str = BOARD, mismatch: float = 1.0, leak: float = 1.0):
    """The board description with its transistors' twin spread (vt and beta) and idle
    leak scaled by ``mismatch`` and ``leak`` (1 = the emulated board; the draws are the
    same, so the deviations scale linearly)."""
    board = load_board(name)
    parts = dict(board.parts)
    for key, p in parts.items():
        if isinstance(p, TransistorPart):
            parts[key] = dataclasses.replace(p, vt_spread=p.vt_spread * mismatch,
                                             beta_spread=p.beta_spread * mismatch,
                                             gate_leak=p.gate_leak * leak)
    return dataclasses.replace(board, parts=parts)


def tasks(board, seed: int = 0) -> dict[str, Dataset]:
    """Task A (the board's regression, all 20 examples) for the floors; for periodic
    training its examples split in two: "A1" (the first half) and "A2" (the second), the
    same map on other inputs, so both are learned together by a board without bias."""
    from learnboard.engine.board_model import board_task

    a = board_task(board, seed=seed)
    x = np.asarray(a.inputs, float)
    y = (x @ np.asarray(TASK_A))[:, None]
    h = len(x) // 2
    return {"A": Dataset(x, y, name="task A"), "A1": Dataset(x[:h], y[:h], name="task A1"),
            "A2": Dataset(x[h:], y[h:], name="task A2")}


class Twin:
    """The board twin driven chunk by chunk, as a host drives a board: switch the task
    (upload examples), run steps, read and write the gates, measure a task's error."""

    def __init__(self, board, seed: int = 0, *, skew: float = 1.0, alpha: float = 0.2,
                 eta: float = 0.5):
        self.tasks = tasks(board, seed)
        cfg = LearningConfig(alpha=alpha, eta=eta, lam=0.0)
        self.eng = BoardEngine(board, self.tasks["A"], cfg, model="board", seed=seed)
        eng = self.eng
        if skew != 1.0 and eng.step_seconds:
            _, sk = gate_spread(board, seed)
            eng._over = eng.io.pulse_overhead_us + skew * sk[:len(eng.nets)]
        self.state = eng.initial_state()
        eng._twin = self.state.copy() if len(eng.nets) > 1 else None
        eng._cont = {}
        eng._acc = np.zeros(board.n_edges)
        eng.iterations = []
        eng._warm = eng._warm_c = None
        self.board_t = self.keep_t = 0.0
        self.task = "A"
        self.steps = 0
        self.c0 = {k: self.error(k) for k in self.tasks}

    def set_task(self, name: str, targets: np.ndarray | None = None) -> None:
        """Upload task ``name`` (or its inputs with ``targets``)."""
        d = self.tasks[name]
        if targets is not None:
            d = Dataset(d.inputs, targets, name="null")
        self.eng.data = d
        self.eng._set_data()
        self.task = name

    def outputs(self) -> np.ndarray:
        """The free outputs (V, as the board reads them) of the current task's inputs."""
        eng = self.eng
        vf, _ = eng._solve(eng.nets[0], self.state, 0, eng.x_free, None)
        return eng._outputs(eng._adc_codes(vf)) * eng.io.node_vpc

    def error(self, name: str) -> float:
        """Task ``name``'s error (V^2, read as the board reads) at the current gates."""
        cur = self.task
        self.set_task(name)
        err = float(np.mean(np.sum((self.outputs() - self.eng.y) ** 2, axis=1)))
        self.set_task(cur)
        return err

    def rel(self, name: str) -> float:
        return self.error(name) / self.c0[name]

    def null_update(self) -> np.ndarray:
        """``<(dV^C)^2 - (dV^F)^2>`` per edge at zero nudge (targets = the board's own
        outputs), without moving anything: the bias as the rule sees it."""
        task = self.task
        y = self.outputs()
        self.set_task(task, targets=y)
        df, dc, _, _ = self.eng.states(self.state, self.eng.config.eta)
        self.set_task(task)
        self.eng._warm = self.eng._warm_c = None
        return np.mean(dc ** 2, axis=0) - np.mean(df ** 2, axis=0)

    def run(self, n: int, *, lam: float = 0.0, eta: float | None = None,
            offset: np.ndarray | None = None) -> None:
        """``n`` learning steps on the current examples (the firmware's rule, leak, keep);
        ``offset`` is subtracted from each step's ``<(dV^C)^2 - (dV^F)^2>``."""
        eng = self.eng
        eta = eng.config.eta if eta is None else eta
        for _ in range(n):
            df, dc, _, _ = eng.states(self.state, eta)
            c2 = np.mean(dc ** 2, axis=0)
            if offset is not None:
                c2 = c2 - offset
            self.state = eng.apply(self.state, c2, np.mean(df ** 2, axis=0),
                                   lam, eng.config.alpha)
            self.steps += 1
            if eng.step_seconds:
                self.board_t += eng.step_seconds
                if self.board_t - self.keep_t >= FIRMWARE_KEEP_MS / 1000.0:
                    eng._state, self.keep_t = self.state, self.board_t
                    eng._keep()
        eng._warm = eng._warm_c = None  # the next examples may differ

    def read(self) -> np.ndarray:
        """Gate read-back (V) as ``read_edges`` reports it: the higher twin's code."""
        eng = self.eng
        nets = [self.state] + ([eng._twin] if eng._twin is not None else [])
        g = np.max(np.stack(nets), axis=0)
        return np.floor(g / eng.io.gate_lsb + 0.5) * eng.io.gate_lsb

    def write(self, k: np.ndarray) -> None:
        """``write_edges``: each gate steered in closed loop to ``k`` (the firmware's
        ``PulseGates.steer``, no force: a move shorter than a pulse's switch-off is
        skipped); the rule's residues are cleared."""
        eng = self.eng
        nets = [self.state] + ([eng._twin] if eng._twin is not None else [])
        lo, hi = eng.gate_range
        rc, rail, over = eng.io.rc_us, eng.io.rail, round(eng.io.pulse_overhead_us)
        for i in np.flatnonzero(eng.is_gate):
            v = float(np.clip(k[i], lo, hi))
            for _ in range(10):
                g = max(eng._read_gate(x[i]) for x in nets)
                if abs(v - g) < 0.5 * eng.io.gate_vpc:
                    break
                up = v > g
                target = rail if up else 0.0
                t = 0.9 * rc * math.log((target - g) / (target - v))
                ask = int(t + 0.5) - over
                if ask < 1:
                    break  # shorter than one pulse: the firmware leaves it
                for net, gates in enumerate(nets):
                    gates[i] = target + (gates[i] - target) * math.exp(-(ask + eng._over[net, i]) / rc)
        eng._acc[:] = 0.0


@dataclass
class NullCorrection:
    """The write-back null-chunk correction (host side, through ``read_edges`` and
    ``write_edges``; see the module docstring).

    Args:
        every: learning steps per cycle.
        null_steps: zero-nudge steps per cycle that measure the drift.
        min_volts: a gate is written once its owed correction exceeds this (one pulse
            moves a gate by tens of mV: a smaller write would be skipped by the board).
    """

    every: int = 50
    null_steps: int = 10
    min_volts: float = 0.02
    debt: np.ndarray | None = field(default=None, repr=False)

    def cycle(self, twin: Twin, task: str, lam: float = 0.0) -> None:
        """One cycle on ``twin``: null chunk, learning chunk, write when owed."""
        g0 = twin.read()
        y0 = twin.outputs() if twin.task == task else None
        twin.set_task(task)
        if y0 is None:
            y0 = twin.outputs()
        twin.set_task(task, targets=y0)  # zero nudge: targets = the board's own outputs
        twin.run(self.null_steps, lam=0.0)
        drift = twin.read() - g0
        twin.set_task(task)
        twin.run(self.every, lam=lam)
        owe = -drift * (1.0 + self.every / self.null_steps)
        self.debt = owe if self.debt is None else self.debt + owe
        big = np.abs(self.debt) >= self.min_volts
        if big.any():
            before = twin.read()
            want = before.copy()
            want[big] += self.debt[big]
            twin.write(want)
            self.debt -= twin.read() - before


@dataclass
class NullOffset:
    """The null-offset rule (on a board: ``learnboard train --null-offset-every``, the
    firmware's ``null_every``): every ``every`` steps the zero-nudge update
    ``<(dV^C)^2 - (dV^F)^2>`` is measured and subtracted from every step's until the next."""

    every: int = 50

    def cycle(self, twin: Twin, task: str, lam: float = 0.0) -> None:
        twin.set_task(task)
        off = twin.null_update()
        twin.run(self.every, lam=lam, offset=off)


def train(twin: Twin, task: str, steps: int, *, remedy: NullCorrection | NullOffset | None = None,
          lam: float = 0.0, record: int = 50, watch: tuple[str, ...] = ()) -> list[tuple]:
    """Train ``task`` for ``steps`` learning steps (with the remedy, in its cycles);
    returns (step, rel. error of task, rel. errors of ``watch``) every ``record`` steps."""
    rows = []
    twin.set_task(task)
    done = 0
    while done < steps:
        if remedy is not None:
            remedy.cycle(twin, task, lam)
            done += remedy.every
        else:
            n = min(record, steps - done)
            twin.run(n, lam=lam)
            done += n
        if done % record == 0 or done >= steps:
            rows.append((done, twin.rel(task), *[twin.rel(w) for w in watch]))
    return rows


def tail(values, frac: float = 0.25) -> float:
    v = np.asarray(values, float)
    return float(np.mean(v[-max(1, int(len(v) * frac)):]))


# -- the three signatures and the remedy --------------------------------------------------


def floor_vs_bias(scales=(0.0, 0.25, 0.5, 1.0, 2.0), steps: int = 3000, seed: int = 0,
                  remedy: bool = False, lam: float = 0.0) -> list[dict]:
    """Precision floor (tail mean C/C0 of task A, constant alpha) against the scale of
    the twin mismatch; the other sources stay as on the emulated board."""
    out = []
    for s in scales:
        twin = Twin(scaled_board(mismatch=s), seed)
        rows = train(twin, "A", steps, remedy=NullCorrection() if remedy else None, lam=lam)
        out.append({"mismatch": s, "floor": tail([r[1] for r in rows]), "remedy": remedy,
                    "lam": lam})
    return out


def limit_cycles(periods=(20, 100, 400), cycles: int = 6, seed: int = 0,
                 mismatch: float = 1.0, remedy: bool = False) -> list[dict]:
    """Alternate the two halves of task A (A1, A2: the same map on other inputs) every T
    steps: the errors of both at the end of each phase; amplitude = mean over the last
    half of the cycles of A1's error after an A2 phase minus after an A1 phase."""
    out = []
    for period in periods:
        twin = Twin(scaled_board(mismatch=mismatch), seed)
        ends = []
        for _ in range(cycles):
            for task in ("A1", "A2"):
                twin.set_task(task)
                if remedy:  # the null offset, measured every 10 steps
                    for _ in range(period // 10):
                        NullOffset(10).cycle(twin, task)
                else:
                    twin.run(period)
                ends.append((task, twin.rel("A1"), twin.rel("A2")))
        late = ends[len(ends) // 2:]
        after_a = [a for t, a, _ in late if t == "A1"]
        after_b = [a for t, a, _ in late if t == "A2"]
        out.append({"period": period, "mismatch": mismatch, "remedy": remedy,
                    "a_after_a": float(np.mean(after_a)), "a_after_b": float(np.mean(after_b)),
                    "amplitude": float(np.mean(after_b) - np.mean(after_a)),
                    "ends": ends})
    return out


def memory(steps_a: int = 1500, steps_b: int = 3000, seed: int = 0,
           mismatch: float = 1.0, leak: float = 1.0, remedy: bool = False) -> dict:
    """Train A1, then A2 (the same map on other inputs): A1's error along A2's training;
    without bias a state that solves both stays put once A2 is learned, with bias it
    drifts and A1's memory with it. ``remedy``: the null offset in both phases."""
    twin = Twin(scaled_board(mismatch=mismatch, leak=leak), seed)
    train(twin, "A1", steps_a, remedy=NullOffset(10) if remedy else None)
    a_end = twin.rel("A1")
    rows = train(twin, "A2", steps_b, watch=("A1",),
                 remedy=NullOffset(10) if remedy else None, record=100)
    half = len(rows) // 2
    return {"mismatch": mismatch, "leak": leak, "remedy": remedy, "a_after_a": a_end,
            "a_mid_b": rows[half][2], "a_end_b": rows[-1][2], "b_end": tail([r[1] for r in rows]),
            "rows": rows}


def floor_run(seed: int, steps: int, *, mismatch: float = 1.0, lam: float = 0.0, every: int = 0,
              early: int = 1500) -> dict:
    """One floor run through the product's own path: ``BoardEngine.train`` with
    ``null_offset_every`` (at mismatch 1 exactly ``learnboard sim --board gen2-clln
    --alpha 0.2 --steps STEPS --seed SEED --lam LAM [--null-offset-every 10]``), alpha
    constant. ``floor`` = mean C/C0 over the last quarter, ``floor_early`` the same over
    the last quarter of the first ``early`` steps (what a run of that length reports),
    ``power`` the physical power (W) over the last quarter; the steady-state verdict of
    the whole history; a thinned history for the figure."""
    from learnboard.engine.board_model import board_session_defaults, board_task
    from learnboard.engine.steady import run_verdict

    board = scaled_board(mismatch=mismatch)
    data = board_task(board, seed)
    alpha_at, eta = board_session_defaults(board, steps, ALPHA, None)
    eng = BoardEngine(board, data, LearningConfig(alpha=alpha_at(0), eta=eta, lam=lam),
                      model="board", seed=seed, alpha_at=alpha_at, null_offset_every=every)
    res = eng.train(eng.initial_state("uniform"), steps, record_every=10)
    h = res.history
    step, rel, pw = h["step"], h["relative_error"], h["power_watts"]

    def window(end: int) -> np.ndarray:
        return (step > 0.75 * end) & (step <= end)

    last = window(steps)
    keep = np.unique(np.r_[np.linspace(0, len(step) - 1, 300).astype(int), np.argmin(rel)])
    return {"seed": seed, "mismatch": mismatch, "lam": lam, "null_offset_every": every,
            "steps": steps, "floor": float(np.mean(rel[last])),
            "floor_early": float(np.mean(rel[window(min(early, steps))])) if steps >= 8 else math.nan,
            "min": float(rel.min()), "min_step": int(step[np.argmin(rel)]),
            "power": float(np.mean(pw[last])), **run_verdict(h, res.relative_error),
            "history": {"step": step[keep].tolist(), "relative_error": rel[keep].tolist()}}


def dist(values) -> dict:
    """``median`` and ``iqr`` (with the quartiles) of ``values``."""
    v = np.asarray(list(values), float)
    if not v.size:
        return {"median": math.nan, "iqr": math.nan, "q25": math.nan, "q75": math.nan, "n": 0}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "iqr": float(q75 - q25), "q25": float(q25), "q75": float(q75),
            "n": int(v.size)}


@dataclass
class BiasPlan:
    """How much of the study ``learnboard paper`` runs (:func:`plan`)."""

    steps: int  # floor runs (constant alpha 0.2)
    seeds: tuple  # floors at the emulated board's mismatch, lambda 0
    lams: tuple  # the power term's runs ...
    lam_seeds: tuple  # ... on these seeds
    scales: tuple  # the twin mismatch scaled (besides 1) ...
    scale_seeds: tuple  # ... on these seeds
    periods: tuple  # two-task cycles: steps per task
    n_cycles: int
    cycle_seeds: tuple
    memory_steps: tuple  # (A1, then A2)
    memory_seeds: tuple
    early: int = 1500  # the run length of the earlier study, read off the same histories


def plan(quick: bool = True, steps: int | None = None) -> BiasPlan:
    """The default plan (``quick``: fewer seeds and shorter runs; ``steps`` below 500: a
    smoke run of one seed)."""
    if steps is not None and steps < 500:
        return BiasPlan(steps, (0,), (0.001,), (0,), (0.0,), (0,), (20,), 2, (0,), (steps, steps),
                        (0,))
    if quick:
        return BiasPlan(steps or 5000, (0, 1, 2, 3, 4), (0.001,), (0, 1, 2), (0.0, 2.0), (0, 1),
                        (20, 100), 6, (0, 1, 2), (800, 2400), (0, 1, 2))
    return BiasPlan(steps or 16000, tuple(range(8)), (0.001, 0.05), (0, 1, 2, 3, 4), (0.0, 2.0),
                    (0, 1, 2), (20, 50, 100, 200, 400), 6, (0, 1, 2, 3, 4), (2000, 8000),
                    (0, 1, 2, 3))


def _summary(runs: list[dict], **match) -> dict:
    """Distributions over seeds of the plain and null-offset runs that match."""
    sel = [r for r in runs if all(r[k] == v for k, v in match.items())]
    by = {(r["seed"], bool(r["null_offset_every"])): r for r in sel}
    seeds = sorted({s for s, _ in by})
    pairs = [(by[(s, False)], by[(s, True)]) for s in seeds if (s, False) in by and (s, True) in by]
    return {"seeds": seeds, "plain": dist(p["floor"] for p, _ in pairs),
            "offset": dist(o["floor"] for _, o in pairs),
            "plain_early": dist(p["floor_early"] for p, _ in pairs),
            "offset_early": dist(o["floor_early"] for _, o in pairs),
            "ratio": dist(p["floor"] / o["floor"] for p, o in pairs),
            "power_plain": dist(p["power"] for p, _ in pairs),
            "power_offset": dist(o["power"] for _, o in pairs),
            "power_ratio": dist(o["power"] / p["power"] for p, o in pairs),
            "lower_on": sum(o["floor"] < p["floor"] for p, o in pairs), "n": len(pairs)}


def _job(job: tuple) -> tuple[str, object, float]:
    """One independent piece of :func:`run` (a floor run, one seed's cycles or memory):
    (part, result, CPU seconds); top level so that a process pool can run it."""
    part, kw = job
    t0 = time.process_time()
    if part in ("floors", "mismatch"):
        out: object = floor_run(**kw)
    elif part == "cycles":
        out = []
        for m, r in ((1.0, False), (0.0, False), (1.0, True)):
            for d in limit_cycles(kw["periods"], kw["n_cycles"], kw["seed"], mismatch=m, remedy=r):
                d.pop("ends")
                out.append({"seed": kw["seed"], **d})
    else:
        out = []
        for m, r in ((1.0, False), (0.0, False), (1.0, True)):
            d = memory(*kw["steps"], kw["seed"], mismatch=m, leak=m, remedy=r)
            d.pop("rows")
            out.append({"seed": kw["seed"], **d})
    return part, out, time.process_time() - t0


def run(quick: bool = True, steps: int | None = None, workers: int | None = None) -> dict:
    """Every measurement of the study (:func:`plan`), on ``workers`` processes (the
    pieces are independent and deterministic: the same numbers on any number); CPU
    seconds per part and the wall time."""
    p = plan(quick, steps)
    jobs = [("floors", dict(seed=s, steps=p.steps, every=e, early=p.early))
            for s in p.seeds for e in (0, 10)]
    jobs += [("floors", dict(seed=s, steps=p.steps, lam=lam, every=e, early=p.early))
             for lam in p.lams for s in p.lam_seeds for e in (0, 10)]
    jobs += [("mismatch", dict(seed=s, steps=p.steps, mismatch=m, every=e, early=p.early))
             for m in p.scales for s in p.scale_seeds for e in (0, 10)]
    jobs += [("cycles", dict(seed=s, periods=p.periods, n_cycles=p.n_cycles))
             for s in p.cycle_seeds]
    jobs += [("memory", dict(seed=s, steps=p.memory_steps)) for s in p.memory_seeds]
    t0 = time.perf_counter()
    if workers and workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            done = list(pool.map(_job, jobs))
    else:
        done = [_job(j) for j in jobs]
    cpu = {k: 0.0 for k in ("floors", "mismatch", "cycles", "memory")}
    runs, cyc, mem = [], [], []
    for part, out, sec in done:
        cpu[part] += sec
        if part in ("floors", "mismatch"):
            runs.append(out)
        else:
            (cyc if part == "cycles" else mem).extend(out)
    summary = {"lam0": _summary(runs, mismatch=1.0, lam=0.0),
               "lam": {str(lam): _summary(runs, mismatch=1.0, lam=lam) for lam in p.lams},
               "mismatch": {str(m): _summary(runs, mismatch=m, lam=0.0)
                            for m in sorted({*p.scales, 1.0})}}
    return {"quick": quick, "plan": dataclasses.asdict(p), "runs": runs, "summary": summary,
            "cycles": cyc, "memory": mem, "cpu_seconds": cpu,
            "cpu_total": float(sum(cpu.values())), "workers": workers or 1,
            "wall_seconds": time.perf_counter() - t0}


def _cycle_summary(res: dict) -> list[dict]:
    out = []
    for m, rem in ((1.0, False), (0.0, False), (1.0, True)):
        for period in res["plan"]["periods"]:
            rows = [r for r in res["cycles"] if r["mismatch"] == m and r["remedy"] == rem
                    and r["period"] == period]
            out.append({"mismatch": m, "remedy": rem, "period": period,
                        "amplitude": dist(r["amplitude"] for r in rows),
                        "level": dist(r["a_after_a"] for r in rows)})
    return out


def _memory_summary(res: dict) -> list[dict]:
    out = []
    for m, rem in ((1.0, False), (0.0, False), (1.0, True)):
        rows = [r for r in res["memory"] if r["mismatch"] == m and r["remedy"] == rem]
        out.append({"mismatch": m, "remedy": rem, "after_a": dist(r["a_after_a"] for r in rows),
                    "end_b": dist(r["a_end_b"] for r in rows),
                    "growth": dist(r["a_end_b"] / r["a_after_a"] for r in rows),
                    "b_end": dist(r["b_end"] for r in rows),
                    "grew_on": sum(r["a_end_b"] > r["a_after_a"] for r in rows), "n": len(rows)})
    return out


def figure(res: dict, path) -> None:
    """(a) C/C0 along the floor runs per seed, plain and null offset; (b) floor against
    power per seed (lambda 0 and lambda > 0); (c) floor against the twin mismatch; (d)
    cycle amplitude against the period (median and quartiles over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ((a, b), (c, d)) = plt.subplots(2, 2, figsize=(11, 8))
    lams = res["plan"]["lams"]
    for r in res["runs"]:
        if r["mismatch"] != 1.0 or r["lam"] != 0.0:
            continue
        h = r["history"]
        a.loglog(np.maximum(h["step"], 1), np.maximum(h["relative_error"], 1e-6),
                 color="C1" if r["null_offset_every"] else "C0", lw=0.8, alpha=0.7)
    a.axvline(res["plan"]["early"], color="grey", ls=":", lw=0.8)
    a.plot([], [], color="C0", label="plain")
    a.plot([], [], color="C1", label="null offset every 10")
    a.set_xlabel("step")
    a.set_ylabel("C/C0 (task A)")
    a.set_title("(a) one line per seed; dotted: 1500 steps", fontsize=9)
    a.legend(fontsize=7)
    cols = [(0.0, "C0")] + [(lv, f"C{i + 2}") for i, lv in enumerate(lams)]
    for lv, col in cols:
        for s in {r["seed"] for r in res["runs"] if r["lam"] == lv}:
            pair = {bool(r["null_offset_every"]): r for r in res["runs"]
                    if r["seed"] == s and r["lam"] == lv and r["mismatch"] == 1.0}
            if len(pair) == 2:
                b.loglog([pair[False]["power"] * 1e6, pair[True]["power"] * 1e6],
                         [pair[False]["floor"], pair[True]["floor"]], "-", color=col, lw=0.6)
                b.loglog(pair[False]["power"] * 1e6, pair[False]["floor"], "o", color=col, ms=4)
                b.loglog(pair[True]["power"] * 1e6, pair[True]["floor"], "D", color=col, ms=4,
                         mfc="none")
    b.plot([], [], "o", color="k", label="plain")
    b.plot([], [], "D", color="k", mfc="none", label="null offset")
    for lv, col in cols:
        b.plot([], [], "-", color=col, label=f"λ {lv:g}")
    b.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # (labels overlap)
    b.set_xlabel("power (µW, last quarter)")
    b.set_ylabel("floor C/C0")
    b.set_title("(b) per seed: floor and power", fontsize=9)
    b.legend(fontsize=7)
    ms = sorted(float(m) for m in res["summary"]["mismatch"])
    for key, style, lab in (("plain", "o-", "plain"), ("offset", "D-", "null offset")):
        med = [res["summary"]["mismatch"][str(m)][key] for m in ms]
        c.errorbar(ms, [x["median"] for x in med],
                   yerr=[[x["median"] - x["q25"] for x in med], [x["q75"] - x["median"] for x in med]],
                   fmt=style, capsize=3, label=lab)
    c.set_yscale("log")
    c.set_xlabel("twin mismatch (x the emulated board's)")
    c.set_ylabel("floor C/C0 (median, quartiles)")
    c.set_title("(c) floor against the bias", fontsize=9)
    c.legend(fontsize=7)
    cs = _cycle_summary(res)
    for m, rem in ((1.0, False), (0.0, False), (1.0, True)):
        rows = [r for r in cs if r["mismatch"] == m and r["remedy"] == rem]
        amp = [r["amplitude"] for r in rows]
        d.errorbar([r["period"] for r in rows], [max(x["median"], 1e-6) for x in amp],
                   yerr=[[max(x["median"] - x["q25"], 0) for x in amp],
                         [max(x["q75"] - x["median"], 0) for x in amp]], fmt="o-", capsize=3,
                   label=f"mismatch x{m:g}" + (", null offset" if rem else ""))
    d.set_xscale("log")
    d.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    d.set_xlabel("period T (steps per task)")
    d.set_ylabel("cycle amplitude of A1's C/C0")
    d.set_title("(d) two-task cycles (median, quartiles over seeds)", fontsize=9)
    d.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _d(x: dict, fmt: str = ".2g") -> str:
    return f"{x['median']:{fmt}} [{x['q25']:{fmt}}, {x['q75']:{fmt}}]"


def _cost_line(res: dict) -> list[str]:
    """The null offset with the smallest lambda of the plan against the plain rule at
    lambda 0, seed by seed: the floor and the power."""
    lams = [lv for lv in res["plan"]["lams"] if lv > 0]
    if not lams:
        return []
    lam = min(lams)

    def pick(lv, every):
        return {r["seed"]: r for r in res["runs"] if r["lam"] == lv and r["mismatch"] == 1.0
                and bool(r["null_offset_every"]) == every}

    plain, fixed = pick(0.0, False), pick(lam, True)
    seeds = sorted(set(plain) & set(fixed))
    if not seeds:
        return []
    fl = dist(plain[s]["floor"] / fixed[s]["floor"] for s in seeds)
    pw = dist(fixed[s]["power"] / plain[s]["power"] for s in seeds)
    lower = sum(fixed[s]["floor"] < plain[s]["floor"] for s in seeds)
    return [f"**The null offset with a small λ against the plain rule at λ 0** (the null "
            f"offset at λ {lam:g}, the plain rule at λ 0), seeds "
            f"{', '.join(map(str, seeds))}: floor plain / offset {_d(fl, '.3g')} (lower on "
            f"{lower} of {len(seeds)}), power offset / plain {_d(pw, '.2g')}.\n"]


def markdown(res: dict, fig_name: str) -> list[str]:
    """The report section."""
    p = res["plan"]
    s0 = res["summary"]["lam0"]

    def rows(lv: float) -> str:
        out = ""
        for seed in sorted({r["seed"] for r in res["runs"] if r["lam"] == lv}):
            pr = {bool(r["null_offset_every"]): r for r in res["runs"]
                  if r["seed"] == seed and r["lam"] == lv and r["mismatch"] == 1.0}
            if len(pr) < 2:
                continue
            pl, of = pr[False], pr[True]
            out += (f"| {seed} | {pl['floor_early']:.2g} | {of['floor_early']:.2g} | "
                    f"{pl['floor']:.2g} | **{of['floor']:.2g}** | {pl['min']:.2g} @ {pl['min_step']} | "
                    f"{pl['power'] * 1e6:.0f} / {of['power'] * 1e6:.0f} | "
                    f"{'yes' if pl['steady_state'] else 'no'} / {'yes' if of['steady_state'] else 'no'} |\n")
        return out

    early = min(p["early"], p["steps"])
    head = ("| seed | plain, {e} steps | null offset, {e} | plain, {n} | null offset, {n} | "
            "plain's minimum @ step | power µW plain / offset | steady plain / offset |\n"
            "|---|---|---|---|---|---|---|---|\n").format(e=early, n=p["steps"])

    def dline(s: dict) -> str:
        return (f"over {s['n']} seeds, median [quartiles]: plain {_d(s['plain'])}, null offset "
                f"**{_d(s['offset'])}**; plain / offset {_d(s['ratio'], '.3g')}, lower with the "
                f"offset on {s['lower_on']} of {s['n']}; at {early} steps plain "
                f"{_d(s['plain_early'])}, offset {_d(s['offset_early'])}; power (µW) plain "
                f"{s['power_plain']['median'] * 1e6:.0f}, offset {s['power_offset']['median'] * 1e6:.0f} "
                f"(offset / plain {_d(s['power_ratio'], '.2g')}).\n")

    mism = "".join(f"| {float(m):g} | {v['n']} | {_d(v['plain'])} | {_d(v['offset'])} | "
                   f"{v['lower_on']} of {v['n']} |\n"
                   for m, v in sorted(res["summary"]["mismatch"].items(), key=lambda kv: float(kv[0])))
    cyc = "".join(f"| {r['mismatch']:g}{' + null offset' if r['remedy'] else ''} | {r['period']} | "
                  f"{_d(r['level'])} | {_d(r['amplitude'])} |\n" for r in _cycle_summary(res))
    mem = "".join(f"| {r['mismatch']:g}{' + null offset' if r['remedy'] else ''} | "
                  f"{_d(r['after_a'])} | {_d(r['end_b'])} | {_d(r['growth'], '.3g')} | "
                  f"{r['grew_on']} of {r['n']} | {_d(r['b_end'])} |\n" for r in _memory_summary(res))
    cpu = res["cpu_seconds"]
    sa, sb = p["memory_steps"]
    return [
        "## 8. Learning bias on the board twin (gen2-clln)\n",
        f"![learning bias]({fig_name})\n",
        "`learnboard.studies.paper.bias` on the board twin (`BoardEngine`, model board: the "
        "firmware's rule, converters, gate pulses, leak and keeping, the device spread of the "
        "emulated board of each seed), alpha 0.2 constant, eta 0.5, task A (the board's "
        "regression). Floor = mean C/C0 over the last quarter of the run. Each floor run is "
        f"`learnboard sim --board gen2-clln --alpha 0.2 --steps {p['steps']} --seed S "
        f"[--lam L] [--null-offset-every 10]`; the *{early} steps* columns are the same runs' "
        f"C/C0 over steps {3 * early // 4}–{early} (the earlier study's run length). *null offset*: every 10 steps the rule's zero-nudge "
        "update is measured and subtracted (on a board: `learnboard train "
        f"--null-offset-every 10`). CPU: floors {cpu['floors']:.0f} s, mismatch scan "
        f"{cpu['mismatch']:.0f} s, cycles {cpu['cycles']:.0f} s, memory {cpu['memory']:.0f} s; "
        f"{res['wall_seconds']:.0f} s wall on {res['workers']} worker(s).\n",
        "**Precision floor, λ 0** (the emulated board's bias):\n",
        head + rows(0.0),
        dline(s0),
        *[line for lam in p["lams"] for line in (
            f"**With the power term, λ {lam:g}** (compare error and power together, panel b):\n",
            head + rows(lam), dline(res["summary"]["lam"][str(lam)]))],
        *_cost_line(res),
        "**Floor against the bias** (the twin mismatch scaled; λ 0):\n",
        "| mismatch | seeds | plain | null offset | lower with the offset |\n|---|---|---|---|---|\n"
        + mism,
        "**Limit cycles.** Task A's examples split in halves A1 and A2 (the same map on "
        "other inputs, so one state solves both), alternating every T steps, "
        f"{p['n_cycles']} cycles, seeds {', '.join(map(str, p['cycle_seeds']))}; A1's C/C0 after an "
        "A1 phase (level) and amplitude = after an A2 phase minus after an A1 phase, means "
        "over the last half of the cycles; median [quartiles] over seeds:\n",
        "| mismatch | T | level | amplitude |\n|---|---|---|---|\n" + cyc,
        f"**Memory.** A1 trained {sa} steps, then A2 {sb} steps; A1's C/C0 (median [quartiles] "
        f"over seeds {', '.join(map(str, p['memory_seeds']))}; mismatch and leak scaled "
        "together; the null offset in both phases):\n",
        "| mismatch and leak | A1 after A1 | A1 at the end of A2 | end / after | grew on | "
        "A2's floor |\n|---|---|---|---|---|---|\n" + mem,
    ]


def section(out, quick: bool = True, steps: int | None = None,
            workers: int | None = None) -> list[str]:
    """Run the study (on ``workers`` processes), write ``bias.json`` and the figure into
    ``out``; the report lines."""
    import json
    from pathlib import Path

    out = Path(out)
    res = run(quick=quick, steps=steps, workers=workers)
    (out / "bias.json").write_text(json.dumps(res, indent=1))
    figure(res, out / "fig8_learning_bias.png")
    return markdown(res, "fig8_learning_bias.png")
