"""The paper's tolerance controller (Stern et al. 2024): the rule taken literally, and its reference outcome;
the boards' adaptive controller: its steps, its settling on a lagging error, its constants."""

import numpy as np
import pytest

from learnboard.engine.config import LearningConfig
from learnboard.engine.controller import (
    FLOOR,
    UP_MIN,
    AdaptiveController,
    ToleranceController,
    adaptive_every,
    balance_lambda,
    tail_means,
)
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
    """The paper's controller run: tau 1e-3, 1e5 steps -> tail means C/C0 6.4e-4 and P 0.0243 (within 20 %)."""
    net = read_network(reference_networks / "data_N00064_Lp0.0100_r1.txt")
    src, tgt, data = notebook_task(net.n_edges)
    eng = LinearEngine(net, Terminals(tuple(src), tuple(tgt)), data, LearningConfig())
    ctl = ToleranceController(1e-3)
    res = eng.train(np.ones(net.n_edges), 100_000, record_every=1, controller=ctl)
    tail = tail_means(res.history)
    assert tail["relative_error"] == pytest.approx(6.4e-4, rel=0.2)
    assert tail["power"] == pytest.approx(0.0243, rel=0.2)
    assert tail["relative_error"] < 1e-3


# -- the boards' adaptive controller ------------------------------------------------------------


def test_adaptive_rule_steps():
    """lambda 0 until the error is under the aim; then start, x factor per check while
    under, / factor when over; every reversal takes the factor's square root, never back up."""
    c = AdaptiveController(tau=0.1, start=0.01, every=10, up=4.0)
    assert c.lam_for(0, 0.5) == 0.0
    assert c.lam_for(10, 0.06) == 0.0  # under tau but not under the aim (0.5 tau at first)
    assert c.lam_for(20, 0.01) == 0.01 and c.s0 == 20
    assert c.lam_for(25, 0.9) == 0.01  # between checks nothing changes
    assert c.lam_for(30, 0.01) == pytest.approx(0.04)  # under: x 4
    assert c.lam_for(40, 0.01) == pytest.approx(0.16)
    assert c.lam_for(50, 0.5) == pytest.approx(0.08)  # over: reversal, factor 2
    assert c.lam_for(60, 0.5) == pytest.approx(0.04)  # same way: the factor stays 2
    assert c.lam_for(70, 0.01) == pytest.approx(0.04 * 2 ** 0.5)  # reversal: sqrt 2
    for s in range(80, 400, 10):  # reversals at every check: the factor ends at UP_MIN
        c.lam_for(s, 0.01 if s % 20 else 0.5)
    assert c.factor == UP_MIN
    lo = AdaptiveController(tau=0.1, start=0.01, every=10)
    lo.lam_for(0, 0.0)
    for s in range(10, 500, 10):  # over the aim for good: lambda stops at its floor
        lo.lam_for(s, 0.5)
    assert lo.lam == pytest.approx(0.01 * FLOOR)
    hi = AdaptiveController(tau=0.1, start=0.5, every=10, up=1.5)
    hi.lam_for(0, 0.0)
    assert hi.lam_for(10, 0.0) == 0.75 and hi.lam_for(20, 0.0) == 1.0  # the board's range
    end = AdaptiveController(tau=0.1, start=0.01, every=10, up=2.0, hold_from=30)
    assert [end.lam_for(s, e) for s, e in ((0, 0.0), (10, 0.0), (20, 0.0), (30, 0.0), (40, 0.5))] == \
        pytest.approx([0.01, 0.02, 0.04, 0.04, 0.04 / 2 ** 0.5])  # the last tenth: no more rises


def test_adaptive_aim_keeps_a_margin_of_three_standard_deviations_of_the_error():
    def aim_after(errors):
        c = AdaptiveController(tau=0.1, start=0.01, every=10)
        for k, e in enumerate(errors):
            c.lam_for(10 * k, e)
        return c.aim

    assert aim_after([0.04]) == pytest.approx(0.05)  # too few checks: the low end, 0.5 tau
    assert aim_after([0.06] * 5) == pytest.approx(0.08)  # an error that holds still: 0.8 tau
    swing = [0.06, 0.04, 0.06, 0.04, 0.06]  # swings by +-0.01
    assert aim_after(swing) == pytest.approx(0.1 - 3 * np.std(swing))
    assert aim_after([0.01, 0.09] * 3) == pytest.approx(0.05)  # swings wildly: 0.5 tau
    assert aim_after([0.5] * 20 + [0.06] * 5) == pytest.approx(0.08)  # the last 5 checks count


def test_adaptive_search_settles_at_the_aim_despite_a_lagging_error():
    """A board's error answers lambda some checks late: the search still settles, with the
    tail mean at the aim and under tau (a model plant: error rising with lambda, 3 checks late)."""
    def error(lam):  # 0.01 at lambda 0, 0.08 for large lambda, tau (0.05) at lambda 0.1
        return 0.01 + 0.07 * lam / (lam + 0.05)

    c = AdaptiveController(tau=0.05, start=1e-3, every=20)
    lams, errs = [0.0, 0.0, 0.0], []
    for k in range(50):
        e = error(lams[-3])
        errs.append(e)
        lams.append(c.lam_for(20 * k, e))
    tail = np.mean(errs[-5:])
    assert tail < 0.05 and tail == pytest.approx(c.aim, rel=0.1) and c.aim == pytest.approx(0.04)
    assert max(lams[-5:]) / min(lams[-5:]) < 1.25  # settled, not a limit cycle


def test_balance_lambda_and_check_interval_come_from_the_board_and_the_steps():
    # 2 eta sqrt(target tau C0) / input rms: gen2-clln's regression task, target 0.8
    assert balance_lambda(0.5, 0.0114, 0.2587, 0.038) == pytest.approx(0.0720, rel=1e-2)
    assert balance_lambda(0.5, 0.0114, 0.2587, 0.038, target=0.5) == pytest.approx(0.0569, rel=1e-2)
    assert balance_lambda(1.0, 4.0, 0.1, 0.5) == 1.0  # clipped to the board's range
    with pytest.raises(ValueError):
        balance_lambda(0.5, 0.0, 0.25, 0.04)
    assert [adaptive_every(n) for n in (40, 300, 1000, 2000, 10_000, None)] == [10, 10, 20, 40, 100, 20]


@pytest.mark.parametrize("kw, field", [({"tau": 1.0}, "--tolerance"), ({"tau": 0.0}, "--tolerance"),
                                       ({"start": 0.0}, "start"), ({"up": 1.0}, "up"),
                                       ({"target": 1.5}, "target"), ({"every": 0}, "every")])
def test_adaptive_controller_refuses_bad_constants(kw, field):
    with pytest.raises(InputError) as err:
        AdaptiveController(**{"tau": 0.05, "start": 1e-3, "every": 10, **kw})
    assert field in str(err.value)
