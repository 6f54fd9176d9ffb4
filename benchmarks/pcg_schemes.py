"""Warm starts and tolerances for the pcg backend, replayed on one learning trajectory.

Run: ``python benchmarks/pcg_schemes.py [--side 100] [--steps 200]``. Records the
conductances of a full-batch training on a periodic lattice (notebook task, lambda
1e-6), solves every step exactly (SuperLU), then replays the steps with plain numpy CG
preconditioned by the factor of the first step, for each start (the last solution
extrapolated polynomially, order 0 to 4) and residual tolerance. Prints preconditioner
applications per step and the largest error against the exact solutions, relative to
their largest entry. The backend uses order 2 (chosen per step among 0-2) and 1e-11.
"""

from __future__ import annotations

import argparse
from math import comb

import numpy as np
import scipy.sparse.linalg as spl

from learnboard.engine.config import LearningConfig
from learnboard.engine.linear import LinearEngine, Terminals
from learnboard.generate import lattice
from learnboard.tasks import notebook_task


def replay(laps, exact, b, precond, order: int, rtol: float) -> tuple[float, float]:
    """Applications per step and the largest relative error over the trajectory."""
    tol2 = rtol**2 * (b * b).sum(0)
    hist, apps, worst = [exact[0]], 0, 0.0
    for lap, want in zip(laps[1:], exact[1:], strict=True):
        o = min(order, len(hist) - 1)
        z = sum((-1) ** i * comb(o + 1, i + 1) * h for i, h in enumerate(hist[::-1][: o + 1]))
        r = b - lap @ z
        p, rho_old, it = np.zeros_like(z), np.ones(z.shape[1]), 0
        while np.any((r * r).sum(0) > tol2) and it < 50:
            y = precond.solve(r)
            apps += 1
            rho = (r * y).sum(0)
            p = y + p * (rho / rho_old)  # p = 0 on the first iteration
            rho_old = rho
            q = lap @ p
            a = rho / (p * q).sum(0)
            z, r = z + p * a, r - q * a
            it += 1
        worst = max(worst, float(np.abs(z - want).max() / np.abs(want).max()))
        hist = (hist + [z])[-(order + 1):]
    return apps / (len(laps) - 1), worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=100, help="periodic lattice side")
    ap.add_argument("--steps", type=int, default=200)
    args = ap.parse_args()
    net = lattice(args.side, args.side, periodic=True)
    src, tgt, data = notebook_task(net.n_edges)
    eng = LinearEngine(net, Terminals(tuple(src), tuple(tgt)), data, LearningConfig(lam=1e-6),
                       method="pcg")
    ks = [np.ones(net.n_edges)]
    for _ in range(args.steps):
        ks.append(eng.train(ks[-1], 1, record_every=1).conductances)
    b = eng.solver.at
    laps = [eng.solver.laplacian(k).tocsc() for k in ks]
    exact = [spl.splu(lap).solve(b) for lap in laps]
    precond = spl.splu(laps[0], permc_spec="MMD_AT_PLUS_A", options={"SymmetricMode": True})
    for order in range(5):
        for rtol in (1e-11, 3e-11, 1e-10, 1e-9):
            apps, err = replay(laps, exact, b, precond, order, rtol)
            print(f"extrapolation order {order}, rtol {rtol:.0e}: {apps:.2f} preconditioner "
                  f"applications/step, largest relative error {err:.1e}", flush=True)


if __name__ == "__main__":
    main()
