"""The VM's ``machine`` (emulator/vmlib) driving the CPython world over its socket."""

import json
from pathlib import Path

import numpy as np
import pytest
from learnboard.emulator.cost_model import cost_model
from learnboard.emulator.world import World
from learnboard.emulator.world_server import WorldServer

from learnboard.boards import compile_board, load_board
from tests.mpvm import run_vm

pytestmark = pytest.mark.vm  # runs the firmware in the real VM(s)

VMLIB = Path(__file__).resolve().parents[1] / "emulator" / "vmlib"


@pytest.fixture
def served(tmp_path, monkeypatch):
    world = World("gen2-clln", seed=4)
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    with WorldServer(world, sock) as server:
        yield world, server, tmp_path


def test_firmware_hal_in_the_vm_reads_the_world(served):
    world, server, tmp = served
    body = compile_board(load_board("gen2-clln")).body
    (tmp / "body.json").write_text(json.dumps(body))
    src = f"""
import json, machine, time
from lbfw.hal import Clock, Hal
body = json.load(open({str(tmp / 'body.json')!r}))
h = Hal(body, machine, Clock())
t0 = time.ticks_us()
for ch in range(7):
    h.drive(h.vline([0, ch]), 150)
h.settle()
out = [0] * 16
h.read_nodes(0, out)
print(out, time.ticks_diff(time.ticks_us(), t0))
"""
    proc = run_vm(src, path=[VMLIB])
    assert server.wait_idle()
    line = proc.stdout.decode().strip().splitlines()[-1]
    codes, elapsed = line.rsplit("]", 1)
    codes = np.array(json.loads(codes + "]"))
    expected = world.true_state(0).node_voltages * 7.0 / 3.3 * 4096
    assert world.dacs["din"].codes[:7] == [150] * 7
    assert np.max(np.abs(codes[1:] - expected[1:])) <= 8  # INL ±4, noise, quantisation
    # virtual time: 15 read nodes x (20 us settle + 16 conversions of 2 us), no real sleeps
    assert 15 * (20 + 16 * 2) <= int(elapsed) < 100_000


def test_vm_without_world_keeps_the_builtin_machine(monkeypatch):
    monkeypatch.delenv("LB_WORLD", raising=False)
    proc = run_vm("import machine; print(hasattr(machine, 'reset'), hasattr(machine, 'Signal'))",
                  path=[VMLIB])
    assert proc.stdout.decode().split() == ["True", "True"]


def test_vm_time_runs_on_the_virtual_clock(served):
    world, server, _ = served
    proc = run_vm("import time\nt0 = time.ticks_us()\ntime.sleep_ms(250)\n"
                  "print(time.ticks_diff(time.ticks_us(), t0))", path=[VMLIB], timeout=20)
    assert server.wait_idle()
    assert 250_000 <= int(proc.stdout.decode().split()[-1]) <= 250_010
    assert world.clock.now_us >= 250_000


CLOCK_WRAP = """
import micropython, time


def run():
    t0 = time.ticks_us()  # the first call connects to the world (allocates): unlocked
    m0 = time.ticks_ms()
    micropython.heap_lock()
    for i in range(10):
        time.sleep_us(100)
    t1 = time.ticks_us()
    m1 = time.ticks_ms()
    micropython.heap_unlock()
    print(t0, t1, m0, m1, time.ticks_diff(t1, t0))


run()
"""


def test_vm_ticks_wrap_at_2_30_without_heap_ints(served):
    """Past 2^30 µs (18 virtual minutes; here past 2^32 too) ticks_us wraps as on a board,
    ticks_ms counts ms since power-on modulo 2^30, and reading or moving the clock makes no
    heap int: on the 32-bit VM one would be a MemoryError under heap_lock."""
    world, server, _ = served
    start = 2**32 + 2**30 - 300
    world.clock.advance_us(start)
    proc = run_vm(CLOCK_WRAP, path=[VMLIB], timeout=20)
    assert server.wait_idle()
    t0, t1, m0, m1, dt = (int(x) for x in proc.stdout.decode().split())
    call = cost_model("rp2040").call_us  # each ticks/sleep call also costs the model's call time
    assert t0 == (start + call) & (2**30 - 1) and t1 < t0  # wrapped
    assert dt == 10 * (100 + call) + 2 * call  # the sleeps, and ticks_ms's and ticks_us's calls
    assert m0 == ((start + 2 * call) // 1000) & (2**30 - 1)
    assert m1 == (world.clock.now_us // 1000) & (2**30 - 1)
