"""The whole learning step of a small linear network in one compiled kernel (numba).

Below a few thousand nodes a step costs less arithmetic than the Python and numpy call
overhead of the fused numpy loop (:class:`learnboard.engine.linear._FastLoop`, kept as the
reference the tests compare against). :func:`run_steps` runs many steps per call: the
numeric LDL^T refactorisation of the reduced Laplacian (QDLDL's up-looking algorithm on
QDLDL's AMD ordering; the symbolic analysis is done once in Python by :class:`Kernel`), the
m solves, the drops ``BZ`` and the Schur matrix ``G``, the m x m Cholesky ``G = R R^T``
and ``R^{-1}``, the quadratic form of every edge, the clipped update, and at history
points the error, the power and the bound fractions. Full batch uses the second moment
``<u u^T>``; online steps take one example's moment, in an order drawn in Python with the
engine's generator (so it is the same stream as the reference). Desynchronous updates
take a mask drawn the same way. The paper's tolerance controller runs inside the kernel.

Numba caches the compiled kernels beside this module (``cache=True``): the first run
after an install compiles them (a few seconds), later processes load them (call
:func:`warm_up` once per process to keep that out of timed work).
"""

from __future__ import annotations

import numpy as np
from numba import njit

OK, SINGULAR, DEPENDENT = 0, 1, 2  # kernel status codes
HIST = 8  # history columns: step, error, relative error, power, power_watts, lam, min, max


@njit(cache=True)
def elimination_tree(n, cp, ci):
    """QDLDL's elimination tree and column counts of L for an upper CSC matrix."""
    work = np.zeros(n, dtype=np.int64)
    lnz = np.zeros(n, dtype=np.int64)
    etree = np.full(n, -1, dtype=np.int64)
    for j in range(n):
        work[j] = j
        for p in range(cp[j], cp[j + 1]):
            i = ci[p]
            while work[i] != j:
                if etree[i] == -1:
                    etree[i] = j
                lnz[i] += 1
                work[i] = j
                i = etree[i]
    return etree, lnz


@njit(cache=True)
def factor_schedule(n, cp, ci, lp, etree):
    """QDLDL's numeric-factorisation order, recorded once for a fixed pattern.

    For row k of L, ``cols[rowptr[k]:rowptr[k+1]]`` are the columns c it is eliminated
    against, in QDLDL's order, and ``pos`` the slot of L(k, c) in ``lx``; ``li`` is the
    row index of every slot. Replaying this (:func:`_factor`) performs the same floating
    point operations as QDLDL without its elimination-tree walks.
    """
    nl = lp[n]
    li = np.zeros(nl, dtype=np.int64)
    rowptr = np.zeros(n + 1, dtype=np.int64)
    cols = np.zeros(nl, dtype=np.int64)
    pos = np.zeros(nl, dtype=np.int64)
    ymark = np.zeros(n, dtype=np.int8)
    yidx = np.zeros(n, dtype=np.int64)
    elim = np.zeros(n, dtype=np.int64)
    nxt = lp[:n].copy()
    q = 0
    for k in range(1, n):
        nnzy = 0
        for i in range(cp[k], cp[k + 1] - 1):
            b = ci[i]
            if ymark[b] == 0:
                ymark[b] = 1
                elim[0] = b
                nnze = 1
                nx = etree[b]
                while nx != -1 and nx < k:
                    if ymark[nx] == 1:
                        break
                    ymark[nx] = 1
                    elim[nnze] = nx
                    nnze += 1
                    nx = etree[nx]
                while nnze:
                    nnze -= 1
                    yidx[nnzy] = elim[nnze]
                    nnzy += 1
        for i in range(nnzy - 1, -1, -1):
            c = yidx[i]
            t = nxt[c]
            li[t] = k
            cols[q] = c
            pos[q] = t
            q += 1
            nxt[c] = t + 1
            ymark[c] = 0
        rowptr[k + 1] = q
    return li, rowptr, cols, pos


ONE = np.uint64(1)


@njit(cache=True)
def _factor(n, cp, ci, cx, lp, li, lx, d, dinv, rowptr, cols, pos, yvals):
    """QDLDL's numeric LDL^T (up-looking) replayed from :func:`factor_schedule`;
    False if a pivot is not positive (a conductance <= 0 or a disconnected node).

    Index arrays are unsigned: numba then drops its negative-index wraparound from every
    access, which halves the time of these scatter loops.
    """
    d[0] = cx[cp[1] - ONE]
    if not d[0] > 0.0:
        return False
    dinv[0] = 1.0 / d[0]
    for k in range(1, n):
        last = cp[k + 1] - ONE  # the diagonal is the last entry of its column
        i = cp[k]
        while i < last:
            yvals[ci[i]] = cx[i]
            i += ONE
        dk = cx[last]
        q = rowptr[k]
        qend = rowptr[k + 1]
        while q < qend:
            c = cols[q]
            t = pos[q]
            yc = yvals[c]
            j = lp[c]
            while j < t:
                yvals[li[j]] -= lx[j] * yc
                j += ONE
            lkc = yc * dinv[c]
            lx[t] = lkc
            dk -= yc * lkc
            yvals[c] = 0.0
            q += ONE
        d[k] = dk
        if not dk > 0.0:
            return False
        dinv[k] = 1.0 / dk
    return True


@njit(cache=True)
def _solve(n, mt, lp, li, lx, dinv, x):
    """(L D L^T) x = b in place for the m = len(mt) columns of x (n+1, m) at once; per
    column the operations of QDLDL's solve, in its order."""
    m = len(mt)
    for i in range(n):
        nonzero = False
        for a in range(m):
            if x[i, a] != 0.0:
                nonzero = True
        if not nonzero:  # the right-hand sides are sparse; subtracting l * 0 changes nothing
            continue
        j = lp[i]
        jend = lp[i + 1]
        while j < jend:
            lj = lx[j]
            r = li[j]
            for a in range(m):
                x[r, a] -= lj * x[i, a]
            j += ONE
    for i in range(n):
        di = dinv[i]
        for a in range(m):
            x[i, a] *= di
    for i in range(n - 1, -1, -1):
        j = lp[i]
        jend = lp[i + 1]
        while j < jend:
            lj = lx[j]
            r = li[j]
            for a in range(m):
                x[i, a] -= lj * x[r, a]
            j += ONE


@njit(cache=True)
def _weights(w, ns, lam, alpha, eta):
    m = w.shape[0]
    for a in range(m):
        for b in range(m):
            if a < ns and b < ns:
                w[a, b] = -alpha * (lam / eta)
            elif a < ns or b < ns:
                w[a, b] = -alpha * 1.0
            else:
                w[a, b] = -alpha * eta


@njit(cache=True)
def _edge_form(mt, rinv, mom, w, mat, tmp, core):
    """The upper triangle of mat = R^{-T} (w ∘ R^{-1} mom R^{-T}) R^{-1}, off-diagonal
    entries doubled: the symmetric form whose value on an edge's responses BZ_e is that
    edge's term. ``core`` keeps R^{-1} mom R^{-T}. m = len(mt)."""
    m = len(mt)
    for a in range(m):
        for b in range(m):
            sv = 0.0
            for c in range(a + 1):
                sv += rinv[a, c] * mom[c, b]
            tmp[a, b] = sv
    for a in range(m):
        for b in range(m):
            sv = 0.0
            for c in range(b + 1):
                sv += tmp[a, c] * rinv[b, c]
            core[a, b] = sv
    for a in range(m):
        for b in range(m):
            tmp[a, b] = core[a, b] * w[a, b]
    for c in range(m):  # mat = R^{-T} tmp R^{-1}, the right product first
        for b in range(m):
            sv = 0.0
            for e in range(b, m):
                sv += tmp[c, e] * rinv[e, b]
            mat[c, b] = sv
    for c in range(m):
        for b in range(m):
            tmp[c, b] = mat[c, b]
    for a in range(m):
        for b in range(a, m):
            sv = 0.0
            for c in range(a, m):
                sv += rinv[c, a] * tmp[c, b]
            mat[a, b] = sv if a == b else 2.0 * sv


@njit(cache=True)
def run_steps(mt, k, start, stop, steps, every,
              a_slot, a_sign, a_edge, cp, ci, cx, lp, li, lx, d, dinv, rowptr, cols, pos, yvals,
              rhs, ends, terms, full_moment, moments, examples, mask, ns, alpha, eta, kmin, kmax,
              state, ctl, c0, hist):
    """Steps ``start .. stop-1`` of a run of ``steps`` steps, on ``k`` in place.

    At each step s: refactorise, solve, and, at history points (``s % every == 0`` or
    ``s == steps``; step ``steps`` only records), write a row of ``hist`` at
    ``state[1]``. ``examples[s - start]`` is the online example of step s (empty: full
    batch), ``mask[s - start]`` the desynchronous update mask (empty: every edge).
    ``state = [lam, next history row]``; ``ctl = [on, tau, start, every, up, down, s0, lam]``
    is the tolerance controller's state (s0 < 0: not reached yet). Returns a status code.
    """
    m = len(mt)  # a tuple's length is known at compile time: the m-loops unroll
    n = cp.shape[0] - 1
    ne = k.shape[0]
    z = np.zeros((n + 1, m))  # responses, permuted node order; row n is the ground
    g = np.empty((m, m))
    r = np.zeros((m, m))
    rinv = np.zeros((m, m))
    bz = np.empty(m)
    mat = np.empty((m, m))
    pmat = np.empty((m, m))
    core = np.empty((m, m))
    tmp = np.empty((m, m))
    w = np.empty((m, m))
    pw = np.zeros((m, m))
    for a in range(ns):
        for b in range(ns):
            pw[a, b] = 1.0
    lam = state[0]
    _weights(w, ns, lam, alpha, eta)
    nslot = a_slot.shape[0]
    nnz = cx.shape[0]
    online = examples.shape[0] > 0
    masked = mask.shape[0] > 0
    for s in range(start, stop):
        for p in range(nnz):
            cx[p] = 0.0
        for p in range(nslot):
            cx[a_slot[p]] += k[a_edge[p]] * a_sign[p]
        if not _factor(n, cp, ci, cx, lp, li, lx, d, dinv, rowptr, cols, pos, yvals):
            state[0] = lam
            return SINGULAR
        z[:n] = rhs
        _solve(n, mt, lp, li, lx, dinv, z)
        # G's lower triangle as the reference loop reads it: G[a, b] = z_a at terminal b
        for a in range(m):
            for b in range(m):
                g[a, b] = z[terms[b, 0], a] - z[terms[b, 1], a]
        for j in range(m):  # Cholesky G = R R^T, then R^{-1}
            sdiag = g[j, j]
            for c in range(j):
                sdiag -= r[j, c] * r[j, c]
            if not sdiag > 0.0:
                state[0] = lam
                return DEPENDENT
            r[j, j] = np.sqrt(sdiag)
            for i in range(j + 1, m):
                sv = g[i, j]
                for c in range(j):
                    sv -= r[i, c] * r[j, c]
                r[i, j] = sv / r[j, j]
        for j in range(m):
            rinv[j, j] = 1.0 / r[j, j]
            for i in range(j + 1, m):
                sv = 0.0
                for c in range(j, i):
                    sv -= r[i, c] * rinv[c, j]
                rinv[i, j] = sv / r[i, i]
        record = s % every == 0 or s == steps
        err = 0.0
        if record or ctl[0] != 0.0:  # <|e|^2> = sum((R_TT (R^{-1} <uu^T> R^{-T})_TT) * R_TT)
            _edge_form(mt, rinv, full_moment, pw, pmat, tmp, core)
            for a in range(ns, m):
                for b in range(ns, m):
                    sv = 0.0
                    for c in range(ns, m):
                        sv += r[a, c] * core[c, b]
                    err += sv * r[a, b]
        rel = err / c0 if c0 > 0 else 0.0
        if record:
            power = 0.0
            at_min = 0
            at_max = 0
            for e in range(ne):
                i0, j0 = ends[e, 0], ends[e, 1]
                for a in range(m):
                    bz[a] = z[i0, a] - z[j0, a]
                sv = 0.0
                for a in range(m):
                    sa = pmat[a, a] * bz[a]
                    for b in range(a + 1, m):
                        sa += pmat[a, b] * bz[b]
                    sv += sa * bz[a]
                power += k[e] * sv
                if k[e] <= kmin * (1 + 1e-12):
                    at_min += 1
                if k[e] >= kmax * (1 - 1e-12):
                    at_max += 1
            row = int(state[1])
            hist[row, 0] = s
            hist[row, 1] = err
            hist[row, 2] = rel
            hist[row, 3] = 0.5 * power
            hist[row, 4] = power
            hist[row, 5] = lam
            hist[row, 6] = at_min / ne
            hist[row, 7] = at_max / ne
            state[1] = row + 1
        if s == steps:
            break
        if ctl[0] != 0.0:  # ToleranceController.lam_for (its own lambda in ctl[7])
            if ctl[6] < 0:
                if rel < ctl[1]:
                    ctl[6] = s
                    ctl[7] = ctl[2]
            elif (s - int(ctl[6])) % int(ctl[3]) == 0:
                ctl[7] = ctl[7] * ctl[4] if rel < ctl[1] else ctl[7] * ctl[5]
            if ctl[7] != lam:
                lam = ctl[7]
                _weights(w, ns, lam, alpha, eta)
        mom = moments[examples[s - start]] if online else full_moment
        _edge_form(mt, rinv, mom, w, mat, tmp, core)
        for e in range(ne):
            i0, j0 = ends[e, 0], ends[e, 1]
            for a in range(m):
                bz[a] = z[i0, a] - z[j0, a]
            dk = 0.0
            for a in range(m):  # mat is symmetric: its upper triangle, off-diagonal doubled
                sa = mat[a, a] * bz[a]
                for b in range(a + 1, m):
                    sa += mat[a, b] * bz[b]
                dk += sa * bz[a]
            if masked and not mask[s - start, e]:
                dk = 0.0
            k[e] = min(max(k[e] + dk, kmin), kmax)
    state[0] = lam
    return OK


def symmetric_permutation(n: int, rows: np.ndarray, cols: np.ndarray, perm: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper CSC pattern of ``P^T A P`` for the entries ``(rows, cols)`` of a symmetric A.

    Returns ``(cp, ci, slot)``: column pointers, row indices (sorted, so the diagonal is
    last in each column) and the data position of every given entry (duplicates share one).
    ``perm[new] = old`` as QDLDL's ``P``.
    """
    inv = np.empty(n, dtype=np.int64)
    inv[perm] = np.arange(n)
    pi, pj = inv[rows], inv[cols]
    lo, hi = np.minimum(pi, pj), np.maximum(pi, pj)
    key = hi * n + lo
    uniq, slot = np.unique(key, return_inverse=True)
    ci = (uniq % n).astype(np.int64)
    counts = np.bincount(uniq // n, minlength=n)
    cp = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return cp, ci, slot.astype(np.int64)


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernels for the types the engine passes,
    with two sources and two targets (the notebook task's; another number of terminals
    loads its own specialisation at first use), so that no timed run pays it."""
    from learnboard.generate import lattice

    net = lattice(3, 3)
    kernel = Kernel(net, np.asarray(net.edges[:4], dtype=np.int64))
    mom = np.eye(4)
    kernel.run(np.ones(net.n_edges), 0, 2, 2, 1, np.zeros(0, dtype=np.int64),
               np.zeros((0, 0), dtype=np.bool_), 2, 0.5, 1e-3, 1e-4, 1e6, np.array([0.0, 0.0]),
               np.zeros(8), 1.0, np.zeros((3, HIST)), mom, np.ascontiguousarray(mom[None]))


class Kernel:
    """The symbolic analysis (once) and the buffers of :func:`run_steps` for one network.

    Args:
        network: topology; its ground node is held at 0 V.
        pairs: (m, 2) node pairs of the terminals, sources first.
        perm: fill-reducing ordering, ``perm[new] = old`` over the reduced nodes (default:
            QDLDL's AMD ordering of the reduced Laplacian).
    """

    def __init__(self, network, pairs: np.ndarray, perm: np.ndarray | None = None):
        from learnboard.engine.solvers import _Assembly

        asm = _Assembly(network)
        n = asm.n
        up = asm.rows <= asm.cols
        rows, cols = asm.rows[up], asm.cols[up]
        if perm is None:
            perm = qdldl_ordering(n, rows, cols)
        self.perm = np.asarray(perm, dtype=np.int64)
        self.cp, self.ci, self.slot = symmetric_permutation(n, rows, cols, self.perm)
        self.sign = np.ascontiguousarray(asm.sign[up])
        self.edge = np.ascontiguousarray(asm.edge[up])
        etree, lnz = elimination_tree(n, self.cp, self.ci)
        self.lp = np.concatenate([[0], np.cumsum(lnz)]).astype(np.int64)
        self.li, self.rowptr, self.cols, self.pos = factor_schedule(n, self.cp, self.ci, self.lp,
                                                                    etree)
        u = np.uint64  # unsigned indices: see _factor
        self.cp, self.ci, self.lp, self.li = (a.astype(u) for a in (self.cp, self.ci, self.lp,
                                                                     self.li))
        self.rowptr, self.cols, self.pos = (a.astype(u) for a in (self.rowptr, self.cols,
                                                                   self.pos))
        self.slot, self.edge = self.slot.astype(u), self.edge.astype(u)
        self.lx = np.zeros(len(self.li))
        self.cx = np.zeros(len(self.ci))
        self.d, self.dinv, self.yvals = np.zeros(n), np.zeros(n), np.zeros(n)
        inv = np.empty(n + 1, dtype=np.int64)  # reduced node -> permuted index; ground -> n
        inv[self.perm] = np.arange(n)
        inv[n] = n
        red = np.where(asm.reduced < 0, n, asm.reduced)
        node = inv[red]  # network node -> column of the kernel's z
        self.ends = np.ascontiguousarray(node[network.edges]).astype(np.uint64)
        self.terms = np.ascontiguousarray(node[pairs]).astype(np.uint64)
        m = len(pairs)
        rhs = np.zeros((n + 1, m))
        rhs[self.terms[:, 0], np.arange(m)] += 1.0
        rhs[self.terms[:, 1], np.arange(m)] -= 1.0
        self.rhs = np.ascontiguousarray(rhs[:n])
        self.n, self.m = n, m
        self.mt = (0,) * m  # the kernel is compiled for each number of terminals

    def run(self, k, start, stop, steps, every, examples, mask, ns, alpha, eta, kmin, kmax,
            state, ctl, c0, hist, full_moment, moments) -> int:
        """:func:`run_steps` with this network's analysis and buffers."""
        return run_steps(self.mt, k, start, stop, steps, every, self.slot, self.sign, self.edge, self.cp,
                         self.ci, self.cx, self.lp, self.li, self.lx, self.d, self.dinv,
                         self.rowptr, self.cols, self.pos, self.yvals, self.rhs, self.ends, self.terms,
                         full_moment, moments, examples, mask, ns, alpha, eta, kmin, kmax,
                         state, ctl, c0, hist)


def qdldl_ordering(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """QDLDL's AMD ordering (``perm[new] = old``) of the pattern ``(rows, cols)``, upper part."""
    import qdldl
    import scipy.sparse as sp

    mat = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    mat.sum_duplicates()
    mat.sort_indices()
    # a diagonally dominant matrix of the same pattern: any values factor, only P is used
    diag = np.asarray(abs(mat).sum(axis=0) + abs(mat).sum(axis=1).T).ravel() + 1.0
    mat = (sp.triu(mat, 1) + sp.diags(diag)).tocsc()
    mat.sort_indices()
    return np.asarray(qdldl.Solver(mat, upper=True).factors()[2], dtype=np.int64)
