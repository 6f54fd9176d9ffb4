"""Compiled kernels of the ``pcg`` backend: one call per learning step for all m columns.

The backend solves ``L Z = A^T`` (m right-hand sides) for a reduced Laplacian that moves a
little every step, by conjugate gradients preconditioned with an exact LDL^T factor of a
nearby, earlier Laplacian (QDLDL's factor, AMD ordering). numpy would spend more time in
call overhead and temporaries than in arithmetic here (some forty array operations per
iteration on 10 000 x 4 arrays), so the whole solve is one compiled call:

- :func:`assemble` scatters the conductances into the CSR data of the Laplacian;
- :func:`pcg` extrapolates the start from the previous solutions, then runs CG on every
  column at once; the m columns are stored row by row (``z[node, column]``) so that one
  sweep over the factor serves four columns and a matrix-vector product all m.

Numba caches the compiled code beside this module (``cache=True``), so the compile cost
is paid once per install; :func:`warm_up` loads it before a timed run.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LANES = 4  # columns one sweep over the factor carries (held in registers)
INDEX = np.int32  # sparse index arrays: half the memory traffic of int64


@njit(cache=True)
def assemble(data, slot, sign, edge, k):  # pragma: no cover - compiled
    """``data[slot[c]] += sign[c] * k[edge[c]]`` into a zeroed ``data``."""
    data[:] = 0.0
    for c in range(slot.size):
        data[slot[c]] += sign[c] * k[edge[c]]


@njit(cache=True)
def matmul(indptr, indices, data, x, out):  # pragma: no cover - compiled
    """``out = A x`` for CSR ``A`` and row-major ``x`` (n, 4k)."""
    n, width = x.shape
    for g in range(0, width, LANES):
        for i in range(n):
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            a3 = 0.0
            for p in range(indptr[i], indptr[i + 1]):
                j = indices[p]
                v = data[p]
                a0 += v * x[j, g]
                a1 += v * x[j, g + 1]
                a2 += v * x[j, g + 2]
                a3 += v * x[j, g + 3]
            out[i, g] = a0
            out[i, g + 1] = a1
            out[i, g + 2] = a2
            out[i, g + 3] = a3


@njit(cache=True)
def ldl_solve(lp, li, lx, dinv, perm, b, x, w):  # pragma: no cover - compiled
    """``x = A^{-1} b`` with ``A = P (I + L) D (I + L)^T P^T`` (QDLDL's factor: strictly
    lower CSC ``L``, ``dinv = 1/D``, ``perm = P``'s order). ``b, x, w``: (n, 4k) row-major;
    ``x`` may be ``b``."""
    n, width = b.shape
    for g in range(0, width, LANES):
        for i in range(n):
            q = perm[i]
            for c in range(LANES):
                w[i, g + c] = b[q, g + c]
        for j in range(n):  # (I + L) y = P^T b, column by column
            a0 = w[j, g]
            a1 = w[j, g + 1]
            a2 = w[j, g + 2]
            a3 = w[j, g + 3]
            for p in range(lp[j], lp[j + 1]):
                i = li[p]
                v = lx[p]
                w[i, g] -= v * a0
                w[i, g + 1] -= v * a1
                w[i, g + 2] -= v * a2
                w[i, g + 3] -= v * a3
        for j in range(n - 1, -1, -1):  # (I + L)^T x = D^{-1} y, row by row of L^T
            d = dinv[j]
            a0 = w[j, g] * d
            a1 = w[j, g + 1] * d
            a2 = w[j, g + 2] * d
            a3 = w[j, g + 3] * d
            for p in range(lp[j], lp[j + 1]):
                i = li[p]
                v = lx[p]
                a0 -= v * w[i, g]
                a1 -= v * w[i, g + 1]
                a2 -= v * w[i, g + 2]
                a3 -= v * w[i, g + 3]
            w[j, g] = a0
            w[j, g + 1] = a1
            w[j, g + 2] = a2
            w[j, g + 3] = a3
        for i in range(n):
            q = perm[i]
            for c in range(LANES):
                x[q, g + c] = w[i, g + c]


@njit(cache=True)
def pcg(indptr, indices, data, lp, li, lx, dinv, perm, b, tol2, zs, out, start, coef,
        max_iter, r, y, p, q, w):  # pragma: no cover - compiled
    """Preconditioned CG on every column of ``L z = b`` from an extrapolated start.

    ``zs[out]`` (n, width) receives the solution; its start is
    ``sum_i coef[i] * zs[start[i]]`` (earlier solutions, newest first). A column is done when ``|r|^2 <= tol2[column]``
    and is then left alone (padding columns have ``b = 0, tol2 = 0``). The residual is
    tested before each preconditioner application, so a converged solve ends without
    one. Returns the iterations taken, or -1 if ``max_iter`` were not enough.
    """
    z = zs[out]
    n, width = z.shape
    z[:, :] = 0.0
    for h in range(coef.size):
        ch = coef[h]
        src = zs[start[h]]
        for i in range(n):
            for c in range(width):
                z[i, c] += ch * src[i, c]
    matmul(indptr, indices, data, z, q)
    for i in range(n):
        for c in range(width):
            r[i, c] = b[i, c] - q[i, c]
    rho_old = np.ones(width)
    rr = np.zeros(width)
    rho = np.zeros(width)
    pq = np.zeros(width)
    active = np.zeros(width, dtype=np.bool_)
    it = 0
    while True:
        rr[:] = 0.0
        for i in range(n):
            for c in range(width):
                rr[c] += r[i, c] * r[i, c]
        done = True
        for c in range(width):
            active[c] = rr[c] > tol2[c]
            if active[c]:
                done = False
        if done:
            return it
        if it >= max_iter:
            return -1
        ldl_solve(lp, li, lx, dinv, perm, r, y, w)
        rho[:] = 0.0
        for i in range(n):
            for c in range(width):
                rho[c] += r[i, c] * y[i, c]
        for c in range(width):
            if active[c]:
                if it == 0:  # p holds garbage: 0 * p could be NaN
                    for i in range(n):
                        p[i, c] = y[i, c]
                else:
                    beta = rho[c] / rho_old[c]
                    for i in range(n):
                        p[i, c] = y[i, c] + beta * p[i, c]
            rho_old[c] = rho[c]
        matmul(indptr, indices, data, p, q)
        pq[:] = 0.0
        for i in range(n):
            for c in range(width):
                pq[c] += p[i, c] * q[i, c]
        for c in range(width):
            if active[c] and pq[c] > 0.0:
                a = rho[c] / pq[c]
                for i in range(n):
                    z[i, c] += a * p[i, c]
                    r[i, c] -= a * q[i, c]
        it += 1


@njit(cache=True)
def start_weights(k, history, count):  # pragma: no cover - compiled
    """Index of the extrapolation (0 constant, 1 linear, 2 quadratic in the step) whose
    prediction from ``history[:count]`` (earlier conductances, newest first) is closest
    to ``k`` (largest deviation)."""
    best = 0
    miss = np.zeros(3)
    for e in range(k.size):
        k1 = history[0, e]
        miss[0] = max(miss[0], abs(k[e] - k1))
        if count > 1:
            k2 = history[1, e]
            miss[1] = max(miss[1], abs(k[e] - 2.0 * k1 + k2))
            if count > 2:
                miss[2] = max(miss[2], abs(k[e] - 3.0 * k1 + 3.0 * k2 - history[2, e]))
    for o in range(1, count):
        if miss[o] < miss[best]:
            best = o
    return best


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for the types the solver passes."""
    n, width = 3, LANES
    indptr = np.array([0, 2, 5, 7], dtype=INDEX)
    indices = np.array([0, 1, 0, 1, 2, 1, 2], dtype=INDEX)
    data = np.array([2.0, -1.0, -1.0, 2.0, -1.0, -1.0, 2.0])
    assemble(data, np.zeros(1, dtype=np.int64), np.ones(1), np.zeros(1, dtype=np.int64),
             np.ones(1))
    data[:] = [2.0, -1.0, -1.0, 2.0, -1.0, -1.0, 2.0]
    lp = np.array([0, 1, 2, 2], dtype=INDEX)
    li = np.array([1, 2], dtype=INDEX)
    lx = np.array([-0.5, -2.0 / 3.0])
    dinv = 1.0 / np.array([2.0, 1.5, 4.0 / 3.0])
    perm = np.arange(n, dtype=np.int64)
    b = np.zeros((n, width))
    b[0] = 1.0
    work = [np.empty((n, width)) for _ in range(5)]
    start_weights(np.ones(2), np.ones((3, 2)), 3)
    pcg(indptr, indices, data, lp, li, lx, dinv, perm, b, np.full(width, 1e-20),
        np.zeros((2, n, width)), 0, np.ones(1, dtype=np.int64), np.ones(1), 5, *work)
