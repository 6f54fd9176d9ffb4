"""Warm-started DC re-solves for the emulator's world (the in-process hot path).

Between two conversions of the firmware only a few gates or drive volts change, so the
new DC state is a few Newton iterations from the previous one. :class:`FastDC` does those
iterations on the dense reduced KCL system of one network (fixed nodes eliminated, no
constraint bookkeeping, no circuit object; compiled: ``emulator/dc_kernel.py``), with the same device model
(:func:`learnboard.physics.devices.nmos_current`) and the same convergence test as
:func:`learnboard.physics.solve`, so both agree to the solver's tolerance. Linear
(digipot) networks keep one factorisation per edge state and fixed-node set and re-solve
new drive volts with a back-substitution. Anything unusual (diodes, no previous state, a
Newton run that does not converge) returns ``None`` and the world takes the general
solver.
"""

from __future__ import annotations

import copy
import operator

import numpy as np
import scipy.linalg as sla
from learnboard.emulator.dc_kernel import newton

from learnboard.physics.circuit import RESISTOR, TRANSISTOR, Circuit
from learnboard.physics.devices import subthreshold_knee
from learnboard.physics.solver import DCSolution, Fix, LinearSolver

TOL = 1e-10  # as learnboard.physics.solve
MAX_ITER = 30
MAX_STEP = 0.5


class FastDC:
    """Re-solves of the circuits of one board network (all edges resistors or NMOS)."""

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
        # edge kinds bytes -> (all resistors, supported): see _kinds_of
        self._kinds: dict = {}
        self._red: dict = {}  # fixed nodes -> free nodes
        self._terms: dict = {}  # id(vt) -> (device arrays, their Newton terms)

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
        """(all edges resistors, all resistors or NMOS) of ``circuit``'s edge kinds."""
        key = circuit.kind.tobytes()
        kinds = self._kinds.get(key)
        if kinds is None:
            kind = circuit.kind
            kinds = self._kinds[key] = (bool(np.all(kind == RESISTOR)),
                                        bool(np.all((kind == RESISTOR) | (kind == TRANSISTOR))))
        return kinds

    # -- linear networks: one factorisation per (conductances, fixed nodes) ---------------
    def _linear(self, circuit: Circuit, fixed: tuple, values: np.ndarray) -> DCSolution:
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
                ls = copy.copy(base)
                ls.factor = copy.copy(base.factor)
                ls.circuit = circuit
                ls.factor.update(circuit.conductance)
                ls._schur_update()
            self._lin[key] = ls
        # LinearSolver.solve's arithmetic, with the multipliers solved once
        v = np.zeros(self.n)
        if fixed:
            lam = sla.lu_solve(ls._schur, values)
            v[ls.constraints.free_nodes] = lam @ ls._x.T
        else:
            lam = np.zeros(0)
        drops = v[self.a] - v[self.b]
        g = circuit.conductance
        current = g * drops
        return DCSolution(node_voltages=v, drops=drops, edge_currents=current,
                          power=float(np.sum(current * drops)),
                          co_content=0.5 * float(np.sum(g * drops**2)),
                          constraint_currents=lam, iterations=0, method="linear")

    # -- transistor networks: damped Newton from the previous state (compiled) ----------
    def _reduced(self, fixed: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(free nodes, fixed nodes, outflow rows of the fixed nodes) as arrays."""
        red = self._red.get(fixed)
        if red is None:
            free_mask = np.ones(self.n, dtype=bool)
            free_mask[self.ground] = False
            free_mask[list(fixed)] = False
            red = self._red[fixed] = (np.flatnonzero(free_mask).astype(np.int64),
                                      np.array(fixed, dtype=np.int64),
                                      np.ascontiguousarray(self.inc[:, list(fixed)].T))
        return red

    def _edge_terms(self, circuit: Circuit, gates: np.ndarray | None) -> tuple:
        """Per-edge (is transistor, conductance, vg - vt, beta, knee x0) of ``circuit``;
        all but vg - vt kept per set of device arrays (a world's circuits of new gate
        volts share them; one set per network)."""
        arrays = (circuit.kind, circuit.vt, circuit.beta, circuit.sub_slope,
                  circuit.conductance)
        kept = self._terms.get(id(circuit.vt))
        if kept is None or not all(map(operator.is_, kept[0], arrays)):
            if len(self._terms) > 8:
                self._terms.clear()
            is_t = circuit.kind == TRANSISTOR
            kept = self._terms[id(circuit.vt)] = (arrays, (
                is_t, np.ascontiguousarray(circuit.conductance, dtype=float),
                np.where(is_t, circuit.beta, 0.0),
                np.where(is_t, subthreshold_knee(circuit.sub_slope), 1.0), bool(is_t.all())))
        is_t, g, beta, x0, all_t = kept[1]
        vg = circuit.gate if gates is None else gates
        gvt = vg - circuit.vt if all_t else np.where(is_t, vg - circuit.vt, 0.0)
        return is_t, g, gvt, beta, x0

    def _newton(self, circuit, fixed, values, prev, gates) -> DCSolution | None:
        free, fixed_idx, out_rows = self._reduced(fixed)
        v = np.array(prev, dtype=float)
        v[self.ground] = 0.0
        v[fixed_idx] = values
        vscale = max(max(map(abs, values.tolist()), default=0.0), 1e-6)
        is_t, g, gvt, beta, x0 = self._edge_terms(circuit, gates)
        iterations, i = newton(self.a, self.b, is_t, g, gvt, beta, x0, free, v, vscale,
                               TOL, MAX_ITER, MAX_STEP)
        if iterations < 0:
            return None
        return self._finish(v, i, out_rows, iterations)

    def _finish(self, v, i, out_rows, iterations) -> DCSolution:
        drops = v[self.a] - v[self.b]
        return DCSolution(node_voltages=v, drops=drops, edge_currents=i,
                          power=float(i @ drops), co_content=None,
                          constraint_currents=out_rows @ i,
                          iterations=iterations, method="newton")
