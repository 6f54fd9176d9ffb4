"""The firmware HAL's own read loop (the one a board runs) in the VM: its node and gate
reads give the same codes as the in-process machine, with blocks and one conversion per
``read_u16``, and the VM's ``machine`` answers each oversampled node read from one
block of conversions (one round trip per node read, not one per conversion)."""

import json

import numpy as np
import pytest
from learnboard.emulator import machine_layer
from learnboard.emulator.world import World
from learnboard.emulator.world_server import WorldServer
from learnboard.firmware.lbfw.consts import K_PULSE
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board
from tests.mpvm import run_vm
from tests.test_vm_machine_drives_the_world import VMLIB

pytestmark = pytest.mark.vm  # runs the firmware in the real VM(s)


def _inprocess(body, seed, blocks):
    world = World("gen2-clln", seed=seed)
    machine, utime = machine_layer.build(world, blocks=blocks)
    hal = Hal(body, machine, utime)
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


def test_vm_reads_what_one_conversion_per_read_gives(tmp_path, monkeypatch):
    body = compile_board(load_board("gen2-clln")).body
    (tmp_path / "body.json").write_text(json.dumps(body))
    world = World("gen2-clln", seed=6)
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = f"""
import json, machine
from lbfw.consts import K_PULSE
from lbfw.hal import Clock, Hal
body = json.load(open({str(tmp_path / 'body.json')!r}))
h = Hal(body, machine, Clock())
for ch in range(7):
    h.drive(h.vline([0, ch]), 60 + 20 * ch)
h.settle()
out = []
for net in (0, 1):
    codes = [0] * 16
    h.read_nodes(net, codes)
    out.append(codes)
pos = [-1] * len(h.ekind)
h.read_gates(pos)
out.append(pos)
print(json.dumps(out))
"""
    with WorldServer(world, sock) as server:
        proc = run_vm(src, path=[VMLIB])
        assert server.wait_idle()
        trips = server.round_trips
    got = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    want, now, pins = _inprocess(body, seed=6, blocks=False)
    assert got == want
    assert _inprocess(body, seed=6, blocks=True) == (want, now, pins)
    assert abs(world.clock.now_us - now) <= 50  # VM start-up ticks aside
    assert np.count_nonzero(np.array(want[0])) >= 14  # the nodes were really read
    gates = sum(1 for e in body["edges"] if any(d and "ch" in d for d in e["d"]))
    reads = _node_reads(body, 0) + _node_reads(body, 1) + gates
    # hello + one round trip per node read, and the first run of reads (one conversion
    # at a time until the VM has seen how long a run is): not one per conversion
    assert trips <= 1 + reads + body["adc"]["os"]
    assert trips < reads * body["adc"]["os"] // 4


def _node_reads(body, net) -> int:
    """Nodes of network ``net`` the HAL reads (those behind a mux)."""
    return sum(1 for r in body["nrd"][net] if r[0] >= 0)


def _rounds(h):
    """Scans as the learning step makes them, four times: the nodes of both networks,
    every gate, then the twins' gates chosen by a mask that changes from round to
    round (the run-ahead's prediction fails there)."""
    out = []
    for r in range(4):
        for ch in range(7):
            h.drive(h.vline([0, ch]), 50 + 15 * ch + 7 * r)
        h.settle()
        h.clock.sleep_us(1500)  # settled for the world too: reads that can run ahead
        for net in (0, 1):
            codes = [0] * 16
            h.read_nodes(net, codes)
            out.append(codes)
        pos = [-1] * len(h.ekind)
        h.read_gates(pos)
        out.append(pos)
        mask = bytearray(len(h.ekind))
        for e in range(r, len(mask), 3 + r):
            mask[e] = K_PULSE
        twin = [-1] * len(h.ekind)
        h.read_gates(twin, 1, mask)
        out.append(twin)
    return out


def test_the_vms_run_ahead_reads_what_one_conversion_per_read_gives(tmp_path, monkeypatch):
    body = compile_board(load_board("gen2-clln")).body
    (tmp_path / "body.json").write_text(json.dumps(body))
    world = World("gen2-clln", seed=9)
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    import inspect
    src = f"""
import json, machine
from lbfw.consts import K_PULSE
from lbfw.hal import Clock, Hal
body = json.load(open({str(tmp_path / 'body.json')!r}))
h = Hal(body, machine, Clock())
import select
select.poll().poll(0)  # as the firmware's main loop does once booted: scripts may come
{inspect.getsource(_rounds)}
print(json.dumps(_rounds(h)))
"""
    with WorldServer(world, sock) as server:
        proc = run_vm(src, path=[VMLIB])
        assert server.wait_idle()
        trips, ahead = server.round_trips, server.read_ahead
    got = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    ref = World("gen2-clln", seed=9)
    machine, utime = machine_layer.build(ref, blocks=False)
    want = _rounds(Hal(body, machine, utime))
    assert got == want
    assert abs(world.clock.now_us - ref.clock.now_us) <= 50  # VM start-up ticks aside
    assert ahead.scripts >= 4 and ahead.undone >= 1  # ran ahead, and went back
    reads = 4 * (2 * 15 + 32) + sum(1 for w in want[3::4] for c in w if c >= 0)
    assert trips < reads * 2 // 3  # (a learning step's scans: ~6 round trips for 92 reads)
