"""Safety: requests beyond the limits are refused and nothing moves; a silent host parks
the board (the firmware keeps its limits whatever the host does)."""

from __future__ import annotations

import time

import hil_checks as hc
import numpy as np
import pytest
from learnboard.host.link import BoardError
from learnboard.host.messages import ErrorCode, Fault

SILENCE_MS = 500


def _refused(link, command, code, field, **args):
    """Refused with ``code``, the detail naming the argument ``field`` at fault."""
    with pytest.raises(BoardError) as err:
        link.call(command, **args)
    assert err.value.code == code, f"{command} {args}: {err.value}"
    assert err.value.field == field, f"{command} {args}: {err.value}"


def test_beyond_limit_requests_are_refused_and_nothing_moves(link, board, seed):
    rng = np.random.default_rng(seed + 2)
    x = hc.probe_inputs(board, rng, 1)[0]
    link.call("infer", x=x)
    k0 = np.array(link.call("read_edges")["k"], float)
    v0 = np.array(link.call("measure")["v"])
    params0 = link.call("get_params")
    vmax = board.limits.max_node_volts
    n_in = len(x)
    n_out = len(board.outputs)

    # one edge beyond its limit in an otherwise valid write: the whole write is refused
    bad = list(k0)
    e = next(i for i, ed in enumerate(board.edges) if ed.kind != "resistor")
    if board.edges[e].kind == "transistor":
        bad[e] = board.limits.gate_range[1] + 0.5
    else:
        bad = [int(v) for v in bad]
        bad[e] = board.parts[board.edges[e].part].n_taps + 5
    with pytest.raises(BoardError) as err:
        link.call("write_edges", start=0, k=bad)
    assert err.value.code == ErrorCode.LIMIT and (err.value.field, err.value.edge) == ("k", e)
    _refused(link, "infer", ErrorCode.LIMIT, "x", x=[vmax * 1.5] * n_in)
    _refused(link, "upload_examples", ErrorCode.LIMIT, "y", start=0, clear=True,
             x=[[vmax / 2] * n_in], y=[[vmax * 2] * n_out])
    _refused(link, "set_params", ErrorCode.OUT_OF_RANGE, "lam", lam=2.0, eta=0.5)
    _refused(link, "write_edges", ErrorCode.OUT_OF_RANGE, "start", start=board.n_edges, k=[k0[0]])

    assert link.call("get_params") == params0, "a refused set_params changed parameters"
    k1 = np.array(link.call("read_edges")["k"], float)
    assert np.allclose(k1, k0, atol=3 * hc.gate_lsb(board) + 1e-9), "a refused request moved an edge"
    link.call("infer", x=x)
    v1 = np.array(link.call("measure")["v"])
    nodes = hc.read_nodes(board)
    assert np.allclose(v1[nodes], v0[nodes], atol=hc.ADC_LSB * hc.node_lsb(board)[nodes].max())


def test_host_silence_parks_the_board(link, board, seed):
    rng = np.random.default_rng(seed + 3)
    x = hc.probe_inputs(board, rng, 2)
    y = [[board.limits.max_node_volts / 3] * len(board.outputs)] * 2
    link.call("upload_examples", start=0, clear=True, x=x, y=y)
    link.call("set_params", host_timeout_ms=SILENCE_MS, tlm_every=0)
    while link.next_event(timeout=0) is not None:  # parked events of earlier requests
        pass
    try:
        link.call("train", steps=0)  # until stopped: only the silence can stop it
        t0 = time.monotonic()
        event = None
        while time.monotonic() - t0 < 60:  # say nothing; the board must park on its own
            event = link.next_event(timeout=1.0)
            if event and event[0] == "parked" and event[1].get("flt", 0) & Fault.HOST_SILENT:
                break
        assert event and event[0] == "parked", "no parked event within 60 s of host silence"
        status = link.call("status")
        assert status["state"] == "parked"
        assert status["flt"] & Fault.HOST_SILENT and status["flt"] & Fault.PARKED
        # inputs are at 0 V: every node sits at its bias (or 0 V) level, nothing driven by x
        v = np.array(link.call("measure")["v"])
        assert np.all(v[hc.read_nodes(board)] <= board.limits.max_node_volts + 0.01)
    finally:
        link.call("set_params", host_timeout_ms=10000)
