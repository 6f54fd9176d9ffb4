"""The tolerance controller of BRIEF §2: the rule taken literally, and its reference outcome."""

import numpy as np
import pytest

from learnboard.engine.config import LearningConfig
from learnboard.engine.controller import ToleranceController, tail_means
from learnboard.engine.linear import LinearEngine, Terminals
from learnboard.errors import InputError
from learnboard.network import read_network
from learnboard.tasks import notebook_task


def test_rule_is_literal():
    c = ToleranceController(1e-3)
    assert c.lam_for(0, 0.5) == 0.0
    assert c.lam_for(7, 2e-3) == 0.0
    assert c.lam_for(8, 5e-4) == 1e-9 and c.s0 == 8  # first step below tau
    for s in range(9, 108):  # no change between checks, whatever the error
        assert c.lam_for(s, 0.9 if s % 2 else 1e-9) == 1e-9
    assert c.lam_for(108, 5e-4) == pytest.approx(1.05e-9)  # (s - s0) % 100 == 0, below tau
    assert c.lam_for(208, 2e-3) == pytest.approx(0.525e-9)  # above tau: halved
    assert c.lam_for(209, 1e-9) == pytest.approx(0.525e-9)
    with pytest.raises(InputError):
        ToleranceController(0.0)


def test_tail_means():
    hist = {"step": np.arange(101), "relative_error": np.r_[np.ones(90), np.full(11, 3.0)],
            "power": np.arange(101.0), "power_watts": np.zeros(101), "lam": np.zeros(101)}
    tail = tail_means(hist)
    assert tail["relative_error"] == 3.0 and tail["power"] == pytest.approx(95.5)


@pytest.mark.slow
def test_reference_tolerance_run(reference_networks):
    """BRIEF §2: tau 1e-3, 1e5 steps -> tail means C/C0 6.4e-4 and P 0.0243 (within 20 %)."""
    net = read_network(reference_networks / "data_N00064_Lp0.0100_r1.txt")
    src, tgt, data = notebook_task(net.n_edges)
    eng = LinearEngine(net, Terminals(tuple(src), tuple(tgt)), data, LearningConfig())
    ctl = ToleranceController(1e-3)
    res = eng.train(np.ones(net.n_edges), 100_000, record_every=1, controller=ctl)
    tail = tail_means(res.history)
    assert tail["relative_error"] == pytest.approx(6.4e-4, rel=0.2)
    assert tail["power"] == pytest.approx(0.0243, rel=0.2)
    assert tail["relative_error"] < 1e-3
