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
which carries the clamp's dependence). Nominal parts, exact volts: the model
``BoardEngine(model="ideal")`` runs.
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


def gate_power_gradient(board, state, x_free: np.ndarray, y: np.ndarray, eta: float, *,
                        free_volts: np.ndarray | None = None,
                        clamp_volts: np.ndarray | None = None) -> GatePowerGradient:
    """Exact ``dP/dVg`` of the free, clamped and total power of ``board`` at gate volts
    ``state`` (nominal parts) for the examples ``x_free`` (B, free ports) and targets
    ``y`` (B, outputs).

    ``free_volts`` / ``clamp_volts``: the solved states (B, N) when the caller has them
    (a training step does); else they are solved here.
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
    # clamped state: gates and every source value as parameters
    pc = partials(circuit, clamp_volts)
    grad_c = adjoint(circuit, cons_c, pc, *power_partials(circuit, pc))
    s = (1.0 - eta) * grad_c.values[:, len(free):]  # dP_c/d(out_free) through the clamp
    # free state: P_free alone, and P_free + Σ s_o out_o (the clamp's path)
    pf = partials(circuit, free_volts)
    q_v, q_g = power_partials(circuit, pf)
    g_free = adjoint(circuit, cons_f, pf, q_v, q_g).gate
    q_out = np.zeros_like(q_v)
    for o, (a, b) in enumerate(outs):
        q_out[:, a] += s[:, o]
        if b is not None:
            q_out[:, b] -= s[:, o]
    g_chain = adjoint(circuit, cons_f, pf, q_out, np.zeros_like(q_g)).gate
    return GatePowerGradient(
        power_free=float(np.mean(np.sum(pf.i * pf.drops, axis=1))),
        power_clamped=float(np.mean(np.sum(pc.i * pc.drops, axis=1))),
        free=np.mean(g_free, axis=0),
        clamped=np.mean(grad_c.gate + g_chain, axis=0),
    )


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
    gradient (``model="ideal"``): records the local term's agreement into ``record`` (when
    given) and returns the ``(<(dV^C)^2>, <(dV^F)^2>)`` the rule should use.

    The rule's gate change is ``-(alpha/eta)(<dVc²> - <dVf²> + lam·t)`` with the power
    term ``t = <dVf²>``; ``power_term="exact"`` (``"exact-total"``) puts the gradient of
    ``P_free`` (``P_total``) in its place, scaled per step to the local term's norm over
    the gates above the floor, so that only the direction differs. Returned as ``(c2 - f2 + t, t)``:
    the same rule, the same λ, another power term.
    """
    g = gate_power_gradient(engine.board, state, engine.x_free, engine.y, engine.config.eta,
                            free_volts=engine._warm, clamp_volts=engine._warm_c)
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
