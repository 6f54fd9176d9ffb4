"""The ldl backend and the fused step loop against the banded reference backend."""

import numpy as np
import pytest

from learnboard.engine.config import LearningConfig
from learnboard.engine.linear import LinearEngine, Terminals, _FastLoop
from learnboard.generate import disordered
from learnboard.tasks import Dataset


@pytest.fixture(scope="module")
def mixed():
    net = disordered(40, seed=3)
    terms = Terminals(source_edges=(5,), source_nodes=(7, 20), target_edges=(30,), target_nodes=(12,))
    rng = np.random.default_rng(1)
    data = Dataset(rng.uniform(-1, 1, (6, 3)), rng.uniform(-0.5, 0.5, (6, 2)))
    return net, terms, data


@pytest.mark.parametrize("batch, order", [("full", "cycle"), ("online", "cycle"), ("online", "shuffle")])
@pytest.mark.parametrize("dense_product, compiled", [(True, False), (False, False), (True, True)])
def test_fused_loop_matches_band(mixed, monkeypatch, batch, order, dense_product, compiled):
    """Same conductances and history as the banded backend, whichever product builds the
    drops in the numpy loop, and in the compiled step (here with node terminals, m = 5)."""
    if not dense_product:
        monkeypatch.setattr(_FastLoop, "_DENSE_LIMIT", 0)
    net, terms, data = mixed
    cfg = LearningConfig(alpha=0.2, eta=0.01, lam=1e-3, batch=batch, order=order, seed=4,
                         k_min=0.3)
    k0 = np.random.default_rng(7).uniform(0.5, 2.0, net.n_edges)
    ref = LinearEngine(net, terms, data, cfg, method="band").train(k0, 300, record_every=7)
    eng = LinearEngine(net, terms, data, cfg, method="ldl", compiled=compiled)
    assert eng._fast is not None and (eng._fast.pt is not None) == dense_product
    res = eng.train(k0, 300, record_every=7)
    assert (res.info.get("kernel") == "compiled") == compiled
    np.testing.assert_allclose(res.conductances, ref.conductances, rtol=1e-9)
    for name in ("step", "error", "power", "frac_at_min"):
        np.testing.assert_allclose(res.history[name], ref.history[name], rtol=1e-8, atol=1e-15)
    assert res.final.frac_at_min > 0  # the clip was exercised


def test_progress_reports_every_interval(mixed):
    net, terms, data = mixed
    seen = []
    LinearEngine(net, terms, data, LearningConfig(alpha=0.2, eta=0.01), method="ldl").train(
        np.ones(net.n_edges), 250, record_every=100, progress=seen.append, progress_every=40)
    assert seen == [40, 80, 120, 160, 200, 240]


def test_ldl_rejects_nonpositive_conductances(mixed):
    from learnboard.errors import InputError

    net, terms, data = mixed
    eng = LinearEngine(net, terms, data, method="ldl")
    k = np.ones(net.n_edges)
    k[3] = 0.0
    with pytest.raises(InputError, match="conductance"):
        eng.evaluate(k)
