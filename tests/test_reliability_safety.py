"""Safety as a property: whatever the host sends, the emulated physics stays inside the
board description's limits (checked after every pass of the firmware's loop)."""

from __future__ import annotations

import pytest
from learnboard.emulator.inprocess import InProcessBoard

from learnboard.boards import load_board
from learnboard.reliability.safety import LimitMonitor, random_commands


@pytest.mark.parametrize(("profile", "seed"), [("gen2-clln", 1), ("gen1-digipot", 2)])
def test_random_commands_never_exceed_the_limits(profile, seed):
    board = load_board(profile)
    monitor = LimitMonitor(board)
    with InProcessBoard(board, seed=seed, after_tick=monitor) as emu:
        log = random_commands(emu.link, board, n=40, seed=seed)
        assert emu.error is None, f"the firmware loop died: {emu.error!r}"
    assert monitor.checks > log.sent  # checked after actuations, not only per command
    assert monitor.violations == []
    # the campaign did reach for the limits: unsafe requests were refused
    assert log.refused > 0 and log.trained > 0
    assert 0 < monitor.worst_node <= 1.0 + 0.05


def test_the_monitor_sees_a_violation():
    """The check itself can fail: a world driven beyond its limits is reported."""
    board = load_board("gen1-digipot")
    monitor = LimitMonitor(board)

    class Hot:
        def true_state(self, net):
            from types import SimpleNamespace

            import numpy as np

            v = np.zeros(board.n_nodes)
            v[3] = board.limits.max_node_volts * 2
            return SimpleNamespace(node_voltages=v, edge_currents=np.zeros(board.n_edges),
                                   edge_state=np.zeros(board.n_edges))

    monitor(Hot())
    assert [(x.what, x.index) for x in monitor.violations] == [("node", 3)] * board.n_nets
