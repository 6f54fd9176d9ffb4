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
is paid once per install. :func:`warm_up` compiles (or loads) every kernel with LLVM's
SLP vectoriser switched on, which numba leaves off by default: it turns the four lanes of
the triangular sweeps into single vector instructions (with the unsigned indices, sweeps
about 2.5x faster; the same IEEE operations lane by lane, hence the same bits). The
solver calls it before any kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

LANES = 4  # columns one sweep over the factor carries (held in registers)
# Sparse index arrays: unsigned, so that indexing needs no negative-index wraparound
# (which keeps LLVM from packing the four lanes into one vector operation), and 32-bit,
# half the memory traffic of int64.
INDEX = np.uint32
_ready = False


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
def _sweeps(lp, li, lx, dinv, w):  # pragma: no cover - compiled
    """``w = (I + L)^{-T} D^{-1} (I + L)^{-1} w`` for four columns, ``w`` (n, 4).

    Written out lane by lane with constant column indices, so that the vectoriser makes
    each lane quadruple one vector operation."""
    n = w.shape[0]
    for j in range(n):  # (I + L) y = w, column by column
        a0 = w[j, 0]
        a1 = w[j, 1]
        a2 = w[j, 2]
        a3 = w[j, 3]
        for p in range(lp[j], lp[j + 1]):
            i = li[p]
            v = lx[p]
            w[i, 0] -= v * a0
            w[i, 1] -= v * a1
            w[i, 2] -= v * a2
            w[i, 3] -= v * a3
    for j in range(n - 1, -1, -1):  # (I + L)^T x = D^{-1} y, row by row of L^T
        d = dinv[j]
        a0 = w[j, 0] * d
        a1 = w[j, 1] * d
        a2 = w[j, 2] * d
        a3 = w[j, 3] * d
        for p in range(lp[j], lp[j + 1]):
            i = li[p]
            v = lx[p]
            a0 -= v * w[i, 0]
            a1 -= v * w[i, 1]
            a2 -= v * w[i, 2]
            a3 -= v * w[i, 3]
        w[j, 0] = a0
        w[j, 1] = a1
        w[j, 2] = a2
        w[j, 3] = a3


@njit(cache=True)
def ldl_solve(lp, li, lx, dinv, perm, b, x, w):  # pragma: no cover - compiled
    """``x = A^{-1} b`` with ``A = P (I + L) D (I + L)^T P^T`` (QDLDL's factor: strictly
    lower CSC ``L``, ``dinv = 1/D``, ``perm = P``'s order). ``b, x``: (n, 4k) row-major,
    ``x`` may be ``b``; ``w``: (k, n, 4) work space."""
    n, width = b.shape
    for g in range(width // LANES):
        wg = w[g]
        o = g * LANES
        for i in range(n):
            q = perm[i]
            for c in range(LANES):
                wg[i, c] = b[q, o + c]
        _sweeps(lp, li, lx, dinv, wg)
        for i in range(n):
            q = perm[i]
            for c in range(LANES):
                x[q, o + c] = wg[i, c]


@njit(cache=True)
def pcg(indptr, indices, data, lp, li, lx, dinv, perm, b, tol2, zs, out, start, coef,
        max_iter, r, y, p, q, w):  # pragma: no cover - compiled
    """Preconditioned CG on every column of ``L z = b`` from an extrapolated start.

    ``zs[out]`` (n, width) receives the solution; its start is
    ``sum_i coef[i] * zs[start[i]]`` (earlier solutions, newest first). A column is done
    when ``|r|^2 <= tol2[column]`` and is then left alone (padding columns have ``b = 0,
    tol2 = 0``). The residual is tested before each preconditioner application, so a
    converged solve ends without one. Every pass runs row by row over all columns (the
    arrays outgrow the caches on large networks). Returns the iterations taken, or -1 if
    ``max_iter`` were not enough.
    """
    z = zs[out]
    n, width = z.shape
    hist = coef.size
    for i in range(n):
        for c in range(width):
            acc = 0.0
            for h in range(hist):
                acc += coef[h] * zs[start[h], i, c]
            z[i, c] = acc
    matmul(indptr, indices, data, z, q)
    rr = np.zeros(width)
    for i in range(n):
        for c in range(width):
            v = b[i, c] - q[i, c]
            r[i, c] = v
            rr[c] += v * v
    rho = np.zeros(width)
    rho_old = np.ones(width)
    beta = np.zeros(width)
    step = np.zeros(width)
    pq = np.zeros(width)
    it = 0
    while True:
        done = True
        for c in range(width):
            if rr[c] > tol2[c]:
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
        for c in range(width):  # a done column keeps p = 0, hence a zero step
            active = rr[c] > tol2[c]
            beta[c] = rho[c] / rho_old[c] if (active and it > 0) else 0.0
            rho_old[c] = rho[c]
            if not active:
                rho[c] = 0.0
        for i in range(n):
            for c in range(width):
                if rho[c] != 0.0:
                    p[i, c] = y[i, c] + beta[c] * p[i, c] if it > 0 else y[i, c]
                else:
                    p[i, c] = 0.0
        matmul(indptr, indices, data, p, q)
        pq[:] = 0.0
        for i in range(n):
            for c in range(width):
                pq[c] += p[i, c] * q[i, c]
        for c in range(width):
            step[c] = rho[c] / pq[c] if pq[c] > 0.0 else 0.0
        rr[:] = 0.0
        for i in range(n):
            for c in range(width):
                z[i, c] += step[c] * p[i, c]
                v = r[i, c] - step[c] * q[i, c]
                r[i, c] = v
                rr[c] += v * v
        it += 1


@njit(cache=True)
def row_differences(z, ei, ej, out):  # pragma: no cover - compiled
    """``out[e] = z[ei[e]] - z[ej[e]]`` (rows)."""
    for e in range(ei.size):
        a, b = ei[e], ej[e]
        for c in range(z.shape[1]):
            out[e, c] = z[a, c] - z[b, c]


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
    """Compile (or load from numba's cache) the kernels for the types the solver passes,
    with the SLP vectoriser on for that compilation only. Cheap after the first call."""
    global _ready
    if _ready:
        return
    from numba.core import config

    saved = config.SLP_VECTORIZE
    config.SLP_VECTORIZE = 1
    try:
        _compile()
    finally:
        config.SLP_VECTORIZE = saved
    _ready = True


def _compile() -> None:
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
    perm = np.arange(n, dtype=INDEX)
    b = np.zeros((n, width))
    b[0] = 1.0
    work = [np.empty((n, width)) for _ in range(4)] + [np.empty((width // LANES, n, LANES))]
    start_weights(np.ones(2), np.ones((3, 2)), 3)
    row_differences(np.ones((2, 4)), np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64),
                    np.empty((1, 4)))
    pcg(indptr, indices, data, lp, li, lx, dinv, perm, b, np.full(width, 1e-20),
        np.zeros((2, n, width)), 0, np.ones(1, dtype=np.int64), np.ones(1), 5, *work)
