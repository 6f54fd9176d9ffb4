"""``machine.adc_scan`` (the firmware HAL's whole-scan read) of the VM's machine and of the
in-process machine layer: the same codes, pin writes and clock as the HAL's own read loop
(which runs where the machine has no adc_scan, as on real boards) — in the VM in one
round trip per scan instead of one per node."""

import json

import numpy as np
import pytest
from learnboard.emulator import machine_layer
from learnboard.emulator.world import World
from learnboard.emulator.world_server import WorldServer
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board
from tests.mpvm import run_vm
from tests.test_emulator_vm_world import VMLIB

pytestmark = pytest.mark.vm  # runs the firmware in the real VM(s)


def _inprocess(body, seed, scan=False):
    world = World("gen2-clln", seed=seed)
    machine, _ = machine_layer.build(world)
    if not scan:
        del machine.adc_scan  # the HAL's own loop, as on a board
    hal = Hal(body, machine, world.clock)
    assert (hal.scan is not None) == scan
    for ch in range(7):
        hal.drive(hal.vline([0, ch]), 60 + 20 * ch)
    hal.settle()
    out = []
    for net in (0, 1):
        codes = [0] * 16
        hal.read_nodes(net, codes)
        out.append(codes)
    pos = [-1] * len(hal.ekind)
    hal.read_gates(pos)
    out.append(pos)
    return out, world.clock.now_us, dict(world.pins)


def test_vm_scan_reads_what_the_hal_loop_reads(tmp_path, monkeypatch):
    body = compile_board(load_board("gen2-clln")).body
    (tmp_path / "body.json").write_text(json.dumps(body))
    world = World("gen2-clln", seed=6)
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = f"""
import json, machine
from lbfw.hal import Hal
body = json.load(open({str(tmp_path / 'body.json')!r}))
h = Hal(body, machine, machine)
assert h.scan is not None
for ch in range(7):
    h.drive(h.vline([0, ch]), 60 + 20 * ch)
h.settle()
out = []
for net in (0, 1):
    codes = [0] * 16
    h.read_nodes(net, codes)
    out.append(codes)
pos = [-1] * len(h.ekind)
machine.sync()
h.read_gates(pos)
out.append(pos)
print(json.dumps(out))
"""
    with WorldServer(world, sock) as server:
        proc = run_vm(src, path=[VMLIB])
        assert server.wait_idle()
        trips = server.round_trips
    got = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    want, now, pins = _inprocess(body, seed=6)
    assert got == want
    assert _inprocess(body, seed=6, scan=True) == (want, now, pins)
    assert world.clock.now_us == pytest.approx(now, abs=50)  # VM start-up ticks aside
    assert np.count_nonzero(np.array(want[0])) >= 14  # the nodes were really read
    # hello, two node scans, a sync, one gate scan (not 15 + 15 + 32 reads)
    assert trips <= 6
