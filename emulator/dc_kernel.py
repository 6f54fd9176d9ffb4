"""Compiled damped Newton for one network of resistors and NMOS edges (numba).

:class:`~learnboard.emulator.fast_dc.FastDC` re-solves a transistor network after every
actuation; in numpy each iteration is some forty small-array operations of ~1 µs each,
which made the re-solves the largest single cost of an emulated learning step. This is
the same iteration — the device model of :func:`learnboard.physics.devices.nmos_current`
per edge, the reduced KCL Jacobian stamped edge by edge, a partial-pivoting elimination,
the same backtracking and the same convergence test as :func:`learnboard.physics.solve`
— as one compiled loop. Compiled once per machine (``cache=True`` keeps the machine code
beside the module, or in ``NUMBA_CACHE_DIR``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def _edge(is_t, g, gvt, beta, x0, va, vb):
    """(current a -> b, d/dva, d/dvb) of one edge: a resistor of conductance ``g`` or an
    NMOS with overdrive ``gvt`` = vg - vt (the formulas of nmos_current, per element)."""
    if not is_t:
        return g * (va - vb), g, -g
    src = va <= vb
    vlow = va if src else vb
    vds = abs(va - vb)
    x = gvt - vlow
    tail = x0 * math.exp(min((x - x0) / x0, 0.0))
    if x < x0:
        xe = tail
        dxe_dx = tail / x0
    else:
        xe = x
        dxe_dx = 1.0
    if vds < xe:
        i_mag = beta * (xe - 0.5 * vds) * vds
        di_dxe = beta * vds
        di_dvds = beta * (xe - vds)
    else:
        i_mag = 0.5 * beta * xe * xe
        di_dxe = beta * xe
        di_dvds = 0.0
    d_dlow = -di_dxe * dxe_dx - di_dvds
    if src:
        return -i_mag, -d_dlow, -di_dvds
    return i_mag, di_dvds, d_dlow


@njit(cache=True)
def _currents(a, b, is_t, g, gvt, beta, x0, v, col, i, da, db, f):
    """Edge currents and derivatives at ``v``; ``f`` = KCL outflow at the free nodes
    (``col[node]`` = its index among them, -1 if fixed). Returns max |i|."""
    f[:] = 0.0
    imax = 0.0
    for e in range(a.size):
        ie, dae, dbe = _edge(is_t[e], g[e], gvt[e], beta[e], x0[e], v[a[e]], v[b[e]])
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
    return imax


@njit(cache=True)
def _solve_in_place(jac, rhs):
    """Gaussian elimination with partial pivoting; ``rhs`` becomes the solution.
    False if the matrix is singular (a zero pivot)."""
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
    return True


@njit(cache=True)
def newton(a, b, is_t, g, gvt, beta, x0, free, v, vscale, tol, max_iter, max_step):
    """Damped Newton from ``v`` (fixed nodes already at their volts) over the ``free``
    nodes. Returns ``(iterations, edge currents)`` with ``v`` solved in place;
    iterations -1 when it fails (singular Jacobian, a non-finite step, no convergence),
    so that the caller falls back to the general solver."""
    n_e = a.size
    nf = free.size
    col = np.full(v.size, -1, np.int64)
    for k in range(nf):
        col[free[k]] = k
    i = np.empty(n_e)
    da = np.empty(n_e)
    db = np.empty(n_e)
    f = np.empty(nf)
    i_t = np.empty(n_e)
    da_t = np.empty(n_e)
    db_t = np.empty(n_e)
    f_t = np.empty(nf)
    jac = np.empty((nf, nf))
    dv = np.empty(nf)
    trial = v.copy()
    imax = _currents(a, b, is_t, g, gvt, beta, x0, v, col, i, da, db, f)
    if nf == 0:
        return 0, i
    for it in range(1, max_iter + 1):
        jac[:, :] = 0.0
        for e in range(n_e):
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
        for k in range(nf):
            dv[k] = -f[k]
        if not _solve_in_place(jac, dv):
            return -1, i
        big = 0.0
        vfree = 0.0
        fmax = 0.0
        norm0 = 0.0
        for k in range(nf):
            if not math.isfinite(dv[k]):
                return -1, i
            big = max(big, abs(dv[k]))
            vfree = max(vfree, abs(v[free[k]]))
            fmax = max(fmax, abs(f[k]))
            norm0 += f[k] * f[k]
        # converged when the step would move no node by more than the tolerance and KCL
        # already holds
        if big <= tol * max(vscale, vfree) and fmax <= tol * max(imax, 1e-300):
            return it - 1, i
        s = min(1.0, max_step / big) if big > 0 else 1.0
        norm0 = math.sqrt(norm0)
        imax_t = 0.0
        for _ in range(12):  # backtracking: the first step that lowers the KCL error
            trial[:] = v
            for k in range(nf):
                trial[free[k]] += s * dv[k]
            imax_t = _currents(a, b, is_t, g, gvt, beta, x0, trial, col, i_t, da_t, db_t, f_t)
            norm = 0.0
            for k in range(nf):
                norm += f_t[k] * f_t[k]
            if math.sqrt(norm) <= (1 - 1e-4 * s) * norm0 or norm0 == 0.0:
                break
            s *= 0.5
        v[:] = trial
        i, i_t = i_t, i
        da, da_t = da_t, da
        db, db_t = db_t, db
        f, f_t = f_t, f
        imax = imax_t
        step = 0.0
        vfree = 0.0
        fmax = 0.0
        for k in range(nf):
            step = max(step, abs(s * dv[k]))
            vfree = max(vfree, abs(v[free[k]]))
            fmax = max(fmax, abs(f[k]))
        if step <= tol * max(vscale, vfree) and fmax <= tol * max(imax, 1e-300):
            return it, i
    return -1, i


def warm_up() -> None:
    """Compile (or load from the cache) the kernel for the argument types FastDC passes:
    a world that will re-solve transistor networks calls this when it is built, so the
    first re-solve inside a learning step (or a host's timed request) does not pay it."""
    two = np.ones(2)
    newton(np.array([0, 1], dtype=np.int64), np.array([1, 2], dtype=np.int64),
           np.ones(2, dtype=bool), np.zeros(2), two, two * 1e-3, two * 0.08,
           np.array([1], dtype=np.int64), np.array([1.0, 0.5, 0.0]), 1.0, 1e-10, 30, 0.5)
