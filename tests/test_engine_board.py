"""Board profiles through the engine: whole taps, gate ranges, warm-started Newton."""

import numpy as np
import pytest

from learnboard.boards import load_board
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_session_defaults, gate_spread
from learnboard.engine.board_model import board_task as default_board_task
from learnboard.engine.config import LearningConfig
from learnboard.tasks import Dataset, regression_task


def board_task(board, coeffs, n=8):
    raw = regression_task(np.array(coeffs), n, seed=1)
    v = board.limits.max_node_volts
    return Dataset(raw.inputs * v, raw.targets * v)


@pytest.mark.parametrize("rule, alpha", [("sign", 0.5), ("accumulate", 2e-4)])
def test_digipot_board_learns_in_whole_taps(rule, alpha):
    board = load_board("gen1-digipot")
    eng = BoardEngine(board, board_task(board, [[0.2, 0.3], [0.1, 0.5]]),
                      LearningConfig(alpha=alpha, eta=0.5), digipot_rule=rule)
    res = eng.train(eng.initial_state(), 30, record_every=10)
    lo, hi = board.limits.tap_range
    assert np.all(res.state == np.rint(res.state))
    assert res.state.min() >= lo and res.state.max() <= hi
    assert np.any(res.state != res.initial_state)
    assert res.relative_error < 0.9


def test_transistor_board_warm_start_and_power_term():
    board = load_board("gen2-clln")
    data = board_task(board, [[0.2, 0.3]])
    def run(lam):
        eng = BoardEngine(board, data, LearningConfig(alpha=0.05, eta=0.5, lam=lam))
        return eng, eng.train(eng.initial_state(), 10, record_every=10)
    eng, plain = run(0.0)
    _, power_aware = run(0.5)
    lo, hi = board.limits.gate_range
    assert plain.newton_iterations_mean <= 4.0  # warm-started solves (docs/engine.md)
    assert plain.state.min() >= lo and plain.state.max() <= hi
    assert plain.history["error"][-1] < plain.history["error"][0]
    # the lambda term pushes gates down and so lowers the physical power reached
    assert power_aware.state.mean() < plain.state.mean()
    assert power_aware.history["power_watts"][-1] < plain.history["power_watts"][-1]


# -- the fast path and the board model ------------------------------------------------------



def _board_engine(name, steps, solver="batch", seed=0, model="board"):
    board = load_board(name)
    alpha_at, eta = board_session_defaults(board, steps)
    rule = "sign" if board.learning.rule == "sign" else "accumulate"
    eng = BoardEngine(board, default_board_task(board, seed), LearningConfig(alpha=alpha_at(0), eta=eta),
                      rule, model=model, seed=seed, alpha_at=alpha_at, solver=solver)
    return eng, eng.train(eng.initial_state(), steps)


@pytest.mark.parametrize("name, model", [("gen2-clln", "board"), ("gen2-clln", "ideal"),
                                         ("gen1-digipot", "board")])
def test_batched_solves_equal_one_general_solve_per_example(name, model):
    """The fast path (all examples in one compiled Newton call, arrays built once) gives
    the states of the reference path (learnboard.physics.solve per example)."""
    fast_eng, fast = _board_engine(name, 12, "batch", model=model)
    ref_eng, ref = _board_engine(name, 12, "reference", model=model)
    np.testing.assert_allclose(fast.state, ref.state, rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.history["error"], ref.history["error"], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(fast_eng._warm, ref_eng._warm, rtol=0, atol=1e-9)  # node volts
    if name == "gen2-clln":
        assert fast.newton_iterations_mean <= 4.0  # warm-started; the first steps move most


def test_gate_spread_is_the_emulated_boards():
    from learnboard.emulator.world import World

    board = load_board("gen2-clln")
    world = World(board, seed=3)
    leak, skew = gate_spread(board, 3)
    assert np.array_equal(leak, [[g.leak for g in net] for net in world.edges])
    assert np.array_equal(skew, [[g.skew_us for g in net] for net in world.edges])
