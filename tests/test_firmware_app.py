"""The firmware application under CPython, talking to the host Link over an in-memory
pair, with the real physics behind the hardware seam (tests/fake_board.py)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from learnboard.firmware.lbfw import app as app_mod
from learnboard.firmware.lbfw import consts, msgs
from learnboard.firmware.lbfw.hal import Clock
from learnboard.host.link import BoardError, Link
from learnboard.host.messages import ErrorCode
from learnboard.host.transport import memory_pair

from learnboard.boards import compile_board, load_board

from .fake_board import PhysicsHal

# Dillavou et al. 2022 (Gen-1): y1 = 0.15 x1 + 0.20 x2, y2 = 0.25 x1 + 0.10 x2.
PAPER_COEFFS = np.array([[0.15, 0.20], [0.25, 0.10]])


@pytest.fixture
def gen1():
    board = load_board("gen1-digipot")
    compiled = compile_board(board)
    hal = PhysicsHal(board, compiled.body)
    host, dev = memory_pair()
    app = app_mod.App(compiled.body, compiled.sha256, None, Clock(), dev, hal=hal)
    hal.taps[:] = app.learner.pos
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            if not app.tick() and not app.training:
                time.sleep(0.0005)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    link = Link(host, timeout=2.0, retries=1)
    yield link, app, hal, compiled
    link.close()
    stop.set()
    thread.join(5)


def _examples(n=8, vn=0.5):
    x = np.random.RandomState(0).rand(n, 2) * vn
    return x, x @ PAPER_COEFFS.T


def test_hello_carries_board_hash(gen1):
    link, app, _, compiled = gen1
    hello = link.hello()
    assert hello["desc_hash"] == compiled.sha256
    assert hello["board"] == "gen1-digipot"
    assert hello["limits"]["n_edges"] == 16


def test_trains_paper_regression_and_error_falls(gen1):
    link, app, hal, _ = gen1
    x, y = _examples()
    assert link.call("upload_examples", x=x.tolist(), y=y.tolist(), clear=True) == {"count": 8}
    link.call("train", steps=60, every=5)
    errs = []
    for tlm in link.telemetry(timeout=60):
        errs.append(tlm["err"])
        assert tlm["flt"] & consts.F_LIMIT == 0
        if tlm["step"] >= 60:
            break
    assert link.next_event(timeout=5)[0] == msgs.EV_DONE
    assert np.mean(errs[-3:]) < 0.7 * errs[0]
    # taps stayed inside the safe range the description allows
    taps = link.call("read_edges")["k"]
    assert all(40 <= t <= 99 for t in taps)
    out = link.call("infer", x=[0.25, 0.25])
    assert len(out["y"]) == 2 and out["pwr"] > 0


def test_write_edges_beyond_limit_is_refused_and_nothing_moves(gen1):
    link, app, hal, _ = gen1
    before = link.call("read_edges")["k"]
    moves = hal.moves
    with pytest.raises(BoardError) as info:
        link.call("write_edges", start=0, k=[60, 61, 10])  # tap 10 < the safe minimum 40
    assert info.value.code == ErrorCode.LIMIT
    assert hal.moves == moves and link.call("read_edges")["k"] == before
    assert link.call("write_edges", start=0, k=[60, 61]) == {"count": 2}
    assert link.call("read_edges", start=0, count=2)["k"] == [60, 61]
    assert list(hal.taps[:2]) == [60, 61]


def test_set_params_out_of_range_changes_nothing(gen1):
    link, _, _, _ = gen1
    before = link.call("get_params")
    with pytest.raises(BoardError) as info:
        link.call("set_params", lam=0.5, alpha=0.1, eta=1.5)  # eta: the nudge, at most 1
    assert info.value.code == ErrorCode.OUT_OF_RANGE
    assert link.call("get_params") == before
    with pytest.raises(BoardError) as info:
        link.call("upload_examples", x=[[0.2, 0.9]], y=[[0.1, 0.1]])  # 0.9 V > 0.5 V limit
    assert info.value.code == ErrorCode.LIMIT


def test_host_silence_parks(gen1):
    link, app, hal, _ = gen1
    x, y = _examples()
    link.call("upload_examples", x=x.tolist(), y=y.tolist(), clear=True)
    link.call("set_params", host_timeout_ms=100)
    link.call("train", steps=0, every=0)
    event = link.next_event(timeout=10)
    assert event[0] == msgs.EV_PARKED
    status = link.call("status")
    assert status["state"] == "parked"
    assert status["flt"] & consts.F_HOST_SILENT and status["flt"] & consts.F_PARKED
    assert all(v == 0.0 for v in hal.volts.values())


def test_safety_refuses_a_step_that_would_leave_the_range():
    board = load_board("gen1-digipot")
    compiled = compile_board(board)
    hal = PhysicsHal(board, compiled.body)
    _, dev = memory_pair()
    app = app_mod.App(compiled.body, compiled.sha256, None, Clock(), dev, hal=hal)
    lim = app.limits
    assert all(lim.lo[e] == 40 and lim.hi[e] == 99 for e in range(16))
    x, y = _examples()
    app.upload_examples({"x": x.tolist(), "y": y.tolist(), "clear": True})
    lr = app.learner
    for e in range(16):  # park every edge at the safe minimum and forbid going lower
        lr.pos[e] = 40
    hal.taps[:] = 40
    lim.hi[:] = lim.lo  # nothing may move at all now
    before = list(lr.pos)
    assert lr.step() == -1
    assert lr.refused == 1 and lr.flt & consts.F_LIMIT
    assert hal.moves == 0 and list(lr.pos) == before


def test_gen2_pulse_gates_learn_a_regression():
    """gen2-clln: 32 pulse-charged gates, twin networks, nonlinear physics."""
    board = load_board("gen2-clln")
    compiled = compile_board(board)
    hal = PhysicsHal(board, compiled.body)
    _, dev = memory_pair()
    app = app_mod.App(compiled.body, compiled.sha256, None, Clock(), dev, hal=hal)
    hal.taps[:] = np.asarray(app.learner.pos) * hal.gate_vpc
    x = np.random.RandomState(0).rand(8, 2) * 0.45
    y = x @ np.array([[0.3, 0.2]]).T + 0.05
    app.upload_examples({"x": x.tolist(), "y": y.tolist(), "clear": True})
    app.set_params({"alpha": 20.0})  # learning rate
    lr = app.learner
    errs = []
    for _ in range(4):
        for _ in range(15):
            lr.step()
        errs.append(lr.err / lr.err_n)
        lr.reset_stats()
    assert errs[-1] < 0.1 * errs[0]
    assert lr.refused == 0 and lr.flt == 0
    # within the description's gate range (the planning range lies inside it by the
    # pulse margins: the rule aims at it, the hard bounds are what it guarantees)
    lo, hi = board.limits.gate_range
    assert np.all((hal.taps >= lo) & (hal.taps <= hi))


def test_gen2_write_edges_sets_gate_volts_and_refuses_beyond_range():
    board = load_board("gen2-clln")
    compiled = compile_board(board)
    hal = PhysicsHal(board, compiled.body)
    _, dev = memory_pair()
    app = app_mod.App(compiled.body, compiled.sha256, None, Clock(), dev, hal=hal)
    hal.taps[:] = np.asarray(app.learner.pos) * hal.gate_vpc
    assert app.write_edges({"start": 2, "k": [3.0, 1.5]}) == {"count": 2}
    got = app.read_edges({"start": 2, "count": 2})["k"]
    assert got == pytest.approx([3.0, 1.5], abs=2 * hal.gate_vpc)
    moves = hal.moves
    with pytest.raises(app_mod.Fail) as info:
        app.write_edges({"start": 0, "k": [2.0, 6.0]})  # 6 V > the 5.2 V gate limit
    assert info.value.code == consts.E_LIMIT and hal.moves == moves


def test_a_fault_in_a_step_sends_the_documented_fault_event_and_keeps_serving(gen1):
    """An unexpected exception in a training step (a driver bug) stops training and sends
    ``fault`` {flt, msg} as the protocol definition gives it; the board still answers."""
    from . import _protocol_check as check

    link, app, hal, _ = gen1
    x, y = _examples()
    link.call("upload_examples", x=x.tolist(), y=y.tolist(), clear=True)

    def broken(net, out):
        raise RuntimeError("ADC gone")

    hal.read_nodes = broken
    link.call("train", steps=10, every=0)
    name, data = link.next_event(timeout=10)
    assert check.event_problems([name, data]) == []
    assert name == msgs.EV_FAULT and data["msg"] == "RuntimeError: ADC gone"
    assert data["flt"] & consts.F_LIMIT
    assert link.call("status")["state"] == "idle"


def test_parked_events_say_why(gen1):
    from . import _protocol_check as check

    link, app, hal, _ = gen1
    link.call("set_params", host_timeout_ms=100)
    silent = link.next_event(timeout=10)
    link.call("set_params", host_timeout_ms=0)
    assert link.call("park") == {"parked": True}
    asked = link.next_event(timeout=10)
    for ev in (silent, asked):
        assert check.event_problems(list(ev)) == []
    assert (silent[1]["reason"], asked[1]["reason"]) == ("host_silent", "request")
    assert silent[1]["flt"] & consts.F_HOST_SILENT and asked[1]["flt"] & consts.F_PARKED


@pytest.mark.parametrize("which", ["gen1-digipot", "gen2-clln", "spi", "dac"])
def test_safety_rule_and_hal_number_edge_kinds_alike(which, tmp_path):
    """One edge-kind table (``lbfw.consts``): the limits, the rule and the hardware layer
    of a wired board agree, for X9C and SPI digipots, pulse gates and DAC gates."""
    from pathlib import Path

    from learnboard.cli.connection import LinkedInProcessBoard

    from .test_reliability_limits import _dac_gate_board

    board = {"spi": str(Path(__file__).parent / "boards" / "spi-parts.toml"),
             "dac": _dac_gate_board(tmp_path) if which == "dac" else None}.get(which, which)
    with LinkedInProcessBoard(board, seed=1) as b:
        app, desc = b.app, b.board
        gates = b.compiled.body["gates"]
        gate = consts.K_PULSE if gates is not None and gates["drv"] == "pulse" else consts.K_DAC
        want = [{"resistor": consts.K_FIXED, "digipot": consts.K_POT, "transistor": gate}[e.kind]
                for e in desc.edges]
        assert list(app.limits.kind) == want
        assert list(app.hal.ekind) == want
        assert [k for k, w in zip(app.rule.kind, want, strict=True) if w != consts.K_FIXED] == [
            w for w in want if w != consts.K_FIXED]
        spi = [e for e, ed in enumerate(b.compiled.body["edges"])
               if ed["k"] == "d" and any(d is not None and "w" in d for d in ed["d"])]
        assert [e for e in range(len(want)) if app.hal.spot[e]] == spi
        assert bool(spi) == (which == "spi")
        assert (consts.K_DAC in want) == (which == "dac")


def test_status_uptime_counts_milliseconds_past_the_microsecond_wrap(gen1, monkeypatch):
    """uptime_ms comes from the board clock's millisecond ticks: ten minutes of uptime read
    as ten minutes (the microsecond ticks wrap after about nine), and it wraps at 2**30 ms."""
    link, app, _hal, _ = gen1
    t0 = app.t_boot_ms
    monkeypatch.setattr(app.clock, "ticks_ms", lambda: (t0 + 600_000) & 0x3FFFFFFF)
    assert link.call("status")["uptime_ms"] == 600_000
    monkeypatch.setattr(app.clock, "ticks_ms", lambda: (t0 + 2**30 + 5) & 0x3FFFFFFF)
    assert link.call("status")["uptime_ms"] == 5
