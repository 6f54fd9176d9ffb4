"""The large-network ``pcg`` backend against the exact sparse LDL^T path."""

import numpy as np
import pytest
import scipy.sparse.linalg as spl

from learnboard.engine import pcg_kernels
from learnboard.engine.config import LearningConfig
from learnboard.engine.linear import LinearEngine, Terminals
from learnboard.engine.solvers import PCGSolver
from learnboard.errors import InputError
from learnboard.generate import lattice
from learnboard.tasks import notebook_task


@pytest.fixture(scope="module")
def task():
    net = lattice(16, 16, periodic=True)
    src, tgt, data = notebook_task(net.n_edges)
    return net, Terminals(tuple(src), tuple(tgt)), data


@pytest.mark.parametrize("batch, order", [("full", "cycle"), ("online", "shuffle")])
def test_pcg_training_matches_exact_solves(task, batch, order):
    """A short training through the stale-factor CG lands where exact solves land, 1e-9,
    although the factor is renewed several times on the way."""
    net, terms, data = task
    cfg = LearningConfig(alpha=5.0, eta=1e-2, lam=1e-3, batch=batch, order=order, seed=2)
    k0 = np.random.default_rng(3).uniform(0.5, 2.0, net.n_edges)
    ref = LinearEngine(net, terms, data, cfg, method="ldl").train(k0, 200, record_every=9)
    eng = LinearEngine(net, terms, data, cfg, method="pcg")
    eng.solver.spread = 1.02  # renew the factor often: the refactorisation path is exercised
    res = eng.train(k0, 200, record_every=9)
    assert eng.solver.refactors > 2
    assert np.ptp(res.conductances - k0) > 0.05  # the conductances did move
    np.testing.assert_allclose(res.conductances, ref.conductances, rtol=1e-9)
    for name in ("error", "power"):
        np.testing.assert_allclose(res.history[name], ref.history[name], rtol=1e-9)


def test_pcg_after_jumps_matches_exact(task):
    """A restart from other conductances and an evaluation far from the last solution
    (the warm start is then poor) still give the exact responses."""
    net, terms, data = task
    cfg = LearningConfig(alpha=5.0, eta=1e-2)
    exact = LinearEngine(net, terms, data, cfg, method="ldl")
    eng = LinearEngine(net, terms, data, cfg, method="pcg")
    k0 = np.ones(net.n_edges)
    first = eng.train(k0, 30).conductances
    again = eng.train(k0, 30).conductances  # back to k0: a jump behind the history
    np.testing.assert_allclose(again, first, rtol=1e-12)  # other start, same solution
    k = np.random.default_rng(5).uniform(0.1, 10.0, net.n_edges)  # far from the factor
    got, want = eng.evaluate(k), exact.evaluate(k)
    np.testing.assert_allclose(got.outputs, want.outputs, rtol=1e-10)
    assert got.power == pytest.approx(want.power, rel=1e-10)


def test_ldl_solve_kernel_with_padding_columns():
    """Five right-hand sides: two sweeps of four lanes, three padding columns."""
    net = lattice(9, 7, periodic=True)
    solver = PCGSolver(net)
    rng = np.random.default_rng(0)
    k = rng.uniform(0.2, 5.0, net.n_edges)
    b = rng.normal(size=(solver.asm.n, 5))
    solver.set_rhs(b)
    z = solver.responses(k)
    lap = solver.laplacian(k).tocsc()
    np.testing.assert_allclose(z, spl.spsolve(lap, b), rtol=1e-9, atol=1e-12)
    x = np.empty((solver.asm.n, 8))
    pcg_kernels.ldl_solve(*solver._lfac, solver._b, x, np.empty((2, solver.asm.n, 4)))
    np.testing.assert_allclose(x[:, :5], spl.spsolve(lap, b), rtol=1e-9, atol=1e-12)
    assert np.all(x[:, 5:] == 0)


def test_pcg_unreachable_tolerance_keeps_the_exact_factor_solution():
    """When rounding keeps the residual above the tolerance (here: a tolerance of 0), the
    solver renews the factor and returns that solution instead of failing."""
    net = lattice(8, 8, periodic=True)
    solver = PCGSolver(net, rtol=0.0, max_iter=3)
    k = np.random.default_rng(1).uniform(0.5, 2.0, net.n_edges)
    b = np.random.default_rng(2).normal(size=(solver.asm.n, 4))
    solver.set_rhs(b)
    z = solver.responses(k)
    assert solver.refactors == 2 and solver.iterations == [3]  # first factor, then renewed
    np.testing.assert_allclose(z, spl.spsolve(solver.laplacian(k).tocsc(), b), rtol=1e-9,
                               atol=1e-12)


def test_pcg_rejects_nonpositive_conductances(task):
    net, terms, data = task
    eng = LinearEngine(net, terms, data, method="pcg")
    k = np.ones(net.n_edges)
    k[7] = 0.0
    with pytest.raises(InputError, match="conductance"):
        eng.evaluate(k)
