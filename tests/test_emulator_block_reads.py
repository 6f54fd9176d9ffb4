"""The emulated ``machine``'s block reads (``ADC.read_u16`` answered from
:meth:`World.adc_block`) give what one conversion per call gives.

The firmware HAL runs its own read loop (as on a board); the in-process machine answers
each run of reads of one input from a block of conversions fetched at its first read.
Each test runs the same seeded world twice — once with blocks, once converting one
sample per ``read_u16`` (``machine_layer.build(world, blocks=False)``) — and compares
codes, clock, pins, mux states, gate volts, the ADC's noise stream position and the
solves. The cases are the ones the block paths must get right: reads while drives still
settle, an always-on mux reading an unchanged channel, an input that clips while
settling, a stuck gate, a dead ADC input.
"""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.emulator import machine_layer
from learnboard.emulator.devices.adc import AdcModel
from learnboard.emulator.world import Faults, World
from learnboard.firmware.lbfw.consts import K_PULSE
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board

BODY = compile_board(load_board("gen2-clln")).body


def _world(blocks: bool, seed: int = 3, faults: Faults | None = None):
    world = World("gen2-clln", seed=seed, faults=faults)
    machine, utime = machine_layer.build(world, blocks=blocks)
    hal = Hal(BODY, machine, utime)
    return world, hal


def _snapshot(world: World, hal: Hal) -> dict:
    return {
        "now": world.clock.now_us,
        "pins": dict(world.pins),
        # volts to 1 µV: a block takes a read gate's volts once, leaving out the ~1e-9 V
        # it leaks over the block's conversions (far below an LSB)
        "muxes": [(m._channel, m._channel_since, m._out,
                   m.is_connected, list(m.select)) for m in world.muxes.values()],
        "gates": [[g.v for g in net] for net in world.edges],
        "noise": float(world.adc.ahead(1)[0]),
        "solves": world.solves,
    }


def _same(a, b) -> bool:
    """Equal, floats (volts) to 1 µV."""
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= 1e-6
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def _session(blocks: bool, script, faults: Faults | None = None) -> list:
    world, hal = _world(blocks, faults=faults)
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
        mask[e] = K_PULSE
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


def test_block_reads_equal_one_conversion_per_read():
    fast = _session(True, _drive_pulse_read)
    slow = _session(False, _drive_pulse_read)
    assert _same(fast, slow)
    assert any(c for c in fast[0])  # nodes really read


def test_reads_while_drives_settle_go_read_by_read():
    def script(world, hal, out):
        for ch in range(7):
            hal.drive(hal.vline([0, ch]), 200 - 20 * ch)
        # no settle: the first reads fall inside the drives' settling window
        assert world.clock.now_us < world._dynamic_until
        _reads(world, hal, out)

    assert _same(_session(True, script), _session(False, script))


def test_an_always_on_mux_rereading_its_channel():
    # node muxes have no enable pin: reading the channel they already sit on settles
    # from their last conversion, not from a select edge
    def script(world, hal, out):
        for ch in range(7):
            hal.drive(hal.vline([0, ch]), 40)
        hal.settle()
        codes = [0] * 16
        hal.read_nodes(0, codes)
        k = max(range(16), key=codes.__getitem__)
        hal._read(hal.nrd[0], k)
        for code in (200, 90, 255):  # the node moves; the mux stays on its channel
            for ch in range(7):
                hal.drive(hal.vline([0, ch]), code)
            world.clock.advance_us(100)  # drives settled
            out.append((hal._read(hal.nrd[0], k), _snapshot(world, hal)))
        assert len({o[0] for o in out}) == 3  # it did follow the node

    assert _same(_session(True, script), _session(False, script))

def test_stuck_gates_and_dead_inputs_read_as_the_loop_reads():
    def faults():
        return Faults(stuck_edges={(0, 4), (1, 9)}, dead_adc=set())

    assert _same(_session(True, _drive_pulse_read, faults()),
                 _session(False, _drive_pulse_read, faults()))
    dead = Faults(dead_adc={2})
    assert _same(_session(True, _drive_pulse_read, dead),
                 _session(False, _drive_pulse_read, Faults(dead_adc={2})))


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

    assert _same(_session(True, script), _session(False, script))


@pytest.mark.parametrize("n", [1, 7, 300, 5000])
def test_adc_noise_ahead_and_skip_follow_take(n):
    a, b = AdcModel(seed=9), AdcModel(seed=9)
    a.take(3), b.take(3)
    ahead = a.ahead(n).copy()
    a.skip(n)
    np.testing.assert_array_equal(ahead, np.array(b.take(n)))
    assert a.take(5) == b.take(5)
