"""Warm-started DC re-solves for the emulator's world (the in-process hot path).

Between two conversions of the firmware only a few gates or drive volts change, so the
new DC state is a few Newton iterations from the previous one. :class:`FastDC` does those
iterations on the dense reduced KCL system of one network (fixed nodes eliminated, no
constraint bookkeeping, no circuit object), with the same device model
(:func:`learnboard.physics.devices.nmos_current`) and the same convergence test as
:func:`learnboard.physics.solve`, so both agree to the solver's tolerance. Linear
(digipot) networks keep one factorisation per edge state and fixed-node set and re-solve
new drive volts with a back-substitution. Anything unusual (diodes, no previous state, a
Newton run that does not converge) returns ``None`` and the world takes the general
solver.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import scipy.linalg as sla

from learnboard.physics.circuit import RESISTOR, TRANSISTOR, Circuit
from learnboard.physics.devices import nmos_current, subthreshold_knee
from learnboard.physics.solver import DCSolution, Fix, LinearSolver

TOL = 1e-10  # as learnboard.physics.solve
MAX_ITER = 30
MAX_STEP = 0.5


class FastDC:
    """Re-solves of the circuits of one board network (all edges resistors or NMOS)."""

    def __init__(self, n_nodes: int, edges: np.ndarray, ground: int):
        self.n = int(n_nodes)
        self.ground = int(ground)
        self.a = np.asarray(edges[:, 0], dtype=np.int64)
        self.b = np.asarray(edges[:, 1], dtype=np.int64)
        e = len(self.a)
        self.inc_a = np.zeros((e, self.n))
        self.inc_a[np.arange(e), self.a] = 1.0
        self.inc_b = np.zeros((e, self.n))
        self.inc_b[np.arange(e), self.b] = 1.0
        self.inc = self.inc_a - self.inc_b  # outflow = inc.T @ I
        self._lin: dict = {}  # (conductance bytes, fixed nodes) -> LinearSolver
        self._lin_base: dict = {}  # fixed nodes -> a LinearSolver (its pattern reused)
        # edge kinds bytes -> (transistor idx, resistor idx, all resistors, supported)
        self._kinds: dict = {}
        self._red: dict = {}  # fixed nodes -> (free, inc_f.T, inc_a_f, inc_b_f)
        self._terms = None  # (circuit, its gate terms) for _nmos

    def solve(self, circuit: Circuit, drives: dict[int, float],
              prev: np.ndarray | None) -> DCSolution | None:
        kinds = self._kinds.get(circuit.kind.tobytes())
        if kinds is None:
            kind = circuit.kind
            kinds = self._kinds[kind.tobytes()] = (
                np.flatnonzero(kind == TRANSISTOR), np.flatnonzero(kind == RESISTOR),
                bool(np.all(kind == RESISTOR)),
                bool(np.all((kind == RESISTOR) | (kind == TRANSISTOR))))
        fixed = tuple(sorted(drives))
        values = np.array([drives[k] for k in fixed], dtype=float)
        if kinds[2]:
            return self._linear(circuit, fixed, values)
        if prev is None or not kinds[3]:
            return None
        return self._newton(circuit, fixed, values, prev, kinds[0], kinds[1])

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

    # -- transistor networks: damped Newton from the previous state ----------------------
    def _reduced(self, fixed: tuple):
        red = self._red.get(fixed)
        if red is None:
            free_mask = np.ones(self.n, dtype=bool)
            free_mask[self.ground] = False
            free_mask[list(fixed)] = False
            free = np.flatnonzero(free_mask)
            red = self._red[fixed] = (free, np.ascontiguousarray(self.inc[:, free].T),
                                      self.inc_a[:, free], self.inc_b[:, free])
        return red

    def _currents(self, circuit: Circuit, v: np.ndarray, t: np.ndarray, r: np.ndarray):
        va, vb = v[self.a], v[self.b]
        if not r.size:  # all transistors (gen2): no scatter
            return _nmos(va, vb, self._gate_terms(circuit))
        i = np.empty(len(va))
        da = np.empty(len(va))
        db = np.empty(len(va))
        if r.size:
            g = circuit.conductance[r]
            i[r] = g * (va[r] - vb[r])
            da[r] = g
            db[r] = -g
        if t.size:
            i[t], da[t], db[t] = nmos_current(va[t], vb[t], circuit.gate[t], circuit.vt[t],
                                              circuit.beta[t], circuit.sub_slope[t])
        return i, da, db

    def _gate_terms(self, circuit: Circuit):
        """(vg - vt, beta, knee x0) of an all-transistor circuit, kept while it is used."""
        terms = self._terms
        if terms is None or terms[0] is not circuit:
            x0 = subthreshold_knee(circuit.sub_slope)
            terms = self._terms = (circuit, (circuit.gate - circuit.vt, circuit.beta, x0))
        return terms[1]

    def _newton(self, circuit, fixed, values, prev, t, r) -> DCSolution | None:
        # max |x| and the 2-norm as Python floats: the values numpy's abs().max() and
        # linalg.norm (sqrt of x.dot(x)) give, without their per-call overhead
        free, inc_ft, inc_af, inc_bf = self._reduced(fixed)
        v = np.array(prev, dtype=float)
        v[self.ground] = 0.0
        if fixed:
            v[list(fixed)] = values
        vscale = max(_amax(values) if values.size else 0.0, 1e-6)
        i, da, db = self._currents(circuit, v, t, r)
        if not free.size:
            return self._finish(v, i, fixed, 0)
        f = inc_ft @ i
        for it in range(1, MAX_ITER + 1):
            # dF/dV_free = inc_f.T @ (da * inc_a + db * inc_b)[:, free]
            jac = inc_ft @ (da[:, None] * inc_af + db[:, None] * inc_bf)
            try:
                dv = np.linalg.solve(jac, -f)
            except np.linalg.LinAlgError:
                return None
            dvl = dv.tolist()
            if not math.isfinite(sum(dvl)):  # a nan or inf anywhere (or an overflow)
                return None
            big = max(map(abs, dvl))
            # converged here when the Newton step is below the voltage tolerance and KCL
            # already holds (the step would move no node by more than ~1e-10 V)
            vfree = _amax(v[free])
            if big <= TOL * max(vscale, vfree) and \
                    _amax(f) <= TOL * max(_amax(i), 1e-300):
                return self._finish(v, i, fixed, it - 1)
            s = min(1.0, MAX_STEP / big) if big > 0 else 1.0
            norm0 = math.sqrt(f.dot(f))
            for _ in range(12):  # backtracking: the first step that lowers the KCL error
                trial = v.copy()
                trial[free] += s * dv
                i_t, da_t, db_t = self._currents(circuit, trial, t, r)
                f_t = inc_ft @ i_t
                if math.sqrt(f_t.dot(f_t)) <= (1 - 1e-4 * s) * norm0 or norm0 == 0.0:
                    break
                s *= 0.5
            step = s * dv
            v, i, da, db, f = trial, i_t, da_t, db_t, f_t
            itol = TOL * max(_amax(i), 1e-300)
            vtol = TOL * max(vscale, _amax(v[free]))
            if _amax(step) <= vtol and _amax(f) <= itol:
                return self._finish(v, i, fixed, it)
        return None

    def _finish(self, v, i, fixed, iterations) -> DCSolution:
        drops = v[self.a] - v[self.b]
        outflow = self.inc.T @ i
        return DCSolution(node_voltages=v, drops=drops, edge_currents=i,
                          power=float(np.sum(i * drops)), co_content=None,
                          constraint_currents=outflow[list(fixed)] if fixed else np.zeros(0),
                          iterations=iterations, method="newton")


def _nmos(va: np.ndarray, vb: np.ndarray, terms) -> tuple:
    """:func:`learnboard.physics.devices.nmos_current` on same-shape float arrays with
    ``vg - vt``, ``beta`` and the knee precomputed: the same operations in the same
    order (bit-identical results) without the broadcasting and conversions."""
    gvt, beta, x0 = terms
    a_is_source = va <= vb
    vlow = np.where(a_is_source, va, vb)
    vds = np.abs(va - vb)
    sign = np.where(a_is_source, -1.0, 1.0)
    x = gvt - vlow
    sub = x < x0
    tail = x0 * np.exp(np.minimum((x - x0) / x0, 0.0))
    xe = np.where(sub, tail, x)
    dxe_dx = np.where(sub, tail / x0, 1.0)
    ohmic = vds < xe
    i_mag = np.where(ohmic, beta * (xe - 0.5 * vds) * vds, 0.5 * beta * xe * xe)
    di_dxe = beta * np.where(ohmic, vds, xe)
    di_dvds = np.where(ohmic, beta * (xe - vds), 0.0)
    d_dlow = -di_dxe * dxe_dx - di_dvds
    d_dhigh = di_dvds
    di_dva = np.where(a_is_source, -d_dlow, d_dhigh)
    di_dvb = np.where(a_is_source, -d_dhigh, d_dlow)
    return sign * i_mag, di_dva, di_dvb


def _amax(a: np.ndarray) -> float:
    """``float(np.abs(a).max())`` of a finite 1-d array, in Python."""
    return max(map(abs, a.tolist()))
