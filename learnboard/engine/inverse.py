"""Can a linear network represent a task at all? The inverse problem, solved directly.

A local learning rule that plateaus at C/C0 = 0.01 says nothing yet about the task: either
no conductances in ``[k_min, k_max]`` do better (the network cannot represent it), or they
exist and the rule stalls (typically with edges clipped at ``k_min``). This module looks
for them with a global-ish search on the exact loss: multi-start L-BFGS-B
(:func:`scipy.optimize.minimize`) on

``C(k) = mean over examples of Σ_outputs (V_O^F(k) - L)^2``,

the same error :meth:`LinearEngine.evaluate` reports, with its analytic gradient.

**Gradient (adjoint).** The free state ``V`` solves ``L(k) V = A_S^T μ`` with the source
drops ``A_S V = x`` held. Let ``W`` be the *adjoint* state: the response to currents
``r = V_O - L`` injected at the output terminals while the source drops are held at zero
(``L W = A_T^T r - A_S^T ν``, ``A_S W = 0``). Differentiating the free state,
``r^T dV_O = W^T L dV = -W^T dL V`` and ``dL = b_e b_e^T dk_e``, so

``∂C/∂k_e = -2 · mean over examples of (ΔW_e · ΔV_e)``

(adjoint drop times free drop on edge e). In terms of the engine's responses
``BZ = B L^{-1} A^T`` and ``G = A L^{-1} A^T``: free drops ``D_S x`` with
``D_S = BZ_S G_SS^{-1}``, adjoint drops ``D_T r`` with ``D_T = BZ_T - D_S G_ST``.

**Search.** The loss is invariant under ``k → c k`` and spans many decades, so the search
runs in ``u = log k`` within ``[log k_min, log k_max]`` and minimises
``log10(C/C0 + 1e-30)``, which keeps L-BFGS-B's stopping test meaningful down to
rounding. The upper bound defaults to the engine's ``k_max`` (1e6 with k_min 1e-4: a
ratio of 1e10 between the largest and smallest conductance; an unbounded search steps into
conductance ratios where the Laplacian is singular in double precision, and since only
ratios matter, a larger bound adds no representable outputs worth a physical board).

**Starts**, in this order: the trained state (when given), uniform conductances
(``k = 1``), then ``random`` log-uniform draws ``k = 10^U(-2, 2)`` from
``numpy.random.default_rng(seed)`` (every start clipped into the bounds); optionally more
random starts while the best is above a threshold. **Budget**: ``maxiter`` L-BFGS-B
iterations per start. A start whose solve fails (a singular network) is recorded with
its error message and C/C0 = inf, and the search goes on.

The outcome is **evidence, not proof**: a non-convex search that finds no good
conductances has not shown that none exist. :func:`verdict` words it so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from learnboard.engine.linear import LinearEngine
from learnboard.errors import InputError

FLOOR = 1e-30  # added to C/C0 inside the log objective (C/C0 can reach exact zero)
CLIP_RTOL = 1e-6  # an edge within this relative distance of k_min counts as clipped


@dataclass
class Start:
    """One L-BFGS-B start: where it began, where it ended."""

    name: str
    relative_error: float  # C/C0 at the end
    initial_relative_error: float  # C/C0 at the start
    frac_at_min: float  # fraction of edges at k_min at the end
    iterations: int
    evaluations: int
    message: str


@dataclass
class InverseResult:
    """The best conductances found for a task and how each start fared.

    ``relative_error`` is C/C0 with C0 the error at uniform conductances (the C0 of every
    run started from ``init uniform``, whatever ``k0``).
    """

    conductances: np.ndarray
    relative_error: float
    best_start: str
    frac_at_min: float
    c0: float
    starts: list[Start] = field(default_factory=list)

    def summary(self) -> dict:
        """JSON-able summary (no conductances)."""
        return {"relative_error": self.relative_error, "best_start": self.best_start,
                "frac_at_min": self.frac_at_min, "c0": self.c0, "n_starts": len(self.starts),
                "starts": [s.__dict__ for s in self.starts]}


def loss_and_gradient(engine: LinearEngine, k: np.ndarray) -> tuple[float, np.ndarray]:
    """Exact free-state error C(k) (as :meth:`LinearEngine.evaluate`) and ∂C/∂k (adjoint)."""
    k = np.asarray(k, dtype=float)
    # the engine's own responses (one factorisation, m solves); _r is G's Cholesky factor
    bz, _ = engine._responses(k)
    r = engine._r
    g = r @ r.T
    ns = engine.ns
    x = engine.data.inputs  # (N, ns)
    ds = np.linalg.solve(g[:ns, :ns], bz[:, :ns].T).T  # BZ_S G_SS^{-1}, symmetric G_SS
    dt = bz[:, ns:] - ds @ g[:ns, ns:]
    out = x @ np.linalg.solve(g[:ns, :ns], g[:ns, ns:])  # V_O^F = G_TS G_SS^{-1} x
    res = out - engine.data.targets  # (N, nt)
    loss = float(np.mean(np.sum(res**2, axis=1)))
    cross = res.T @ x / len(x)  # mean r x^T, (nt, ns)
    grad = -2.0 * np.sum((dt @ cross) * ds, axis=1)
    return loss, grad


def solve_inverse(engine: LinearEngine, *, trained: np.ndarray | None = None,
                  random_starts: int = 3, seed: int = 0, maxiter: int = 3000,
                  k_max: float | None = None, threshold: float | None = None,
                  more_starts: int = 0) -> InverseResult:
    """Best conductances in ``[k_min, k_max]`` for the engine's task.

    Args:
        engine: network, terminals and data (``engine.config.k_min`` is the lower bound).
        trained: the local rule's end state, used as the first start when given.
        random_starts: log-uniform random starts ``k = 10^U(-2, 2)`` after the uniform one.
        seed: seed of the random starts.
        maxiter: L-BFGS-B iterations per start (the budget).
        k_max: upper bound; None: the engine's ``config.k_max``.
        threshold / more_starts: while the best C/C0 is still ≥ ``threshold``, up to
            ``more_starts`` further random starts (same stream), stopping at the first
            that gets below: a "not representable" verdict then rests on more starts.
    """
    ne = engine.network.n_edges
    k_min = engine.config.k_min
    c0, _ = loss_and_gradient(engine, np.ones(ne))
    scale = c0 if c0 > 0 else 1.0
    lo = math.log(k_min)
    k_max = engine.config.k_max if k_max is None else k_max
    hi = math.log(k_max)
    starts: list[tuple[str, np.ndarray]] = []
    if trained is not None:
        starts.append(("trained", np.clip(np.asarray(trained, float), k_min, k_max)))
    starts.append(("uniform", np.clip(np.ones(ne), k_min, k_max)))
    rng = np.random.default_rng(seed)

    def draw(i: int) -> tuple[str, np.ndarray]:
        return f"random {i}", np.clip(10.0 ** rng.uniform(-2, 2, ne), k_min, k_max)

    starts += [draw(i) for i in range(random_starts)]

    def objective(u: np.ndarray) -> tuple[float, np.ndarray]:
        k = np.exp(u)
        c, dc = loss_and_gradient(engine, k)
        rel = c / scale
        # d log10(rel + FLOOR) / du = (dC/dk · k) / (scale (rel + FLOOR) ln 10)
        return (math.log10(rel + FLOOR),
                dc * k / (scale * (rel + FLOOR) * math.log(10)))

    best: tuple[float, str, np.ndarray] | None = None
    done: list[Start] = []
    extra = 0
    while starts:
        name, k_start = starts.pop(0)
        try:
            init_rel = loss_and_gradient(engine, k_start)[0] / scale
            opt = minimize(objective, np.log(k_start), jac=True, method="L-BFGS-B",
                           bounds=[(lo, hi)] * ne,
                           options={"maxiter": maxiter, "ftol": 1e-12, "gtol": 1e-12,
                                    "maxcor": 20})
            k = np.clip(np.exp(opt.x), k_min, k_max)
            rel = loss_and_gradient(engine, k)[0] / scale
        except (InputError, np.linalg.LinAlgError) as exc:
            done.append(Start(name, math.inf, math.nan, math.nan, 0, 0, f"failed: {exc}"))
        else:
            done.append(Start(name, rel, init_rel, clipped_fraction(k, k_min), int(opt.nit),
                              int(opt.nfev), str(opt.message)))
            if best is None or rel < best[0]:
                best = (rel, name, k)
        if (not starts and threshold is not None and extra < more_starts
                and (best is None or best[0] >= threshold)):
            starts.append(draw(random_starts + extra))
            extra += 1
    if best is None:
        raise InputError(f"every start of the inverse problem failed ({done[-1].message}); "
                         "check that the network is connected", source=engine.network.name)
    return InverseResult(best[2], best[0], best[1], clipped_fraction(best[2], k_min), c0, done)


def clipped_fraction(k: np.ndarray, k_min: float) -> float:
    """Fraction of edges at ``k_min`` (within a relative ``CLIP_RTOL``)."""
    return float(np.mean(np.asarray(k) <= k_min * (1 + CLIP_RTOL)))


@dataclass(frozen=True)
class Verdict:
    """Representable or not, with the numbers behind it, worded as evidence."""

    representable: bool
    text: str


def verdict(result: InverseResult, threshold: float, plateau: float | None = None,
            plateau_clipped: float | None = None) -> Verdict:
    """Judge a task from the inverse search and (optionally) the local rule's plateau.

    ``threshold`` is the C/C0 a task must reach to count as represented (the screening's
    ``screen_below``); ``plateau``/``plateau_clipped`` the rule's final C/C0 and fraction
    of edges at k_min.
    """
    n = len(result.starts)
    x = result.relative_error
    if x >= threshold:
        # how many starts end at (within 10 % of) the best: 1 of n says the landscape is
        # rugged and more starts might still find lower minima
        hits = sum(1 for s in result.starts if s.relative_error <= 1.1 * x)
        text = (f"not representable (evidence: best of {n} starts reaches C/C0 {x:.2g} ≥ "
                f"{threshold:g}; {hits} of {n} starts end there")
        if plateau is not None and plateau > 1.1 * x:
            text += f"; the rule's plateau {plateau:.2g} is above that best"
        return Verdict(False, text + ")")
    text = f"representable (evidence: the {result.best_start} start of {n} reaches C/C0 {x:.2g}"
    if plateau is not None:
        if plateau > max(x, FLOOR):
            text = (f"representable, the local rule stalls (the inverse problem reaches C/C0 "
                    f"{x:.2g} ({result.best_start} start of {n}), {plateau / max(x, FLOOR):.2g}x "
                    f"below the rule's plateau {plateau:.2g}")
        else:
            text = (f"representable (evidence: the rule itself reaches C/C0 {plateau:.2g}; the "
                    f"inverse problem {x:.2g}, {result.best_start} start of {n}")
        if plateau_clipped is not None:
            text += f"; {100 * plateau_clipped:.0f} % of edges clipped at k_min"
    return Verdict(True, text + ")")


def check(engine: LinearEngine, trained: np.ndarray | None, threshold: float, *,
          plateau: float | None = None, plateau_clipped: float | None = None,
          random_starts: int = 8, more_starts: int = 24, seed: int = 0,
          maxiter: int = 3000) -> dict:
    """:func:`solve_inverse` (with up to ``more_starts`` extra starts while above
    ``threshold``) plus :func:`verdict`, as a JSON-able summary (``inverse`` in
    ``learnboard sim --json``)."""
    res = solve_inverse(engine, trained=trained, random_starts=random_starts, seed=seed,
                        maxiter=maxiter, threshold=threshold, more_starts=more_starts)
    v = verdict(res, threshold, plateau, plateau_clipped)
    return {**res.summary(), "threshold": threshold, "representable": v.representable,
            "verdict": v.text}
