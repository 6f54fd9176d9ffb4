"""Wiring: every node within its rails, and with known edge states the measured node
voltages agree with the description's physics (a Kirchhoff check: a swapped mux channel,
a wrong gain or a dead ADC input shows up as nodes off their prediction)."""

from __future__ import annotations

import hil_checks as hc
import numpy as np
import pytest


def _measure(link, x):
    link.call("infer", x=[float(v) for v in x])
    return np.array(link.call("measure")["v"])


def test_every_node_within_rails(link, board, seed):
    rng = np.random.default_rng(seed)
    n_in = sum(1 for p in board.inputs if p.fixed is None)
    vmax = board.limits.max_node_volts
    problems = []
    for x in [[0.0] * n_in, [vmax] * n_in, *hc.probe_inputs(board, rng)]:
        problems += hc.rail_problems(board, _measure(link, x))
    assert not problems, "\n".join(problems)


def test_measured_nodes_match_physics_with_known_edge_states(link, board, seed):
    rng = np.random.default_rng(seed)
    k_set = hc.random_edges(board, rng)
    link.call("write_edges", start=0, k=k_set)
    k = np.array(link.call("read_edges")["k"], float)  # what the board holds (read back)
    problems = []
    sensitivity = []
    for x in hc.probe_inputs(board, rng):
        pred = hc.predict(board, k, x, seed=seed)
        sensitivity.append(hc.distinguishable(pred, board))
        problems += [f"x={np.round(x, 3).tolist()}: {p}" for p in
                     hc.wiring_problems(board, _measure(link, x), pred)]
    assert not problems, "\n".join(problems)
    # the check can fail: most node pairs differ by more than their tolerances
    assert max(sensitivity) > 0.5


@pytest.mark.fault_injection
def test_wiring_check_catches_dead_adc_and_swapped_channels(board, seed):
    from learnboard.cli.connection import open_board
    from learnboard.emulator.world import Faults

    rng = np.random.default_rng(seed)
    x = hc.probe_inputs(board, rng, 1)[0]
    adc = next(m.adc_channel for m in board.muxes.values() if m.net == 0 and any(n >= 0 for n in m.nodes))
    with open_board(None, board=board, seed=seed) as good:
        k = np.array(good.link.call("read_edges")["k"], float)
        pred = hc.predict(board, k, x, seed=seed)
        v = _measure(good.link, x)
        assert not hc.wiring_problems(board, v, pred)
        # swap the two read nodes whose predictions differ most: both are flagged
        nodes = hc.read_nodes(board)
        i, j = nodes[np.argmin(pred.v[nodes])], nodes[np.argmax(pred.v[nodes])]
        swapped = v.copy()
        swapped[[i, j]] = v[[j, i]]
        flagged = hc.wiring_problems(board, swapped, pred)
        assert any(f"#{i})" in p for p in flagged) and any(f"#{j})" in p for p in flagged)
    with open_board(None, board=board, seed=seed, faults=Faults(dead_adc={adc})) as dead:
        flagged = hc.wiring_problems(board, _measure(dead.link, x), pred)
        assert len(flagged) >= len(nodes) // 2
