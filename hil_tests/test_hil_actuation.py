"""Actuation: each edge moves up and down on command, the move shows in the measured
drops as the physics predicts, end stops and gate limits hold, the board's self-test passes."""

from __future__ import annotations

import hil_checks as hc
import numpy as np
import pytest
from learnboard.host.link import BoardError
from learnboard.host.messages import ErrorCode


def test_every_edge_moves_up_and_down_and_drops_follow(link, board, seed):
    rng = np.random.default_rng(seed + 1)
    link.call("write_edges", start=0, k=hc.random_edges(board, rng))
    x = hc.probe_inputs(board, rng, 1)[0]
    problems = hc.actuation_problems(link, board, x)
    assert not problems, "\n".join(problems)


def test_self_test_passes(link):
    result = link.call("self_test")
    assert result["ok"], f"edges that did not move as commanded: {result['failed']}"


def test_gate_and_tap_limits_hold(link, board):
    k0 = link.call("read_edges")["k"]
    lsb = hc.gate_lsb(board)
    for e, edge in enumerate(board.edges):
        if edge.kind == "transistor":
            lo, hi = board.limits.gate_range
            beyond = (hi + 0.3, lo - 0.2)
        elif edge.kind == "digipot":
            part = board.parts[edge.part]
            lo, hi = board.limits.tap_range or (0, part.n_taps - 1)
            beyond = tuple(v for v in (part.n_taps, lo - 1) if v < lo or v > hi)
        else:
            continue
        for value in beyond:
            with pytest.raises(BoardError) as err:
                link.call("write_edges", start=e, k=[value])
            assert err.value.code == ErrorCode.LIMIT, err.value
            assert (err.value.field, err.value.edge) == ("k", e), err.value
    k1 = link.call("read_edges")["k"]
    assert np.allclose(k1, k0, atol=3 * lsb + 1e-9), "a refused write moved an edge"
    kinds = [e.kind for e in board.edges]
    for kind, v in zip(kinds, k1, strict=True):
        if kind == "transistor":
            lo, hi = board.limits.gate_range
            assert lo - 3 * lsb <= v <= hi + 3 * lsb


@pytest.mark.fault_injection
def test_actuation_check_catches_a_stuck_edge(board, seed):
    from learnboard.cli.connection import open_board
    from learnboard.emulator.world import Faults

    stuck = board.n_edges // 2
    rng = np.random.default_rng(seed + 1)
    x = hc.probe_inputs(board, rng, 1)[0]
    with open_board(None, board=board, seed=seed, faults=Faults(stuck_edges={(0, stuck)})) as conn:
        problems = hc.actuation_problems(conn.link, board, x, edges=[stuck - 1, stuck])
    assert problems and all(f"edge {stuck} " in p for p in problems), problems
