"""Constraint responses of a linear network: ``Z = L^{-1} A^T`` for the reduced Laplacian L.

One factorisation of ``L`` per learning step serves every example, the free and the
clamped state alike (that reuse is exact). Four backends, ``auto`` chooses by size:

- ``band``: reverse Cuthill–McKee ordering, then LAPACK banded Cholesky (``dpbtrf``);
  fastest for the small and medium disordered networks (bandwidth ~ sqrt(N)).
- ``ldl``: sparse LDL^T (QDLDL, AMD ordering) refactorised in place every step; the
  default for small and medium networks, where LAPACK's per-column loops and Python call
  overhead dominate (a 63-node refactorisation costs ~4 µs, one solve ~1.5 µs).
- ``dense``: LAPACK dense Cholesky; kept for reference and for tiny graphs.
- ``pcg``: conjugate gradients on all m columns in one compiled call, started from the
  previous solutions extrapolated along the learning path and preconditioned by an exact
  LDL^T factor of an earlier Laplacian, renewed when the conductances have drifted too
  far from it. For large networks, where a numeric factorisation per step costs more
  than the one or two triangular solves a step then needs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dpbtrf, dpbtrs, dpotrf, dpotrs

from learnboard.errors import InputError
from learnboard.network import Network

METHODS = ("auto", "ldl", "dense", "band", "pcg")
# "auto" takes pcg above this many nodes. Measured against the compiled ldl step
# (docs/engine.md): pcg is ahead from ~3000 nodes with full-batch learning (from far
# fewer on lattices, whose factors fill in more); online learning, whose steps do not
# follow a smooth path, favours ldl up to ~10 000 nodes on disordered networks.
PCG_ABOVE = 3000


def _singular(network: Network) -> InputError:
    if not network.is_connected():
        return InputError(
            "the network is not connected: some nodes have no path to ground; connect or remove them",
            source=network.name,
        )
    return InputError("the conductance matrix is singular: every conductance must be positive",
                      source=network.name)


class _Assembly:
    """Scatter of edge conductances into the entries of the reduced Laplacian.

    ``rows/cols`` are reduced node indices (ground removed) of the four entries each
    edge touches; entries on the ground row/column are dropped.
    """

    def __init__(self, network: Network, perm: np.ndarray | None = None):
        n = network.n_nodes
        red = np.full(n, -1, dtype=np.int64)
        keep = np.arange(n) != network.ground
        order = np.arange(n - 1) if perm is None else np.argsort(perm)
        red[keep] = order  # reduced (and optionally permuted) index of every node
        i, j = red[network.edges[:, 0]], red[network.edges[:, 1]]
        e = np.arange(network.n_edges)
        rows = np.concatenate([i, j, i, j])
        cols = np.concatenate([i, j, j, i])
        sign = np.concatenate([np.ones(2 * len(e)), -np.ones(2 * len(e))])
        edge = np.concatenate([e, e, e, e])
        ok = (rows >= 0) & (cols >= 0)
        self.rows, self.cols, self.sign, self.edge = rows[ok], cols[ok], sign[ok], edge[ok]
        self.n = n - 1
        self.reduced = red


class DenseSolver:
    """Dense LAPACK Cholesky of the reduced Laplacian."""

    method = "dense"

    def __init__(self, network: Network):
        self.network = network
        self.asm = _Assembly(network)
        n = self.asm.n
        self._pos = self.asm.rows * n + self.asm.cols
        self._w = np.empty(len(self._pos))
        self.index = self.asm.reduced

    def set_rhs(self, at: np.ndarray) -> None:
        self.at = np.asfortranarray(at)

    def responses(self, k: np.ndarray) -> np.ndarray:
        np.multiply(self.asm.sign, k[self.asm.edge], out=self._w)
        n = self.asm.n
        lap = np.bincount(self._pos, weights=self._w, minlength=n * n).reshape(n, n)
        c, info = dpotrf(lap, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise _singular(self.network)
        z, info = dpotrs(c, self.at, lower=1)
        return z


class BandSolver:
    """Banded LAPACK Cholesky after a reverse Cuthill–McKee ordering."""

    method = "band"

    def __init__(self, network: Network):
        from scipy.sparse.csgraph import reverse_cuthill_mckee

        self.network = network
        base = _Assembly(network)
        n = base.n
        pattern = sp.csr_matrix((np.ones(len(base.rows)), (base.rows, base.cols)), shape=(n, n))
        perm = reverse_cuthill_mckee(pattern, symmetric_mode=True).astype(np.int64)
        self.asm = _Assembly(network, perm)
        low = self.asm.rows >= self.asm.cols
        self.band = int(np.max(self.asm.rows - self.asm.cols)) if n else 0
        # lower band storage: ab[i - j, j] = L[i, j]
        self._pos = ((self.asm.rows - self.asm.cols) * n + self.asm.cols)[low]
        self._sign = self.asm.sign[low]
        self._edge = self.asm.edge[low]
        self._w = np.empty(len(self._pos))
        self.index = self.asm.reduced
        self._size = (self.band + 1) * n

    def set_rhs(self, at: np.ndarray) -> None:
        self.at = np.asfortranarray(at)

    def responses(self, k: np.ndarray) -> np.ndarray:
        np.multiply(self._sign, k[self._edge], out=self._w)
        ab = np.bincount(self._pos, weights=self._w, minlength=self._size)
        ab = ab.reshape(self.band + 1, self.asm.n)
        c, info = dpbtrf(ab, lower=1, overwrite_ab=1)
        if info != 0:
            raise _singular(self.network)
        z, info = dpbtrs(c, self.at, lower=1)
        return z


class LDLSolver:
    """Sparse LDL^T of the reduced Laplacian (QDLDL with AMD ordering, upper CSC input).

    The symbolic analysis is done once; every call refactorises numerically from the
    new conductances written straight into the matrix data. ``factor(k)`` then
    :meth:`hot_loop` hands the pieces to the engine's fused step loop.
    """

    method = "ldl"

    def __init__(self, network: Network):
        import qdldl

        if not network.is_connected():
            raise _singular(network)
        self.network = network
        self.asm = _Assembly(network)
        n = self.asm.n
        up = self.asm.rows <= self.asm.cols
        rows, cols = self.asm.rows[up], self.asm.cols[up]
        mat = sp.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        mat.sum_duplicates()
        mat.sort_indices()
        key = cols * n + rows
        csc_key = np.repeat(np.arange(n), np.diff(mat.indptr)) * n + mat.indices
        self._slot = np.searchsorted(csc_key, key)  # where each contribution lands
        self._sign, self._edge = self.asm.sign[up], self.asm.edge[up]
        self._nnz = mat.nnz
        self._mat = mat
        self._qdldl = qdldl
        self._ldl = None
        self.index = self.asm.reduced

    def set_rhs(self, at: np.ndarray) -> None:
        self.at = np.asarray(at, dtype=float)
        self.columns = [np.ascontiguousarray(c) for c in self.at.T]

    def factor(self, k: np.ndarray) -> None:
        """Numeric LDL^T at conductances ``k`` (all positive: the engine clips to k_min > 0)."""
        self._mat.data = np.bincount(self._slot, weights=self._sign * k[self._edge],
                                     minlength=self._nnz)
        if self._ldl is None:
            self._ldl = self._qdldl.Solver(self._mat, upper=True)
        else:
            self._ldl.update(self._mat, upper=True)

    def hot_loop(self, k: np.ndarray) -> tuple:
        """Factorises at ``k`` and returns what an inlined refactorise-and-solve loop needs:
        ``matrix, slot, sign, edge, nnz, update, solve`` (set ``matrix.data`` to
        ``bincount(slot, sign * k[edge], nnz)``, then ``update(matrix, True)``)."""
        self.factor(k)
        return (self._mat, self._slot, self._sign, self._edge, self._nnz, self._ldl.update,
                self._ldl.solve)

    def responses(self, k: np.ndarray) -> np.ndarray:
        if not np.all(k > 0):  # LDL^T does not check definiteness
            raise _singular(self.network)
        self.factor(k)
        z = np.empty(self.at.shape)
        for i, col in enumerate(self.columns):
            z[:, i] = self._ldl.solve(col)
        return z


class PCGSolver:
    """Conjugate gradients preconditioned by an exact factor of an earlier Laplacian.

    The conductances move little per learning step, so ``L(k)`` stays close to the
    Laplacian ``L(k_f)`` of the last factorisation (QDLDL, AMD ordering, the symbolic
    analysis done once), and the solutions follow a smooth path. Each call

    - starts from the previous solutions extrapolated to the new ``k`` (constant, linear
      or quadratic in the step, whichever predicts ``k`` itself best; a jump to unrelated
      conductances falls back to the last solution);
    - refactorises first when ``max(k/k_f) / min(k/k_f)`` exceeds ``spread``: that ratio
      bounds the condition number of the preconditioned matrix, hence the CG rate;
    - runs CG on all m columns in one compiled call (:mod:`learnboard.engine.pcg_kernels`)
      until every residual is below ``rtol`` of its right-hand side, refactorising and
      solving again if ``max_iter`` iterations do not get there.

    A step typically costs one preconditioner application (two triangular sweeps carrying
    four columns each) and two sparse products. Calling with the same ``k`` as the previous
    call returns the previous solution.

    Args:
        rtol: relative residual ``|b - L z| / |b|`` of every column.
        spread: refactorise when the conductances have moved by more than this factor
            (ratio of the largest to the smallest ``k / k_f``).
        max_iter: CG iterations before the factor is renewed within a call.
    """

    method = "pcg"
    HISTORY = 3  # earlier solutions kept for the extrapolated start
    # start weights on the newest solutions: constant, linear, quadratic in the step
    EXTRAPOLATION = (np.ones(1), np.array([2.0, -1.0]), np.array([3.0, -3.0, 1.0]))

    def __init__(self, network: Network, rtol: float = 1e-11, spread: float = 1.5,
                 max_iter: int = 40):
        import qdldl

        from learnboard.engine import pcg_kernels

        pcg_kernels.warm_up()
        if not network.is_connected():
            raise _singular(network)
        self.network = network
        self.asm = _Assembly(network)
        n = self.asm.n
        rows, cols = self.asm.rows, self.asm.cols
        # CSR of the full Laplacian (for the products) and upper CSC (for QDLDL): the
        # position each edge contribution lands in, summed by assemble()
        # (sorted by position: the scatter then writes memory in order)
        self._csr_indptr, self._csr_indices, slot = _slots(rows, cols, n, rows * n + cols)
        order = np.argsort(slot, kind="stable")
        self._csr_slot = slot[order]
        self._sign, self._edge = self.asm.sign[order], self.asm.edge[order]
        up = rows <= cols
        ucols, uidx, uslot = _slots(cols[up], rows[up], n, cols[up] * n + rows[up])
        self._upper = sp.csc_matrix((np.zeros(len(uidx)), uidx, ucols), shape=(n, n))
        order = np.argsort(uslot, kind="stable")
        self._up_slot = uslot[order]
        self._up_sign, self._up_edge = self.asm.sign[up][order], self.asm.edge[up][order]
        self._data = np.zeros(len(self._csr_indices))
        self.rtol, self.spread, self.max_iter = rtol, spread, max_iter
        self.index = self.asm.reduced
        self._qdldl = qdldl
        self._kernels = pcg_kernels
        self._ldl = None
        self._factor_k: np.ndarray | None = None
        self.iterations: list[int] = []
        self.refactors = 0

    def set_rhs(self, at: np.ndarray) -> None:
        n, m = at.shape
        width = -(-m // self._kernels.LANES) * self._kernels.LANES  # padding columns: b = 0
        self.m = m
        self.at = np.asarray(at, dtype=float)
        self._b = np.zeros((n, width))
        self._b[:, :m] = at
        self._tol2 = self.rtol**2 * np.sum(self._b * self._b, axis=0)
        # solution buffers: the newest HISTORY are the extrapolation's input, one is written
        self._z = np.zeros((self.HISTORY + 1, n, width))
        lanes = self._kernels.LANES
        self._work = [np.empty((n, width)) for _ in range(4)] + [np.empty((width // lanes, n, lanes))]
        # conductances of the solutions kept, newest first, and their buffers in self._z
        self._khist = np.zeros((self.HISTORY, self.network.n_edges))
        self._slots: list[int] = []

    def edge_drops(self, zp: np.ndarray, ei: np.ndarray, ej: np.ndarray) -> np.ndarray:
        """``zp[ei] - zp[ej]``, compiled (numpy's row gathers cost more than the
        solve's products on large networks)."""
        out = np.empty((len(ei), zp.shape[1]))
        self._kernels.row_differences(zp, ei, ej, out)
        return out

    def laplacian(self, k: np.ndarray) -> sp.csr_matrix:
        """The reduced (grounded) Laplacian at conductances ``k``, CSR."""
        data = np.empty(len(self._csr_indices))
        self._kernels.assemble(data, self._csr_slot, self._sign, self._edge, k)
        n = self.asm.n
        return sp.csr_matrix((data, self._csr_indices, self._csr_indptr), shape=(n, n))

    def _factor(self, k: np.ndarray) -> None:
        self._kernels.assemble(self._upper.data, self._up_slot, self._up_sign, self._up_edge, k)
        if self._ldl is None:
            self._ldl = self._qdldl.Solver(self._upper, upper=True)
        else:
            self._ldl.update(self._upper, upper=True)
        low, d, perm = self._ldl.factors()
        if not (np.all(np.isfinite(d)) and np.all(d > 0)):
            raise _singular(self.network)
        index = self._kernels.INDEX
        self._lfac = (low.indptr.astype(index), low.indices.astype(index),
                      np.ascontiguousarray(low.data, dtype=float), 1.0 / d,
                      np.asarray(perm, dtype=index))
        self._factor_k = k.copy()
        self.refactors += 1

    def responses(self, k: np.ndarray) -> np.ndarray:
        if not np.all(k > 0):  # an LDL^T factor does not check definiteness
            raise _singular(self.network)
        if self._slots and np.array_equal(k, self._khist[0]):
            return self._z[self._slots[0], :, : self.m].copy()
        kern = self._kernels
        kern.assemble(self._data, self._csr_slot, self._sign, self._edge, k)
        if self._factor_k is None:
            self._factor(k)
        else:
            ratio = k / self._factor_k
            if ratio.max() > self.spread * ratio.min():
                self._factor(k)
        free = [s for s in range(self.HISTORY + 1) if s not in self._slots][0]
        count = len(self._slots)
        coef = (self.EXTRAPOLATION[kern.start_weights(k, self._khist, count)] if count
                else np.zeros(0))
        start = np.array(self._slots[: len(coef)], dtype=np.int64)
        it = self._run(free, start, coef)
        if it < 0:  # too far from the factor (or a poor start): renew it, solve again
            self._factor(k)
            it = self._run(free, start, coef)
            if it < 0:  # rounding keeps the residual above rtol (extreme conductance
                # ratios): the iterate of an exact factor is as good as a direct solve
                if not np.all(np.isfinite(self._z[free])):
                    raise _singular(self.network)
                it = self.max_iter
        self.iterations.append(it)
        self._khist[1:] = self._khist[:-1]
        self._khist[0] = k
        self._slots = [free, *self._slots][: self.HISTORY]
        return self._z[free, :, : self.m].copy()

    def _run(self, out: int, start: np.ndarray, coef: np.ndarray) -> int:
        return self._kernels.pcg(self._csr_indptr, self._csr_indices, self._data, *self._lfac,
                                 self._b, self._tol2, self._z, out, start, coef, self.max_iter,
                                 *self._work)


def _slots(rows: np.ndarray, cols: np.ndarray, n: int, key: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compressed pattern (pointers by ``rows``, indices ``cols``, duplicates summed) and
    where each entry ``key = row * n + col`` lands in its data."""
    from learnboard.engine.pcg_kernels import INDEX

    pat = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    pat.sum_duplicates()
    pat.sort_indices()
    csr_key = np.repeat(np.arange(n), np.diff(pat.indptr)) * n + pat.indices
    return (pat.indptr.astype(INDEX), pat.indices.astype(INDEX),
            np.searchsorted(csr_key, key).astype(np.int64))


def pick_method(network: Network) -> str:
    """Fastest backend by size (see benchmarks/bench_engine.py)."""
    return "ldl" if network.n_nodes <= PCG_ABOVE else "pcg"


def make_solver(network: Network, method: str = "auto"):
    """A response solver for ``network``: call ``set_rhs`` then ``responses(k)``."""
    if method not in METHODS:
        raise InputError(f"unknown solver method {method!r}; use one of {', '.join(METHODS)}",
                         field="method")
    method = pick_method(network) if method == "auto" else method
    cls = {"ldl": LDLSolver, "dense": DenseSolver, "band": BandSolver, "pcg": PCGSolver}[method]
    return cls(network)
