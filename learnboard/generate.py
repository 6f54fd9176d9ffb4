"""Network generators: disordered 2D networks like the reference files, and square lattices.

Disordered networks: ``N`` random points in a square box of side ``sqrt(N)`` (density
1, like the reference files), Delaunay-triangulated (mean coordination ≈ 6), then edges
are removed (most crowded first, ties at random) while both ends keep at least
``min_degree`` neighbours, down to the
requested mean coordination ``z`` (reference files: z ≈ 4.47, degrees 3..6). Removed
edges that the graph needs to stay connected are put back. With ``periodic=True`` the box
wraps around (drawn positions stay inside the box; wrapped edges look long).

Specs for the CLI: ``disordered:N=64,seed=1[,z=4.5][,periodic=1]`` and
``lattice:16x16[,periodic]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from learnboard.errors import InputError
from learnboard.network import Network

REFERENCE_COORDINATION = 4.47


def disordered(n_nodes: int, z: float = REFERENCE_COORDINATION, seed: int = 0, *,
               periodic: bool = False, min_degree: int = 3) -> Network:
    """A connected disordered 2D network of ``n_nodes`` nodes and mean coordination ``z``."""
    from scipy.spatial import Delaunay

    if n_nodes < 4:
        raise InputError(f"a disordered network needs at least 4 nodes, got {n_nodes}", field="N")
    if not 2.0 <= z <= 6.0:
        raise InputError(f"mean coordination z must be in [2, 6], got {z}", field="z")
    rng = np.random.default_rng(seed)
    size = float(np.sqrt(n_nodes))
    pts = rng.uniform(0, size, (n_nodes, 2))
    if periodic:
        shifts = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)], dtype=float) * size
        tiled = (pts[None, :, :] + shifts[:, None, :]).reshape(-1, 2)
        tri = Delaunay(tiled)
        image = tri.simplices // n_nodes  # which copy of the box each vertex is in
        central = np.any(image == 4, axis=1)  # triangles touching the original box
        simp = tri.simplices[central] % n_nodes
    else:
        simp = Delaunay(pts).simplices
    pairs = np.vstack([simp[:, [0, 1]], simp[:, [1, 2]], simp[:, [2, 0]]])
    pairs.sort(axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    edges = np.unique(pairs, axis=0)
    target = int(round(z * n_nodes / 2))
    keep = np.ones(len(edges), dtype=bool)
    deg = np.bincount(edges.ravel(), minlength=n_nodes)
    jitter = rng.random(len(edges))
    # remove from the most crowded places first, so degrees end up narrow (3..6 or so)
    for _ in range(len(edges) - target):
        score = np.where(keep & (deg[edges[:, 0]] > min_degree) & (deg[edges[:, 1]] > min_degree),
                         deg[edges[:, 0]] + deg[edges[:, 1]] + jitter, -1.0)
        e = int(np.argmax(score))
        if score[e] < 0:
            break
        keep[e] = False
        deg[edges[e]] -= 1
    keep = _reconnect(n_nodes, edges, keep)
    kept = edges[keep]
    kept = kept[np.lexsort((kept[:, 1], kept[:, 0]))]
    return Network(n_nodes, kept, n_nodes - 1, pts, size,
                   name=f"disordered:N={n_nodes},z={z:g},seed={seed}" + (",periodic=1" if periodic else ""))


def _reconnect(n: int, edges: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Put back removed edges that join separate components, until connected."""
    keep = keep.copy()
    while True:
        k = edges[keep]
        adj = sp.coo_matrix((np.ones(len(k)), (k[:, 0], k[:, 1])), shape=(n, n))
        n_comp, label = sp.csgraph.connected_components(adj, directed=False)
        if n_comp == 1:
            return keep
        bridge = np.flatnonzero(~keep & (label[edges[:, 0]] != label[edges[:, 1]]))
        if bridge.size == 0:  # triangulation itself disconnected: cannot happen for Delaunay
            raise InputError("could not build a connected network; try another seed")
        # one bridge per pair of components per round keeps the repair minimal
        seen = set()
        for e in bridge:
            pair = tuple(sorted((label[edges[e, 0]], label[edges[e, 1]])))
            if pair not in seen:
                seen.add(pair)
                keep[e] = True


def lattice(nx: int, ny: int, *, periodic: bool = False) -> Network:
    """A square lattice of ``nx * ny`` nodes (row-major), edges to the right and up."""
    if nx < 2 or ny < 2:
        raise InputError(f"a lattice needs at least 2x2 nodes, got {nx}x{ny}", field="lattice")
    if periodic and (nx < 3 or ny < 3):
        raise InputError("a periodic lattice needs at least 3x3 nodes (else edges repeat)",
                         field="lattice")
    idx = np.arange(nx * ny).reshape(ny, nx)
    right = np.c_[idx[:, :-1].ravel(), idx[:, 1:].ravel()]
    up = np.c_[idx[:-1, :].ravel(), idx[1:, :].ravel()]
    parts = [right, up]
    if periodic:
        parts += [np.c_[idx[:, -1], idx[:, 0]], np.c_[idx[-1, :], idx[0, :]]]
    edges = np.vstack(parts)
    yy, xx = np.divmod(np.arange(nx * ny), nx)
    pos = np.c_[xx, yy].astype(float)
    return Network(nx * ny, edges, nx * ny - 1, pos, float(max(nx, ny)),
                   name=f"lattice:{nx}x{ny}" + (",periodic" if periodic else ""))


def from_spec(spec: str) -> Network:
    """Build a network from a CLI spec such as ``disordered:N=64,seed=1`` or ``lattice:16x16``."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    parts = [p.strip() for p in rest.split(",") if p.strip()]
    if kind == "lattice":
        if not parts:
            raise InputError(f"{spec!r}: give the size, e.g. lattice:16x16", field="--generate")
        try:
            nx, ny = (int(v) for v in parts[0].lower().split("x"))
        except ValueError:
            raise InputError(f"{spec!r}: size must look like 16x16", field="--generate") from None
        opts = _options(spec, parts[1:], flags={"periodic"})
        return lattice(nx, ny, periodic=bool(opts.get("periodic", 0)))
    if kind == "disordered":
        opts = _options(spec, parts, flags={"periodic"})
        unknown = set(opts) - {"n", "seed", "z", "periodic"}
        if unknown:
            raise InputError(f"{spec!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                             "use N, seed, z, periodic", field="--generate")
        return disordered(int(opts.get("n", 64)), float(opts.get("z", REFERENCE_COORDINATION)),
                          int(opts.get("seed", 0)), periodic=bool(opts.get("periodic", 0)))
    raise InputError(f"{spec!r}: unknown generator {kind!r}; use disordered:N=64,seed=1 or "
                     "lattice:16x16", field="--generate")


def _options(spec: str, parts: list[str], flags: set[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in parts:
        key, eq, val = p.partition("=")
        key = key.strip().lower()
        if not eq:
            if key in flags:
                out[key] = 1
                continue
            raise InputError(f"{spec!r}: option {p!r} needs a value (key=value)", field="--generate")
        try:
            out[key] = float(val)
        except ValueError:
            raise InputError(f"{spec!r}: {key} must be a number, got {val!r}", field="--generate") from None
    return out
