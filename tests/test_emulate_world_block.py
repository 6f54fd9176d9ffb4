"""The VM's block ADC reads (``World.adc_block``) equal single reads exactly."""

from __future__ import annotations

from learnboard.emulator.machine_layer import build
from learnboard.emulator.world import Faults, World
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board


def driven_world(seed: int, faults: Faults | None = None) -> World:
    world = World("gen2-clln", seed=seed, faults=faults)
    machine, utime = build(world)
    hal = Hal(compile_board(load_board("gen2-clln")).body, machine, utime)
    for ch in range(7):
        hal.drive(hal.vline([0, ch]), 90 + 20 * ch)
    hal.settle()
    for bit, level in enumerate((1, 0, 1, 0)):  # mux channel 5, just switched: still settling
        world.set_pin(2 + bit, level)
    return world


def test_a_block_of_conversions_equals_the_same_number_of_single_reads():
    one, block = driven_world(7), driven_world(7)
    singles = [one.adc_read_u16(0) for _ in range(16)]
    codes = block.adc_block(0, 16)
    assert codes == singles
    assert block.clock.now_us == one.clock.now_us
    # a live node read through the x7 front end, and the mux settling shows in the first codes
    assert 1000 < codes[-1] < 65000 and codes[0] != codes[-1]
    assert one.true_state(0).node_voltages[5] > 0.05


def test_a_dead_input_reads_zero_volts_in_blocks_too():
    one, block = driven_world(1, Faults(dead_adc={0})), driven_world(1, Faults(dead_adc={0}))
    codes = block.adc_block(0, 8)
    assert codes == [one.adc_read_u16(0) for _ in range(8)]
    assert max(codes) <= 2 << 4  # 0 V and 1 LSB rms of noise
    assert max(block.adc_block(1, 4)) > 1000  # the clamped network's input is alive
