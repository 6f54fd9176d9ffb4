"""The emulator's newer fast paths give what the plain paths give.

* On a linear (digipot) board, ``World.adc_block`` while the PWM drives still settle
  (each sample re-solved from the network's linear map of the drive volts) returns the
  same codes, clock and solve count as the same number of ``adc_read_u16`` calls, and
  the same true state afterwards.
* ``NetworkDC`` refactorising a linear network for new taps from a kept sparsity pattern
  gives the fresh factorisation's node volts.
"""

from __future__ import annotations

import numpy as np
from learnboard.emulator.world import World

from learnboard.boards.board_circuit import circuit_for_board
from learnboard.physics.network_dc import NetworkDC


def _select(world: World, mux_name: str, channel: int) -> None:
    m = world.board.muxes[mux_name]
    for bit, gpio in enumerate(m.select):
        world.set_pin(gpio, (channel >> bit) & 1)
    if m.enable is not None:
        world.set_pin(m.enable, m.enable_level)


def test_adc_block_while_pwm_drives_settle_equals_single_reads():
    worlds = [World("gen1-digipot", seed=4) for _ in range(2)]
    results = []
    for w in worlds:
        out = []
        for duty in (20000, 41000, 7000):
            for gpio in sorted(w.pwms):
                w.set_pwm(gpio, duty + 1000 * gpio)
            for name, m in w.board.muxes.items():
                for ch in range(len(m.nodes or ())):
                    _select(w, name, ch)
                    w.clock.advance_us(5)
                    out.append(w.clock.now_us)
                    if w is worlds[0]:
                        out.append(w.adc_block(m.adc_channel, 16))
                    else:
                        out.append([w.adc_read_u16(m.adc_channel) for _ in range(16)])
        out.append((w.clock.now_us, w.solves))
        results.append(out)
    assert results[0] == results[1]
    assert results[0][-1][1] > 20  # the drives were still settling: many re-solves
    # the last re-solve, completed on demand, is the one single reads made
    for net in range(worlds[0].board.n_nets):
        np.testing.assert_allclose(worlds[0].true_state(net).node_voltages,
                                   worlds[1].true_state(net).node_voltages, atol=1e-12)


def test_linear_refactorisation_matches_a_fresh_one():
    world = World("gen1-digipot", seed=2)
    b = world.board
    net = b.network()
    drives = {n: v for n, v in zip(sorted(world.driven(0)), [0.3, 0.1, 0.2, 0.05], strict=False)}
    kept = NetworkDC(b.n_nodes, net.edges, net.ground)
    for taps in (60.0, 45.0, 80.0):
        circuit = circuit_for_board(b, np.full(b.n_edges, taps), 0, mismatch=2)
        got = kept.solve(circuit, drives, None)
        fresh = NetworkDC(b.n_nodes, net.edges, net.ground).solve(circuit, drives, None)
        np.testing.assert_array_equal(got.node_voltages, fresh.node_voltages)
