"""Board profiles through the engine: the board's own devices, solved by the physics.

Digipot edges move in whole taps — ``"accumulate"`` keeps a continuous conductance that
integrates the rule's updates and emits the nearest tap, ``"sign"`` is the Gen-1 rule
(one tap per step: more resistance when ``<(dV^C)^2> > (1 - lam) <(dV^F)^2>``, else
less). Transistor edges move their gate voltage by
``-(alpha/eta) <(dV^C)^2 - (1 - lam)(dV^F)^2>`` within the gate range (on the lab's Gen-2 board, Dillavou et al., PNAS 121, e2319718121 (2024), a
charge pulse changes the gate by ≈ 0.1 V⁻¹ (t/RC) ((dV^F)^2 - (dV^C)^2)). Every example's
free state is solved by :func:`learnboard.physics.solve` warm-started from the previous
step's solution, and its clamped state from the free one. For transistors the power
term is a heuristic (a gate-referenced transistor has no co-content, so the lambda term
is no power gradient); the engine reports the physical power Σ I dV it reaches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from learnboard.boards import circuit_for_board
from learnboard.boards.schema import DigipotPart
from learnboard.engine.config import LearningConfig
from learnboard.errors import InputError
from learnboard.physics import Fix, FixDrop, solve
from learnboard.physics.devices import digipot_resistance
from learnboard.tasks import Dataset

DEFAULT_GATE_RANGE = (0.75, 5.2)


@dataclass
class BoardResult:
    """Outcome of :meth:`BoardEngine.train`; power in watts (physical Σ I dV)."""

    state: np.ndarray  # final tap / gate volts per edge
    initial_state: np.ndarray
    history: dict[str, np.ndarray]
    steps: int
    seconds: float
    newton_iterations_mean: float  # per warm-started solve (free and clamped)
    info: dict = field(default_factory=dict)

    @property
    def relative_error(self) -> float:
        e = self.history["error"]
        return float(e[-1] / e[0]) if e[0] > 0 else 0.0


def _fix(a: int, b: int | None, volts: float):
    return Fix(a, volts) if b is None else FixDrop(a, b, volts)


class BoardEngine:
    """Coupled learning with a power term on a loaded board (network 0, nominal parts).

    Args:
        board: a :class:`learnboard.boards.Board`.
        data: inputs per non-fixed input port, targets per output port (volts).
        config: learning parameters (``k_min/k_max`` unused: taps and gates have ranges).
        digipot_rule: ``"accumulate"`` or ``"sign"``.
    """

    def __init__(self, board, data: Dataset, config: LearningConfig, digipot_rule: str = "accumulate"):
        if digipot_rule not in ("accumulate", "sign"):
            raise InputError("digipot rule must be 'accumulate' or 'sign'", field="digipot_rule")
        self.board, self.config, self.rule = board, config, digipot_rule
        self.inputs = [p for p in board.inputs if p.fixed is None]
        self.bias = [p for p in board.inputs if p.fixed is not None]
        self.outputs = list(board.outputs)
        if data.n_inputs != len(self.inputs) or data.n_targets != len(self.outputs):
            raise InputError(f"the board {board.name} has {len(self.inputs)} inputs and "
                             f"{len(self.outputs)} outputs, the data {data.n_inputs} and "
                             f"{data.n_targets} columns", source=data.name)
        self.data = data
        kinds = np.array([e.kind for e in board.edges])
        self.is_pot = kinds == "digipot"
        self.is_gate = kinds == "transistor"
        lim = board.limits
        self.gate_range = lim.gate_range or DEFAULT_GATE_RANGE
        # conductance of every tap of every digipot edge (nominal parts), for the accumulate rule
        self.tap_lo = np.zeros(board.n_edges, dtype=np.int64)
        self.tap_hi = np.zeros(board.n_edges, dtype=np.int64)
        self.tap_g: dict[int, np.ndarray] = {}
        for i, e in enumerate(board.edges):
            part = board.parts.get(e.part) if e.part else None
            if isinstance(part, DigipotPart):
                lo, hi = lim.tap_range or (0, part.n_taps - 1)
                self.tap_lo[i], self.tap_hi[i] = lo, hi
                taps = np.arange(part.n_taps)
                r = digipot_resistance(taps, part.n_taps, part.r_min, part.r_max, part.taper, 0.0)
                self.tap_g[i] = 1.0 / (r + part.r_wiper)
        self._warm: list[np.ndarray | None] = [None] * data.n_examples
        self.iterations: list[int] = []

    def initial_state(self, init: str = "uniform") -> np.ndarray:
        """Mid-range taps and gates (``uniform``), or the lowest-conductance end (``low``)."""
        s = np.zeros(self.board.n_edges)
        mid = init != "low"
        lo, hi = self.gate_range
        s[self.is_gate] = (lo + hi) / 2 if mid else lo
        s[self.is_pot] = np.where(mid, (self.tap_lo + self.tap_hi) // 2, self.tap_hi)[self.is_pot]
        return s

    def _states(self, state: np.ndarray, x: np.ndarray, y: np.ndarray, ex: int, eta: float):
        circuit = circuit_for_board(self.board, state)
        fixes = [_fix(p.a, p.b, float(v)) for p, v in zip(self.inputs, x, strict=True)]
        fixes += [_fix(p.a, p.b, float(p.fixed)) for p in self.bias]
        free = solve(circuit, fixes, initial=self._warm[ex])
        self._warm[ex] = free.node_voltages
        v = free.node_voltages
        out = np.array([v[p.a] - (v[p.b] if p.b is not None else 0.0) for p in self.outputs])
        nudged = out + eta * (y - out)
        clamped = solve(circuit, fixes + [_fix(p.a, p.b, float(c))
                                          for p, c in zip(self.outputs, nudged, strict=True)],
                        initial=v)
        self.iterations += [free.iterations, clamped.iterations]
        return free, clamped, out

    def measure(self, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Solve every example: (<(dV^C)^2>, <(dV^F)^2>, error, physical power in W)."""
        n = self.data.n_examples
        c2 = np.zeros(self.board.n_edges)
        f2 = np.zeros(self.board.n_edges)
        err = pw = 0.0
        for ex in range(n):
            free, clamped, out = self._states(state, self.data.inputs[ex],
                                              self.data.targets[ex], ex, self.config.eta)
            c2 += clamped.drops**2
            f2 += free.drops**2
            err += float(np.sum((out - self.data.targets[ex]) ** 2))
            pw += free.power
        return c2 / n, f2 / n, err / n, pw / n

    def apply(self, state: np.ndarray, c2: np.ndarray, f2: np.ndarray, lam: float) -> np.ndarray:
        """The rule's update of taps and gates."""
        c = self.config
        delta = -(c.alpha / c.eta) * (c2 - (1 - lam) * f2)
        new = state.copy()
        lo, hi = self.gate_range
        new[self.is_gate] = np.clip(state[self.is_gate] + delta[self.is_gate], lo, hi)
        if self.rule == "sign":
            # more resistance (a higher tap: tap 0 is the small end) when the rule lowers k
            moved = state + np.where(delta < 0, 1, np.where(delta > 0, -1, 0))
            new[self.is_pot] = np.clip(moved, self.tap_lo, self.tap_hi)[self.is_pot]
        else:
            for i, g in self.tap_g.items():
                lo_g, hi_g = g[self.tap_hi[i]], g[self.tap_lo[i]]
                self._cont[i] = float(np.clip(self._cont[i] + delta[i], min(lo_g, hi_g),
                                              max(lo_g, hi_g)))
                taps = np.arange(self.tap_lo[i], self.tap_hi[i] + 1)
                new[i] = taps[np.argmin(np.abs(g[taps] - self._cont[i]))]
        return new

    def train(self, state0: np.ndarray, steps: int, *, controller=None,
              record_every: int = 1) -> BoardResult:
        """Run ``steps`` full-batch steps from taps / gate volts ``state0``."""
        state = np.array(state0, dtype=float)
        self._cont = {i: float(g[int(state[i])]) for i, g in self.tap_g.items()}
        self.iterations = []
        rows = []
        lam = self.config.lam
        c0 = None
        t0 = time.perf_counter()
        for s in range(steps + 1):
            c2, f2, err, pw = self.measure(state)
            c0 = err if c0 is None else c0
            rel = err / c0 if c0 > 0 else 0.0
            if controller is not None and s < steps:
                lam = controller.lam_for(s, rel)
            if s % record_every == 0 or s == steps:
                rows.append((s, err, rel, pw, lam))
            if s == steps:
                break
            state = self.apply(state, c2, f2, lam)
        seconds = time.perf_counter() - t0
        cols = ("step", "error", "relative_error", "power_watts", "lam")
        hist = {name: np.array([r[i] for r in rows]) for i, name in enumerate(cols)}
        return BoardResult(state, np.array(state0, dtype=float), hist, steps, seconds,
                           float(np.mean(self.iterations)) if self.iterations else 0.0)


def run_board_sim(args) -> int:
    """``learnboard sim --board``: train a board profile's simulated physics."""
    import csv
    import json
    from pathlib import Path

    from learnboard.boards import load_board
    from learnboard.engine.controller import ToleranceController
    from learnboard.tasks import parse_coeffs, read_csv, regression_task

    board = load_board(args.board)
    n_in = sum(1 for p in board.inputs if p.fixed is None)
    n_out = len(board.outputs)
    if args.data:
        data = read_csv(args.data)
    else:
        coeffs = parse_coeffs(args.coeffs)
        if coeffs.shape != (n_out, n_in):
            if args.coeffs != "0.2,0.3;0.1,0.5" or coeffs.shape[0] < n_out or coeffs.shape[1] < n_in:
                raise InputError(f"the board has {n_in} inputs and {n_out} outputs: give a "
                                 f"{n_out}x{n_in} matrix", field="--coeffs")
            coeffs = coeffs[:n_out, :n_in]
        raw = regression_task(coeffs, args.train_size, seed=args.seed)
        vmax = board.limits.max_node_volts  # inputs span the board's safe node range
        data = Dataset(raw.inputs * vmax, raw.targets * vmax, name=f"regression on {board.name}")
    # the generic defaults mean "not given": use the board's own learning settings
    alpha = board.learning.alpha if args.alpha == 0.5 else args.alpha
    eta = board.learning.eta if args.eta == 1e-3 else args.eta
    config = LearningConfig(alpha=alpha, eta=eta, lam=args.lam)
    rule = "sign" if board.learning.rule == "sign" else "accumulate"
    eng = BoardEngine(board, data, config, digipot_rule=rule)
    state0 = eng.initial_state("low" if args.init == "low" else "uniform")
    ctl = ToleranceController(args.tolerance) if args.tolerance is not None else None
    res = eng.train(state0, args.steps, controller=ctl, record_every=args.record_every or 1)
    h = res.history
    info = {"relative_error": res.relative_error, "error": float(h["error"][-1]),
            "initial_error": float(h["error"][0]),
            "power": None,  # the ½ co-content convention is undefined for transistor edges
            "power_watts": float(h["power_watts"][-1]),
            "initial_power_watts": float(h["power_watts"][0]),
            "initial_power": None, "steps": res.steps,
            "steps_per_second": res.steps / res.seconds if res.seconds else float("inf"),
            "seconds": res.seconds, "board": board.name, "digipot_rule": rule,
            "alpha": alpha, "eta": eta, "newton_iterations_mean": res.newton_iterations_mean,
            "n_examples": data.n_examples, "lam_final": float(h["lam"][-1])}
    if args.save:
        d = Path(args.save)
        d.mkdir(parents=True, exist_ok=True)
        with (d / "state.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["edge", "name", "kind", "initial", "final"])
            for i, e in enumerate(board.edges):
                w.writerow([i, e.name, e.kind, res.initial_state[i], res.state[i]])
        with (d / "history.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(list(h))
            w.writerows(zip(*(h[c].tolist() for c in h), strict=True))
        (d / "summary.json").write_text(json.dumps(info, indent=2) + "\n")
    if args.json:
        print(json.dumps(info))
    else:
        print(f"board {board.name}: {res.steps} steps in {res.seconds:.3g} s; C/C0 "
              f"{info['relative_error']:.4g}; physical power {info['initial_power_watts']:.4g} W -> "
              f"{info['power_watts']:.4g} W; Newton iterations per warm-started solve "
              f"{res.newton_iterations_mean:.2f}")
    return 0
