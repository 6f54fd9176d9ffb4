"""Damped Newton on the KCL equations of a network of resistors, NMOS edges and diodes.

The unknowns are the network's *variables*: a node no voltage constraint holds has its
own; nodes tied together by a chain of drop constraints share one (they move together);
nodes a chain of constraints ties to ground have none. ``col[node]`` is the node's
variable, -1 for none. The residual of a variable is the current leaving its nodes
through the edges (plus ``gmin`` times their volts); the constraint sources take up the
rest, so no source current appears in the iteration.

One iteration, written twice on purpose:

* :func:`newton` — compiled (numba), dense Gaussian elimination with partial pivoting.
  Every network of up to :data:`~learnboard.physics.laplacian.DENSE_LIMIT` variables
  takes it: the emulator re-solves a network after every actuation, where numpy's
  per-call cost (some forty small-array operations per iteration of ~1 µs each) would
  dominate, and :func:`learnboard.physics.solve` uses it for the same reason.
* :func:`newton_reference` — plain numpy/scipy (vectorised, dense or sparse LU): the
  larger networks, and the reference the tests compare the compiled kernel against.

Both evaluate the devices through the same per-element laws,
:func:`~learnboard.physics.devices.nmos_law` and
:func:`~learnboard.physics.devices.diode_law`. Numba caches the compiled kernel beside
this module and does not notice edits to those laws in ``devices.py``: after changing a
law, delete ``learnboard/physics/__pycache__`` (the kernel-versus-reference tests fail
on a stale kernel).

The iteration: from a start that satisfies the constraints, solve ``J Δu = -f``; on a
singular Jacobian (level-1 saturation has no drain dependence, so a node that is the
drain of all its saturated transistors makes ``J`` exactly singular there) retry with a
growing diagonal shift, which changes the path but not the solution; limit the step to
``max_step`` volts; backtrack by halving until the KCL residual falls; stop when the
step moves no node by more than ``tol`` of the voltage scale and KCL holds to ``tol`` of
the largest edge current (a step that small is still taken: it squares the error).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numba import njit

from learnboard.physics.circuit import DIODE, TRANSISTOR, Circuit
from learnboard.physics.devices import diode_law, diode_many, nmos_law, nmos_many, subthreshold_knee

CONVERGED, SINGULAR, NOT_FINITE, NO_CONVERGENCE = 0, 1, 2, 3
SHIFTS = (1e-12, 1e-9, 1e-6, 1e-3)  # diagonal shifts tried on a singular Jacobian
BACKTRACK = 12  # step halvings before a step is taken anyway


G, BETA, X0, I_S, NVT = range(5)  # rows of EdgeArrays.dev


@dataclass
class EdgeArrays:
    """Per-edge device arrays of a circuit, as both implementations take them.

    Attributes:
        a, b: (E,) int64 endpoints (current positive from ``a`` to ``b``).
        kind: (E,) int8 ``RESISTOR`` / ``TRANSISTOR`` / ``DIODE``.
        gvt: (E,) gate overdrive ``vg - vt`` (V) of transistor edges.
        dev: (5, E) the parameters that do not change with the gates, one row each
            (one array: each argument adds ≈ 0.05 µs to a call of the compiled kernel):
            ``G`` conductance (S) of resistors, ``BETA`` ``KP·W/L`` (A/V²) and ``X0``
            subthreshold knee (V) of transistors, ``I_S`` saturation current (A) and
            ``NVT`` ``n·kT/q`` (V) of diodes.
    """

    a: np.ndarray
    b: np.ndarray
    kind: np.ndarray
    gvt: np.ndarray
    dev: np.ndarray

    @classmethod
    def of(cls, circuit: Circuit) -> EdgeArrays:
        """The arrays of ``circuit`` (contiguous: the kernel is compiled for those)."""
        edges = circuit.network.edges
        c = np.ascontiguousarray
        return cls(
            a=c(edges[:, 0], dtype=np.int64),
            b=c(edges[:, 1], dtype=np.int64),
            kind=c(circuit.kind, dtype=np.int8),
            gvt=c(circuit.gate - circuit.vt, dtype=float),
            dev=device_rows(circuit),
        )

    @classmethod
    def resistors(cls, edges: np.ndarray, conductance: np.ndarray) -> EdgeArrays:
        """All edges resistors of ``conductance`` (S) between ``edges`` (E, 2)."""
        n_e = len(edges)
        dev = np.zeros((5, n_e))
        dev[G] = conductance
        return cls(a=np.ascontiguousarray(edges[:, 0], dtype=np.int64),
                   b=np.ascontiguousarray(edges[:, 1], dtype=np.int64),
                   kind=np.zeros(n_e, dtype=np.int8), gvt=np.zeros(n_e), dev=dev)

    def args(self) -> tuple:
        return self.a, self.b, self.kind, self.gvt, self.dev


def device_rows(circuit: Circuit) -> np.ndarray:
    """:attr:`EdgeArrays.dev` of ``circuit``."""
    return np.ascontiguousarray(np.stack([
        circuit.conductance, circuit.beta, subthreshold_knee(circuit.sub_slope), circuit.i_s,
        circuit.n_ideality * circuit.vt_thermal]), dtype=float)


# ----------------------------------------------------------------------------- compiled


@njit(cache=True, inline="always")
def _edge(kind, gvt, dev, e, va, vb):
    """(current a -> b, d/dva, d/dvb) of edge ``e``."""
    if kind == TRANSISTOR:
        return nmos_law(va, vb, gvt, dev[BETA, e], dev[X0, e])
    if kind == DIODE:
        i, d = diode_law(va - vb, dev[I_S, e], dev[NVT, e])
        return i, d, -d
    g = dev[G, e]
    return g * (va - vb), g, -g


@njit(cache=True)
def _currents(a, b, kind, gvt, dev, col, gmin, v, i, da, db, f):
    """Edge currents and derivatives at ``v`` and the residual ``f`` per variable.
    Returns the largest edge current."""
    f[:] = 0.0
    imax = 0.0
    for e in range(a.size):
        ie, dae, dbe = _edge(kind[e], gvt[e], dev, e, v[a[e]], v[b[e]])
        i[e] = ie
        da[e] = dae
        db[e] = dbe
        imax = max(imax, abs(ie))
        ca = col[a[e]]
        cb = col[b[e]]
        if ca >= 0:
            f[ca] += ie
        if cb >= 0:
            f[cb] -= ie
    if gmin != 0.0:
        for n in range(v.size):
            if col[n] >= 0:
                f[col[n]] += gmin * v[n]
    return imax


@njit(cache=True)
def _stamp(a, b, col, da, db, gmin, shift, jac):
    """The Jacobian of the residual per variable, plus ``shift`` on its diagonal."""
    jac[:, :] = 0.0
    for e in range(a.size):
        ca = col[a[e]]
        cb = col[b[e]]
        if ca >= 0:
            jac[ca, ca] += da[e]
            if cb >= 0:
                jac[ca, cb] += db[e]
        if cb >= 0:
            if ca >= 0:
                jac[cb, ca] -= da[e]
            jac[cb, cb] -= db[e]
    if gmin != 0.0:
        for n in range(col.size):
            if col[n] >= 0:
                jac[col[n], col[n]] += gmin
    if shift != 0.0:
        for k in range(jac.shape[0]):
            jac[k, k] += shift


@njit(cache=True)
def _solve_in_place(jac, rhs):
    """Gaussian elimination with partial pivoting; ``rhs`` becomes the solution.
    False if the matrix is singular or the solution not finite."""
    n = rhs.size
    for k in range(n):
        p = k
        big = abs(jac[k, k])
        for r in range(k + 1, n):
            if abs(jac[r, k]) > big:
                big = abs(jac[r, k])
                p = r
        if big == 0.0:
            return False
        if p != k:
            for c in range(k, n):
                jac[k, c], jac[p, c] = jac[p, c], jac[k, c]
            rhs[k], rhs[p] = rhs[p], rhs[k]
        piv = jac[k, k]
        for r in range(k + 1, n):
            m = jac[r, k] / piv
            if m != 0.0:
                for c in range(k + 1, n):
                    jac[r, c] -= m * jac[k, c]
                rhs[r] -= m * rhs[k]
    for k in range(n - 1, -1, -1):
        s = rhs[k]
        for c in range(k + 1, n):
            s -= jac[k, c] * rhs[c]
        rhs[k] = s / jac[k, k]
        if not math.isfinite(rhs[k]):
            return False
    return True


@njit(cache=True)
def _newton_step(a, b, col, da, db, gmin, f, jac, dv):
    """``dv`` = the Newton step (with a diagonal shift if ``J`` is singular); False if
    every shift failed."""
    _stamp(a, b, col, da, db, gmin, 0.0, jac)
    for k in range(dv.size):
        dv[k] = -f[k]
    if _solve_in_place(jac, dv):
        return True
    _stamp(a, b, col, da, db, gmin, 0.0, jac)  # the elimination overwrote it
    scale = 1e-300
    for k in range(dv.size):
        scale = max(scale, abs(jac[k, k]))
    for shift in SHIFTS:
        _stamp(a, b, col, da, db, gmin, shift * scale, jac)
        for k in range(dv.size):
            dv[k] = -f[k]
        if _solve_in_place(jac, dv):
            return True
    return False


@njit(cache=True)
def newton(a, b, kind, gvt, dev, col, nvar, v, vscale, gmin, tol, max_iter, max_step, last):
    """Damped Newton from ``v`` (N,), which must satisfy the constraints (it is solved in
    place; nodes without a variable keep their volts). ``vscale``: the constraints' volt
    scale; ``last`` (N,) receives the last step taken. Returns ``(status, iterations,
    edge currents)``, status :data:`CONVERGED` or why not; iterations counts the
    Jacobians factorised."""
    n_e = a.size
    i = np.empty(n_e)
    da = np.empty(n_e)
    db = np.empty(n_e)
    f = np.empty(nvar)
    i_t = np.empty(n_e)
    da_t = np.empty(n_e)
    db_t = np.empty(n_e)
    f_t = np.empty(nvar)
    jac = np.empty((nvar, nvar))
    dv = np.empty(nvar)
    trial = v.copy()
    last[:] = 0.0
    imax = _currents(a, b, kind, gvt, dev, col, gmin, v, i, da, db, f)
    if nvar == 0:
        return CONVERGED, 0, i
    vmax = 0.0
    for n in range(v.size):
        vmax = max(vmax, abs(v[n]))
    for it in range(1, max_iter + 1):
        if not _newton_step(a, b, col, da, db, gmin, f, jac, dv):
            return SINGULAR, it, i
        big = 0.0
        fmax = 0.0
        norm0 = 0.0
        for k in range(nvar):
            big = max(big, abs(dv[k]))
            fmax = max(fmax, abs(f[k]))
            norm0 += f[k] * f[k]
        # converged already: the step would move no node by more than the tolerance
        # and KCL holds. The step is taken all the same (Newton squares the error: the
        # state to rounding), the currents moved along their derivatives (what they
        # miss is second order in a step this small: below rounding)
        if big <= tol * max(vscale, vmax) and fmax <= tol * max(imax, 1e-300):
            for n in range(v.size):
                c = col[n]
                if c >= 0:
                    last[n] = dv[c]
                    v[n] += dv[c]
            for e in range(n_e):
                ca = col[a[e]]
                cb = col[b[e]]
                i[e] += (da[e] * dv[ca] if ca >= 0 else 0.0) + (db[e] * dv[cb] if cb >= 0 else 0.0)
            return CONVERGED, it, i
        s = min(1.0, max_step / big) if big > 0 else 1.0
        norm0 = math.sqrt(norm0)
        imax_t = 0.0
        for _ in range(BACKTRACK):  # the first step that lowers the KCL residual
            for n in range(v.size):
                c = col[n]
                trial[n] = v[n] + s * dv[c] if c >= 0 else v[n]
            imax_t = _currents(a, b, kind, gvt, dev, col, gmin, trial, i_t, da_t, db_t, f_t)
            norm = 0.0
            for k in range(nvar):
                norm += f_t[k] * f_t[k]
            if math.sqrt(norm) <= (1 - 1e-4 * s) * norm0 or norm0 == 0.0:
                break
            s *= 0.5
        vmax = 0.0
        for n in range(v.size):
            c = col[n]
            last[n] = s * dv[c] if c >= 0 else 0.0
            v[n] = trial[n]
            vmax = max(vmax, abs(v[n]))
        i, i_t = i_t, i
        da, da_t = da_t, da
        db, db_t = db_t, db
        f, f_t = f_t, f
        imax = imax_t
        if not math.isfinite(vmax):
            return NOT_FINITE, it, i
        step = 0.0
        fmax = 0.0
        for k in range(nvar):
            step = max(step, abs(s * dv[k]))
            fmax = max(fmax, abs(f[k]))
        if step <= tol * max(vscale, vmax) and fmax <= tol * max(imax, 1e-300):
            return CONVERGED, it, i
    return NO_CONVERGENCE, max_iter, i


# ----------------------------------------------------------------------------- reference


def edge_currents(edges: EdgeArrays, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edge currents (A, a -> b) and their derivatives by ``va`` and ``vb`` at ``v``."""
    va, vb = v[edges.a], v[edges.b]
    dev = edges.dev
    i = dev[G] * (va - vb)
    da = dev[G].copy()
    db = -dev[G]
    t = np.flatnonzero(edges.kind == TRANSISTOR)
    if t.size:
        i[t], da[t], db[t] = nmos_many(va[t], vb[t], edges.gvt[t], dev[BETA, t], dev[X0, t])
    d = np.flatnonzero(edges.kind == DIODE)
    if d.size:
        i[d], da[d] = diode_many(va[d] - vb[d], dev[I_S, d], dev[NVT, d])
        db[d] = -da[d]
    return i, da, db


def residual(edges: EdgeArrays, col: np.ndarray, nvar: int, gmin: float, v: np.ndarray,
             i: np.ndarray) -> np.ndarray:
    """Current leaving each variable's nodes (through the edges, plus ``gmin`` to ground)."""
    ca, cb = col[edges.a], col[edges.b]
    f = np.bincount(ca[ca >= 0], i[ca >= 0], nvar) - np.bincount(cb[cb >= 0], i[cb >= 0], nvar)
    if gmin:
        free = col >= 0
        f += np.bincount(col[free], gmin * v[free], nvar)
    return f


def _jacobian(edges: EdgeArrays, col, nvar, gmin, da, db, dense: bool):
    ca, cb = col[edges.a], col[edges.b]
    rows = np.concatenate([ca, ca, cb, cb])
    cols = np.concatenate([ca, cb, ca, cb])
    vals = np.concatenate([da, db, -da, -db])
    keep = (rows >= 0) & (cols >= 0)
    diag = gmin * np.bincount(col[col >= 0], minlength=nvar).astype(float)
    if dense:
        jac = np.zeros((nvar, nvar))
        np.add.at(jac, (rows[keep], cols[keep]), vals[keep])
        jac[np.arange(nvar), np.arange(nvar)] += diag
        return jac
    jac = sp.coo_matrix((vals[keep], (rows[keep], cols[keep])), shape=(nvar, nvar))
    return (jac + sp.diags(diag)).tocsc()


def _linear_solve(jac, rhs: np.ndarray, dense: bool) -> np.ndarray | None:
    try:
        sol = np.linalg.solve(jac, rhs) if dense else spla.splu(jac).solve(rhs)
    except (np.linalg.LinAlgError, RuntimeError):
        return None
    return sol if np.all(np.isfinite(sol)) else None


def _reference_step(jac, f: np.ndarray, dense: bool) -> np.ndarray | None:
    dv = _linear_solve(jac, -f, dense)
    if dv is None:
        scale = max(float(np.max(np.abs(jac.diagonal()), initial=0.0)), 1e-300)
        eye = np.eye(len(f)) if dense else sp.identity(len(f), format="csc")
        for shift in SHIFTS:
            dv = _linear_solve(jac + shift * scale * eye, -f, dense)
            if dv is not None:
                break
    return dv


def newton_reference(edges: EdgeArrays, col: np.ndarray, nvar: int, v: np.ndarray,
                     vscale: float, gmin: float, tol: float, max_iter: int, max_step: float,
                     last: np.ndarray, dense: bool = True) -> tuple[int, int, np.ndarray]:
    """:func:`newton` in numpy (``dense``) or scipy's sparse LU: same arguments (the edge
    arrays gathered), same steps, same result to rounding."""
    var = col >= 0
    last[:] = 0.0
    i, da, db = edge_currents(edges, v)
    f = residual(edges, col, nvar, gmin, v, i)
    if nvar == 0:
        return CONVERGED, 0, i
    for it in range(1, max_iter + 1):
        dv = _reference_step(_jacobian(edges, col, nvar, gmin, da, db, dense), f, dense)
        if dv is None:
            return SINGULAR, it, i
        big = float(np.max(np.abs(dv)))
        vmax = float(np.max(np.abs(v)))
        imax = float(np.max(np.abs(i), initial=0.0))
        if big <= tol * max(vscale, vmax) and np.max(np.abs(f)) <= tol * max(imax, 1e-300):
            last[var] = dv[col[var]]  # taken all the same, as the kernel does
            v[var] += dv[col[var]]
            ca, cb = col[edges.a], col[edges.b]
            step_a = np.where(ca >= 0, dv[ca], 0.0)
            step_b = np.where(cb >= 0, dv[cb], 0.0)
            return CONVERGED, it, i + da * step_a + db * step_b
        s = min(1.0, max_step / big) if big > 0 else 1.0
        norm0 = float(np.linalg.norm(f))
        for _ in range(BACKTRACK):
            trial = v.copy()
            trial[var] += s * dv[col[var]]
            i_t, da_t, db_t = edge_currents(edges, trial)
            f_t = residual(edges, col, nvar, gmin, trial, i_t)
            if np.linalg.norm(f_t) <= (1 - 1e-4 * s) * norm0 or norm0 == 0.0:
                break
            s *= 0.5
        last[var] = s * dv[col[var]]  # the step of the last halving, as the kernel
        v[:] = trial
        i, da, db, f = i_t, da_t, db_t, f_t
        vmax = float(np.max(np.abs(v)))
        if not math.isfinite(vmax):
            return NOT_FINITE, it, i
        imax = float(np.max(np.abs(i), initial=0.0))
        if (float(np.max(np.abs(s * dv))) <= tol * max(vscale, vmax)
                and np.max(np.abs(f)) <= tol * max(imax, 1e-300)):
            return CONVERGED, it, i
    return NO_CONVERGENCE, max_iter, i


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel for the argument types the solvers
    pass, so that the first solve inside a learning step (or a host's timed request)
    does not pay it."""
    dev = np.array([[0.0, 0.0], [1e-3, 1e-3], [0.08, 0.08], [1e-14, 1e-14], [0.025, 0.025]])
    newton(np.array([0, 1], dtype=np.int64), np.array([1, 2], dtype=np.int64),
           np.ones(2, dtype=np.int8), np.ones(2), dev, np.array([-1, 0, -1], dtype=np.int64), 1,
           np.array([1.0, 0.5, 0.0]), 1.0, 0.0, 1e-10, 30, 0.5, np.zeros(3))
