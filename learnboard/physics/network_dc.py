"""Warm-started DC re-solves of the circuits of one network (the emulator's hot path).

Between two conversions of a board's firmware only a few gates or drive volts change, so
the new DC state is a few Newton iterations from the previous one. :class:`NetworkDC`
runs those iterations with the solver's own compiled Newton
(:func:`learnboard.physics.dc_newton.newton`, the model and the convergence test of
:func:`learnboard.physics.solve`) on a network whose driven nodes are held at their volts,
keeping per network what does not change between re-solves (the edge arrays, the
variables of each set of driven nodes) so that a re-solve costs microseconds. Linear
(digipot) networks keep one factorisation per edge state and driven-node set and re-solve
new drive volts with a back-substitution. Without a previous state, or when Newton does
not converge within :data:`MAX_ITER` iterations, :meth:`NetworkDC.solve` returns ``None``
and the caller takes :func:`~learnboard.physics.solve` (cold start, gmin and source
stepping).
"""

from __future__ import annotations

import copy
import operator

import numpy as np
import scipy.linalg as sla

from learnboard.physics.circuit import RESISTOR, Circuit
from learnboard.physics.dc_newton import CONVERGED, device_rows, newton
from learnboard.physics.solver import DCSolution, Fix, LinearSolver

TOL = 1e-10  # as learnboard.physics.solve
MAX_ITER = 30
MAX_STEP = 0.5


def _lu_solve(lu_piv: tuple, b: np.ndarray) -> np.ndarray:
    """``scipy.linalg.lu_solve(lu_piv, b)`` for a finite float64 right-hand side: the
    same LAPACK ``getrs`` call without the wrapper's checks and dispatch, which cost
    more than the solve at these sizes (the emulator's re-solves); anything else goes
    through ``lu_solve`` itself (and its errors)."""
    lu, piv = lu_piv
    if lu.dtype == np.float64 and b.dtype == np.float64 and b.ndim == 1 and \
            b.shape[0] == lu.shape[0] and b.size and np.isfinite(b).all():
        x, info = _getrs(lu, piv, b, trans=0, overwrite_b=False)
        if info == 0:
            return x
    return sla.lu_solve(lu_piv, b)


_getrs, _potrf, _potrs, _getrf = sla.get_lapack_funcs(("getrs", "potrf", "potrs", "getrf"),
                                                      (np.zeros((1, 1)), np.zeros(1)))


class _Refactored:
    """What a linear re-solve reads of a LinearSolver refactorised for new conductances."""

    __slots__ = ("constraints", "_x", "_schur")

    def __init__(self, constraints, x: np.ndarray, schur: tuple) -> None:
        self.constraints = constraints
        self._x = x
        self._schur = schur


class NetworkDC:
    """DC re-solves of the circuits of one network (its edges resistors, NMOS or diodes).

    Args:
        n_nodes: nodes of the network.
        edges: (E, 2) endpoints.
        ground: the ground node.
    """

    def __init__(self, n_nodes: int, edges: np.ndarray, ground: int):
        self.n = int(n_nodes)
        self.ground = int(ground)
        # contiguous: the kernel is compiled for contiguous arrays only
        self.a = np.ascontiguousarray(edges[:, 0], dtype=np.int64)
        self.b = np.ascontiguousarray(edges[:, 1], dtype=np.int64)
        e = len(self.a)
        self.inc = np.zeros((e, self.n))  # outflow = inc.T @ I
        self.inc[np.arange(e), self.a] += 1.0
        self.inc[np.arange(e), self.b] -= 1.0
        self._lin: dict = {}  # (conductance bytes, fixed nodes) -> LinearSolver
        self._lin_base: dict = {}  # fixed nodes -> a LinearSolver (its pattern reused)
        self._kinds: dict = {}  # edge kinds bytes -> (all resistors, supported)
        self._red: dict = {}  # fixed nodes -> (variables, fixed nodes, their outflow rows)
        self._terms: dict = {}  # id(vt) -> (device arrays, their kernel arrays)
        self._last = np.zeros(self.n)  # the kernel's last step (unused here)
        self._places: dict = {}  # id(LaplacianFactor) -> its dense matrix's layout

    def solve(self, circuit: Circuit, drives: dict[int, float], prev: np.ndarray | None,
              gates: np.ndarray | None = None) -> DCSolution | None:
        """The DC state of ``circuit`` (its transistor gates at ``gates`` volts, if
        given) with ``drives`` (node -> volts) held, from ``prev``; None if this class
        cannot (the caller takes the general solver)."""
        all_resistors, supported = self._kinds_of(circuit)
        fixed = tuple(sorted(drives))
        values = np.array([drives[k] for k in fixed], dtype=float)
        if all_resistors:
            return self._linear(circuit, fixed, values)
        if prev is None or not supported:
            return None
        return self._newton(circuit, fixed, values, prev, gates)

    def _kinds_of(self, circuit: Circuit) -> tuple[bool, bool]:
        """(all edges resistors, every kind one the kernel models) of ``circuit``."""
        key = circuit.kind.tobytes()
        kinds = self._kinds.get(key)
        if kinds is None:
            # every kind a Circuit accepts has a law in the kernel
            kinds = self._kinds[key] = (bool(np.all(circuit.kind == RESISTOR)), True)
        return kinds

    # -- linear networks: one factorisation per (conductances, fixed nodes) ---------------
    def _linear(self, circuit: Circuit, fixed: tuple, values: np.ndarray) -> DCSolution:
        v, lam = self._linear_volts(circuit, fixed, values)
        drops = v[self.a] - v[self.b]
        g = circuit.conductance
        current = g * drops
        return DCSolution(node_voltages=v, drops=drops, edge_currents=current,
                          power=float(np.sum(current * drops)),
                          co_content=0.5 * float(np.sum(g * drops**2)),
                          constraint_currents=lam, iterations=0, method="linear")

    def linear_unit_volts(self, circuit: Circuit, fixed: tuple) -> list[np.ndarray]:
        """The node volts :meth:`solve` gives a linear ``circuit`` (all edges resistors)
        for one volt on each of the ``fixed`` nodes (sorted) in turn, the others at 0 V:
        the columns of its linear map, one factorisation looked up for all of them."""
        ls = self._linear_solver(circuit, fixed)
        cols = []
        for j in range(len(fixed)):
            unit = np.zeros(len(fixed))
            unit[j] = 1.0
            cols.append(self._volts_of(ls, fixed, unit)[0])
        return cols

    def _linear_volts(self, circuit: Circuit, fixed: tuple,
                      values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(node volts, the drives' multipliers) of a linear ``circuit``."""
        return self._volts_of(self._linear_solver(circuit, fixed), fixed, values)

    def _linear_solver(self, circuit: Circuit, fixed: tuple):
        """The factorisation of a linear ``circuit`` with ``fixed`` nodes held (kept per
        conductances and fixed nodes)."""
        key = (circuit.conductance.tobytes(), fixed)
        ls = self._lin.get(key)
        if ls is None:
            if len(self._lin) > 64:
                self._lin.clear()
            base = self._lin_base.get(fixed)
            if base is None or base.factor.method != "dense":
                ls = LinearSolver(circuit, [Fix(k, 0.0) for k in fixed])
                self._lin_base[fixed] = ls
            else:
                # same topology and fixed nodes: only the numeric factorisation is redone
                # (LinearSolver.update's arithmetic, without re-validating the circuit)
                ls = self._refactored(base, circuit.conductance)
                if ls is None:  # (whatever the direct calls do not take: the solver's way)
                    ls = copy.copy(base)
                    ls.factor = copy.copy(base.factor)
                    ls.circuit = circuit
                    ls.factor.update(circuit.conductance)
                    ls._schur_update()
            self._lin[key] = ls
        return ls

    def _volts_of(self, ls, fixed: tuple, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(node volts, multipliers) from factorisation ``ls`` at drive ``values``."""
        # LinearSolver.solve's arithmetic, with the multipliers solved once
        v = np.zeros(self.n)
        if fixed:
            lam = _lu_solve(ls._schur, values)
            v[ls.constraints.free_nodes] = lam @ ls._x.T
        else:
            lam = np.zeros(0)
        return v, lam

    def _refactored(self, base: LinearSolver, k: np.ndarray) -> _Refactored | None:
        """``base`` (a dense LinearSolver) refactorised for conductances ``k``: what
        ``LaplacianFactor.update`` and ``LinearSolver._schur_update`` compute — the same
        matrix, the same LAPACK calls (potrf, potrs, getrf) with the same arguments —
        without the scipy wrappers' checks and dispatch, which cost ten times the
        arithmetic for a board's few nodes. None where those calls would fail or warn
        (the caller then takes the solver's own way and its errors)."""
        f = base.factor
        m = len(base.constraints)
        if not m or k.dtype != np.float64 or k.shape != (f.network.n_edges,):
            return None
        place = self._places.get(id(f))
        if place is None or place[0] is not f:
            pat = f._pattern  # canonical CSC: one stored entry per place
            cols = np.repeat(np.arange(pat.shape[1]), np.diff(pat.indptr))
            place = self._places[id(f)] = (f, pat.indices.astype(np.int64), cols, pat.shape[0],
                                           np.ascontiguousarray(base.constraints.rows.T))
        _, rows, cols, n_red, rhs = place
        a = np.zeros((n_red, n_red))
        a[rows, cols] += f._data_map @ k  # pattern.toarray() with the new data
        c, info = _potrf(a, lower=1, overwrite_a=0, clean=0)  # sla.cho_factor(lower=True)
        if info != 0:
            return None
        x, info = _potrs(c, rhs, lower=1, overwrite_b=0)  # sla.cho_solve
        if info != 0:
            return None
        x = np.asarray(x).reshape(len(base.constraints.free_nodes), m)
        s = base.constraints.rows @ x
        if not np.isfinite(s).all():
            return None
        lu, piv, info = _getrf(s, overwrite_a=0)  # sla.lu_factor
        if info != 0:
            return None
        return _Refactored(base.constraints, x, (lu, piv))

    # -- nonlinear networks: damped Newton from the previous state (compiled) ------------
    def _reduced(self, fixed: tuple) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """(each node's variable, their number, fixed nodes, outflow rows of the fixed
        nodes) for one set of driven nodes."""
        red = self._red.get(fixed)
        if red is None:
            free_mask = np.ones(self.n, dtype=bool)
            free_mask[self.ground] = False
            free_mask[list(fixed)] = False
            col = np.full(self.n, -1, dtype=np.int64)
            col[free_mask] = np.arange(int(free_mask.sum()))
            red = self._red[fixed] = (col, int(free_mask.sum()), np.array(fixed, dtype=np.int64),
                                      np.ascontiguousarray(self.inc[:, list(fixed)].T))
        return red

    def _edge_terms(self, circuit: Circuit, gates: np.ndarray | None) -> tuple:
        """The kernel's per-edge arrays of ``circuit``; all but the gate overdrive kept per
        set of device arrays (a world's circuits of new gate volts share them; one set
        per network)."""
        arrays = (circuit.kind, circuit.vt, circuit.beta, circuit.sub_slope,
                  circuit.conductance, circuit.i_s, circuit.n_ideality)
        kept = self._terms.get(id(circuit.vt))
        if kept is None or not all(map(operator.is_, kept[0], arrays)):
            if len(self._terms) > 8:
                self._terms.clear()
            kept = self._terms[id(circuit.vt)] = (arrays, (
                np.ascontiguousarray(circuit.kind, dtype=np.int8), device_rows(circuit)))
        kind, dev = kept[1]
        # the kernel reads gvt only on transistor edges
        gvt = (circuit.gate if gates is None else gates) - circuit.vt
        return kind, gvt, dev

    def _newton(self, circuit, fixed, values, prev, gates) -> DCSolution | None:
        col, nvar, fixed_idx, out_rows = self._reduced(fixed)
        v = np.array(prev, dtype=float)
        v[self.ground] = 0.0
        v[fixed_idx] = values
        vscale = max(max(map(abs, values.tolist()), default=0.0), 1e-6)
        status, iterations, i = newton(self.a, self.b, *self._edge_terms(circuit, gates), col,
                                       nvar, v, vscale, 0.0, TOL, MAX_ITER, MAX_STEP,
                                       self._last)
        if status != CONVERGED:
            return None
        drops = v[self.a] - v[self.b]
        return DCSolution(node_voltages=v, drops=drops, edge_currents=i,
                          power=float(i @ drops), co_content=None,
                          constraint_currents=out_rows @ i,
                          iterations=iterations, method="newton")
