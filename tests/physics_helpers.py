"""Shared builders for the physics tests: random networks and the gen2-clln lattice."""

from __future__ import annotations

import numpy as np

from learnboard.network import Network


def periodic_lattice(side: int = 4) -> Network:
    """Periodic square lattice (torus): side² nodes, 2·side² edges; ground = last node.

    The gen2-clln board's shape (docs/boards/gen2-clln.md): 4×4 → 16 nodes, 32 edges.
    """
    edges = []
    for y in range(side):
        for x in range(side):
            n = y * side + x
            edges.append((n, y * side + (x + 1) % side))
            edges.append((n, ((y + 1) % side) * side + x))
    return Network(side * side, np.array(edges), ground=side * side - 1, name=f"lattice{side}")


def random_connected_network(rng: np.random.Generator, n_nodes: int, extra: int) -> Network:
    """A random spanning tree plus ``extra`` random chords (no self-loops)."""
    order = rng.permutation(n_nodes)
    edges = [(int(order[k]), int(order[rng.integers(0, k)])) for k in range(1, n_nodes)]
    while len(edges) < n_nodes - 1 + extra:
        i, j = rng.choice(n_nodes, size=2, replace=False)
        edges.append((int(i), int(j)))
    return Network(n_nodes, np.array(edges), ground=n_nodes - 1, name="random")
