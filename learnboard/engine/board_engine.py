"""Board profiles through the engine: the board's own devices, solved by the physics.

Two models of a board (``BoardEngine(..., model=)``):

* ``"ideal"`` — nominal parts, exact volts. Digipot edges move in whole taps
  (``"accumulate"`` integrates the rule's conductance change and emits the nearest tap,
  ``"sign"`` is the Gen-1 rule: one tap per step); transistor edges move their gate by
  ``-(alpha/eta) <(dV^C)^2 - (1 - lam)(dV^F)^2>`` volts within the gate range.
* ``"board"`` — what the board's firmware does on the emulated board of the same seed,
  so that a session can be planned in simulation (the constants and draws are in
  :mod:`learnboard.engine.board_model`): the free state is solved on network 0 and the
  clamped one on network 1 with that seed's device spread
  (:func:`learnboard.boards.edge_parameters`); inputs, targets and clamps go through the
  board's converters and nodes are read as ADC codes; every example is used every step
  (the firmware's full batch); the rule is the firmware's (``lbfw/rule.py``) in the same
  units — a gate's change in volts becomes a charge or discharge pulse of whole
  microseconds planned linearly from the read-back gate inside the firmware's planning
  range, capped at ``pulse_us``, and each network's gate then relaxes exponentially
  toward its rail for the pulse plus the time the firmware takes to switch it off plus
  that capacitor's own switch lag; idle gates leak, and the firmware's ``keep_gates``
  puts them back every second of board time; a digipot moves one tap at most per step.

Every example's free state is warm-started from its previous step's, its clamped state
from its previous clamped one (from this step's free one at the first step). The fast
path (``solver="batch"``) solves all examples of a step in one compiled call of the DC
solver's Newton (:func:`learnboard.engine.board_kernels.newton_batch`) on arrays built
once (an all-resistor board converges in two iterations); ``solver="reference"`` calls
:func:`learnboard.physics.solve` per example on a circuit built per example (the tests
compare the two). For transistors the power term is a heuristic (a gate-referenced
transistor has no co-content); the engine reports the physical power Σ I dV, and with
either model can replace the term by the exact gradient of that power (``power_term``,
:mod:`learnboard.engine.power_gradient`; docs/physics.md).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from learnboard.boards import circuit_for_board
from learnboard.boards.schema import DigipotPart
from learnboard.engine.board_model import (
    FIRMWARE_KEEP_LIFT,
    FIRMWARE_KEEP_MS,
    BoardIO,
    gate_spread,
    planning_range,
)
from learnboard.engine.config import LearningConfig
from learnboard.errors import InputError
from learnboard.physics import Fix, FixDrop, solve
from learnboard.physics.circuit import RESISTOR, TRANSISTOR
from learnboard.physics.dc_newton import CONVERGED, device_rows
from learnboard.physics.devices import digipot_resistance
from learnboard.physics.solver import Constraints
from learnboard.tasks import Dataset

DEFAULT_GATE_RANGE = (0.75, 5.2)
MODELS = ("ideal", "board")
SOLVERS = ("batch", "reference")
TOL, MAX_ITER, MAX_STEP = 1e-10, 100, 0.5  # as learnboard.physics.solve
MAX_DAC_CODES = 16  # the firmware's largest DAC-gate step (rule.set_params max_codes)
# the rule's power term: local <(dV^F)^2>, or the exact gradient of the free / total
# physical power scaled to its norm (learnboard.engine.power_gradient)
POWER_TERMS = ("local", "exact", "exact-total")


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


# ----------------------------------------------------------------------------- one network


class _Net:
    """One network of the board with two sets of driven ports (free: inputs and biases;
    clamped: also the outputs): what its solves share between steps."""

    def __init__(self, board, twin: int, mismatch: int | None, ports_free: list, ports_clamp: list,
                 state: np.ndarray):
        self.board, self.twin, self.mismatch = board, twin, mismatch
        circuit = circuit_for_board(board, state, twin, mismatch)
        self.linear = circuit.is_linear
        edges = circuit.network.edges
        self.a = np.ascontiguousarray(edges[:, 0], dtype=np.int64)
        self.b = np.ascontiguousarray(edges[:, 1], dtype=np.int64)
        self.kind = np.ascontiguousarray(circuit.kind, dtype=np.int8)
        self.vt = circuit.vt.copy()
        self.is_gate = circuit.kind == TRANSISTOR
        self.has_pots = bool(np.any(circuit.kind == RESISTOR))
        self.dev = device_rows(circuit)
        self.ports = (ports_free, ports_clamp)
        self.cons = tuple(Constraints(circuit, [_fix(a, b, 0.0) for a, b in ports])
                          for ports in self.ports)
        self.place = tuple(self._placement(c) for c in self.cons)
        self.last = np.zeros(circuit.n_nodes)

    @staticmethod
    def _placement(cons: Constraints) -> tuple[np.ndarray, np.ndarray]:
        """(offset (N, m), P (N, N)): :meth:`Constraints.place` is ``off + P (v - off)``
        with ``off = offset @ values`` (nodes sharing a variable move to their mean)."""
        col = cons.col
        n = col.size
        p = np.zeros((n, n))
        for c in range(cons.nvar):
            nodes = np.flatnonzero(col == c)
            p[np.ix_(nodes, nodes)] = 1.0 / nodes.size
        return np.ascontiguousarray(cons.offset), p

    def circuit(self, state: np.ndarray):
        return circuit_for_board(self.board, state, self.twin, self.mismatch)

    def solve_reference(self, state, which: int, values: np.ndarray, warm: np.ndarray | None):
        """Per example :func:`learnboard.physics.solve` on a circuit built for it."""
        n_ex = values.shape[0]
        volts = np.empty((n_ex, self.last.size))
        currents = np.empty((n_ex, self.a.size))
        iters = np.zeros(n_ex, dtype=np.int64)
        for k in range(n_ex):
            fixes = [_fix(a, b, float(v)) for (a, b), v in zip(self.ports[which], values[k],
                                                               strict=True)]
            sol = solve(self.circuit(state), fixes, initial=None if warm is None else warm[k])
            volts[k], currents[k], iters[k] = sol.node_voltages, sol.edge_currents, sol.iterations
        return volts, currents, iters

    def solve_batch(self, state, which: int, values: np.ndarray, warm: np.ndarray | None):
        """Every example at once, in one compiled Newton call (on an all-resistor board
        it converges in two iterations: one step to rounding, one to see it)."""
        from learnboard.engine.board_kernels import newton_batch

        if warm is None:  # no previous state: the general solver's start
            return self.solve_reference(state, which, values, warm)
        cons = self.cons[which]
        if self.has_pots:
            self.dev = device_rows(self.circuit(state))
        offset, p = self.place[which]
        off = values @ offset.T
        volts = np.ascontiguousarray(off + (warm - off) @ p.T)
        n_ex = values.shape[0]
        vscale = np.maximum(np.max(np.abs(values), axis=1, initial=0.0), 1e-6)
        currents = np.empty((n_ex, self.a.size))
        iters = np.empty(n_ex, dtype=np.int64)
        status = np.empty(n_ex, dtype=np.int64)
        gvt = np.ascontiguousarray(np.where(self.is_gate, state - self.vt, 0.0))
        newton_batch(self.a, self.b, self.kind, gvt, self.dev, cons.col, cons.nvar, volts,
                     vscale, TOL, MAX_ITER, MAX_STEP, currents, iters, status, self.last)
        for k in np.flatnonzero(status != CONVERGED):  # as solve: gmin, source stepping
            v, i, it = self.solve_reference(state, which, values[k:k + 1], warm[k:k + 1])
            volts[k], currents[k] = v[0], i[0]
            iters[k] += it[0]
        return volts, currents, iters


# ----------------------------------------------------------------------------- the engine


class BoardEngine:
    """Coupled learning with a power term on a board profile (see the module docstring).

    Args:
        board: a :class:`learnboard.boards.Board`.
        data: inputs per non-fixed input port, targets per output port (volts).
        config: learning parameters (``k_min/k_max`` unused: taps and gates have ranges).
        digipot_rule: ``"accumulate"`` or ``"sign"`` (with ``model="board"``: the
            firmware's mode, ``cl`` or ``gen1``, for every edge).
        model: ``"ideal"`` or ``"board"``.
        seed: with ``model="board"``, the emulated board's seed whose device spread the
            twin networks get (None: nominal parts).
        pulse_us: with ``model="board"``, the longest gate pulse per step (the firmware's
            ``pulse_us``; default the profile's ``[gates] pulse_us``).
        alpha_at: ``step -> alpha`` (a schedule such as the annealed learning rate of
            ``learnboard train``); default the constant ``config.alpha``.
        solver: ``"batch"`` (fast) or ``"reference"`` (one general solve per example).
        power_term: ``"local"`` (the rule's ``<(dV^F)^2>``), ``"exact"`` or
            ``"exact-total"`` (the exact gradient of the free or total physical power with
            respect to the gates, scaled to the local term's norm; with ``model="board"``
            the powers the board's own networks dissipate).
        track_gradient: record, at every recorded step, how the local term agrees with
            the exact gradients (history columns ``cos_free``, ``sign_free``,
            ``cos_total``, ``sign_total``, ``cos_free_above_floor``,
            ``sign_free_above_floor``, ``at_floor``, ``power_clamped_watts``;
            :mod:`learnboard.engine.power_gradient`).
        track_every: with ``track_gradient``, evaluate the agreement every this many
            steps (and at the last; NaN in the recorded rows between): it costs an
            adjoint solve per example.
    """

    def __init__(self, board, data: Dataset, config: LearningConfig, digipot_rule: str = "accumulate",
                 *, model: str = "ideal", seed: int | None = None, pulse_us: int | None = None,
                 alpha_at=None, solver: str = "batch", step_seconds: float | None = None,
                 power_term: str = "local", track_gradient: bool = False,
                 track_every: int = 1, null_offset_every: int = 0):
        if digipot_rule not in ("accumulate", "sign"):
            raise InputError("digipot rule must be 'accumulate' or 'sign'", field="digipot_rule")
        if model not in MODELS:
            raise InputError(f"model must be one of {', '.join(MODELS)}, got {model!r}", field="model")
        if solver not in SOLVERS:
            raise InputError(f"solver must be one of {', '.join(SOLVERS)}, got {solver!r}",
                             field="solver")
        if power_term not in POWER_TERMS:
            raise InputError(f"power term must be one of {', '.join(POWER_TERMS)}, got "
                             f"{power_term!r}", field="power_term")
        if power_term != "local" and not board.has_gates:
            raise InputError(f"the board {board.name} has no transistor gates, so no power "
                             "gradient with respect to gates: use power_term='local'",
                             field="power_term")
        if isinstance(null_offset_every, bool) or not isinstance(null_offset_every, int) \
                or null_offset_every < 0:
            raise InputError(f"{null_offset_every!r} is not a step count: give an integer >= 0 "
                             "(0 = no null offset)", field="null_offset_every")
        self.null_offset_every = null_offset_every
        self.power_term, self.track_gradient = power_term, track_gradient
        self.track_every = max(1, int(track_every))
        self.board, self.config, self.rule = board, config, digipot_rule
        self.model, self.solver = model, solver
        self.alpha_at = alpha_at
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
        # the description's range (where a session starts its gates), and the one the
        # rule keeps them in (with model="board" the firmware's narrower planning range)
        self.hard_range = lim.gate_range or DEFAULT_GATE_RANGE
        self.gate_range = self.hard_range
        self.io = BoardIO.of(board)
        if model == "board" and self.is_gate.any():
            self.gate_range = planning_range(board, self.io)
        default_us = int(board.gates.pulse_us) if board.gates is not None else 100
        self.pulse_us = int(pulse_us if pulse_us is not None else default_us)
        # taps: range, conductance per tap (nominal), taps per siemens (the firmware's gains)
        self.tap_lo = np.zeros(board.n_edges, dtype=np.int64)
        self.tap_hi = np.zeros(board.n_edges, dtype=np.int64)
        self.tap_g: dict[int, np.ndarray] = {}
        self.tap_gain: dict[int, np.ndarray] = {}
        for i, e in enumerate(board.edges):
            part = board.parts.get(e.part) if e.part else None
            if isinstance(part, DigipotPart):
                lo, hi = lim.tap_range or (0, part.n_taps - 1)
                self.tap_lo[i], self.tap_hi[i] = lo, hi
                taps = np.arange(part.n_taps)
                r = digipot_resistance(taps, part.n_taps, part.r_min, part.r_max, part.taper, 0.0)
                self.tap_g[i] = 1.0 / (r + part.r_wiper)
                if part.taper == "log":
                    self.tap_gain[i] = r / (math.log(part.r_max / part.r_min) / (part.n_taps - 1))
                else:
                    self.tap_gain[i] = r * r / ((part.r_max - part.r_min) / (part.n_taps - 1))
        mismatch = seed if model == "board" else None
        ports_free = [(p.a, p.b) for p in self.inputs + self.bias]
        # a differential output without a common-mode voltage is clamped as the firmware
        # clamps it: both nodes driven, symmetrically about their free voltages
        self.sym = [p.b is not None and p.b != board.ground and p.common is None
                    for p in self.outputs]
        ports_clamp = list(ports_free)
        for p, sym in zip(self.outputs, self.sym, strict=True):
            ports_clamp += [(p.a, None), (p.b, None)] if sym else [(p.a, p.b)]
        state0 = self.initial_state()
        self.nets = [_Net(board, 0, mismatch, ports_free, ports_clamp, state0)]
        if board.n_nets > 1 and model == "board":
            self.nets.append(_Net(board, 1, mismatch, ports_free, ports_clamp, state0))
        # per network and edge: how much longer a pulse acts (the firmware's switch-off
        # and the switch's own lag), and the gate's idle leak (V/s)
        n_model = len(self.nets)
        self._over = np.full((n_model, board.n_edges), self.io.pulse_overhead_us)
        self._leak = np.zeros((n_model, board.n_edges))
        self.step_seconds = 0.0
        if model == "board" and seed is not None and self.is_gate.any() and not self.io.dac_gates:
            leak, skew = gate_spread(board, seed)
            self._over += skew[:n_model]
            self._leak = leak[:n_model]
            self.step_seconds = (step_seconds if step_seconds is not None
                                 else self.io.step_seconds(data.n_examples))
        self.iterations: list[int] = []
        self._warm: np.ndarray | None = None  # every example's last free / clamped volts
        self._warm_c: np.ndarray | None = None
        self._set_data()
        if solver == "batch":
            from learnboard.engine.board_kernels import warm_up

            warm_up()

    def _set_data(self) -> None:
        """The examples as the board drives them (codes back to volts with ``model="board"``)."""
        x = np.asarray(self.data.inputs, dtype=float)
        y = np.asarray(self.data.targets, dtype=float)
        bias = np.array([float(p.fixed) for p in self.bias])
        io = self.io
        if self.model == "board":
            x = np.minimum(io.in_max, np.floor(x / io.in_vpc + 0.5)) * io.in_vpc
            bias = np.minimum(io.in_max, np.floor(bias / io.in_vpc + 0.5)) * io.in_vpc
            self.target_codes = np.floor(y / io.node_vpc + 0.5)
        self.x_free = np.hstack([x, np.broadcast_to(bias, (x.shape[0], bias.size))])
        self.y = y

    def initial_state(self, init: str = "uniform") -> np.ndarray:
        """Mid-range taps and gates (``uniform``), or the lowest-conductance end (``low``;
        gates 5 % inside their range with ``model="board"``, as ``learnboard train``)."""
        s = np.zeros(self.board.n_edges)
        mid = init != "low"
        lo, hi = self.hard_range
        # "low" as learnboard train sets it on the board model: 5 % inside the range
        low = lo + 0.05 * (hi - lo) if self.model == "board" else lo
        s[self.is_gate] = (lo + hi) / 2 if mid else low
        if self.model == "board" and self.io.dac_gates:  # written as DAC codes
            s[self.is_gate] = np.round(s[self.is_gate] / self.io.gate_vpc) * self.io.gate_vpc
        s[self.is_pot] = np.where(mid, (self.tap_lo + self.tap_hi) // 2, self.tap_hi)[self.is_pot]
        return s

    # -- one step's states ------------------------------------------------------------

    def _solve(self, net: _Net, state, which: int, values, warm):
        f = net.solve_batch if self.solver == "batch" else net.solve_reference
        volts, currents, iters = f(state, which, values, warm)
        if warm is not None:  # the mean is per warm-started solve
            self.iterations.extend(iters.tolist())
        return volts, currents

    def _adc_codes(self, volts: np.ndarray) -> np.ndarray:
        """The codes the firmware reads at nodes of ``volts`` (an ideal converter)."""
        return np.clip(np.floor(volts / self.io.read_lsb + 0.5), 0, self.io.adc_max)

    def outputs_at(self, state: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """Output volts (examples, outputs) of the free network at edge ``state`` for
        ``inputs`` (volts per example input; the biases added), solved from scratch."""
        x = np.asarray(inputs, dtype=float)
        bias = np.array([float(p.fixed) for p in self.bias])
        values = np.hstack([x, np.broadcast_to(bias, (x.shape[0], bias.size))])
        volts, _, _ = self.nets[0].solve_reference(state, 0, values, None)
        return self._outputs(volts)

    def _outputs(self, volts: np.ndarray) -> np.ndarray:
        out = np.stack([volts[:, p.a] - (volts[:, p.b] if p.b is not None else 0.0)
                        for p in self.outputs], axis=1)
        return out

    def states(self, state: np.ndarray, eta: float):
        """Solve every example: (free drops (B, E), clamped drops (B, E), error, physical
        power (W)), the drops as the rule sees them (ADC codes in volts with ``model="board"``)."""
        free_net = self.nets[0]
        clamp_net = self.nets[-1]
        vf, i_f = self._solve(free_net, state, 0, self.x_free, self._warm)
        self._warm = vf
        power = float(np.mean(np.sum(i_f * (vf[:, free_net.a] - vf[:, free_net.b]), axis=1)))
        io = self.io
        if self.model == "board":
            # the firmware reads ADC codes, nudges in codes, drives the clamp in its codes
            cf = self._adc_codes(vf)
            yf = self._outputs(cf)
            err = float(np.mean(np.sum((yf * io.node_vpc - self.y) ** 2, axis=1)))
            d = self.target_codes - yf
            k16 = np.floor(io.node_vpc / io.clamp_vpc * 65536 + 0.5)
            nudge16 = int(eta * 65536 + 0.5)
            yc = yf + np.floor(nudge16 * d / 65536)
            half = np.floor(nudge16 * d / 131072)  # differential: each node half the nudge
            cols = []
            for k, p in enumerate(self.outputs):
                targets = ([(cf[:, p.a] + half[:, k], k), (cf[:, p.b] - half[:, k], k)]
                           if self.sym[k] else [(yc[:, k], k)])
                for v, j in targets:
                    code = np.clip(np.floor(v * k16[j] / 65536), 0, io.clamp_max[j])
                    cols.append(code * io.clamp_vpc[j])
            clamp = np.stack(cols, axis=1)
        else:
            out = self._outputs(vf)
            err = float(np.mean(np.sum((out - self.y) ** 2, axis=1)))
            nudge = eta * (self.y - out)
            cols = []
            for k, p in enumerate(self.outputs):
                cols += ([vf[:, p.a] + nudge[:, k] / 2, vf[:, p.b] - nudge[:, k] / 2]
                         if self.sym[k] else [out[:, k] + nudge[:, k]])
            clamp = np.stack(cols, axis=1)
        twin = getattr(self, "_twin", None)
        # the clamped state starts from this example's last clamped state (same network,
        # nearly the same nudge: fewer Newton iterations than from this step's free one)
        warm_c = vf if self._warm_c is None else self._warm_c
        vc, _ = self._solve(clamp_net, state if twin is None else twin, 1,
                            np.hstack([self.x_free, clamp]), warm_c)
        self._warm_c = vc
        self._clamp = clamp  # the clamp values driven (the exact gradient's clamp path)
        a, b = free_net.a, free_net.b
        if self.model == "board":
            cc = self._adc_codes(vc)
            df = (cf[:, a] - cf[:, b]) * io.node_vpc
            dc = (cc[:, a] - cc[:, b]) * io.node_vpc
        else:
            df, dc = vf[:, a] - vf[:, b], vc[:, a] - vc[:, b]
        return df, dc, err, power

    # -- the rule ---------------------------------------------------------------------

    def apply(self, state: np.ndarray, c2: np.ndarray, f2: np.ndarray, lam: float,
              alpha: float | None = None) -> np.ndarray:
        """The rule's update of taps and gates from the step's means ``<(dV^C)^2>`` and
        ``<(dV^F)^2>`` (V^2)."""
        c = self.config
        alpha = c.alpha if alpha is None else alpha
        if self.model == "board":
            return self._apply_board(state, c2 - f2, f2, lam, alpha)
        delta = -(alpha / c.eta) * (c2 - (1 - lam) * f2)
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

    def _apply_board(self, state, d2, f2, lam, alpha) -> np.ndarray:
        """The firmware's rule (``lbfw/rule.py``) in floats: ``u = <dVc^2 - dVf^2> + lam
        <dVf^2>``; a tap moves at most one step, a gate by a pulse of whole microseconds."""
        c = self.config
        u = d2 + lam * f2
        new = state.copy()
        sign = self.rule == "sign"
        io = self.io
        for i in np.flatnonzero(self.is_pot):
            pe = int(state[i])
            if sign:
                q = 1 if u[i] > 0 else (-1 if u[i] < 0 else 0)
            else:
                tap = min(max(pe, self.tap_lo[i]), self.tap_hi[i])
                a = (alpha / c.eta) * u[i] * self.tap_gain[i][tap] + self._acc[i]
                q = int(max(-1.0, min(1.0, math.trunc(a))))
            q = min(max(q, self.tap_lo[i] - pe), self.tap_hi[i] - pe)
            if not sign:
                a = min(max(a - q, -0.99999), 0.99999)  # the residue, below one tap
                if (a > 0 and pe + q >= self.tap_hi[i]) or (a < 0 and pe + q <= self.tap_lo[i]):
                    a = 0.0
                self._acc[i] = a
            new[i] = pe + q
        lo, hi = self.gate_range
        rc, rail = io.rc_us, io.rail
        twin = self._twin
        new_twin = None if twin is None else twin.copy()
        if twin is not None:
            new_twin[self.is_pot] = new[self.is_pot]  # the same taps on both networks
        for i in np.flatnonzero(self.is_gate):
            if io.dac_gates:
                new[i] = self._dac_gate(i, state[i], u[i], alpha, sign)
                if twin is not None:
                    new_twin[i] = new[i]  # both networks' DACs get the same code
                continue
            g = state[i]
            pe = self._read_gate(g)
            a = -(alpha / c.eta) * u[i] + self._acc[i]  # volts wanted
            up = a > 0 or (sign and u[i] < 0)
            span, room = (rail - pe, hi - pe) if up else (pe, pe - lo)
            rate = span / rc  # volts per microsecond, planned linearly
            if rate <= 0 or room <= 0 or (sign and u[i] == 0):
                self._acc[i] = 0.0
                continue
            q = self.pulse_us if sign else min(self.pulse_us, math.trunc(abs(a) / rate))
            r = math.trunc(room / rate)
            q = min(q, r)
            if not sign:
                a -= math.copysign(q * rate, a)
                a = min(max(a, -rate * 0.99999), rate * 0.99999)
                self._acc[i] = 0.0 if q == r else a
            if q > 0 and twin is not None and not self._twin_ok(up, q, pe, twin[i]):
                q = 0  # the firmware drops a pulse that would take network 1 out of range
            if q > 0:
                target = rail if up else 0.0
                new[i] = target + (g - target) * math.exp(-(q + self._over[0, i]) / rc)
                if twin is not None:
                    new_twin[i] = target + (twin[i] - target) * math.exp(
                        -(q + self._over[1, i]) / rc)
        self._leak_step(new, 0)
        if twin is not None:
            self._leak_step(new_twin, 1)
            self._twin = new_twin
        return new

    def _dac_gate(self, i: int, g: float, u: float, alpha: float, sign: bool) -> float:
        """A DAC-held gate: at most ``MAX_DAC_CODES`` codes per step (one in sign mode),
        inside the range, with a residue below one code (the firmware's DAC edges)."""
        vpc = self.io.gate_vpc
        lo, hi = round(self.gate_range[0] / vpc), round(self.gate_range[1] / vpc)
        pe = round(g / vpc)
        if sign:
            q = -1 if u > 0 else (1 if u < 0 else 0)
        else:
            a = -(alpha / self.config.eta) * u / vpc + self._acc[i]  # codes wanted
            q = int(max(-MAX_DAC_CODES, min(MAX_DAC_CODES, math.trunc(a))))
        q = min(max(q, lo - pe), hi - pe)
        if not sign:
            a = min(max(a - q, -0.99999), 0.99999)
            if (a > 0 and pe + q >= hi) or (a < 0 and pe + q <= lo):
                a = 0.0
            self._acc[i] = a
        return (pe + q) * vpc

    def _read_gate(self, g: float) -> float:
        """A gate's read-back (volts of its nearest ADC code)."""
        return math.floor(g / self.io.gate_lsb + 0.5) * self.io.gate_lsb

    def _twin_ok(self, up: bool, q: int, pe: float, g1: float) -> bool:
        """The firmware's check of network 1's gate before a pulse (``learn._twin_bounds``)."""
        lo, hi = self.gate_range
        g1 = self._read_gate(g1)
        if (g1 <= pe) if up else (g1 >= pe):
            return True
        span, room = (self.io.rail - g1, hi - g1) if up else (g1, g1 - lo)
        if room < 0 or span <= 0:
            return False
        return q <= math.trunc(room / (span / self.io.rc_us))

    def _keep(self) -> None:
        """The firmware's ``keep_gates`` (every ``KEEP_MS`` of board time): a gate whose
        lowest twin's read-back is below the planning range (by more than the read-back
        noise) is steered up to ``KEEP_LIFT`` codes inside it by that twin, one whose
        highest twin is above it down likewise (``gates.PulseGates.keep``)."""
        from learnboard.firmware.lbfw.safety import NOISE

        nets = [self._state] + ([self._twin] if self._twin is not None else [])
        lo, hi = self.gate_range
        vpc = self.io.gate_vpc
        for i in np.flatnonzero(self.is_gate):
            reads = [self._read_gate(g[i]) for g in nets]
            if min(reads) < lo - NOISE * vpc:
                self._steer(nets, i, lo + FIRMWARE_KEEP_LIFT * vpc, by_low=True)
            elif max(reads) > hi + NOISE * vpc:
                self._steer(nets, i, hi - FIRMWARE_KEEP_LIFT * vpc, by_low=False)

    def _steer(self, nets: list, i: int, v: float, by_low: bool) -> None:
        """``gates.PulseGates.steer`` with ``force``: closed-loop pulses aimed at 90 % of
        the way, each ``pulse_overhead_us`` shorter than planned (it conducts that much
        longer); one 1 us pulse (which overshoots) when the way is shorter than that."""
        rc, rail, over = self.io.rc_us, self.io.rail, round(self.io.pulse_overhead_us)
        force = True
        for _ in range(10):
            reads = [self._read_gate(g[i]) for g in nets]
            g = min(reads) if by_low else max(reads)
            if abs(v - g) < 0.5 * self.io.gate_vpc:
                return
            up = v > g
            target = rail if up else 0.0
            if target in (v, g):
                return
            t = 0.9 * rc * math.log((target - g) / (target - v))
            ask = int(t + 0.5) - over
            if ask < 1:
                if 2 * t <= 1 + over and not force:
                    return
                ask, force = 1, False
            for net, gates in enumerate(nets):
                gates[i] = target + (gates[i] - target) * math.exp(-(ask + self._over[net, i]) / rc)

    def _leak_step(self, gates: np.ndarray, net: int) -> None:
        """Idle gates leak down for one step's time."""
        if self.step_seconds:
            g = self.is_gate
            gates[g] = np.maximum(0.0, gates[g] - self._leak[net, g] * self.step_seconds)

    # -- training ---------------------------------------------------------------------

    def train(self, state0: np.ndarray, steps: int, *, controller=None,
              record_every: int = 1) -> BoardResult:
        """Run ``steps`` full-batch steps from taps / gate volts ``state0``."""
        state = np.array(state0, dtype=float)
        self._twin = state.copy() if len(self.nets) > 1 else None
        self._cont = {i: float(g[int(state[i])]) for i, g in self.tap_g.items()}
        self._acc = np.zeros(self.board.n_edges)
        self.iterations = []
        self._warm = self._warm_c = None
        board_t = keep_t = 0.0  # the board's time (s), for its gate keeping
        rows = []
        lam = self.config.lam
        c0 = None
        eta = self.config.eta
        t0 = time.process_time()
        extra: dict[str, list] = {}
        every = self.null_offset_every
        offset = None
        for s in range(steps + 1):
            if every and s < steps and s % every == 0:
                # the firmware's null offset (parameter null_every): the rule's sums with the
                # clamps driven at the free outputs (nudge 0), nothing moved
                nf, nc, _, _ = self.states(state, 0.0)
                offset = np.mean(nc**2, axis=0) - np.mean(nf**2, axis=0)
            df, dc, err, pw = self.states(state, eta)
            c0 = err if c0 is None else c0
            rel = err / c0 if c0 > 0 else 0.0
            if controller is not None and s < steps:
                lam = controller.lam_for(s, rel)
            alpha = self.config.alpha if self.alpha_at is None else float(self.alpha_at(s))
            recorded = s % record_every == 0 or s == steps
            if recorded:
                rows.append((s, err, rel, pw, lam, alpha))
            c2, f2 = np.mean(dc**2, axis=0), np.mean(df**2, axis=0)
            track = self.track_gradient and recorded
            if self.power_term != "local" or track:
                from learnboard.engine.power_gradient import engine_step, skip

                now = s % self.track_every == 0 or s == steps
                if self.power_term != "local" or now:
                    c2, f2 = engine_step(self, state, c2, f2, extra if track and now else None)
                if track and not now:
                    skip(extra)
            if s == steps:
                break
            if offset is not None:
                c2 = c2 - offset
            state = self.apply(state, c2, f2, lam, alpha)
            if self.step_seconds:
                board_t += self.step_seconds
                if board_t - keep_t >= FIRMWARE_KEEP_MS / 1000.0:
                    self._state, keep_t = state, board_t
                    self._keep()
        seconds = time.process_time() - t0
        cols = ("step", "error", "relative_error", "power_watts", "lam", "alpha")
        hist = {name: np.array([r[i] for r in rows]) for i, name in enumerate(cols)}
        hist.update({name: np.array(v) for name, v in extra.items()})
        return BoardResult(state, np.array(state0, dtype=float), hist, steps, seconds,
                           float(np.mean(self.iterations)) if self.iterations else 0.0)
