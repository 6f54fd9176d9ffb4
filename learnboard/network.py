"""Network topology: nodes, edges and the reference network file format.

The file format is the one of the authors' published code (the ``NetworkStates/`` folder
of NachiStern/Power-efficient-learning, see :mod:`learnboard.reference`): a first line
``NN NE L``, then ``NN`` lines of ``x y`` node positions, then ``NE`` lines ``i j``
(0-based node indices). An edge's drop is ``V_i - V_j``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from learnboard.errors import InputError


@dataclass(frozen=True)
class Network:
    """A graph of ``n_nodes`` nodes and directed edges ``edges[e] = (i, j)`` (drop ``V_i - V_j``).

    Args:
        n_nodes: number of nodes.
        edges: integer array of shape (E, 2).
        ground: index of the node held at 0 V.
        positions: optional (N, 2) node coordinates, for drawing.
        size: optional box size from the file header (informational).
    """

    n_nodes: int
    edges: np.ndarray
    ground: int
    positions: np.ndarray | None = None
    size: float | None = None
    name: str = field(default="network", compare=False)

    def __post_init__(self) -> None:
        edges = np.asarray(self.edges, dtype=np.int64).reshape(-1, 2)
        object.__setattr__(self, "edges", edges)
        if edges.size and (edges.min() < 0 or edges.max() >= self.n_nodes):
            bad = int(np.flatnonzero((edges < 0) | (edges >= self.n_nodes))[0] // 2)
            raise InputError(
                f"edge {bad} {tuple(edges[bad])} names a node outside 0..{self.n_nodes - 1}",
                source=self.name,
            )
        if np.any(edges[:, 0] == edges[:, 1]):
            bad = int(np.flatnonzero(edges[:, 0] == edges[:, 1])[0])
            raise InputError(f"edge {bad} connects node {edges[bad, 0]} to itself", source=self.name)
        if not 0 <= self.ground < self.n_nodes:
            raise InputError(
                f"ground node {self.ground} is outside 0..{self.n_nodes - 1}", source=self.name
            )

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def incidence(self) -> sp.csr_matrix:
        """Signed incidence matrix B (E x N): ``(B @ V)[e] = V_i - V_j``."""
        e = np.arange(self.n_edges)
        rows = np.concatenate([e, e])
        cols = np.concatenate([self.edges[:, 0], self.edges[:, 1]])
        vals = np.concatenate([np.ones(self.n_edges), -np.ones(self.n_edges)])
        return sp.csr_matrix((vals, (rows, cols)), shape=(self.n_edges, self.n_nodes))

    def is_connected(self) -> bool:
        adj = sp.coo_matrix(
            (np.ones(self.n_edges), (self.edges[:, 0], self.edges[:, 1])),
            shape=(self.n_nodes, self.n_nodes),
        )
        n_comp, _ = sp.csgraph.connected_components(adj, directed=False)
        return n_comp == 1


def read_network(path: str | Path, ground: int | None = None) -> Network:
    """Read a network file in the authors' format; ground defaults to the last node."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except OSError as exc:
        raise InputError(f"cannot read network file: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text (UTF-8) file: byte {exc.start} is {exc.object[exc.start]:#04x}",
                         source=str(path)) from None
    rows = [ln.split() for ln in lines if ln.strip()]
    if not rows or len(rows[0]) < 2:
        raise InputError("first line must be 'NN NE [L]' (node and edge counts)", source=str(path))
    try:
        n_nodes, n_edges = int(rows[0][0]), int(rows[0][1])
        size = float(rows[0][2]) if len(rows[0]) > 2 else None
    except ValueError:
        raise InputError(
            f"first line {' '.join(rows[0])!r} must be 'NN NE [L]' with integer counts",
            source=str(path),
        ) from None
    if len(rows) != 1 + n_nodes + n_edges:
        raise InputError(
            f"header promises {n_nodes} node lines and {n_edges} edge lines "
            f"but the file has {len(rows) - 1} data lines",
            source=str(path),
        )
    try:
        positions = np.array([[float(v) for v in r[:2]] for r in rows[1 : 1 + n_nodes]])
    except (ValueError, IndexError):
        raise InputError("node lines must hold two numbers 'x y'", source=str(path)) from None
    try:
        edges = np.array([[int(v) for v in r[:2]] for r in rows[1 + n_nodes :]], dtype=np.int64)
    except (ValueError, IndexError, OverflowError):
        raise InputError("edge lines must hold two node indices 'i j'", source=str(path)) from None
    ground = n_nodes - 1 if ground is None else ground
    return Network(n_nodes, edges.reshape(-1, 2), ground, positions, size, name=str(path))


def write_network(network: Network, path: str | Path) -> None:
    """Write a network in the reference file format (positions required)."""
    pos = network.positions if network.positions is not None else np.zeros((network.n_nodes, 2))
    size = network.size if network.size is not None else 0.0
    out = [f"{network.n_nodes} {network.n_edges} {size:g}"]
    out += [f"{x:g} {y:g}" for x, y in pos]
    out += [f"{i} {j}" for i, j in network.edges]
    Path(path).write_text("\n".join(out) + "\n")
