"""The gradient of a board's physical power with respect to its gate voltages.

A learning step of coupled learning solves every example twice: the *free* state (inputs
and biases driven) and the *clamped* state (also the outputs, held at the nudged values
``c = out_free + eta·(y - out_free)``). The power of each is the dissipation
``Σ_e I_e ΔV_e``, which equals what its voltage sources deliver (Tellegen). Averaged over
the examples:

* ``P_free(g)`` — what the learned network draws when it is used;
* ``P_clamped(g)`` — what the clamped state draws, its output drive included; it depends
  on the gates directly and through the clamp values, which follow the free outputs;
* ``P_total = P_free + P_clamped`` — what a board that holds both states (a twin board,
  or one network solved twice) draws while it learns.

Each gradient is exact at the solved states (:mod:`learnboard.physics.sensitivity`):
one adjoint solve per example on the clamped state, one on the free state (the free
state's functional is ``P_free + Σ_o s_o out_o`` with ``s_o = (1 - eta)·∂P_clamped/∂c_o``,
which carries the clamp's dependence).

Both engine models (:func:`engine_gradient`): ``"ideal"`` (nominal parts, exact volts, one
network) and ``"board"`` (the emulated board of a seed: the free state on network 0, the
clamped one on network 1, each with its own device spread and its own gate volts). On the
board the powers are those its devices dissipate, ``P_free`` on network 0 and ``P_clamped``
on network 1; a gate's commanded change moves both networks' gate (one pulse, one DAC
code), so the gradient of ``P_total`` per gate is ``∂P_free/∂g0 + ∂P_clamped/∂g1`` plus
the clamp's path. The firmware's clamp is a code computed from ADC codes of the free
outputs, a staircase in the gates whose derivative is zero between its steps; the clamp's
path uses the slope of its envelope (the nudge's ``1 - eta`` on the outputs, in volts; 0
where a converter is at the end of its range), the dependence a gate change of more than a
code carries. The inputs are the converters' volts, constants for the gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnboard.boards import circuit_for_board
from learnboard.errors import InputError
from learnboard.physics import Fix, FixDrop, solve
from learnboard.physics.sensitivity import adjoint, partials, power_partials
from learnboard.physics.solver import Constraints


@dataclass
class GatePowerGradient:
    """Powers (W, mean over examples) and their gradients (W/V) per edge (0 off the gates)."""

    power_free: float
    power_clamped: float
    free: np.ndarray
    clamped: np.ndarray

    @property
    def power_total(self) -> float:
        return self.power_free + self.power_clamped

    @property
    def total(self) -> np.ndarray:
        return self.free + self.clamped


def _fix(a: int, b: int | None, volts: float):
    return Fix(a, volts) if b is None else FixDrop(a, b, volts)


def ports(board) -> tuple[list, list]:
    """(free ports, output ports) as ``(a, b)`` pairs, in the order :class:`BoardEngine`
    drives them (inputs that are not fixed, then the fixed biases; the outputs)."""
    ins = [p for p in board.inputs if p.fixed is None] + [p for p in board.inputs
                                                          if p.fixed is not None]
    return [(p.a, p.b) for p in ins], [(p.a, p.b) for p in board.outputs]


def _outputs(volts: np.ndarray, out_ports: list) -> np.ndarray:
    return np.stack([volts[:, a] - (volts[:, b] if b is not None else 0.0) for a, b in out_ports],
                    axis=1)


def solve_states(board, state, x_free: np.ndarray, y: np.ndarray, eta: float,
                 tol: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """Free and clamped node volts (B, N) each, one :func:`learnboard.physics.solve` per
    example (nominal parts)."""
    circuit = circuit_for_board(board, state)
    free, outs = ports(board)
    vf = np.stack([solve(circuit, [_fix(a, b, float(x)) for (a, b), x in zip(free, row, strict=True)],
                         tol=tol).node_voltages for row in x_free])
    clamp = _outputs(vf, outs)
    clamp = clamp + eta * (y - clamp)
    vc = np.stack([solve(circuit, [_fix(a, b, float(x)) for (a, b), x in
                                   zip(free + outs, np.concatenate([row, cl]), strict=True)],
                         tol=tol, initial=v).node_voltages
                   for row, cl, v in zip(x_free, clamp, vf, strict=True)])
    return vf, vc


def solved_power(board, state, x_free: np.ndarray, y: np.ndarray, eta: float,
                 tol: float = 1e-12) -> tuple[float, float]:
    """``(P_free, P_clamped)`` (W, mean over examples) of the states solved afresh."""
    circuit = circuit_for_board(board, state)
    out = []
    for v in solve_states(board, state, x_free, y, eta, tol):
        p = partials(circuit, v)
        out.append(float(np.mean(np.sum(p.i * p.drops, axis=1))))
    return out[0], out[1]


def twin_gradient(circ_free, circ_clamp, cons_free: Constraints, cons_clamp: Constraints,
                  free_volts: np.ndarray, clamp_volts: np.ndarray, n_free: int,
                  slope: np.ndarray) -> GatePowerGradient:
    """Exact gradients at solved states of two circuits of the same network (the free state
    on ``circ_free``, the clamped one on ``circ_clamp``; the same circuit on a single
    network). ``cons_clamp``'s sources are the ``n_free`` free ones, then the clamps;
    ``slope`` ((B,) m_clamp, N): each clamp value's derivative with respect to the free
    state's node volts (how the nudge follows the free outputs). The clamped gradient is
    with respect to ``circ_clamp``'s gates plus the clamp's path through ``circ_free``'s:
    a gate moved on both networks by the same volts."""
    # clamped state: gates and every source value as parameters
    pc = partials(circ_clamp, clamp_volts)
    grad_c = adjoint(circ_clamp, cons_clamp, pc, *power_partials(circ_clamp, pc))
    s = grad_c.values[:, n_free:]  # dP_c / d(clamp values)
    # free state: P_free alone, and Σ_k s_k clamp_k(v) (the clamp's path), linear in v
    pf = partials(circ_free, free_volts)
    q_v, q_g = power_partials(circ_free, pf)
    g_free = adjoint(circ_free, cons_free, pf, q_v, q_g).gate
    q_clamp = np.einsum("bk,bkn->bn", s, np.broadcast_to(slope, (s.shape[0], *np.shape(slope)[-2:])))
    g_chain = adjoint(circ_free, cons_free, pf, q_clamp, np.zeros_like(q_g)).gate
    return GatePowerGradient(
        power_free=float(np.mean(np.sum(pf.i * pf.drops, axis=1))),
        power_clamped=float(np.mean(np.sum(pc.i * pc.drops, axis=1))),
        free=np.mean(g_free, axis=0),
        clamped=np.mean(grad_c.gate + g_chain, axis=0),
    )


def _port_slope(outs: list, n_nodes: int, gain: float) -> np.ndarray:
    """(outputs, N): ``gain`` times each output's volts ``V_a - V_b`` as a row."""
    slope = np.zeros((len(outs), n_nodes))
    for o, (a, b) in enumerate(outs):
        slope[o, a] += gain
        if b is not None:
            slope[o, b] -= gain
    return slope


def gate_power_gradient(board, state, x_free: np.ndarray, y: np.ndarray, eta: float, *,
                        free_volts: np.ndarray | None = None,
                        clamp_volts: np.ndarray | None = None) -> GatePowerGradient:
    """Exact ``dP/dVg`` of the free, clamped and total power of ``board`` at gate volts
    ``state`` (nominal parts) for the examples ``x_free`` (B, free ports) and targets
    ``y`` (B, outputs).

    ``free_volts`` / ``clamp_volts``: the solved states (B, N) when the caller has them;
    else they are solved here.
    """
    state = np.asarray(state, dtype=float)
    if not 0.0 <= eta <= 1.0:
        raise InputError(f"eta must be in [0, 1], got {eta}", field="eta")
    circuit = circuit_for_board(board, state)
    free, outs = ports(board)
    if free_volts is None or clamp_volts is None:
        free_volts, clamp_volts = solve_states(board, state, x_free, y, eta)
    cons_f = Constraints(circuit, [_fix(a, b, 0.0) for a, b in free])
    cons_c = Constraints(circuit, [_fix(a, b, 0.0) for a, b in free + outs])
    return twin_gradient(circuit, circuit, cons_f, cons_c, free_volts, clamp_volts, len(free),
                         _port_slope(outs, circuit.n_nodes, 1.0 - eta))


def clamp_slope(engine) -> np.ndarray:
    """(B, clamp columns, N): how the engine's clamp values follow the free node volts,
    in the order of its clamped ports. ``model="ideal"``: ``c = out + eta (y - out)``
    (a differential output clamped symmetrically: each node half the nudge). ``model=
    "board"``: the envelope of the firmware's code arithmetic, the same slopes with its
    16-bit nudge; 0 for an example whose output's ADC code or clamp code is at the end
    of its range (the converter holds it there)."""
    eta = engine.config.eta
    io = engine.io
    board_model = engine.model == "board"
    if board_model:
        eta = float(int(eta * 65536 + 0.5)) / 65536
    n_nodes = engine._warm.shape[1]
    n_b = engine._warm.shape[0]
    rows = []
    for p, sym in zip(engine.outputs, engine.sym, strict=True):
        if sym:  # c_a = V_a + eta (y - V_a + V_b) / 2, c_b = V_b - eta (y - V_a + V_b) / 2
            for own, other in ((p.a, p.b), (p.b, p.a)):
                r = np.zeros(n_nodes)
                r[own], r[other] = 1.0 - eta / 2, eta / 2
                rows.append(r)
        else:
            rows.append(_port_slope([(p.a, p.b)], n_nodes, 1.0 - eta)[0])
    slope = np.broadcast_to(np.array(rows), (n_b, len(rows), n_nodes)).copy()
    if board_model:
        codes = engine._adc_codes(engine._warm)
        read_end = (codes <= 0) | (codes >= io.adc_max)  # (B, N)
        clamp = engine._clamp  # (B, clamp columns) volts of the driven codes
        col = 0
        for k, (p, sym) in enumerate(zip(engine.outputs, engine.sym, strict=True)):
            for _ in range(2 if sym else 1):
                top = io.clamp_max[k] * io.clamp_vpc[k]
                held = (clamp[:, col] <= 0.0) | (clamp[:, col] >= top - 1e-12) | read_end[:, p.a]
                if p.b is not None and p.b != engine.board.ground:
                    held |= read_end[:, p.b]
                slope[held, col] = 0.0
                col += 1
    return slope


def engine_gradient(engine, state: np.ndarray) -> GatePowerGradient:
    """The exact gradients at the engine's current step (its solved states), for either
    model: the free state on its first network at gates ``state``, the clamped one on its
    last network (at the twin's own gate volts with ``model="board"``)."""
    net_f, net_c = engine.nets[0], engine.nets[-1]
    twin = getattr(engine, "_twin", None)
    circ_f = net_f.circuit(state)
    circ_c = circ_f if net_c is net_f and twin is None else net_c.circuit(
        state if twin is None else twin)
    return twin_gradient(circ_f, circ_c, net_f.cons[0], net_c.cons[1], engine._warm,
                         engine._warm_c, engine.x_free.shape[1], clamp_slope(engine))


def agreement(local: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """(cosine, fraction of equal signs) between two per-gate vectors (descent directions)."""
    n = float(np.linalg.norm(local) * np.linalg.norm(exact))
    cos = float(local @ exact / n) if n > 0 else float("nan")
    return cos, float(np.mean(np.sign(local) == np.sign(exact))) if local.size else float("nan")


TRACKED = ("cos_free", "sign_free", "cos_total", "sign_total", "power_clamped_watts",
           "cos_free_above_floor", "sign_free_above_floor", "at_floor")


def skip(record: dict) -> None:
    """A recorded step whose agreement was not evaluated: NaN in every tracked column."""
    for key in TRACKED:
        record.setdefault(key, []).append(float("nan"))


def engine_step(engine, state: np.ndarray, c2: np.ndarray, f2: np.ndarray,
                record: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """One step of :class:`~learnboard.engine.board_engine.BoardEngine` with the exact
    gradient (either model): records the local term's agreement into ``record`` (when
    given) and returns the ``(<(dV^C)^2>, <(dV^F)^2>)`` the rule should use.

    The rule's gate change is ``-(alpha/eta)(<dVc²> - <dVf²> + lam·t)`` with the power
    term ``t = <dVf²>``; ``power_term="exact"`` (``"exact-total"``) puts the gradient of
    ``P_free`` (``P_total``) in its place, scaled per step to the local term's norm over
    the gates above the floor, so that only the direction differs. Returned as ``(c2 - f2 + t, t)``:
    the same rule, the same λ, another power term.
    """
    g = engine_gradient(engine, state)
    gates = engine.is_gate
    if record is not None:
        for key, vec in (("free", g.free), ("total", g.total)):
            cos, sign = agreement(f2[gates], vec[gates])
            record.setdefault(f"cos_{key}", []).append(cos)
            record.setdefault(f"sign_{key}", []).append(sign)
        record.setdefault("power_clamped_watts", []).append(g.power_clamped)
        # gates the clip holds at the floor cannot follow the term: the agreement on the rest
        above = gates & (state > engine.gate_range[0] + 1e-9)
        cos, sign = agreement(f2[above], g.free[above])
        record.setdefault("cos_free_above_floor", []).append(cos)
        record.setdefault("sign_free_above_floor", []).append(sign)
        record.setdefault("at_floor", []).append(1.0 - float(np.sum(above)) / float(np.sum(gates)))
    if engine.power_term == "local":
        return c2, f2
    exact = g.free if engine.power_term == "exact" else g.total
    t = f2.copy()  # digipot edges keep the local term
    # the same norm over the gates the term can move: at the floor the clip cancels the
    # local term's push (there it carries most of its norm, while the exact gradient is
    # exponentially small in the subthreshold tail), so a norm over every gate would make
    # the exact term's effective step larger, a larger λ in disguise
    above = gates & (state > engine.gate_range[0] + 1e-9)
    ref = float(np.linalg.norm(f2[above]))
    norm = float(np.linalg.norm(exact[above]))
    t[gates] = exact[gates] * (ref / norm if norm > 0 else 0.0)
    return c2 - f2 + t, t
