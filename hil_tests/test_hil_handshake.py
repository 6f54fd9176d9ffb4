"""Handshake: the board speaks this host's protocol, runs this host's firmware and the
board description the suite was given."""

from __future__ import annotations

from learnboard.host.flashing import PROTOCOL, check_hello, firmware_version

from learnboard.boards import compile_board


def test_hello_matches_host_firmware_and_description(link, board):
    hello = link.hello()
    assert hello["proto"] == PROTOCOL
    assert hello["fw"] == firmware_version()
    # the same check every host command makes; raises with "run `learnboard flash`"
    check_hello(hello, "the board under test", desc_hash=compile_board(board).sha256)
    assert hello["board"] == board.name
    limits = hello["limits"]
    assert (limits["n_edges"], limits["n_nodes"]) == (board.n_edges, board.n_nodes)
    assert abs(limits["vn"] - board.limits.max_node_volts) < 1e-6


def test_link_is_clean(link):
    before = link.call("stats")
    for _ in range(20):
        assert link.call("status")["state"] in ("idle", "parked")
    after = link.call("stats")
    assert after["bad"] - before["bad"] == 0, f"the board dropped frames: {after}"
    assert after["requests"] - before["requests"] == 21
    host = link.stats
    assert (host.bad_crc, host.bad_cobs, host.timeouts) == (0, 0, 0), host
