"""DC operating point of a :class:`~learnboard.physics.circuit.Circuit` under voltage constraints.

Constraints are ideal voltage sources: :class:`Fix` holds a node at a voltage to ground,
:class:`FixDrop` holds ``V_i - V_j``. Each constraint ``k`` is a row ``C_k`` on the node
voltages with value ``c_k``; Kirchhoff's current law reads ``B^T I(V) = C^T λ`` where
``λ_k`` is the current the source pushes into node ``i`` (and draws out of ``j``).

* Linear circuits: ``L V = C^T λ``, ``C V = c``; the reduced Laplacian is factorised once
  (:class:`~learnboard.physics.laplacian.LaplacianFactor`) and the constraints are
  handled by the small Schur complement ``S = C L⁻¹ C^T``.
* Nonlinear circuits: damped Newton on the bordered (KKT) system
  ``[[J, -C^T], [C, 0]] [ΔV; λ] = [-B^T I; c - C V]`` with a voltage-step limit and a
  backtracking line search; fall-backs are gmin stepping, then source stepping. A solve
  that does not converge raises :class:`~learnboard.errors.ConvergenceError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from learnboard.errors import ConvergenceError, InputError
from learnboard.physics.circuit import KIND_NAMES, Circuit
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

    def __len__(self) -> int:
        return len(self.fixes)

    def project(self, v_red: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Nearest voltages (least change) that satisfy the constraints exactly."""
        if not len(self):
            return v_red
        return v_red + self.rows.T @ sla.cho_solve(self._cct, values - self.rows @ v_red)

    def multipliers(self, outflow_red: np.ndarray) -> np.ndarray:
        """Least-squares source currents λ for a node outflow vector (exact at a solution)."""
        if not len(self):
            return np.zeros(0)
        return sla.cho_solve(self._cct, self.rows @ outflow_red)


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


def _check_connected(circuit: Circuit) -> None:
    cache = circuit._index
    if "connected" not in cache:
        cache["connected"] = circuit.network.is_connected()
    if not cache["connected"]:
        raise InputError(
            "the network is not connected: some nodes have no path to the others, so their "
            "voltage is undefined; connect them or remove them",
            source=circuit.network.name,
        )


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
        _check_connected(circuit)
        self.circuit = circuit
        self.constraints = _as_constraints(circuit, fixes)
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
    """Damped Newton on the bordered KCL system of one circuit and constraint set."""

    def __init__(
        self, circuit: Circuit, cons: Constraints, tol: float, max_iter: int, max_step: float
    ):
        self.circuit = circuit
        self.cons = cons
        self.tol = tol
        self.max_iter = max_iter
        self.max_step = max_step
        net = circuit.network
        self.free = cons.free_nodes
        self.nf = len(self.free)
        red = np.full(net.n_nodes, -1, dtype=np.int64)
        red[self.free] = np.arange(self.nf)
        i, j = red[net.edges[:, 0]], red[net.edges[:, 1]]
        # Jacobian J[p, q] += sign * dI/dV: rows (i, i, j, j), cols (i, j, i, j)
        rows = np.concatenate([i, i, j, j])
        cols = np.concatenate([i, j, i, j])
        self._keep = (rows >= 0) & (cols >= 0)
        self._rows, self._cols = rows[self._keep], cols[self._keep]
        self.dense = self.nf + len(cons) <= DENSE_LIMIT
        self.iterations = 0
        self.last_step = np.zeros(net.n_nodes)

    def full(self, v_red: np.ndarray) -> np.ndarray:
        v = np.zeros(self.circuit.n_nodes)
        v[self.free] = v_red
        return v

    def residual(self, v_red: np.ndarray, gmin: float):
        current, da, db = self.circuit.edge_currents_and_derivatives(self.full(v_red))
        f = self.circuit.node_outflow(current)[self.free] + gmin * v_red
        return f, current, da, db

    def kcl_error(self, f: np.ndarray) -> np.ndarray:
        """KCL residual left after the sources take what they can (zero at a solution)."""
        if not len(self.cons):
            return f
        return f - self.cons.rows.T @ self.cons.multipliers(f)

    def jacobian(self, da: np.ndarray, db: np.ndarray, gmin: float):
        vals = np.concatenate([da, db, -da, -db])[self._keep]
        m = len(self.cons)
        size = self.nf + m
        if self.dense:
            k = np.zeros((size, size))
            np.add.at(k, (self._rows, self._cols), vals)
            k[np.arange(self.nf), np.arange(self.nf)] += gmin
            k[: self.nf, self.nf :] = -self.cons.rows.T
            k[self.nf :, : self.nf] = self.cons.rows
            return k
        j = sp.coo_matrix((vals, (self._rows, self._cols)), shape=(self.nf, self.nf))
        j = j + gmin * sp.identity(self.nf)
        c = sp.csr_matrix(self.cons.rows)
        return sp.bmat([[j, -c.T], [c, None]], format="csc")

    def _linear_solve(self, k, rhs: np.ndarray) -> np.ndarray | None:
        try:
            sol = np.linalg.solve(k, rhs) if self.dense else spla.splu(k.tocsc()).solve(rhs)
        except (np.linalg.LinAlgError, RuntimeError):
            return None
        return sol if np.all(np.isfinite(sol)) else None

    def _newton_step(self, k, rhs: np.ndarray) -> np.ndarray | None:
        """Node-voltage update; a singular Jacobian gets a growing diagonal shift.

        Level-1 saturation has no drain dependence (LAMBDA = 0), so a node that is the
        drain of all its saturated transistors makes J exactly singular at that iterate.
        The shift only changes the path (the residual stays exact), not the solution.
        """
        sol = self._linear_solve(k, rhs)
        if sol is None:
            diag = np.abs(k.diagonal()[: self.nf])
            scale = max(float(np.max(diag, initial=0.0)), 1e-300)
            eye = np.zeros(len(rhs))
            eye[: self.nf] = 1.0
            for shift in (1e-12, 1e-9, 1e-6, 1e-3):
                shifted = k + shift * scale * (np.diag(eye) if self.dense else sp.diags(eye))
                sol = self._linear_solve(shifted, rhs)
                if sol is not None:
                    break
        return None if sol is None else sol[: self.nf]

    def run(self, v_red: np.ndarray, values: np.ndarray, gmin: float) -> tuple[bool, np.ndarray]:
        """Newton from ``v_red``; returns (converged, voltages)."""
        v_red = self.cons.project(v_red, values)
        vscale = max(float(np.max(np.abs(values), initial=0.0)), 1e-6)
        f, current, da, db = self.residual(v_red, gmin)
        err = self.kcl_error(f)
        for _ in range(self.max_iter):
            self.iterations += 1
            k = self.jacobian(da, db, gmin)
            rhs = np.concatenate([-f, values - self.cons.rows @ v_red])
            dv = self._newton_step(k, rhs)
            if dv is None:
                return False, v_red
            big = float(np.max(np.abs(dv), initial=0.0))
            s = min(1.0, self.max_step / big) if big > 0 else 1.0
            norm0 = float(np.linalg.norm(err))
            # backtracking: accept the first step that lowers the KCL error
            for _ in range(12):
                trial = v_red + s * dv
                f_t, cur_t, da_t, db_t = self.residual(trial, gmin)
                err_t = self.kcl_error(f_t)
                if np.linalg.norm(err_t) <= (1 - 1e-4 * s) * norm0 or norm0 == 0.0:
                    break
                s *= 0.5
            step = s * dv
            v_red, f, current, da, db, err = trial, f_t, cur_t, da_t, db_t, err_t
            self.last_step = self.full(step)
            itol = self.tol * max(float(np.max(np.abs(current), initial=0.0)), 1e-300)
            vtol = self.tol * max(vscale, float(np.max(np.abs(v_red), initial=0.0)))
            if (
                np.all(np.isfinite(v_red))
                and float(np.max(np.abs(step), initial=0.0)) <= vtol
                and float(np.max(np.abs(err), initial=0.0)) <= itol
            ):
                return True, v_red
            if not np.all(np.isfinite(v_red)):
                return False, v_red
        return False, v_red


def _linear_guess(circuit: Circuit, cons: Constraints) -> np.ndarray:
    """First guess: the linear circuit of each edge's conductance at 0 V."""
    lin = Circuit.linear(circuit.network, circuit.small_signal_conductance())
    return LinearSolver(lin, cons).node_voltages()[cons.free_nodes]


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
    _check_connected(circuit)
    cons = _as_constraints(circuit, fixes)
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
        start = init[cons.free_nodes]
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

    v_full = newton.full(v)
    f = newton.residual(v, gmin)[0]
    return _finish(circuit, v_full, cons.multipliers(f), newton.iterations, method)


def _gmin_stepping(newton: _Newton, start, values, gmin_final: float):
    g = newton.circuit.small_signal_conductance(newton.full(start))
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
    v = np.zeros(newton.nf)
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


def _convergence_error(newton: _Newton, v_red, gmin: float, tried: list[str]) -> ConvergenceError:
    circuit = newton.circuit
    f = (
        newton.residual(v_red, gmin)[0]
        if np.all(np.isfinite(v_red))
        else np.full(newton.nf, np.nan)
    )
    err = np.abs(newton.kcl_error(f))
    err = np.where(np.isfinite(err), err, np.inf)
    worst_nodes = newton.free[np.argsort(-err)[:3]]
    node_txt = ", ".join(
        f"node {n} ({err[np.searchsorted(newton.free, n)]:.3g} A)" for n in worst_nodes
    )
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
