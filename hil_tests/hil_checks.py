"""What the board suite compares measurements with: the physics of the board description.

Every check here takes measurements made through the protocol and a
:class:`learnboard.boards.Board`, and returns the problems it found (empty: pass), so the
same functions run on a real board, on the emulator, and on measurements a fault test
has corrupted on purpose (to show the check would catch the fault).

Tolerances come from the description: the ADC's resolution at a node (``vref / 2**bits /
front-end gain``) times ``ADC_LSB`` for quantisation, INL and noise, plus ``SIGMAS`` times
the node's spread over ``DRAWS`` draws of the parts' stated device spreads (digipot
end-to-end tolerance, transistor threshold and gain spreads) and of the edge read-back
resolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnboard.boards import circuit_for_board
from learnboard.physics.solver import Fix, solve

ADC_LSB = 8  # codes of ADC error budget at a node: E11 INL (±4), quantisation, noise
SIGMAS = 4.0  # how many spreads of the part tolerances a node may be off
DRAWS = 12  # mismatch draws for the spread


def line_quantum(board, line) -> tuple[float, int]:
    """(volts per code, top code) of a voltage output line (a DAC channel or PWM)."""
    if line.device and line.device in board.dacs:
        d = board.dacs[line.device]
        return d.vref * d.gain / (1 << d.bits), (1 << d.bits) - 1
    p = board.pwm
    return p.vref * p.gain / (1 << p.bits), (1 << p.bits) - 1


def input_fixes(board, x) -> list[Fix]:
    """Node voltages the board drives for inputs ``x`` (biases at their fixed value), as
    the firmware quantises them to its output codes."""
    fixes = []
    xs = iter(x)
    for p in board.inputs:
        v = p.fixed if p.fixed is not None else float(next(xs))
        line = p.drive[0]
        if line is not None:
            q, top = line_quantum(board, line)
            v = min(top, int(v / q + 0.5)) * q
        fixes.append(Fix(p.a, v))
    return fixes


def node_lsb(board) -> np.ndarray:
    """Volts per ADC code at each node of the free network (inf for unread nodes)."""
    out = np.full(board.n_nodes, np.inf)
    for mux in board.muxes.values():
        if mux.net != 0:
            continue
        for node in mux.nodes:
            if node >= 0:
                out[node] = board.adc.vref / (1 << board.adc.bits) / mux.gain
    return out


def read_nodes(board) -> np.ndarray:
    """Indices of the nodes the free network's ADC reads."""
    return np.flatnonzero(np.isfinite(node_lsb(board)))


def gate_lsb(board) -> float:
    """Volts per ADC code of a gate read-back (0 for boards without one)."""
    for mux in board.muxes.values():
        if mux.gates:
            return board.adc.vref / (1 << board.adc.bits) / mux.gain
    return 0.0


def _solve(board, k, x, mismatch=None) -> np.ndarray:
    return solve(circuit_for_board(board, np.asarray(k, float), twin=0, mismatch=mismatch),
                 input_fixes(board, x)).node_voltages


@dataclass
class Prediction:
    """Node voltages the description predicts, and how far a good board may be off."""

    v: np.ndarray
    tol: np.ndarray


def predict(board, k, x, *, seed: int = 0, draws: int = DRAWS) -> Prediction:
    """Nominal node voltages for edge states ``k`` and inputs ``x``, with per-node tolerance."""
    k = np.asarray(k, float)
    nominal = _solve(board, k, x)
    rng = np.random.default_rng(seed)
    glsb = gate_lsb(board)
    samples = []
    for d in range(draws):
        kd = k + rng.normal(0, 2 * glsb, k.shape) if glsb else k
        samples.append(_solve(board, kd, x, mismatch=1000 + seed * draws + d))
    spread = np.std(samples, axis=0)
    return Prediction(nominal, SIGMAS * spread + ADC_LSB * node_lsb(board))


def wiring_problems(board, measured, pred: Prediction) -> list[str]:
    """Nodes whose measured voltage is off the prediction by more than its tolerance."""
    out = []
    for n in read_nodes(board):
        if abs(measured[n] - pred.v[n]) > pred.tol[n]:
            out.append(f"node {board.nodes[n]} (#{n}) reads {measured[n]:.4f} V, the description "
                       f"predicts {pred.v[n]:.4f} ± {pred.tol[n]:.4f} V")
    return out


def rail_problems(board, measured) -> list[str]:
    """Nodes outside 0 … max_node_volts (with the ADC error budget)."""
    lsb = node_lsb(board)
    vmax = board.limits.max_node_volts
    return [f"node {board.nodes[n]} reads {measured[n]:.4f} V, outside 0..{vmax} V"
            for n in read_nodes(board)
            if not -ADC_LSB * lsb[n] <= measured[n] <= vmax + ADC_LSB * lsb[n]]


def distinguishable(pred: Prediction, board) -> float:
    """Fraction of node pairs whose predictions differ by more than both tolerances: a
    swap of two such channels cannot pass the wiring check."""
    nodes = read_nodes(board)
    v, t = pred.v[nodes], pred.tol[nodes]
    diff = np.abs(v[:, None] - v[None, :]) > (t[:, None] + t[None, :])
    iu = np.triu_indices(len(nodes), 1)
    return float(diff[iu].mean())


def edge_step(board, e: int, k_now: float) -> float:
    """A move of edge ``e`` that stays well inside its limits: +/- 0.4 V for a gate,
    +/- 8 taps for a digipot, toward the side with more room."""
    edge = board.edges[e]
    if edge.kind == "transistor":
        lo, hi = board.limits.gate_range
        step = 0.4
    else:
        part = board.parts[edge.part]
        lo, hi = board.limits.tap_range or (0, part.n_taps - 1)
        step = 8
    return step if hi - k_now >= k_now - lo else -step


def random_edges(board, rng: np.random.Generator) -> list:
    """Edge states spread over the middle of the safe range (known states for wiring)."""
    out = []
    for edge in board.edges:
        if edge.kind == "transistor":
            lo, hi = board.limits.gate_range
            out.append(float(rng.uniform(lo + 0.3 * (hi - lo), hi - 0.3 * (hi - lo))))
        elif edge.kind == "resistor":
            out.append(0)
        else:
            part = board.parts[edge.part]
            lo, hi = board.limits.tap_range or (0, part.n_taps - 1)
            out.append(int(rng.integers(lo + (hi - lo) // 4, hi - (hi - lo) // 4)))
    return out


def probe_inputs(board, rng: np.random.Generator, n: int = 3) -> list[list[float]]:
    """Input vectors across the node range (not all equal: they break symmetries)."""
    n_in = sum(1 for p in board.inputs if p.fixed is None)
    vmax = board.limits.max_node_volts
    return [list(rng.uniform(0.1 * vmax, 0.9 * vmax, n_in)) for _ in range(n)]


def _drop(v: np.ndarray, a: int, b: int) -> float:
    return abs(float(v[a] - v[b]))


def actuation_problems(link, board, x, *, edges=None) -> list[str]:
    """Move each edge by :func:`edge_step` and back, with inputs ``x`` applied; report edges
    whose read-back did not follow, or whose measured drop did not change as predicted.

    A transistor gate or digipot tap that moves up raises (gate) or lowers (tap) the
    edge's conductance, so the drop across it must fall (rise); the check compares the
    measured change of the drop with the nominal physics of the read-back states.
    """
    link.call("infer", x=[float(v) for v in x])
    k0 = np.array(link.call("read_edges")["k"], float)
    lsb = node_lsb(board)
    glsb = gate_lsb(board)
    v0 = np.array(link.call("measure")["v"])
    ground = board.ground
    v0[ground] = 0.0
    base = _solve(board, k0, x)
    problems = []
    todo = range(board.n_edges) if edges is None else edges
    for e in todo:
        edge = board.edges[e]
        if edge.kind == "resistor":
            continue
        step = edge_step(board, e, k0[e])
        link.call("write_edges", start=e, k=[float(k0[e] + step) if edge.kind == "transistor"
                                             else int(k0[e] + step)])
        k1 = float(link.call("read_edges", start=e, count=1)["k"][0])
        moved = (k1 - k0[e]) / step
        if not 0.5 <= moved <= 1.5:
            problems.append(f"edge {e} ({edge.name}): commanded {'up' if step > 0 else 'down'} by "
                            f"{abs(step):g}, read back {k0[e]:.4g} -> {k1:.4g}")
        v1 = np.array(link.call("measure")["v"])
        v1[ground] = 0.0
        kk = k0.copy()
        kk[e] = k1
        after = _solve(board, kk, x)
        a, b = edge.a, edge.b
        d_meas = _drop(v1, a, b) - _drop(v0, a, b)
        d_pred = _drop(after, a, b) - _drop(base, a, b)
        noise = ADC_LSB * (np.nan_to_num(lsb[a], posinf=0) + np.nan_to_num(lsb[b], posinf=0)) + 1e-4
        if abs(d_meas - d_pred) > max(noise, 0.35 * abs(d_pred)):
            problems.append(f"edge {e} ({edge.name}): drop changed by {d_meas * 1e3:+.2f} mV, the "
                            f"physics predicts {d_pred * 1e3:+.2f} mV (± {max(noise, 0.35 * abs(d_pred)) * 1e3:.2f})")
        # and back down (or up): the edge returns to where it was
        link.call("write_edges", start=e, k=[float(k0[e]) if edge.kind == "transistor" else int(k0[e])])
        k2 = float(link.call("read_edges", start=e, count=1)["k"][0])
        # pulse-charged gates land within a fraction of the move (switch-off time, RC
        # nonlinearity); taps land exactly
        back = max(3 * glsb, 0.15 * abs(step)) if edge.kind == "transistor" else 0
        if abs(k2 - k0[e]) > back + 1e-9:
            problems.append(f"edge {e} ({edge.name}): commanded back to {k0[e]:.4g}, read back {k2:.4g}")
    return problems
