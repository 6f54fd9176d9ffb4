"""The fast engine for linear resistor networks.

Linearity makes a step cheap. With ``m`` constraint terminals (sources then targets),
one factorisation of the reduced Laplacian gives ``Z = L^{-1} A^T`` (m solves) and the
drop responses ``BZ = B Z`` (E x m). Every state of the step follows from ``BZ`` and the
m x m Schur matrix ``G = A Z``:

- free drops ``dV^F = BZ_S G_SS^{-1} x``;
- the clamped state differs from the free one only by the nudge of the target values,
  ``dV^C - dV^F = eta BZ G^{-1}[:, T] e`` with the error ``e = L - V_O^F`` (no
  cancellation: exact to rounding however small the error gets).

Both are linear in ``u = (x, L)``, so the mean over examples of any product of drops is a
quadratic form in the second moment ``<u u^T>``. With ``G = R R^T`` (Cholesky, sources
first) the whole update is one quadratic form per edge,

``dk_e = BZ_e R^{-T} (W ∘ R^{-1} <u u^T> R^{-T}) R^{-1} BZ_e^T``,
``W = -alpha [[lam/eta, 1], [1, eta]]`` (blocks sources/targets),

so a full-batch step costs one factorisation plus O(E m^2), whatever the number of
examples.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.lapack import dpotrf, dtrtri

from learnboard.engine.config import LearningConfig
from learnboard.engine.controller import ToleranceController
from learnboard.engine.solvers import LDLSolver, make_solver
from learnboard.errors import InputError
from learnboard.network import Network
from learnboard.tasks import Dataset


@dataclass(frozen=True)
class Terminals:
    """Where inputs are imposed and outputs read: edges (drop ``V_i - V_j``) or nodes (to ground).

    Input columns of the data follow ``source_edges`` then ``source_nodes``; target
    columns follow ``target_edges`` then ``target_nodes``.
    """

    source_edges: tuple[int, ...] = ()
    target_edges: tuple[int, ...] = ()
    source_nodes: tuple[int, ...] = ()
    target_nodes: tuple[int, ...] = ()

    @property
    def n_sources(self) -> int:
        return len(self.source_edges) + len(self.source_nodes)

    @property
    def n_targets(self) -> int:
        return len(self.target_edges) + len(self.target_nodes)

    def pairs(self, network: Network) -> np.ndarray:
        """(m, 2) node pairs ``(i, j)`` whose drop each terminal fixes; sources first."""
        ne, nn, g = network.n_edges, network.n_nodes, network.ground
        for name, edges in (("--sources", self.source_edges), ("--targets", self.target_edges)):
            for e in edges:
                if not 0 <= e < ne:
                    raise InputError(f"edge {e} does not exist (the network has edges 0..{ne - 1})",
                                     field=name)
        for name, nodes in (("--source-nodes", self.source_nodes),
                            ("--target-nodes", self.target_nodes)):
            for v in nodes:
                if not 0 <= v < nn:
                    raise InputError(f"node {v} does not exist (nodes are 0..{nn - 1})", field=name)
                if v == g:
                    raise InputError(f"node {v} is the ground node; its voltage is always 0",
                                     field=name)
        if self.n_sources == 0 or self.n_targets == 0:
            raise InputError("a task needs at least one source and one target terminal",
                             field="--sources")

        def rows(edges, nodes):
            return [network.edges[e] for e in edges] + [np.array([v, g]) for v in nodes]

        pairs = np.array(rows(self.source_edges, self.source_nodes)
                         + rows(self.target_edges, self.target_nodes), dtype=np.int64)
        return pairs.reshape(-1, 2)


@dataclass
class Evaluation:
    """Metrics of the free state at given conductances (the definitions of
    Stern et al., APL Machine Learning 2, 016114 (2024)).

    ``error``: mean over examples of Σ_outputs (V_O^F - L)^2. ``power``: the paper's
    ½ Σ k (dV^F)^2 (co-content), mean over examples. ``power_watts``: Σ k (dV^F)^2, the
    dissipated power in watts when k is in siemens and V in volts.
    """

    error: float
    power: float
    power_watts: float
    outputs: np.ndarray  # (n_examples, n_targets) free-state output values
    example_errors: np.ndarray  # (n_examples,) Σ_outputs (V_O^F - L)^2
    example_power_watts: np.ndarray  # (n_examples,) Σ k dV^2
    frac_at_min: float
    frac_at_max: float


@dataclass
class TrainResult:
    """Outcome of :meth:`LinearEngine.train`; ``history`` columns are equal-length arrays."""

    conductances: np.ndarray
    initial_conductances: np.ndarray
    initial: Evaluation
    final: Evaluation
    history: dict[str, np.ndarray]
    steps: int
    seconds: float
    info: dict = field(default_factory=dict)

    @property
    def relative_error(self) -> float:
        return self.final.error / self.initial.error if self.initial.error > 0 else 0.0

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else float("inf")


HISTORY_COLUMNS = ("step", "error", "relative_error", "power", "power_watts", "lam",
                   "frac_at_min", "frac_at_max")


class LinearEngine:
    """Power-aware coupled learning on a linear network.

    Args:
        network: topology; its ground node is held at 0 V.
        terminals: source and target terminals.
        data: training examples (columns in terminal order).
        config: learning parameters.
        method: linear solver backend (``auto``, ``ldl``, ``band``, ``dense``, ``pcg``).
        compiled: with ``ldl``, run the steps in the compiled kernel
            (:mod:`learnboard.engine.compiled`); False keeps the numpy loops, the reference
            the tests compare the kernel against.
    """

    def __init__(self, network: Network, terminals: Terminals, data: Dataset,
                 config: LearningConfig | None = None, method: str = "auto",
                 compiled: bool = True):
        self.network = network
        self.terminals = terminals
        self.config = config or LearningConfig()
        pairs = terminals.pairs(network)
        self.ns, self.nt = terminals.n_sources, terminals.n_targets
        if data.n_inputs != self.ns or data.n_targets != self.nt:
            raise InputError(
                f"the data have {data.n_inputs} input and {data.n_targets} target columns but the "
                f"task has {self.ns} source and {self.nt} target terminals", source=data.name)
        self.data = data
        self.m = m = self.ns + self.nt
        self.solver = make_solver(network, method)
        index = self.solver.index
        n = network.n_nodes - 1
        self.n = n
        row = np.where(index < 0, n, index)  # ground -> an all-zero padding row
        at = np.zeros((n + 1, m))
        np.add.at(at, (row[pairs[:, 0]], np.arange(m)), 1.0)
        np.add.at(at, (row[pairs[:, 1]], np.arange(m)), -1.0)
        if np.linalg.matrix_rank(at[:n]) < m:
            raise InputError(
                "the source and target terminals are not independent (one is fixed by the "
                "others, e.g. a repeated edge or a closed loop of terminal edges); choose others",
                source=network.name)
        self.solver.set_rhs(at[:n])
        self._zp = np.zeros((n + 1, m))
        self._ei, self._ej = row[network.edges[:, 0]], row[network.edges[:, 1]]
        self._gi, self._gj = row[pairs[:, 0]], row[pairs[:, 1]]
        self._ones = np.ones(m)
        # large-network solvers bring a compiled gather: numpy's row gather costs a
        # fifth of a pcg step at 100k nodes
        self._edge_drops = getattr(self.solver, "edge_drops", _edge_drops)
        self._fast = _FastLoop(self, row, pairs) if isinstance(self.solver, LDLSolver) else None
        # the compiled step's symbolic analysis is made at the first train (evaluate-only
        # engines never import numba)
        self.compiled = compiled and isinstance(self.solver, LDLSolver)
        self._kernel = None
        self._pairs = pairs
        u = np.hstack([data.inputs, data.targets])
        self._u = u
        self.second_moment = np.ascontiguousarray(u.T @ u / len(u))
        self._example_moments = np.ascontiguousarray(u[:, :, None] * u[:, None, :])

    # -- the linear algebra of one step -------------------------------------------------
    def _responses(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Drop responses BZ (E x m) and the inverse Cholesky factor of G (m x m)."""
        zp = self._zp
        zp[: self.n] = self.solver.responses(k)
        bz = self._edge_drops(zp, self._ei, self._ej)
        g = zp[self._gi] - zp[self._gj]
        r, info = dpotrf(g, lower=1, clean=1)
        if info != 0:
            raise InputError(
                "the source and target terminals are not independent (one is fixed by the "
                "others, e.g. a repeated edge or a closed loop of terminal edges); choose others",
                source=self.network.name)
        rinv, _ = dtrtri(r, lower=1)
        self._r = r
        return bz, rinv

    def _weights(self, lam: float) -> np.ndarray:
        c = self.config
        w = np.empty((self.m, self.m))
        ns = self.ns
        w[:ns, :ns] = lam / c.eta
        w[:ns, ns:] = 1.0
        w[ns:, :ns] = 1.0
        w[ns:, ns:] = c.eta
        return -c.alpha * w

    def _quad(self, bz: np.ndarray, rinv: np.ndarray, moment: np.ndarray,
              weights: np.ndarray) -> np.ndarray:
        """Per edge ``BZ_e R^{-T} (weights ∘ R^{-1} moment R^{-T}) R^{-1} BZ_e^T``."""
        core = rinv @ moment @ rinv.T
        core *= weights
        mat = rinv.T @ core @ rinv
        return ((bz @ mat) * bz) @ self._ones

    def _error(self, rinv: np.ndarray, moment: np.ndarray) -> float:
        """Mean squared output error <|e|^2>, e = L - V_O^F.

        ``R^{-1} u`` has target block ``R_TT^{-1} e`` (block LDL of G), so
        ``<e e^T> = R_TT (R^{-1} <u u^T> R^{-T})_TT R_TT^T``.
        """
        ns = self.ns
        rt = rinv[ns:]
        sp_tt = rt @ moment @ rt.T
        rtt = self._r[ns:, ns:]
        return float(np.sum((rtt @ sp_tt) * rtt))

    def evaluate(self, k: np.ndarray) -> Evaluation:
        """Free-state metrics of every example at conductances ``k``."""
        k = np.asarray(k, dtype=float)
        bz, rinv = self._responses(k)
        ns = self.ns
        rss = rinv[:ns, :ns]
        gss_inv = rss.T @ rss
        drops = bz[:, :ns] @ (gss_inv @ self.data.inputs.T)  # E x n_examples
        tresp = -np.linalg.solve(rinv[ns:, ns:], rinv[ns:, :ns])
        outputs = self.data.inputs @ tresp.T
        ex_err = np.sum((outputs - self.data.targets) ** 2, axis=1)
        ex_pow = k @ drops**2
        c = self.config
        return Evaluation(
            error=float(ex_err.mean()), power=0.5 * float(ex_pow.mean()),
            power_watts=float(ex_pow.mean()), outputs=outputs, example_errors=ex_err,
            example_power_watts=ex_pow,
            frac_at_min=float(np.mean(k <= c.k_min * (1 + 1e-12))),
            frac_at_max=float(np.mean(k >= c.k_max * (1 - 1e-12))))

    def drops(self, k: np.ndarray, inputs: np.ndarray, targets: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
        """Free (and, with targets, clamped) edge drops, E x n_examples, for given data."""
        bz, rinv = self._responses(np.asarray(k, dtype=float))
        ns = self.ns
        x = np.atleast_2d(inputs)
        rss = rinv[:ns, :ns]
        free = bz[:, :ns] @ ((rss.T @ rss) @ x.T)
        if targets is None:
            return free, None
        tresp = -np.linalg.solve(rinv[ns:, ns:], rinv[ns:, :ns])
        e = np.atleast_2d(targets) - x @ tresp.T
        ginv_t = rinv.T @ rinv[:, ns:]
        clamped = free + self.config.eta * (bz @ ginv_t) @ e.T
        return free, clamped

    # -- training -------------------------------------------------------------------
    def train(self, k0: np.ndarray, steps: int, *, record_every: int = 0,
              controller=None, progress: Callable[[int], None] | None = None,
              progress_every: int = 1000) -> TrainResult:
        """Run ``steps`` learning steps from conductances ``k0``.

        Args:
            record_every: history interval in steps (0: about 200 points); step 0 and
                the last step are always recorded.
            controller: optional object with ``lam_for(step, relative_error) -> lam``
                (e.g. :class:`~learnboard.engine.controller.ToleranceController`); it
                sees C/C0 at every step and sets lambda for that step's update.
            progress: called with the step count every ``progress_every`` steps.
        """
        c = self.config
        if steps < 0:
            raise InputError("the number of steps must be >= 0", field="--steps")
        k = np.array(k0, dtype=float)
        if k.shape != (self.network.n_edges,):
            raise InputError(f"expected {self.network.n_edges} conductances, got {k.size}")
        if self.compiled and (controller is None or type(controller) is ToleranceController):
            if self._kernel is None:
                from learnboard.engine.compiled import Kernel

                self._kernel = Kernel(self.network, self._pairs)
            return self._train_compiled(k, steps, record_every, controller, progress,
                                        progress_every)
        initial = self.evaluate(k)
        c0 = initial.error
        every = record_every or max(1, steps // 200)
        rows: list[tuple] = []
        rng = np.random.default_rng(c.seed)
        n_ex = self.data.n_examples
        online = c.batch == "online"
        order = np.arange(n_ex)
        lam = c.lam
        weights = self._weights(lam)
        moment = self.second_moment
        full_moment = self.second_moment
        power_weights = np.zeros((self.m, self.m))
        power_weights[: self.ns, : self.ns] = 1.0
        kmin, kmax, p = c.k_min, c.k_max, c.update_prob
        need_error = controller is not None
        # between history points, full-rate steps without metrics go through the fused loop
        fast = self._fast if (self._fast is not None and controller is None and p == 1.0) else None
        t0, cpu0 = time.perf_counter(), time.process_time()
        s = 0
        while s <= steps:
            if fast is not None and s % every != 0 and s != steps:
                stop = min(steps, (s // every + 1) * every)
                if progress is not None:
                    stop = min(stop, (s // progress_every + 1) * progress_every)
                order = fast.run(k, s, stop, lam, order, rng)
                s = stop
                if progress is not None and s % progress_every == 0:
                    progress(s)
                continue
            bz, rinv = self._responses(k)
            record = s % every == 0 or s == steps
            err = None
            if need_error or record:
                err = self._error(rinv, full_moment)
            if record:
                pw = float(k @ self._quad(bz, rinv, full_moment, power_weights))
                rows.append((s, err, err / c0 if c0 > 0 else 0.0, 0.5 * pw, pw, lam,
                             float(np.mean(k <= kmin * (1 + 1e-12))),
                             float(np.mean(k >= kmax * (1 - 1e-12)))))
            if s == steps:
                break
            if controller is not None:
                new = controller.lam_for(s, err / c0 if c0 > 0 else 0.0)
                if new != lam:
                    lam = new
                    weights = self._weights(lam)
            if online:
                if c.order == "shuffle" and s % n_ex == 0:
                    order = rng.permutation(n_ex)
                moment = self._example_moments[order[s % n_ex]]
            dk = self._quad(bz, rinv, moment, weights)
            if p < 1.0:
                dk *= rng.random(dk.size) < p
            k += dk
            np.maximum(k, kmin, out=k)
            np.minimum(k, kmax, out=k)
            if progress is not None and (s + 1) % progress_every == 0:
                progress(s + 1)
            s += 1
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        hist = {name: np.array([r[i] for r in rows]) for i, name in enumerate(HISTORY_COLUMNS)}
        info = {"solver": self.solver.method, "cpu_seconds": cpu}
        if hasattr(self.solver, "iterations") and self.solver.iterations:
            info["cg_iterations_mean"] = float(np.mean(self.solver.iterations))
            info["refactorisations"] = int(self.solver.refactors)
        return TrainResult(k, np.array(k0, dtype=float), initial, self.evaluate(k), hist, steps,
                           seconds, info)


    _CHUNK = 4096  # steps per kernel call at most (bounds the drawn masks' memory)

    def _train_compiled(self, k: np.ndarray, steps: int, record_every: int, controller,
                        progress, progress_every: int) -> TrainResult:
        """:meth:`train` through the compiled kernel: same steps, same random draws."""
        from learnboard.engine import compiled

        c = self.config
        k0 = k.copy()
        initial = self.evaluate(k)
        c0 = initial.error
        every = record_every or max(1, steps // 200)
        n_rec = steps // every + 1 + (1 if steps % every else 0)
        hist = np.zeros((n_rec, compiled.HIST))
        state = np.array([c.lam, 0.0])
        ctl = np.zeros(8)
        if controller is not None:
            ctl[:] = (1.0, controller.tau, controller.start, controller.every, controller.up,
                      controller.down, -1.0 if controller.s0 is None else controller.s0,
                      controller.lam)
        rng = np.random.default_rng(c.seed)
        order = np.arange(self.data.n_examples)
        step = max(1, progress_every) if progress is not None else self._CHUNK
        # a call without steps loads (or compiles) the kernel for these argument types, so
        # that the timed loop below does not include numba's one-off cost in this process
        examples, mask, _ = self._draws(0, 0, order, rng)
        self._kernel.run(k, 0, 0, steps, every, examples, mask, self.ns, c.alpha, c.eta,
                         c.k_min, c.k_max, state.copy(), ctl.copy(), c0, hist,
                         self.second_moment, self._example_moments)
        t0, cpu0 = time.perf_counter(), time.process_time()
        s = 0
        while s <= steps:
            stop = min(steps + 1, s + min(step, self._CHUNK), (s // step + 1) * step)
            examples, mask, order = self._draws(s, min(stop, steps), order, rng)
            status = self._kernel.run(k, s, stop, steps, every, examples, mask, self.ns,
                                      c.alpha, c.eta, c.k_min, c.k_max, state, ctl, c0, hist,
                                      self.second_moment, self._example_moments)
            if status == compiled.SINGULAR:
                raise _singular_network(self.network)
            if status == compiled.DEPENDENT:
                raise _dependent(self.network)
            s = stop
            if progress is not None and s % step == 0 and s <= steps:
                progress(s)
        seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        if controller is not None:
            controller.s0 = None if ctl[6] < 0 else int(ctl[6])
            controller.lam = float(ctl[7])
        rows = hist[: int(state[1])]
        history = {name: rows[:, i].copy() for i, name in enumerate(HISTORY_COLUMNS)}
        history["step"] = history["step"].astype(np.int64)
        return TrainResult(k, k0, initial, self.evaluate(k), history, steps, seconds,
                           {"solver": self.solver.method, "kernel": "compiled",
                            "cpu_seconds": cpu})

    def _draws(self, start: int, stop: int, order: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The online examples and desynchronous masks of steps ``start .. stop-1``, drawn
        from ``rng`` in the order the numpy loop draws them (permutation, then mask)."""
        c = self.config
        n_ex, ne = self.data.n_examples, self.network.n_edges
        online, p = c.batch == "online", c.update_prob
        shuffle = online and c.order == "shuffle"
        count = max(0, stop - start)
        examples = np.zeros(count if online else 0, dtype=np.int64)
        mask = np.zeros((count if p < 1.0 else 0, ne), dtype=np.bool_)
        if shuffle and p < 1.0:
            for s in range(start, stop):
                if s % n_ex == 0:
                    order = rng.permutation(n_ex)
                examples[s - start] = order[s % n_ex]
                mask[s - start] = rng.random(ne) < p
            return examples, mask, order
        if shuffle:
            s = start
            while s < stop:
                if s % n_ex == 0:
                    order = rng.permutation(n_ex)
                end = min(stop, (s // n_ex + 1) * n_ex)
                examples[s - start: end - start] = order[np.arange(s, end) % n_ex]
                s = end
        elif online:
            examples[:] = order[np.arange(start, stop) % n_ex]
        if p < 1.0:
            mask[:] = rng.random((count, ne)) < p
        return examples, mask, order


def _dependent(network: Network) -> InputError:
    return InputError(
        "the source and target terminals are not independent (one is fixed by the "
        "others, e.g. a repeated edge or a closed loop of terminal edges); choose others",
        source=network.name)


def _singular_network(network: Network) -> InputError:
    from learnboard.engine.solvers import _singular

    return _singular(network)


def _edge_drops(zp: np.ndarray, ei: np.ndarray, ej: np.ndarray) -> np.ndarray:
    """Rows ``zp[ei] - zp[ej]``: the drop responses of every edge."""
    return zp[ei] - zp[ej]


class _FastLoop:
    """The learning step fused into few numpy/LAPACK calls, for the ``ldl`` backend.

    Same algebra as :meth:`LinearEngine._quad`, arranged to minimise Python call
    overhead, which dominates below a few hundred nodes: one sparse refactorisation,
    m solves written into rows of a preallocated array, all drops and the Schur matrix
    ``G`` from one product (dense for small networks) or two row gathers, and the
    moment carried in the same buffer so that one product with ``R^{-1}`` serves the
    drops and the moment. No metrics are computed here.
    """

    _DENSE_LIMIT = 20000  # n * (E + m) entries: above this, gathers beat a dense product

    def __init__(self, engine: LinearEngine, row: np.ndarray, pairs: np.ndarray):
        self.engine = engine
        n, m, ne = engine.n, engine.m, engine.network.n_edges
        self.n, self.m, self.ne = n, m, ne
        ri = np.concatenate([engine._ei, engine._gi])
        rj = np.concatenate([engine._ej, engine._gj])
        if n * (ne + m) <= self._DENSE_LIMIT:
            # [Z^T | moment] @ pt = [BZ^T | G | moment] in one product
            pt = np.zeros((n + 1 + m, ne + 2 * m))  # row n is the ground: dropped below
            cols = np.arange(ne + m)
            np.add.at(pt, (ri, cols), 1.0)
            np.add.at(pt, (rj, cols), -1.0)
            pt[n + 1:, ne + m:] = np.eye(m)
            self.pt = np.delete(pt, n, axis=0)
            self.ri = self.rj = None
        else:
            self.pt = None
            self.ri, self.rj = ri, rj

    def run(self, k: np.ndarray, start: int, stop: int, lam: float, order: np.ndarray,
            rng: np.random.Generator) -> np.ndarray:
        """Steps ``start .. stop-1`` on ``k`` in place; returns the online example order."""
        eng = self.engine
        c = eng.config
        n, m, ne = self.n, self.m, self.ne
        weights = eng._weights(lam)
        online = c.batch == "online"
        shuffle = online and c.order == "shuffle"
        n_ex = eng.data.n_examples
        moments = eng._example_moments
        # buf columns: edge drops | G | moment, one row per terminal; h = R^{-1} buf
        buf = np.empty((m, ne + 2 * m))
        g = buf[:, ne: ne + m]
        h = np.empty_like(buf)
        h_drops, h_moment = h[:, :ne], h[:, ne + m:]
        core = np.empty((m, m))
        dense = self.pt is not None
        if dense:  # z holds the responses then the moment: one product fills buf
            z = np.empty((m, n + m))
            z_rows = [z[i, :n] for i in range(m)]
            moment = z[:, n:]
        else:
            z = np.zeros((n + 1, m))  # row n: ground
            z_rows = [z[:n, i] for i in range(m)]
            moment = buf[:, ne + m:]
        moment[...] = eng.second_moment
        # rows 0..m-1: per-terminal terms of dk; row m: k itself, so that one product
        # with ones gives k + dk
        terms = np.empty((m + 1, ne))
        t, kv = terms[:m], terms[m]
        kv[...] = k
        knew = np.empty(ne)
        ones = np.ones(m + 1)
        pt, ri, rj = self.pt, self.ri, self.rj
        kmin, kmax = c.k_min, c.k_max
        mat, slot, sign, edge, nnz, update, solve = eng.solver.hot_loop(kv)
        pairs = list(zip(z_rows, eng.solver.columns, strict=True))
        dot, multiply, maximum, minimum, bincount = (np.dot, np.multiply, np.maximum, np.minimum,
                                                     np.bincount)
        for s in range(start, stop):
            if online:
                if shuffle and s % n_ex == 0:
                    order = rng.permutation(n_ex)
                moment[...] = moments[order[s % n_ex]]
            kw = kv[edge]
            kw *= sign
            mat.data = bincount(slot, kw, nnz)
            update(mat, True)
            for row, col in pairs:
                row[...] = solve(col)
            if dense:
                dot(z, pt, out=buf)
            else:
                buf[:, : ne + m] = (z[ri] - z[rj]).T
            r, info = dpotrf(g, lower=1, clean=1)
            if info != 0:
                raise InputError(
                    "the source and target terminals are not independent (one is fixed by the "
                    "others, e.g. a repeated edge or a closed loop of terminal edges); choose others",
                    source=eng.network.name)
            rinv, _ = dtrtri(r, lower=1)
            dot(rinv, buf, out=h)
            dot(h_moment, rinv.T, out=core)
            core *= weights
            dot(core, h_drops, out=t)
            multiply(t, h_drops, out=t)
            dot(ones, terms, out=knew)
            maximum(knew, kmin, out=kv)
            minimum(kv, kmax, out=kv)
        k[...] = kv
        return order
