"""Safety as a property: whatever the host sends, the emulated physics stays inside the
board description's limits (checked after every pass of the firmware's loop)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from learnboard.cli.connection import LinkedInProcessBoard
from learnboard.host.messages import ErrorCode
from learnboard.studies.reliability.limits import LimitMonitor, random_commands

from learnboard.boards import load_board

BOUNDS = {
    "gen2-clln": ["node V low", "node V high", "edge current", "driver V low", "driver V high",
                  "gate low", "gate high"],
    "gen1-digipot": ["node V low", "node V high", "edge current", "driver V low", "driver V high",
                     "tap low", "tap high"],
}


@pytest.mark.parametrize(("profile", "seed"), [("gen2-clln", 1), ("gen1-digipot", 2)])
def test_random_commands_never_exceed_any_bound(profile, seed):
    board = load_board(profile)
    monitor = LimitMonitor(board)
    with LinkedInProcessBoard(board, seed=seed, after_tick=monitor) as emu:
        log = random_commands(emu.link, board, n=120, seed=seed)
        assert emu.error is None, f"the firmware loop died: {emu.error!r}"
    assert monitor.checks > log.sent  # checked after actuations, not only per command
    # every bound of the description, both sides of each range, was looked at
    assert [b.what for b in monitor.bounds] == BOUNDS[profile]
    assert all(b.checked > 0 for b in monitor.bounds), [b.what for b in monitor.bounds if not b.checked]
    assert monitor.n_violations == 0, monitor.violations[:5]
    assert all(b.margin >= -b.slack for b in monitor.bounds)
    # the campaign did reach for the limits: unsafe requests were refused, by a safety
    # limit among others, and none was a firmware bug
    assert log.refused > 0 and log.trained > 0 and log.by_code.get("LIMIT", 0) > 0
    assert log.internal == 0, log.by_code
    assert 0 < monitor.worst_node <= 1.0


def test_training_keeps_the_twin_networks_gates_within_the_limit():
    """Found by `benchmarks/reliability.py safety --exclude self_test` (seed 0): the
    rule bounds gate pulses by network 0's read-back, and network 1's twin gate, with
    its own capacitor and leakage, drifted up to 40 mV beyond the limit."""
    board = load_board("gen2-clln")
    monitor = LimitMonitor(board)
    with LinkedInProcessBoard(board, seed=0, after_tick=monitor) as emu:
        random_commands(emu.link, board, n=300, seed=0, exclude=("self_test",))
        assert emu.error is None, f"the firmware loop died: {emu.error!r}"
    assert monitor.violations == [], f"worst gate {monitor.worst_gate * board.limits.gate_range[1]:.3f} V"
    assert monitor.worst_gate > 0.99  # gates were driven to the top of their range


class _World:
    """A world whose true state is given: every bound at its limit, except the ones set."""

    def __init__(self, board, **beyond):
        self.board = board
        self.beyond = beyond

    def true_state(self, net):
        from types import SimpleNamespace

        b, lim = self.board, self.board.limits
        v = np.full(b.n_nodes, lim.max_node_volts / 2)
        i = np.zeros(b.n_edges)
        s = np.array([float(lim.tap_range[0]) if e.kind == "digipot" else lim.gate_range[0]
                      for e in b.edges])
        for what, k, x in self.beyond.values():
            if what != "drv":
                {"v": v, "i": i, "s": s}[what][k] = x
        return SimpleNamespace(node_voltages=v, edge_currents=i, edge_state=s)

    def driven(self, net):
        return {1: self.beyond.get("drv", (None, None, self.board.limits.max_node_volts))[2]}


@pytest.mark.parametrize(("profile", "bound", "what", "value"), [
    ("gen1-digipot", "node V high", "v", 0.51), ("gen1-digipot", "node V low", "v", -0.01),
    ("gen1-digipot", "edge current", "i", -0.0011), ("gen1-digipot", "tap low", "s", 39),
    ("gen1-digipot", "tap high", "s", 100), ("gen2-clln", "gate low", "s", 0.749),
    ("gen2-clln", "gate high", "s", 5.201), ("gen2-clln", "driver V high", "drv", 0.46),
    ("gen2-clln", "driver V low", "drv", -0.01)])
def test_the_monitor_sees_each_bound_crossed(profile, bound, what, value):
    """The check itself can fail, on either side of every range: one value just beyond
    one bound is reported as exactly that violation, on each network."""
    board = load_board(profile)
    monitor = LimitMonitor(board)
    monitor(_World(board))
    assert monitor.n_violations == 0  # at the limits is within them
    monitor(_World(board, x=(what, 3, value)) if what != "drv" else _World(board, drv=(what, 1, value)))
    assert [(x.what, x.index) for x in monitor.violations] == [(bound, 1 if what == "drv" else 3)] * board.n_nets
    assert monitor.bound(bound).margin < 0


def test_widest_sign_rule_pulses_stop_at_the_gate_limit():
    """Gen-1 sign rule with the longest pulses drives gates to both ends of their range:
    they end up at the limit, never beyond it (the pulse's switch-off time included)."""
    board = load_board("gen2-clln")
    monitor = LimitMonitor(board)
    with LinkedInProcessBoard(board, seed=0, after_tick=monitor) as emu:
        link = emu.link
        link.call("upload_examples", x=[[0.4, 0.4], [0.1, 0.4]], y=[[0.44], [0.0]], clear=True)
        link.call("write_edges", k=[5.1] * board.n_edges)
        link.call("set_params", mode="gen1", pulse_us=8191)
        link.call("train", steps=30, every=10)
        while (ev := link.next_event(timeout=30)) is not None and ev[0] != "done":
            pass
        gates = link.call("read_edges")["k"]
    assert monitor.violations == []
    assert monitor.worst_gate > 0.99  # the campaign did push gates to the top of the range
    assert min(gates) >= board.limits.gate_range[0] - 0.01


def test_self_test_keeps_gates_near_the_top_within_the_limit():
    """Found by `benchmarks/reliability.py safety` (seed 0: 4,000+ violations, gates to
    5.44 V): self_test's +50 us charge pulse from a gate near the top of its range, and
    its put-back, drive the gate beyond the description's limit."""
    board = load_board("gen2-clln")
    monitor = LimitMonitor(board)
    with LinkedInProcessBoard(board, seed=0, after_tick=monitor) as emu:
        link = emu.link
        link.call("write_edges", k=[board.limits.gate_range[1] - 0.05] * board.n_edges)
        before = np.array(link.call("read_edges")["k"])
        for _ in range(3):
            assert link.call("self_test")["ok"]
        after = np.array(link.call("read_edges")["k"])
    assert monitor.violations == [], f"worst gate {monitor.worst_gate * board.limits.gate_range[1]:.3f} V"
    # put back near where they were: within 10 mV a self_test (gate leakage during the
    # test, pulses of 1 us + the switch-off time); it was a 17 mV ratchet upwards
    assert np.abs(after - before).max() < 0.03, after - before


@pytest.mark.parametrize("stored", [0, 21, 50, 99])
def test_digipots_are_homed_at_boot_wherever_their_wipers_start(stored):
    """An X9C wiper comes back from power-up at its EEPROM tap, which the firmware cannot
    read. It homes every pot, so its tap count is the physical tap from then on — also
    after a brown-out — and its lowest allowed tap keeps the edge current in its rating
    (counting from an assumed mid-scale start once put tap 40 at physical tap ~20:
    2.9 mA through a 1 mA part)."""
    from learnboard.emulator.devices.digipot import X9cDigipot
    from learnboard.emulator.world import World

    board = load_board("gen1-digipot")

    def world(b):
        w = World(b, seed=4)
        for dev in w.edges[0]:
            if isinstance(dev, X9cDigipot):
                dev.stored_tap = dev.tap = stored
        return w

    def physical(emu):
        return [dev.tap for dev in emu.world.edges[0] if isinstance(dev, X9cDigipot)]

    monitor = LimitMonitor(board)
    with LinkedInProcessBoard(board, seed=4, world_factory=world, after_tick=monitor) as emu:
        link = emu.link
        assert physical(emu) == link.call("read_edges")["k"]
        lo = board.limits.tap_range[0]
        link.call("write_edges", k=[lo] * board.n_edges)
        assert physical(emu) == [lo] * board.n_edges
        top = board.limits.max_node_volts
        link.call("infer", x=[top] * len(board.inputs))
        monitor.power_up()
        emu.reset("power-on")  # every wiper back at its stored tap, then homed
        assert physical(emu) == link.call("read_edges")["k"]
    assert monitor.violations == []
    # below the range at power-up (stored tap 0/21), brought in by the boot's homing
    assert (monitor.power_up_states > 0) == (stored < board.limits.tap_range[0])
    assert monitor.worst_current > 0.1  # the lowest taps did carry current


def test_idle_gates_at_the_bottom_of_their_range_never_leak_out_of_it():
    """Gates written to the lowest value the board accepts, then left idle for 4 minutes
    of board time: leakage (0.1-0.5 mV/s) would take them below the 0.75 V floor in
    under a minute; the firmware reads them every second and lifts any that leaked below
    its planning range, so none ever crosses the floor (it once sat there; a checkpoint
    of such a gate then failed to restore)."""
    board = load_board("gen2-clln")
    monitor = LimitMonitor(board)
    lo = board.limits.gate_range[0]
    with LinkedInProcessBoard(board, seed=3, after_tick=monitor) as emu:
        link = emu.link
        link.call("write_edges", k=[lo + 0.5] * board.n_edges)
        low = link.call("write_edges", k=[lo] * board.n_edges, clamp=True)
        assert low["clamped"] == list(range(board.n_edges))  # the floor itself is outside the margins
        start = min(min(emu.world.edge_state(n)) for n in range(board.n_nets))
        for _ in range(240):  # 1 s of board time, then a loop pass (the host's status request)
            with emu.lock:
                emu.world.clock.advance_us(1_000_000)
            link.call("status")
        assert emu.error is None
        end = [emu.world.edge_state(n) for n in range(board.n_nets)]
    assert start < lo + 0.03  # near the floor: leakage alone would cross it within 4 minutes
    assert monitor.n_violations == 0, monitor.violations[:3]
    assert monitor.bound("gate low").margin >= 0
    assert all(min(g) >= lo for g in end)


def test_a_board_that_boots_with_its_gates_below_the_range_lifts_them_into_it():
    """Gate capacitors discharge while a board is off: the firmware brings every gate
    (both twins) into its range at boot, before it serves the host."""
    from learnboard.emulator.world import World

    board = load_board("gen2-clln")
    with LinkedInProcessBoard(board, seed=5, world_factory=lambda b: World(b, seed=5, gate_v0=0.3)) as emu:
        emu.link.hello()
        with emu.lock:
            gates = [emu.world.edge_state(n) for n in range(board.n_nets)]
    lo, hi = board.limits.gate_range
    assert all(lo <= g.min() and g.max() <= hi for g in gates), [g.min() for g in gates]


def test_write_edges_outside_the_range_is_refused_or_clamped_on_request():
    """Without ``clamp`` an out-of-range edge state is refused and nothing moves; with
    it, that edge goes to its nearest safe value and the reply names it."""
    from learnboard.host.link import BoardError

    board = load_board("gen2-clln")
    monitor = LimitMonitor(board)
    lo, hi = board.limits.gate_range
    with LinkedInProcessBoard(board, seed=1, after_tick=monitor) as emu:
        link = emu.link
        before = link.call("read_edges")["k"]
        with pytest.raises(BoardError) as info:
            link.call("write_edges", k=[0.7469] + [2.0] * (board.n_edges - 1))
        assert info.value.code == ErrorCode.LIMIT
        assert (info.value.field, info.value.edge) == ("k", 0)  # the edge at fault, by number
        assert "edge 0: 0.7469" in info.value.message
        # the message tells people the range the board plans in: inside the description's,
        # by its measured margins
        safe = re.search(r"outside the safe range ([0-9.]+)\.\.([0-9.]+)", info.value.message)
        assert safe and lo < float(safe[1]) < lo + 0.03 and hi - 0.06 < float(safe[2]) < hi
        assert "clamp=true" in info.value.message
        assert link.call("read_edges")["k"] == pytest.approx(before, abs=0.005)
        r = link.call("write_edges", k=[0.7469, 5.3] + [2.0] * (board.n_edges - 2), clamp=True)
        assert r == {"count": board.n_edges, "clamped": [0, 1]}
        k = link.call("read_edges")["k"]
    # at the nearest end of the range the board plans in (a pulse lands within 20 mV of it)
    assert float(safe[1]) - 0.005 < k[0] < float(safe[1]) + 0.02
    assert float(safe[2]) - 0.02 < k[1] < float(safe[2]) + 0.005
    # the shortest pulse conducts its switch-off overhead too (~25 us on an RP2040): a gate
    # at 2 V moves ~20 mV in it, so a write lands within about half of that
    assert k[2:] == pytest.approx([2.0] * (board.n_edges - 2), abs=0.012)
    assert monitor.n_violations == 0


def _dac_gate_board(tmp_path):
    """gen2-clln with every gate held by a DAC channel (eight octal 8-bit DACs, x2.2 to
    5.5 V full scale) instead of charge/discharge pulses: no shipped profile has DAC
    gates, so this one is made from gen2-clln's description."""
    import re

    from learnboard.boards.profiles import __path__ as profiles

    src = (Path(profiles[0]) / "gen2-clln.toml").read_text()
    src = src.replace('name = "gen2-clln"', 'name = "gen2-dac"')
    src = re.sub(r'driver = "pulse".*', 'driver = "dac"', src)
    edges = iter(range(32))

    def dac(_m):
        e = next(edges)
        return f'dac = ["g{e // 8}.{e % 8}", "g{(32 + e) // 8}.{(32 + e) % 8}"]'

    src = re.sub(r'charge = \["gsw\.\d+", "gsw\.\d+"\]\ndischarge = \["gsw\.\d+", "gsw\.\d+"\]', dac, src)
    cs = [10, 11, 12, 13, 14, 15, 16, 21]
    dacs = "".join(f'[dacs.g{n}]\npart = "AD5308"\nbus = "spi0"\ncs = {cs[n]}\nchannels = 8\nbits = 8\n'
                   f'vref = 2.5\ngain = 2.2\nsettle_us = 10.0\n\n' for n in range(8))
    src = src[:src.index("[expanders.gsw]")] + dacs + src[src.index("[adc]"):]
    path = tmp_path / "gen2-dac.toml"
    path.write_text(src)
    return load_board(path)


def test_dac_gates_stay_in_their_range_and_are_set_at_boot(tmp_path):
    """A DAC gate's state is its DAC code, in the DAC's volts per code (it was taken in
    the gate read-back's ~1.3 mV codes: gates went to 5.48 V, and to 0 V where the DACs
    power up and where park drove every output to 0)."""
    board = _dac_gate_board(tmp_path)
    monitor = LimitMonitor(board)
    lo, hi = board.limits.gate_range
    with LinkedInProcessBoard(board, seed=2, after_tick=monitor) as emu:
        with emu.lock:  # set at boot to mid-range (the DACs power up at 0 V)
            assert all(lo < g < hi for n in range(board.n_nets) for g in emu.world.edge_state(n))
        log = random_commands(emu.link, board, n=150, seed=2)
        emu.link.call("write_edges", k=[lo, hi] * (board.n_edges // 2))  # both ends exactly
        emu.link.call("park")  # leaves the gate DACs alone
        with emu.lock:  # 10 RC: the gates settle to their DACs' volts
            emu.world.clock.advance_us(22_000)
        emu.link.call("status")
        with emu.lock:
            assert all(lo <= g <= hi for n in range(board.n_nets) for g in emu.world.edge_state(n))
        assert emu.error is None
    assert monitor.n_violations == 0, monitor.violations[:3]
    assert log.trained > 0 and log.refused > 0
    assert monitor.bound("gate high").margin < 0.03 and monitor.bound("gate low").margin < 0.03


def test_training_moves_dac_gates_to_the_codes_the_board_reports(tmp_path):
    """The learning step's DAC-gate moves reach the DACs: after training, each gate sits
    at the volts of the code the board reports for it (they once stayed where boot put
    them while the board's own record moved on)."""
    from learnboard.host.session import load_session_task

    board = _dac_gate_board(tmp_path)
    task = load_session_task("regression", board)
    with LinkedInProcessBoard(board, seed=4) as emu:
        link = emu.link
        start = link.call("read_edges")["k"]
        link.call("upload_examples", x=np.asarray(task.x_train[:4]).tolist(),
                  y=np.asarray(task.y_train[:4]).tolist(), clear=True)
        link.call("set_params", alpha=20.0)
        link.call("train", steps=30, every=10)
        while (ev := link.next_event(timeout=60)) is not None and ev[0] != "done":
            pass
        reported = link.call("read_edges")["k"]
        with emu.lock:  # 10 RC: every gate settles to its DAC's volts
            emu.world.clock.advance_us(22_000)
            true = [emu.world.edge_state(n) for n in range(board.n_nets)]
    moved = [e for e in range(board.n_edges) if abs(reported[e] - start[e]) > 0.01]
    assert len(moved) > board.n_edges // 2
    for g in true:
        assert g == pytest.approx(reported, abs=0.012)  # within half an 8-bit code (21 mV)


def test_gate_dacs_with_different_volts_per_code_are_a_description_error(tmp_path):
    """The firmware keeps every DAC gate's state in one unit (DAC codes): a description
    whose gate DACs differ is refused, naming the edge and the DACs."""
    from learnboard.errors import InputError

    path = _dac_gate_board(tmp_path).source
    text = Path(path).read_text()
    i = text.index("[dacs.g3]")
    Path(path).write_text(text[:i] + text[i:].replace("gain = 2.2", "gain = 2.0", 1))
    with pytest.raises(InputError) as info:
        load_board(path)
    assert "edges[24].dac: gate DAC g3 differs from gate DAC g0" in str(info.value)


@pytest.mark.parametrize("tau", [0.95, 1.05])
def test_gate_capacitors_off_nominal_by_the_rc_tolerance_stay_in_range(tau):
    """The firmware plans pulses with the description's nominal RC; its margins cover a
    gate RC up to 5 % off (``RC_TOL``) on both the charge and the discharge side: random
    commands and the widest sign-rule pulses at both ends of the range cross no bound."""
    from learnboard.emulator.devices.gate import GateCap
    from learnboard.emulator.world import World

    board = load_board("gen2-clln")

    def world(b):
        w = World(b, seed=6)
        for net in w.edges:
            for g in net:
                if isinstance(g, GateCap):
                    g.tau_us *= tau
        return w

    monitor = LimitMonitor(board)
    lo, hi = board.limits.gate_range
    with LinkedInProcessBoard(board, seed=6, world_factory=world, after_tick=monitor) as emu:
        link = emu.link
        random_commands(link, board, n=120, seed=6)
        link.call("upload_examples", x=[[0.4, 0.4], [0.1, 0.4]], y=[[0.44], [0.0]], clear=True)
        link.call("set_params", mode="gen1", pulse_us=8191)
        for start in (hi - 0.1, lo + 0.1):
            link.call("write_edges", k=[start] * board.n_edges)
            link.call("train", steps=20, every=10)
            while (ev := link.next_event(timeout=30)) is not None and ev[0] != "done":
                pass
        assert emu.error is None
    assert monitor.n_violations == 0, monitor.violations[:3]
    assert monitor.bound("gate high").margin < 0.05 and monitor.bound("gate low").margin < 0.05
