"""The compiled learning step against the numpy loops it replaces (the reference path)."""

import numpy as np
import pytest

from learnboard.engine.compiled import warm_up
from learnboard.engine.config import LearningConfig
from learnboard.engine.controller import ToleranceController
from learnboard.engine.linear import LinearEngine, Terminals
from learnboard.errors import InputError
from learnboard.generate import disordered
from learnboard.network import read_network
from learnboard.tasks import notebook_task

RTOL = 1e-12


def _task(net, seed=0):
    src, tgt, data = notebook_task(net.n_edges, seed=seed)
    return Terminals(tuple(src), tuple(tgt)), data


@pytest.fixture(scope="module")
def r1(reference_networks):
    net = read_network(reference_networks / "data_N00064_Lp0.0100_r1.txt")
    return (net, *_task(net))


def _both(net, terms, data, config, steps, **kw):
    out = []
    for compiled in (False, True):
        eng = LinearEngine(net, terms, data, config, compiled=compiled)
        assert eng.compiled == compiled
        out.append(eng.train(np.ones(net.n_edges), steps, **kw))
    return out


def _same(ref, fast):
    assert fast.info.get("kernel") == "compiled" and "kernel" not in ref.info
    assert fast.relative_error == pytest.approx(ref.relative_error, rel=RTOL)
    np.testing.assert_allclose(fast.conductances, ref.conductances, rtol=RTOL, atol=0)
    assert set(fast.history) == set(ref.history)
    np.testing.assert_array_equal(fast.history["step"], ref.history["step"])
    for name, col in ref.history.items():
        np.testing.assert_allclose(fast.history[name], col, rtol=RTOL, atol=1e-300, err_msg=name)


@pytest.mark.parametrize("batch", [
    {}, {"batch": "online"}, {"batch": "online", "order": "shuffle"}, {"update_prob": 0.6},
    {"batch": "online", "order": "shuffle", "update_prob": 0.8}])
def test_r1_2000_steps_equal_the_numpy_loops(r1, batch):
    net, terms, data = r1
    ref, fast = _both(net, terms, data, LearningConfig(lam=1e-6, seed=3, **batch), 2000)
    _same(ref, fast)
    if not batch:  # the published 2000-step result itself
        assert f"{fast.relative_error:.5e}" == "1.49658e-02"


@pytest.mark.parametrize("batch", ["full", "online"])
def test_generated_network_equals_the_numpy_loops(batch):
    net = disordered(300, seed=4)
    terms, data = _task(net, seed=2)
    ref, fast = _both(net, terms, data, LearningConfig(lam=1e-7, batch=batch), 2000,
                      record_every=150)
    _same(ref, fast)


def test_tolerance_controller_runs_compiled_and_matches(r1):
    net, terms, data = r1
    res = []
    ctls = []
    for compiled in (False, True):
        ctl = ToleranceController(0.05)
        eng = LinearEngine(net, terms, data, LearningConfig(lam=1e-6), compiled=compiled)
        res.append(eng.train(np.ones(net.n_edges), 1500, record_every=1, controller=ctl))
        ctls.append(ctl)
    _same(*res)
    assert ctls[0].s0 == ctls[1].s0 is not None and ctls[1].lam == pytest.approx(ctls[0].lam,
                                                                                  rel=RTOL)
    assert res[1].history["lam"][0] == 1e-6 and res[1].history["lam"][-1] > 0


def test_progress_and_every_step_history(r1):
    net, terms, data = r1
    seen = []
    eng = LinearEngine(net, terms, data, LearningConfig(lam=1e-6))
    res = eng.train(np.ones(net.n_edges), 250, record_every=7, progress=seen.append,
                    progress_every=100)
    assert seen == [100, 200]
    assert list(res.history["step"]) == [*range(0, 250, 7), 250]


def test_errors_name_the_cause(r1):
    net, terms, data = r1
    eng = LinearEngine(net, terms, data, LearningConfig())
    k = np.ones(net.n_edges)
    k[3] = 0.0
    with pytest.raises(InputError, match="singular"):
        eng.train(k, 10)


def test_warm_up_compiles():
    warm_up()


def test_zero_steps_and_other_controllers(r1):
    net, terms, data = r1
    ref, fast = _both(net, terms, data, LearningConfig(lam=1e-6), 0)
    _same(ref, fast)
    assert list(fast.history["step"]) == [0]

    class Halving:  # any object with lam_for: Python code each step, so the numpy loops run it
        def lam_for(self, step, relative_error):
            return 1e-6 if relative_error > 0.5 else 0.0

    eng = LinearEngine(net, terms, data, LearningConfig())
    res = eng.train(np.ones(net.n_edges), 20, controller=Halving())
    assert "kernel" not in res.info and res.steps == 20
