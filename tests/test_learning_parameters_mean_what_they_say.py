"""The learning parameters mean what the paper, ``learnboard sim`` and board files say —
``alpha`` the learning rate, ``eta`` the nudge — on the unchanged firmware in the real
MicroPython VM, judged by what the board does, not by the names it echoes."""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.host.link import BoardError, Link
from learnboard.host.messages import ErrorCode
from learnboard.host.session import load_session_task

from tests.test_emulate_with_mpremote_and_pyserial import flashed_board, hello_when_up

pytestmark = pytest.mark.vm

STEPS = 20
GATE_TOL = 0.005  # V: gates leak and are topped up between steps; a learning step moves more


def _train(link: Link, steps: int) -> list[float]:
    """Train ``steps`` steps; the board's error per telemetry record."""
    link.call("train", steps=steps, every=5)
    errs = []
    while True:
        ev = link.next_event(timeout=120)
        assert ev is not None, "no done event"
        if ev[0] == "done":
            break
    while (t := link.next_telemetry(timeout=0)) is not None:
        errs.append(t["err"])
    return errs


def test_alpha_is_the_learning_rate_and_eta_the_nudge_on_the_board(tmp_path):
    with flashed_board(tmp_path, "gen2-clln") as vb:
        hello_when_up(vb.port)
        task = load_session_task("regression", vb.board)
        x, y = np.asarray(task.x_train)[:4], np.asarray(task.y_train)[:4]
        with Link.open(vb.port, timeout=5.0) as link:
            link.call("upload_examples", x=x.tolist(), y=y.tolist(), clear=True)
            k0 = np.array(link.call("read_edges")["k"])

            # learning rate 0 with a full nudge: the rule's steps are all zero
            link.call("set_params", alpha=0.0, eta=1.0, lam=0.0)
            frozen = _train(link, STEPS)
            k1 = np.array(link.call("read_edges")["k"])
            assert np.max(np.abs(k1 - k0)) < GATE_TOL, k1 - k0

            # the same nudge with learning rate 1: the gates move and the error falls
            link.call("set_params", alpha=1.0)
            learning = _train(link, STEPS)
            k2 = np.array(link.call("read_edges")["k"])
            assert np.sum(np.abs(k2 - k1) > 10 * GATE_TOL) > len(k2) // 2, k2 - k1
            print(f"error: frozen {frozen}, learning {learning}; gate moves "
                  f"{np.max(np.abs(k1 - k0)):.4f} V (alpha 0), {np.median(np.abs(k2 - k1)):.4f} V median (alpha 1)")
            assert learning[-1] < 0.7 * frozen[-1], (frozen, learning)

            # the nudge is a fraction of the way to the target: (0, 1]; the learning
            # rate is any rate >= 0 (gate boards learn well at 20 V/V^2)
            for bad in (0.0, 1.5):
                with pytest.raises(BoardError) as err:
                    link.call("set_params", eta=bad)
                assert err.value.code == ErrorCode.OUT_OF_RANGE
            assert link.call("set_params", alpha=20.0) == {"alpha": 20.0}
            with pytest.raises(BoardError) as err:
                link.call("set_params", alpha=-1.0)
            assert err.value.code == ErrorCode.OUT_OF_RANGE
