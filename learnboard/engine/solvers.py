"""Constraint responses of a linear network: ``Z = L^{-1} A^T`` for the reduced Laplacian L.

One factorisation of ``L`` per learning step serves every example, the free and the
clamped state alike (that reuse is exact). Three backends, chosen by size:

- ``band``: reverse Cuthill–McKee ordering, then LAPACK banded Cholesky (``dpbtrf``);
  fastest for the small and medium disordered networks (bandwidth ~ sqrt(N)).
- ``ldl``: sparse LDL^T (QDLDL, AMD ordering) refactorised in place every step; the
  default for small and medium networks, where LAPACK's per-column loops and Python call
  overhead dominate (a 63-node refactorisation costs ~4 µs, one solve ~1.5 µs).
- ``dense``: LAPACK dense Cholesky; kept for reference and for tiny graphs.
- ``pcg``: preconditioned conjugate gradients, warm-started from the previous step's
  solution, with the last exact factorisation (SuperLU, minimum-degree ordering) as
  preconditioner; it refactorises only when CG needs too many iterations. For large
  lattices, where a numeric refactorisation per step costs more than a few CG sweeps.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg.lapack import dpbtrf, dpbtrs, dpotrf, dpotrs

from learnboard.errors import InputError
from learnboard.network import Network

METHODS = ("auto", "ldl", "dense", "band", "pcg")


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
    """Warm-started block CG, preconditioned by the last exact factorisation.

    Args:
        rtol: relative residual at which every column has converged.
        max_iter: above this many iterations in a step the factor is renewed.
    """

    method = "pcg"

    def __init__(self, network: Network, rtol: float = 1e-11, max_iter: int = 6):
        self.network = network
        self.asm = _Assembly(network)
        n = self.asm.n
        self._map = sp.csr_matrix(
            (self.asm.sign, (np.arange(len(self.asm.rows)), self.asm.edge)),
            shape=(len(self.asm.rows), network.n_edges),
        )
        self._rows, self._cols = self.asm.rows, self.asm.cols
        pat = sp.csr_matrix((np.arange(1, len(self._rows) + 1, dtype=float), (self._rows, self._cols)),
                            shape=(n, n))
        pat.sum_duplicates()
        pat.sort_indices()
        self._pattern = pat
        key = self._rows * n + self._cols
        csr_key = np.repeat(np.arange(n), np.diff(pat.indptr)) * n + pat.indices
        # where each contribution lands in the summed CSR data
        self._slot = np.searchsorted(csr_key, key)
        self._nnz = pat.nnz
        self.rtol, self.max_iter = rtol, max_iter
        self.index = self.asm.reduced
        self._lu = None
        self._z = None
        self.iterations: list[int] = []
        self.refactors = 0

    def set_rhs(self, at: np.ndarray) -> None:
        self.at = np.asarray(at, dtype=float)
        self._z = None

    def _matrix(self, k: np.ndarray) -> sp.csr_matrix:
        data = np.bincount(self._slot, weights=self._map @ k, minlength=self._nnz)
        return sp.csr_matrix((data, self._pattern.indices, self._pattern.indptr),
                             shape=self._pattern.shape)

    def _factor(self, lap: sp.csr_matrix) -> None:
        import scipy.sparse.linalg as spl

        try:
            self._lu = spl.splu(lap.tocsc(), permc_spec="MMD_AT_PLUS_A",
                                options={"SymmetricMode": True})
        except RuntimeError:
            raise _singular(self.network) from None
        self.refactors += 1

    def responses(self, k: np.ndarray) -> np.ndarray:
        lap = self._matrix(k)
        if self._lu is None or self._z is None:
            self._factor(lap)
            self._z = self._lu.solve(self.at)
            self.iterations.append(0)
            return self._z
        z, it = self._cg(lap, self._z)
        if it > self.max_iter:
            self._factor(lap)
            z = self._lu.solve(self.at)
            if not np.all(np.isfinite(z)):
                raise _singular(self.network)
        self.iterations.append(it)
        self._z = z
        return z

    def _cg(self, lap: sp.csr_matrix, z: np.ndarray) -> tuple[np.ndarray, int]:
        b = self.at
        r = b - lap @ z
        bnorm = np.sqrt((b * b).sum(0))
        tol2 = (self.rtol * bnorm) ** 2
        y = self._lu.solve(r)
        p = y.copy()
        ry = (r * y).sum(0)
        it = 0
        while True:
            if np.all((r * r).sum(0) <= tol2) or it >= 4 * self.max_iter:
                return z, it
            it += 1
            q = lap @ p
            a = ry / (p * q).sum(0)
            z = z + p * a
            r = r - q * a
            y = self._lu.solve(r)
            ry_new = (r * y).sum(0)
            p = y + p * (ry_new / ry)
            ry = ry_new


def pick_method(network: Network) -> str:
    """Fastest backend by size (see benchmarks/bench_engine.py)."""
    return "ldl" if network.n_nodes <= 3000 else "pcg"


def make_solver(network: Network, method: str = "auto"):
    """A response solver for ``network``: call ``set_rhs`` then ``responses(k)``."""
    if method not in METHODS:
        raise InputError(f"unknown solver method {method!r}; use one of {', '.join(METHODS)}",
                         field="method")
    method = pick_method(network) if method == "auto" else method
    cls = {"ldl": LDLSolver, "dense": DenseSolver, "band": BandSolver, "pcg": PCGSolver}[method]
    return cls(network)
