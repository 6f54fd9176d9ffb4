"""self_test on the emulated boards: every learnable edge (digipots, SPI digipots, pulse
gates) moves in the commanded direction on every network; stuck edges are named."""

from __future__ import annotations

from pathlib import Path

import pytest
from learnboard.cli.connection import LinkedInProcessBoard

SPI_BOARD = str(Path(__file__).parent / "boards" / "spi-parts.toml")


@pytest.mark.parametrize("board, stuck", [("gen1-digipot", [(0, 2), (1, 5)]),
                                          ("gen2-clln", [(0, 7), (1, 3)]),
                                          (SPI_BOARD, [(1, 0)])])
def test_self_test_names_stuck_edges(board, stuck):
    with LinkedInProcessBoard(board, seed=2) as b:
        before = b.link.call("read_edges")["k"]
        r = b.link.call("self_test")
        assert r["ok"] and r["failed"] == []
        assert b.link.call("read_edges")["k"] == pytest.approx(before, abs=0.03)  # put back (2 read-back LSB)
        for net, e in stuck:
            b.world.set_stuck(net, e)
        r = b.link.call("self_test")
        assert not r["ok"]
        assert r["failed"] == sorted(e for _, e in stuck)
        assert b.link.call("status")["flt"] & 64  # F_SELF_TEST raised


def test_edges_held_at_both_ends_are_reported_unchecked():
    # gen1-digipot e12 joins input x1 to ground: its drop is fixed by the drivers
    with LinkedInProcessBoard("gen1-digipot", seed=2) as b:
        b.world.set_stuck(0, 12)
        r = b.link.call("self_test")
        assert r["unchecked"] == [12] and r["ok"]
