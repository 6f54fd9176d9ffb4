"""DC operating point of a :class:`~learnboard.physics.circuit.Circuit` under voltage constraints.

Constraints are ideal voltage sources: :class:`Fix` holds a node at a voltage to ground,
:class:`FixDrop` holds ``V_i - V_j``. Each constraint ``k`` is a row ``C_k`` on the node
voltages with value ``c_k``; Kirchhoff's current law reads ``B^T I(V) = C^T λ`` where
``λ_k`` is the current the source pushes into node ``i`` (and draws out of ``j``).

* Linear circuits: ``L V = C^T λ``, ``C V = c``; the reduced Laplacian is factorised once
  (:class:`~learnboard.physics.laplacian.LaplacianFactor`) and the constraints are
  handled by the small Schur complement ``S = C L⁻¹ C^T``.
* Nonlinear circuits: damped Newton (:mod:`learnboard.physics.dc_newton`: compiled up to
  ``DENSE_LIMIT`` unknowns, numpy/scipy sparse beyond) on KCL over the nodes' variables —
  the constraints eliminate the nodes they hold and tie together the nodes a drop
  joins — with a voltage-step limit and a backtracking line search; the source currents
  ``λ`` follow from KCL at the solution. Fall-backs are gmin stepping, then source
  stepping. A solve that does not converge raises
  :class:`~learnboard.errors.ConvergenceError`. The emulator's warm-started re-solves
  (:class:`~learnboard.physics.network_dc.NetworkDC`) run the same compiled Newton.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from learnboard.errors import ConvergenceError, InputError
from learnboard.physics.circuit import KIND_NAMES, Circuit
from learnboard.physics.dc_newton import (
    CONVERGED,
    EdgeArrays,
    edge_currents,
    newton,
    newton_reference,
    residual,
)
from learnboard.physics.laplacian import DENSE_LIMIT, LaplacianFactor


@dataclass(frozen=True)
class Fix:
    """Hold ``node`` at ``volts`` relative to ground."""

    node: int
    volts: float


@dataclass(frozen=True)
class FixDrop:
    """Hold the drop ``V_i - V_j`` at ``volts`` (a floating voltage source)."""

    i: int
    j: int
    volts: float


Constraint = Fix | FixDrop


@dataclass
class DCSolution:
    """A solved DC state.

    Attributes:
        node_voltages: (N,) volts, ground = 0.
        drops: (E,) ``V_i - V_j`` per edge.
        edge_currents: (E,) amperes, positive from ``i`` to ``j``.
        power: physical dissipation ``Σ_e I_e ΔV_e`` in watts.
        co_content: ``½ Σ_e k_e ΔV_e²`` — the paper's code's "power" convention; only for
            linear circuits (else None). Same units as ``power`` when k is in siemens.
        constraint_currents: (m,) amperes each constraint's source pushes into its node
            (``Fix``) or into ``i`` and out of ``j`` (``FixDrop``), in ``fixes`` order.
        iterations: Newton iterations used in total (0 for a linear solve).
        method: how the solution was found (``linear``, ``newton``, ``gmin``, ``source``).
    """

    node_voltages: np.ndarray
    drops: np.ndarray
    edge_currents: np.ndarray
    power: float
    co_content: float | None
    constraint_currents: np.ndarray
    iterations: int
    method: str = "linear"


# ----------------------------------------------------------------------------- constraints


class Constraints:
    """Validated constraint rows over the free (non-ground) nodes of a network.

    Attributes:
        fixes: the constraints, in order.
        rows: (m, n_free) dense constraint matrix ``C`` (ground column removed).
        values: (m,) constraint values ``c`` (V).
        col: (N,) each node's Newton variable, -1 where the constraints (with ground)
            fix it; nodes a chain of drops ties together share one.
        nvar: number of variables.
        offset: (N, m) a node's volts are its variable plus ``offset @ values``.
    """

    def __init__(self, circuit: Circuit, fixes: Sequence[Constraint]):
        net = circuit.network
        self.fixes = tuple(fixes)
        n = net.n_nodes
        keep = np.ones(n, dtype=bool)
        keep[net.ground] = False
        self.free_nodes = np.flatnonzero(keep)
        red = np.full(n, -1, dtype=np.int64)
        red[self.free_nodes] = np.arange(n - 1)
        m = len(self.fixes)
        rows = np.zeros((m, n - 1))
        values = np.zeros(m)
        for k, f in enumerate(self.fixes):
            pos, neg, values[k] = _endpoints(f, n, net.ground, net.name)
            if pos != net.ground:
                rows[k, red[pos]] += 1.0
            if neg is not None and neg != net.ground:
                rows[k, red[neg]] -= 1.0
        _check_forest(self.fixes, n, net.ground, net.name)
        self.rows = rows
        self.values = values
        self._cct = sla.cho_factor(rows @ rows.T) if m else None
        self.col, self.nvar, self.offset = _variables(self.fixes, n, net.ground)
        self._count = np.bincount(self.col[self.col >= 0], minlength=self.nvar)

    def place(self, v: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Node volts (N,) nearest ``v`` (least change) that satisfy the constraints."""
        off = self.offset @ values
        var = self.col >= 0
        u = np.bincount(self.col[var], (v - off)[var], self.nvar) / np.maximum(self._count, 1)
        out = off
        out[var] += u[self.col[var]]
        return out

    def __len__(self) -> int:
        return len(self.fixes)

    def multipliers(self, outflow_red: np.ndarray) -> np.ndarray:
        """Least-squares source currents λ for a node outflow vector (exact at a solution)."""
        if not len(self):
            return np.zeros(0)
        return sla.cho_solve(self._cct, self.rows @ outflow_red)


def _variables(fixes: tuple, n: int, ground: int) -> tuple[np.ndarray, int, np.ndarray]:
    """(col, nvar, offset) of :class:`Constraints` by walking the constraint forest."""
    adj: list[list] = [[] for _ in range(n)]
    for k, f in enumerate(fixes):  # V_p - V_q = values[k]
        p, q = (f.node, ground) if isinstance(f, Fix) else (f.i, f.j)
        adj[p].append((q, k, -1.0))
        adj[q].append((p, k, 1.0))
    col = np.full(n, -1, dtype=np.int64)
    offset = np.zeros((n, len(fixes)))
    seen = np.zeros(n, dtype=bool)
    nvar = 0
    for root in [ground, *range(n)]:
        if seen[root]:
            continue
        var = -1 if root == ground else nvar
        nvar += root != ground
        seen[root] = True
        stack = [root]
        while stack:
            x = stack.pop()
            col[x] = var
            for y, k, sign in adj[x]:
                if not seen[y]:
                    seen[y] = True
                    offset[y] = offset[x]
                    offset[y, k] += sign
                    stack.append(y)
    return col, nvar, offset


def _endpoints(f: Constraint, n: int, ground: int, source: str):
    if isinstance(f, Fix):
        nodes, volts = (f.node,), f.volts
    elif isinstance(f, FixDrop):
        nodes, volts = (f.i, f.j), f.volts
    else:
        raise InputError(f"{f!r} is not a Fix or FixDrop constraint", source=source)
    for node in nodes:
        if not isinstance(node, (int, np.integer)) or not 0 <= node < n:
            raise InputError(f"{f}: node {node!r} is outside 0..{n - 1}", source=source)
    if not np.isfinite(volts):
        raise InputError(f"{f}: voltage {volts!r} is not a finite number", source=source)
    if isinstance(f, Fix):
        if f.node == ground:
            raise InputError(
                f"{f}: node {ground} is the ground node, always 0 V; do not fix it",
                source=source,
            )
        return f.node, None, float(volts)
    if f.i == f.j:
        raise InputError(f"{f}: a drop needs two different nodes", source=source)
    return f.i, f.j, float(volts)


def _check_forest(fixes: tuple, n: int, ground: int, source: str) -> None:
    """Constraints must not form a loop (with ground): a loop is redundant or conflicting."""
    fixed_at: dict[int, Fix] = {}
    for f in fixes:
        if isinstance(f, Fix):
            if f.node in fixed_at:
                raise InputError(
                    f"node {f.node} is constrained twice ({fixed_at[f.node]} and {f}); keep one",
                    source=source,
                )
            fixed_at[f.node] = f
    parent = list(range(n))
    pot = [0.0] * n  # V_x - V_parent(x)

    def find(x: int) -> tuple[int, float]:
        p = 0.0
        while parent[x] != x:
            p += pot[x]
            x = parent[x]
        return x, p

    for f in fixes:
        a, b, v = (f.node, ground, f.volts) if isinstance(f, Fix) else (f.i, f.j, f.volts)
        (ra, pa), (rb, pb) = find(a), find(b)
        if ra == rb:
            implied = pa - pb  # V_a - V_b implied by the earlier constraints
            if abs(implied - v) > 1e-12 * max(1.0, abs(v)):
                raise InputError(
                    f"{f} conflicts with earlier constraints, which already set "
                    f"V{a} - V{b} = {implied:g} V; remove one of them",
                    source=source,
                )
            raise InputError(
                f"{f} is redundant: earlier constraints already set V{a} - V{b} = {implied:g} V "
                "(a loop of voltage sources); remove it",
                source=source,
            )
        parent[ra] = rb
        pot[ra] = v - pa + pb


def _check_connected(circuit: Circuit, cons: Constraints | None = None) -> None:
    cache = circuit._index
    if "connected" not in cache:
        cache["connected"] = circuit.network.is_connected()
    if not cache["connected"] and not _held_apart(circuit, cons):
        raise InputError(
            "the network is not connected: some nodes have no path to the others, so their "
            "voltage is undefined; connect them or remove them",
            source=circuit.network.name,
        )


def _held_apart(circuit: Circuit, cons: Constraints | None) -> bool:
    """A ground that no edge touches, with every other piece of the network held by a
    source to ground (a board whose lattice floats on its bias sources): defined too."""
    net = circuit.network
    if cons is None or np.any(net.edges == net.ground):
        return False
    adj = sp.coo_matrix((np.ones(net.n_edges), (net.edges[:, 0], net.edges[:, 1])),
                        shape=(net.n_nodes, net.n_nodes))
    _, label = sp.csgraph.connected_components(adj, directed=False)
    held = set(label[cons.col < 0].tolist())
    return all(label[n] in held for n in range(net.n_nodes))


def _as_constraints(circuit: Circuit, fixes) -> Constraints:
    return fixes if isinstance(fixes, Constraints) else Constraints(circuit, fixes)


# ----------------------------------------------------------------------------- linear


class LinearSolver:
    """One factorisation of a linear circuit, reused for many constraint values.

    Args:
        circuit: an all-resistor circuit.
        fixes: the constraint structure (their ``volts`` are the default values).
        method: passed to :class:`LaplacianFactor` (``auto``, ``dense``, ``sparse``).
    """

    def __init__(self, circuit: Circuit, fixes: Sequence[Constraint] | Constraints, method="auto"):
        if not circuit.is_linear:
            raise InputError(
                "LinearSolver needs an all-resistor circuit", source=circuit.network.name
            )
        self.constraints = _as_constraints(circuit, fixes)
        _check_connected(circuit, self.constraints)
        self.circuit = circuit
        self.factor = LaplacianFactor(circuit.network, circuit.conductance, method)
        self._schur_update()

    def update(self, conductances: np.ndarray) -> None:
        """New conductances, same topology: only the numeric factorisation is redone."""
        self.circuit = self.circuit.replace(conductance=conductances)  # validates
        self.factor.update(self.circuit.conductance)
        self._schur_update()

    def _schur_update(self) -> None:
        m = len(self.constraints)
        if m:
            # X = L^-1 C^T (n_free, m) and the Schur complement S = C L^-1 C^T (m, m)
            x = np.asarray(self.factor.solve(np.ascontiguousarray(self.constraints.rows.T)))
            self._x = x.reshape(len(self.constraints.free_nodes), m)
            self._schur = sla.lu_factor(self.constraints.rows @ self._x)

    def node_voltages(self, values: np.ndarray | None = None) -> np.ndarray:
        """Node voltages (N,) — or (B, N) for a (B, m) batch of constraint values."""
        v_c = self.constraints.values if values is None else np.asarray(values, dtype=float)
        lam = self.multipliers(v_c)
        n = self.circuit.n_nodes
        out = np.zeros(v_c.shape[:-1] + (n,))
        if len(self.constraints):
            out[..., self.constraints.free_nodes] = lam @ self._x.T
        return out

    def multipliers(self, values: np.ndarray) -> np.ndarray:
        """Source currents λ (m,) or (B, m) for constraint values (m,) or (B, m)."""
        values = np.asarray(values, dtype=float)
        m = len(self.constraints)
        if values.shape[-1] != m:
            raise InputError(f"expected {m} constraint values per row, got {values.shape[-1]}")
        if not m:
            return np.zeros(values.shape)
        return sla.lu_solve(self._schur, values.T).T

    def solve(self, values: np.ndarray | None = None) -> DCSolution:
        """Full :class:`DCSolution` for one set of constraint values."""
        v_c = self.constraints.values if values is None else np.asarray(values, dtype=float)
        v = self.node_voltages(v_c)
        lam = self.multipliers(v_c)
        return _finish(self.circuit, v, lam, 0, "linear")


def solve_linear_batch(
    circuit: Circuit, fixes: Sequence[Constraint], values: np.ndarray
) -> np.ndarray:
    """Node voltages (B, N) of a linear circuit for a (B, m) batch of constraint values.

    ``fixes`` gives the structure (which nodes); row ``b`` of ``values`` replaces their volts.
    """
    return LinearSolver(circuit, fixes).node_voltages(np.atleast_2d(values))


def _finish(circuit: Circuit, v: np.ndarray, lam: np.ndarray, iterations: int, method: str):
    drops = circuit.drops(v)
    current = circuit.edge_currents(v)
    co = 0.5 * float(np.sum(circuit.conductance * drops**2)) if circuit.is_linear else None
    return DCSolution(
        node_voltages=v,
        drops=drops,
        edge_currents=current,
        power=float(np.sum(current * drops)),
        co_content=co,
        constraint_currents=np.asarray(lam, dtype=float),
        iterations=iterations,
        method=method,
    )


# ----------------------------------------------------------------------------- nonlinear


class _Newton:
    """Damped Newton (:mod:`~learnboard.physics.dc_newton`) for one circuit and constraint
    structure: compiled up to ``DENSE_LIMIT`` variables, numpy/scipy sparse beyond."""

    def __init__(
        self, circuit: Circuit, cons: Constraints, tol: float, max_iter: int, max_step: float
    ):
        self.circuit = circuit
        self.cons = cons
        self.tol = tol
        self.max_iter = max_iter
        self.max_step = max_step
        self.edges = EdgeArrays.of(circuit)
        self.dense = cons.nvar <= DENSE_LIMIT
        self.iterations = 0
        self.last_step = np.zeros(circuit.n_nodes)

    def run(self, v: np.ndarray, values: np.ndarray, gmin: float) -> tuple[bool, np.ndarray]:
        """Newton from node volts ``v`` (N,); returns (converged, node volts)."""
        cons = self.cons
        v = np.ascontiguousarray(cons.place(v, values))
        vscale = max(float(np.max(np.abs(values), initial=0.0)), 1e-6)
        args = (v, vscale, gmin, self.tol, self.max_iter, self.max_step, self.last_step)
        if self.dense:
            status, iterations, _ = newton(*self.edges.args(), cons.col, cons.nvar, *args)
        else:
            status, iterations, _ = newton_reference(self.edges, cons.col, cons.nvar, *args,
                                                     dense=False)
        self.iterations += iterations
        return status == CONVERGED, v

    def outflow(self, v: np.ndarray, gmin: float) -> np.ndarray:
        """Current leaving each non-ground node through the edges and ``gmin`` (n_free,)."""
        free = self.cons.free_nodes
        return self.circuit.node_outflow(self.circuit.edge_currents(v))[free] + gmin * v[free]


def _linear_guess(circuit: Circuit, cons: Constraints) -> np.ndarray:
    """First guess: the linear circuit of each edge's conductance at 0 V."""
    g = circuit.small_signal_conductance()
    if cons.nvar <= DENSE_LIMIT:
        # one Newton step of the compiled kernel solves a linear circuit: no sparse
        # factorisation to build for a start that is only a start
        edges = EdgeArrays.resistors(circuit.network.edges, g)
        v = np.ascontiguousarray(cons.place(np.zeros(circuit.n_nodes), cons.values))
        scale = max(float(np.max(np.abs(cons.values), initial=0.0)), 1e-6)
        status, _, _ = newton(*edges.args(), cons.col, cons.nvar, v, scale, 0.0, 1e-10, 5,
                              np.inf, np.zeros(circuit.n_nodes))
        if status == CONVERGED:
            return v
    return LinearSolver(Circuit.linear(circuit.network, g), cons).node_voltages()


def solve(
    circuit: Circuit,
    fixes: Sequence[Constraint] = (),
    *,
    initial: np.ndarray | None = None,
    tol: float = 1e-10,
    max_iter: int = 100,
    max_step: float = 0.5,
    gmin: float = 0.0,
) -> DCSolution:
    """DC state of ``circuit`` with the voltage constraints ``fixes``.

    Args:
        circuit: the circuit (linear circuits take the direct path).
        fixes: :class:`Fix` / :class:`FixDrop` constraints.
        initial: (N,) node voltages to start Newton from (warm start); ignored when linear.
        tol: relative tolerance on the Newton step (to the voltage scale) and on the KCL
            residual (to the largest edge current).
        max_iter: Newton iterations per attempt.
        max_step: largest node-voltage change per Newton iteration (V).
        gmin: conductance (S) from every node to ground kept in the final answer
            (0 = the exact model; SPICE uses 1e-12).

    Raises:
        InputError: bad constraints or a network that is not connected.
        ConvergenceError: Newton, gmin stepping and source stepping all failed.
    """
    cons = _as_constraints(circuit, fixes)
    _check_connected(circuit, cons)
    if circuit.is_linear and gmin == 0.0:
        return LinearSolver(circuit, cons).solve()

    newton = _Newton(circuit, cons, tol, max_iter, max_step)
    values = cons.values
    if initial is not None:
        init = np.asarray(initial, dtype=float)
        if init.shape != (circuit.n_nodes,) or not np.all(np.isfinite(init)):
            raise InputError(
                f"initial must hold {circuit.n_nodes} finite node voltages, got shape {init.shape}",
                field="initial",
            )
        start = init
    else:
        start = _linear_guess(circuit, cons)

    tried = []
    ok, v = newton.run(start, values, gmin)
    method = "newton"
    tried.append(
        f"Newton from the {'given' if initial is not None else 'linear'} start "
        f"({newton.iterations} iterations)"
    )
    if not ok:
        ok, v, note = _gmin_stepping(newton, start, values, gmin)
        method = "gmin"
        tried.append(note)
    if not ok:
        ok, v, note = _source_stepping(newton, values, gmin)
        method = "source"
        tried.append(note)
    if not ok:
        raise _convergence_error(newton, v, gmin, tried)

    return _finish(circuit, v, cons.multipliers(newton.outflow(v, gmin)), newton.iterations,
                   method)


def _gmin_stepping(newton: _Newton, start, values, gmin_final: float):
    g = newton.circuit.small_signal_conductance(start)
    scale = float(np.median(g))
    levels = [scale * 10.0**-p for p in range(0, 13)] + [gmin_final]
    v = start
    for level in levels:
        ok, v = newton.run(v, values, max(level, gmin_final))
        if not ok:
            return False, v, f"gmin stepping (failed at gmin = {level:.3g} S)"
    return True, v, "gmin stepping"


def _source_stepping(newton: _Newton, values, gmin: float):
    s, ds = 0.0, 0.1
    v = np.zeros(newton.circuit.n_nodes)
    while s < 1.0:
        target = min(1.0, s + ds)
        ok, v_new = newton.run(v, target * values, gmin)
        if ok:
            s, v, ds = target, v_new, ds * 1.5
        else:
            ds *= 0.25
            if ds < 1e-4:
                return False, v, f"source stepping (stuck at {100 * s:.1f} % of the sources)"
    return True, v, "source stepping"


def _convergence_error(newton: _Newton, v, gmin: float, tried: list[str]) -> ConvergenceError:
    circuit, cons = newton.circuit, newton.cons
    if np.all(np.isfinite(v)):
        f = residual(newton.edges, cons.col, cons.nvar, gmin, v, edge_currents(newton.edges, v)[0])
    else:
        f = np.full(cons.nvar, np.nan)
    err = np.abs(f)
    err = np.where(np.isfinite(err), err, np.inf)
    nodes = np.flatnonzero(cons.col >= 0)
    first_node = np.full(cons.nvar, len(cons.col))
    np.minimum.at(first_node, cons.col[nodes], nodes)  # each variable's lowest node
    worst = np.argsort(-err)[:3]
    worst_nodes = first_node[worst]
    node_txt = ", ".join(f"node {n} ({e:.3g} A)" for n, e in zip(worst_nodes, err[worst],
                                                                 strict=True))
    edges = circuit.network.edges
    touching = np.flatnonzero(np.isin(edges, worst_nodes).any(axis=1))[:6]
    edge_txt = ", ".join(
        f"edge {e} {tuple(int(x) for x in edges[e])} {KIND_NAMES[int(circuit.kind[e])]}"
        for e in touching
    )
    jump = float(np.max(np.abs(newton.last_step), initial=0.0))
    return ConvergenceError(
        f"DC solve of {circuit.network.name} did not converge (tol {newton.tol:g}); tried: "
        + "; ".join(tried)
        + f". Largest KCL residuals at {node_txt}; edges there: {edge_txt}; the last Newton "
        f"step still moved a node by {jump:.3g} V. Check the device parameters and constraints "
        "(e.g. gates far below threshold leave nodes floating), or pass gmin=1e-12 or a "
        "better initial guess."
    )
