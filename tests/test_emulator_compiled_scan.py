"""The in-process ``adc_scan``'s compiled path (``World._scan_steady`` +
``emulator/scan_kernel.py``) gives what the read-by-read path gives.

Each test runs the same seeded world twice — once as built, once with the compiled path
switched off (``_scan_plan`` answering None, so every read goes through ``set_pin`` and
``adc_sum``) — and compares codes, clock, pins, mux states, gate volts and the ADC's
noise stream position. The cases are the ones the compiled pass has to hand back to the
loop: reads while drives still settle, an always-on mux reading an unchanged channel, an
input that clips while settling, a stuck gate, a dead ADC input.
"""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.emulator import machine_layer
from learnboard.emulator.devices.adc import AdcModel
from learnboard.emulator.world import Faults, World
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board

BODY = compile_board(load_board("gen2-clln")).body


def _world(compiled: bool, seed: int = 3, faults: Faults | None = None):
    world = World("gen2-clln", seed=seed, faults=faults)
    if not compiled:
        world._scan_plan = lambda *a: None
    machine, _ = machine_layer.build(world)
    hal = Hal(BODY, machine, world.clock)
    assert hal.scan is not None
    return world, hal


def _snapshot(world: World, hal: Hal) -> dict:
    return {
        "now": world.clock.now_us,
        "pins": dict(world.pins),
        "muxes": [(m._channel, m._last_channel, m._channel_since, m._out, m.is_connected,
                   list(m.select)) for m in world.muxes.values()],
        "gates": [[g.v for g in net] for net in world.edges],
        "noise": float(world.adc.ahead(1)[0]),
        "solves": world.solves,
    }


def _session(compiled: bool, script, faults: Faults | None = None) -> list:
    world, hal = _world(compiled, faults=faults)
    out = []
    script(world, hal, out)
    out.append(_snapshot(world, hal))
    return out


def _reads(world, hal, out, nets=(0, 1)):
    for net in nets:
        codes = [0] * 16
        hal.read_nodes(net, codes)
        out.append(codes)
    pos = [-1] * len(hal.ekind)
    hal.read_gates(pos)
    out.append(pos)
    mask = bytearray(len(hal.ekind))
    for e in range(0, len(mask), 3):
        mask[e] = 2
    twin = [-1] * len(hal.ekind)
    hal.read_gates(twin, 1, mask)
    out.append(twin)
    out.append(_snapshot(world, hal))


def _drive_pulse_read(world, hal, out):
    for step in range(4):
        for ch in range(7):
            hal.drive(hal.vline([0, ch]), 40 + 25 * ch + 9 * step)
        hal.settle()
        _reads(world, hal, out)
        for e in range(0, len(hal.ekind), 5):
            hal.move(e, 30 if (e + step) % 2 else -30)
        _reads(world, hal, out)  # straight after pulses and chain writes


def test_compiled_scans_equal_read_by_read_scans():
    fast = _session(True, _drive_pulse_read)
    slow = _session(False, _drive_pulse_read)
    assert fast == slow
    assert any(c for c in fast[0])  # nodes really read


def test_reads_while_drives_settle_go_read_by_read():
    def script(world, hal, out):
        for ch in range(7):
            hal.drive(hal.vline([0, ch]), 200 - 20 * ch)
        # no settle: the first reads fall inside the drives' settling window
        assert world.clock.now_us < world._dynamic_until
        _reads(world, hal, out)

    assert _session(True, script) == _session(False, script)


def test_an_always_on_mux_rereading_its_channel_is_handed_back():
    # node muxes have no enable pin: reading the channel they already sit on settles
    # from their last conversion, not from a select edge (the kernel stops there)
    def script(world, hal, out):
        for ch in range(7):
            hal.drive(hal.vline([0, ch]), 40)
        hal.settle()
        codes = [0] * 16
        hal.read_nodes(0, codes)
        k = max(range(16), key=codes.__getitem__)
        rd = (bytes([hal.nrd[0][0][k]]), bytes([hal.nrd[0][1][k]]))
        one = [0]
        hal.scan(hal.mux, rd, hal.settle_us, hal.os, hal.adc_shift, one, None)
        for code in (200, 90, 255):  # the node moves; the mux stays on its channel
            for ch in range(7):
                hal.drive(hal.vline([0, ch]), code)
            world.clock.advance_us(100)  # drives settled: the compiled pass's turn
            hal.scan(hal.mux, rd, hal.settle_us, hal.os, hal.adc_shift, one, None)
            out.append((one[0], _snapshot(world, hal)))
        assert len({o[0] for o in out}) == 3  # it did follow the node

    assert _session(True, script) == _session(False, script)

def test_stuck_gates_and_dead_inputs_read_as_the_loop_reads():
    def faults():
        return Faults(stuck_edges={(0, 4), (1, 9)}, dead_adc=set())

    assert _session(True, _drive_pulse_read, faults()) == \
        _session(False, _drive_pulse_read, faults())
    dead = Faults(dead_adc={2})
    assert _session(True, _drive_pulse_read, dead) == \
        _session(False, _drive_pulse_read, Faults(dead_adc={2}))


def test_an_input_clipping_while_settling_is_read_sample_by_sample():
    def script(world, hal, out):
        hal.settle()
        codes = [0] * 16
        hal.read_nodes(0, codes)
        # push a node mux's held output above the ADC's reference: its next read clips
        # while it settles, which only the sample-by-sample branch handles
        mux = world.muxes["nodes_free"]
        mux._out = 1e5  # still ~4 V above the reference after the settling time
        codes = [0] * 16
        hal.read_nodes(0, codes)
        out.append(codes)
        out.append(_snapshot(world, hal))

    assert _session(True, script) == _session(False, script)


@pytest.mark.parametrize("n", [1, 7, 300, 5000])
def test_adc_noise_ahead_and_skip_follow_take(n):
    a, b = AdcModel(seed=9), AdcModel(seed=9)
    a.take(3), b.take(3)
    ahead = a.ahead(n).copy()
    a.skip(n)
    np.testing.assert_array_equal(ahead, np.array(b.take(n)))
    assert a.take(5) == b.take(5)
