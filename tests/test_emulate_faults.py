"""Board faults of the emulator (brown-outs, stuck edges, dead ADC inputs) and the
``--vm cpython`` serial port: the scheduler's numbers, the flags' errors, and their effect
on a running board (real VM, real pty, pyserial)."""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import time

import pytest
from learnboard.emulator.brownout import NEVER, BrownOuts, make_faults, parse_stuck_edges
from learnboard.firmware.lbfw import msgs
from learnboard.host.link import BoardError, Link
from learnboard.host.serial_ports import follow

from learnboard.boards import load_board
from learnboard.errors import InputError
from tests.mpvm import require_vm
from tests.test_emulate_with_mpremote_and_pyserial import flashed_board, hello_when_up


def test_fixed_brownouts_fire_once_each_in_order():
    b = BrownOuts([2.0, 0.5])
    assert b.next_us == 500_000
    assert not b.due(499_999)
    assert b.due(500_000) and not b.due(500_001)
    assert b.due(3_000_000)  # overdue: fires once, at the next look
    assert b.count == 2 and b.next_us == NEVER and not b.due(10**12)


def test_random_brownouts_follow_their_rate_and_seed():
    def times(seed):
        b = BrownOuts(rate_per_s=0.5, seed=seed)
        out = []
        for t in range(0, 2_000_000_000, 10_000):  # 2000 virtual s looked at every 10 ms
            if b.due(t):
                out.append(t)
        return out

    a = times(3)
    assert a == times(3) and a != times(4)
    # Poisson, mean 1000: 5 sigma is about 160
    assert 840 <= len(a) <= 1160


@pytest.mark.parametrize("kwargs, field", [({"at_s": [-1.0]}, "--brownout-at"), ({"rate_per_s": -0.1}, "--brownout-rate")])
def test_bad_brownout_values_name_the_flag(kwargs, field):
    with pytest.raises(InputError) as err:
        BrownOuts(**kwargs)
    assert err.value.field == field


def test_fault_flags_parse_and_check_against_the_board():
    gen2 = load_board("gen2-clln")
    assert parse_stuck_edges(["3", "1:7", f"1:{gen2.edges[2].name}"], gen2) == {(0, 3), (1, 7), (1, 2)}
    for bad in ("1:32", "2:0", "x", "-1"):
        with pytest.raises(InputError, match="stuck edge"):
            parse_stuck_edges([bad], gen2)
    f = make_faults(gen2, stuck_edges=["5"], dead_adc=[2], noise_scale=2.0, leak_scale=0.0)
    assert (f.stuck_edges, f.dead_adc, f.noise_scale, f.leak_scale) == ({(0, 5)}, {2}, 2.0, 0.0)
    with pytest.raises(InputError, match="0..4"):
        make_faults(gen2, dead_adc=[5])
    with pytest.raises(InputError) as err:
        make_faults(gen2, noise_scale=-1)
    assert err.value.field == "--noise-scale"


@pytest.mark.vm
def test_a_brownout_in_the_vm_reboots_the_firmware_and_power_cycles_the_parts(tmp_path):
    """gen1: the X9C wipers come back at their stored (EEPROM) taps; the firmware boots again
    and has lost its uploaded examples."""
    require_vm()
    vb = flashed_board(tmp_path, "gen1-digipot")
    with vb:
        hello_when_up(vb.port)
        with vb.lock:
            stored = vb.world.true_state(0).edge_state.copy()
        # the brown-out drops the port, as USB does: the link follows the board
        with Link.open(vb.port, timeout=5.0, follow=follow) as link:
            k = link.call("read_edges")["k"]
            moved = [v + 5 if i % 2 == 0 else v for i, v in enumerate(k)]
            link.call("write_edges", start=0, k=moved)
            link.call("upload_examples", x=[[0.2, 0.1]], y=[[0.1, 0.1]], clear=True)
            with vb.lock:
                assert (vb.world.true_state(0).edge_state != stored).any()
                # the board idles: virtual time follows real time from here
                vb.brownouts = BrownOuts([vb.world.clock.now_s + 0.3])
            deadline = time.monotonic() + 20
            while vb.counters().power_cycles == 0:
                assert time.monotonic() < deadline, "no brown-out within 20 s"
                time.sleep(0.05)
            kinds = []
            while msgs.EV_BOOT not in kinds:  # the rebooted firmware announces itself
                ev = link.next_event(timeout=20)
                assert ev is not None, f"no boot event after the brown-out (events {kinds})"
                kinds.append(ev[0])
            with pytest.raises(BoardError, match="example"):
                link.call("train", steps=1)
        with vb.lock:
            after = vb.world.true_state(0).edge_state
        assert list(after) == list(stored)
        assert vb.brownouts.count == 1 and vb.counters().hard_resets == 0


def test_emulate_cpython_serves_the_protocol_with_board_faults_on_a_pty():
    proc = subprocess.Popen([sys.executable, "-m", "learnboard", "emulate", "--vm", "cpython", "--board", "gen2-clln",
                             "--dead-adc", "0", "--seed", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "learnboard emulate printed no port"
        port = proc.stdout.readline().decode().strip()
        assert re.fullmatch(r"/dev/pts/\d+", port), port
        with Link.open(port, timeout=2.0) as link:
            hello = link.hello()
            assert hello["impl"] == "cpython" and hello["board"] == "gen2-clln"
            link.call("upload_examples", x=[[0.3, 0.1]], y=[[0.2]], clear=True)
            # the free network's nodes are read on ADC input 0, which is dead: 0 V
            assert link.call("infer", x=[0.3, 0.1])["y"] == [0.0]
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
    assert rc == 0 and "stopped" in proc.stderr.read().decode()
