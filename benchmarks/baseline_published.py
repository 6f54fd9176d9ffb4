"""A faithful re-implementation of the published algorithm, the speed baseline.

As in the authors' code: a dense incidence matrix, the dense Hessian ``B^T diag(k) B``,
the KKT matrix ``[[H, C^T], [C, 0]]`` with one constraint row for the ground node and one
per imposed edge drop, inverted every step (once for the free state, once for the
clamped state, each inverse applied to all examples). Update
``dk = -(alpha/eta) <(dV^C)^2 - (1 - lam)(dV^F)^2>``, clipped to [k_min, k_max].
"""

from __future__ import annotations

import numpy as np


class PublishedBaseline:
    """Edge-drop sources and targets, voltage data (examples x terminals)."""

    def __init__(self, network, sources, targets, inputs, targets_values, *, alpha=0.5,
                 eta=1e-3, lam=0.0, k_min=1e-4, k_max=1e6):
        n, e = network.n_nodes, network.n_edges
        self.n = n
        b = np.zeros((e, n))
        b[np.arange(e), network.edges[:, 0]] = 1.0
        b[np.arange(e), network.edges[:, 1]] = -1.0
        self.b = b
        ground = np.zeros((1, n))
        ground[0, network.ground] = 1.0
        self.c_free = np.vstack([ground, b[list(sources)]])
        self.c_clamped = np.vstack([self.c_free, b[list(targets)]])
        self.targets = list(targets)
        self.x = np.asarray(inputs, dtype=float).T  # terminals x examples
        self.y = np.asarray(targets_values, dtype=float).T
        self.alpha, self.eta, self.lam, self.k_min, self.k_max = alpha, eta, lam, k_min, k_max

    def _kkt_inverse(self, hessian, c):
        m = len(c)
        kkt = np.concatenate((np.concatenate((hessian, c)),
                              np.concatenate((c.T, np.zeros((m, m))))), axis=1)
        return np.linalg.inv(kkt)

    def free_state(self, k):
        h = self.b.T @ (self.b * k[:, None])
        inv = self._kkt_inverse(h, self.c_free)
        rhs = np.zeros((self.n + len(self.c_free), self.x.shape[1]))
        rhs[self.n + 1:] = self.x
        return h, (inv @ rhs)[: self.n]

    def metrics(self, k):
        """(error, power in the ½ convention), means over examples."""
        _, v = self.free_state(k)
        out = self.b[self.targets] @ v
        drops = self.b @ v
        return float(np.mean(np.sum((out - self.y) ** 2, 0))), float(
            0.5 * np.mean(np.sum(k[:, None] * drops**2, 0)))

    def step(self, k):
        h, vf = self.free_state(k)
        inv = self._kkt_inverse(h, self.c_clamped)
        out = self.b[self.targets] @ vf
        rhs = np.zeros((self.n + len(self.c_clamped), self.x.shape[1]))
        ns = self.x.shape[0]
        rhs[self.n + 1: self.n + 1 + ns] = self.x
        rhs[self.n + 1 + ns:] = out + self.eta * (self.y - out)
        vc = (inv @ rhs)[: self.n]
        df, dc = self.b @ vf, self.b @ vc
        dk = -(self.alpha / self.eta) * np.mean(dc**2 - (1 - self.lam) * df**2, axis=1)
        return np.clip(k + dk, self.k_min, self.k_max)

    def train(self, k0, steps):
        """Return (C/C0, power) after ``steps`` steps from ``k0``."""
        k = np.array(k0, dtype=float)
        c0, _ = self.metrics(k)
        for _ in range(steps):
            k = self.step(k)
        c, p = self.metrics(k)
        return c / c0, p
