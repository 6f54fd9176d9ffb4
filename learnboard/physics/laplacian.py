"""The reduced weighted Laplacian of a linear network, factorised once per topology.

``L = B_r^T diag(k) B_r`` where ``B_r`` is the incidence matrix without the ground
column. The sparsity pattern and the map from edge conductances to the matrix entries
are built once; :meth:`LaplacianFactor.update` only recomputes the numbers and redoes
the numeric factorisation (the symbolic analysis and ordering are kept).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from learnboard.errors import InputError
from learnboard.network import Network

# Below this many free nodes a dense Cholesky beats sparse LDL (see benchmarks/).
DENSE_LIMIT = 400


class LaplacianFactor:
    """Factorised reduced Laplacian of ``network`` for conductances ``k``.

    Args:
        network: the topology; its ground node is eliminated.
        conductances: one positive value per edge (siemens, or arbitrary units).
        method: ``"dense"``, ``"sparse"`` or ``"auto"`` (by size).
    """

    def __init__(self, network: Network, conductances: np.ndarray, method: str = "auto"):
        self.network = network
        n = network.n_nodes
        keep = np.ones(n, dtype=bool)
        keep[network.ground] = False
        self.free_nodes = np.flatnonzero(keep)
        # position of each full node in the reduced vector (-1 for ground)
        self.reduced_index = np.full(n, -1, dtype=np.int64)
        self.reduced_index[self.free_nodes] = np.arange(n - 1)
        self.incidence = network.incidence()
        self.incidence_reduced = self.incidence[:, self.free_nodes].tocsc()
        self.method = ("dense" if n - 1 <= DENSE_LIMIT else "sparse") if method == "auto" else method
        self._build_pattern()
        self._solver = None
        self._dense = None
        self.update(conductances)

    def _build_pattern(self) -> None:
        """Map edge conductances linearly onto the CSC data of L (data = M @ k)."""
        Br = self.incidence_reduced.tocoo()
        n_red = self.network.n_nodes - 1
        # entries (r, c) += Br[e, r] * Br[e, c] * k_e for every pair of nonzeros of row e
        by_edge: dict[int, list[tuple[int, float]]] = {}
        for e, c, v in zip(Br.row, Br.col, Br.data, strict=True):
            by_edge.setdefault(int(e), []).append((int(c), float(v)))
        rows, cols, edge_of, coef = [], [], [], []
        for e, entries in by_edge.items():
            for r, vr in entries:
                for c, vc in entries:
                    rows.append(r)
                    cols.append(c)
                    edge_of.append(e)
                    coef.append(vr * vc)
        pattern = sp.csc_matrix(
            (np.ones(len(rows)), (rows, cols)), shape=(n_red, n_red)
        )  # duplicates summed: only the pattern is used
        pattern.sort_indices()
        # position of each (r, c) contribution inside pattern.data
        lookup = {}
        for c in range(n_red):
            for p in range(pattern.indptr[c], pattern.indptr[c + 1]):
                lookup[(int(pattern.indices[p]), c)] = p
        pos = np.array([lookup[(r, c)] for r, c in zip(rows, cols, strict=True)], dtype=np.int64)
        self._data_map = sp.csr_matrix(
            (np.array(coef), (pos, np.array(edge_of, dtype=np.int64))),
            shape=(pattern.nnz, self.network.n_edges),
        )
        self._pattern = pattern

    def matrix(self) -> sp.csc_matrix:
        """The current reduced Laplacian as a sparse matrix."""
        return self._matrix

    def update(self, conductances: np.ndarray) -> None:
        """Refactorise for new conductances (same topology)."""
        k = np.asarray(conductances, dtype=float)
        if k.shape != (self.network.n_edges,):
            raise InputError(
                f"expected {self.network.n_edges} conductances, got {k.size}",
                source=self.network.name,
            )
        self.conductances = k
        m = self._pattern.copy()
        m.data = self._data_map @ k
        self._matrix = m
        if self.method == "dense":
            try:
                self._dense = sla.cho_factor(m.toarray(), lower=True, check_finite=False)
            except np.linalg.LinAlgError:
                raise self._singular() from None
        else:
            import qdldl

            try:
                if self._solver is None:
                    self._solver = qdldl.Solver(m)
                else:
                    self._solver.update(m)
            except ValueError:
                raise self._singular() from None

    def _singular(self) -> InputError:
        if not self.network.is_connected():
            return InputError(
                "the network is not connected: some nodes have no path to ground, so their "
                "voltage is undefined; connect them or remove them",
                source=self.network.name,
            )
        return InputError(
            "the conductance matrix is singular: every conductance must be positive",
            source=self.network.name,
        )

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """Solve ``L x = rhs`` for one (n-1,) or several (n-1, m) right-hand sides."""
        if self.method == "dense":
            return sla.cho_solve(self._dense, rhs, check_finite=False)
        if rhs.ndim == 1:
            return self._solver.solve(rhs)
        return np.column_stack([self._solver.solve(np.ascontiguousarray(c)) for c in rhs.T])
