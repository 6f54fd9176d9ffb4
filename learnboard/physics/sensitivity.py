"""Exact gradients of a solved DC state by one adjoint solve of the Newton system.

At a DC operating point the free variables ``u`` (:class:`~learnboard.physics.solver.
Constraints`: nodes no source holds) satisfy Kirchhoff's current law ``F(u; g, c) = 0``;
``g`` are the transistors' gate voltages, ``c`` the sources' values. For a scalar
``Q(V, g)`` of the state (the physical power ``P = Σ_e I_e ΔV_e``, an output voltage)
the chain rule with ``du/dθ = -J⁻¹ ∂F/∂θ`` (``J = ∂F/∂u``, the Newton Jacobian) gives

    dQ/dθ = ∂Q/∂θ - μᵀ ∂F/∂θ,    Jᵀ μ = ∂Q/∂u,

one linear solve for every gate and source at once. With ``w_e = μ_a - μ_b`` (μ of a
node without a variable is 0) the gate term is ``dQ/dg_e = ∂Q/∂g_e - w_e ∂I_e/∂g_e``;
a gate-referenced NMOS current depends on ``g - V_a`` and ``g - V_b`` only, so
``∂I_e/∂g_e = -(∂I_e/∂V_a + ∂I_e/∂V_b)``. For the power, ``∂P/∂g_e|_V = ∂I_e/∂g_e ΔV_e``
and so ``dP/dg_e = ∂I_e/∂g_e (ΔV_e - w_e)``. On a linear network ``μ = 0`` (the state
minimises the dissipation: ``∂P/∂u = 2 F = 0``) and ``dP/dk_e = ΔV_e²``; on transistor
edges ``μ ≠ 0`` in general (docs/physics.md, "The power gradient").

Batched over examples: ``v`` is (B, N), every example solved on the same circuit.
The states must be solutions without ``gmin`` (the default of
:func:`~learnboard.physics.solve`): a shunt to ground would add to ``J`` and to ``P``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnboard.physics.circuit import TRANSISTOR, Circuit
from learnboard.physics.dc_newton import EdgeArrays, edge_currents
from learnboard.physics.solver import Constraints


@dataclass
class Partials:
    """Edge currents and their derivatives at solved states (B, E) each."""

    i: np.ndarray
    da: np.ndarray  # dI/dV_a
    db: np.ndarray  # dI/dV_b
    dg: np.ndarray  # dI/dg (0 on resistors and diodes)
    drops: np.ndarray


@dataclass
class Gradient:
    """``dQ/dg`` (B, E) per gate (0 on other edges) and ``dQ/dc`` (B, m) per source."""

    gate: np.ndarray
    values: np.ndarray


def partials(circuit: Circuit, v: np.ndarray) -> Partials:
    """Currents and derivatives of every edge at node volts ``v`` (B, N)."""
    edges = EdgeArrays.of(circuit)
    v = np.atleast_2d(np.asarray(v, dtype=float))
    cur = [edge_currents(edges, row) for row in v]
    i, da, db = (np.stack([c[k] for c in cur]) for k in range(3))
    dg = np.where(circuit.kind == TRANSISTOR, -(da + db), 0.0)
    return Partials(i, da, db, dg, v[:, edges.a] - v[:, edges.b])


def _jacobians(edges: EdgeArrays, cons: Constraints, p: Partials) -> np.ndarray:
    """Dense KCL Jacobians ``∂F/∂u`` (B, nvar, nvar), as the Newton iteration stamps them."""
    n_b = p.i.shape[0]
    nvar = cons.nvar
    ca, cb = cons.col[edges.a], cons.col[edges.b]
    rows = np.concatenate([ca, ca, cb, cb])
    cols = np.concatenate([ca, cb, ca, cb])
    vals = np.concatenate([p.da, p.db, -p.da, -p.db], axis=1)
    keep = (rows >= 0) & (cols >= 0)
    flat = rows[keep] * nvar + cols[keep]
    jac = np.zeros((n_b, nvar * nvar))
    for k in range(n_b):
        jac[k] = np.bincount(flat, vals[k, keep], nvar * nvar)
    return jac.reshape(n_b, nvar, nvar)


def adjoint(circuit: Circuit, cons: Constraints, p: Partials, q_v: np.ndarray,
            q_g: np.ndarray) -> Gradient:
    """Gradient of ``Q`` with partials ``q_v = ∂Q/∂V`` (B, N) and ``q_g = ∂Q/∂g`` (B, E)
    at the solved states of ``p``, with respect to the gates and the sources' values.

    A singular Jacobian (a node whose every edge is a saturated level-1 transistor has no
    voltage dependence) leaves the state's sensitivity undefined in that direction: the
    least-squares (minimum-norm) adjoint is used for that example.
    """
    edges = EdgeArrays.of(circuit)
    col = cons.col
    var = col >= 0
    n_b = q_v.shape[0]
    q_u = np.zeros((n_b, cons.nvar))
    for k in range(n_b):
        q_u[k] = np.bincount(col[var], q_v[k, var], cons.nvar)
    mu = np.zeros((n_b, cons.nvar + 1))  # the last column: "no variable", always 0
    if cons.nvar:
        jt = np.swapaxes(_jacobians(edges, cons, p), 1, 2)
        try:
            mu[:, :-1] = np.linalg.solve(jt, q_u[..., None])[..., 0]
        except np.linalg.LinAlgError:
            for k in range(n_b):
                mu[k, :-1] = np.linalg.lstsq(jt[k], q_u[k], rcond=None)[0]
    w = mu[:, col[edges.a]] - mu[:, col[edges.b]]
    gate = q_g - w * p.dg
    # node volts as parameters: dQ/dV_n = q_v[n] - Σ_e w_e (da_e [a_e = n] + db_e [b_e = n])
    n = circuit.n_nodes
    node = q_v.copy()
    for k in range(n_b):
        node[k] -= (np.bincount(edges.a, w[k] * p.da[k], n) + np.bincount(edges.b, w[k] * p.db[k], n))
    return Gradient(gate=gate, values=node @ cons.offset)


def power_partials(circuit: Circuit, p: Partials) -> tuple[np.ndarray, np.ndarray]:
    """``(∂P/∂V (B, N), ∂P/∂g (B, E))`` of the physical power ``P = Σ_e I_e ΔV_e``."""
    edges = EdgeArrays.of(circuit)
    n = circuit.n_nodes
    at_a = p.da * p.drops + p.i
    at_b = p.db * p.drops - p.i
    q_v = np.stack([np.bincount(edges.a, at_a[k], n) + np.bincount(edges.b, at_b[k], n)
                    for k in range(p.i.shape[0])])
    return q_v, p.dg * p.drops


def power_gradient(circuit: Circuit, cons: Constraints, v: np.ndarray) -> tuple[np.ndarray, Gradient]:
    """Power ``Σ_e I_e ΔV_e`` (B,) of the solved states ``v`` (B, N) and its gradient with
    respect to the gates (W/V) and the sources' values.

    ``v`` must be converged solutions of ``circuit`` under ``cons`` (e.g.
    :func:`learnboard.physics.solve`'s ``node_voltages``): the adjoint is exact only there.
    """
    p = partials(circuit, v)
    q_v, q_g = power_partials(circuit, p)
    return np.sum(p.i * p.drops, axis=1), adjoint(circuit, cons, p, q_v, q_g)
