"""The in-process emulator's fast paths give what the plain paths give.

* ``World.adc_block`` (the conversions the emulated ``machine`` answers a run of
  ``ADC.read_u16`` calls from) returns the same codes as the same number of
  ``adc_read_u16`` calls on an identically seeded world, and moves the virtual clock as
  far — settled, still settling after a channel change, with noise, back to back or
  with time between the conversions.
* ``NetworkDC``'s warm-started re-solves (the compiled Newton) agree with
  ``learnboard.physics.solve`` on its numpy/scipy reference Newton.
"""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.emulator.world import World

from learnboard.boards.board_circuit import circuit_for_board
from learnboard.physics import Fix, solve
from learnboard.physics.network_dc import NetworkDC


def _drive_inputs(world: World, codes=(90, 40, 140, 60, 20, 70, 110)) -> None:
    """Set the input DAC channels of gen2-clln (AD5308 words on spi0, CS on GPIO17)."""
    for ch, code in enumerate(codes):
        world.set_pin(17, 0)
        w = (ch << 12) | (code << 4)
        world.spi_write(0, bytes([w >> 8, w & 0xFF]), 10_000_000)
        world.set_pin(17, 1)
    world.clock.advance_us(200)


def _select(world: World, mux_name: str, channel: int) -> None:
    m = world.board.muxes[mux_name]
    for bit, gpio in enumerate(m.select):
        world.set_pin(gpio, (channel >> bit) & 1)
    if m.enable is not None:
        world.set_pin(m.enable, m.enable_level)


@pytest.mark.parametrize("settle_us", [0, 4, 40])
@pytest.mark.parametrize("noise", [1.0, 0.0])
@pytest.mark.parametrize("period", [2, 7])
def test_adc_block_equals_single_reads(settle_us, noise, period):
    worlds = [World("gen2-clln", seed=3, adc_noise_lsb=noise) for _ in range(2)]
    results = []
    for w in worlds:
        _drive_inputs(w)
        out = []
        for name, m in w.board.muxes.items():
            for ch in range(len(m.nodes or m.gates or ())):
                _select(w, name, ch)
                w.clock.advance_us(settle_us)
                out.append(w.clock.now_us)
                if w is worlds[0]:
                    out.append(w.adc_block(m.adc_channel, 16, period))
                else:
                    out.append(_singles(w, m.adc_channel, 16, period))
        out.append(w.clock.now_us)
        results.append(out)
    assert results[0] == results[1]


def _singles(w: World, channel: int, n: int, period: int = 2) -> list[int]:
    """``n`` reads one at a time with ``period - 2`` µs of other work after each."""
    out = []
    for _ in range(n):
        out.append(w.adc_read_u16(channel))
        w.clock.advance_us(period - 2)
    return out


def test_adc_block_of_a_dead_input_reads_like_single_reads():
    worlds = [World("gen2-clln", seed=1) for _ in range(2)]
    for w in worlds:
        w.faults.dead_adc.add(0)
    assert worlds[0].adc_block(0, 8) == _singles(worlds[1], 0, 8)


def test_fast_dc_agrees_with_the_general_solver(monkeypatch):
    import learnboard.physics.solver as solver_module

    monkeypatch.setattr(solver_module, "DENSE_LIMIT", 0)  # solve() on the reference Newton
    world = World("gen2-clln", seed=2)
    b = world.board
    rng = np.random.default_rng(0)
    net = b.network()
    fast = NetworkDC(b.n_nodes, net.edges, net.ground)
    state = np.full(b.n_edges, 2.5)
    drives = {int(n): float(v) for n, v in zip(world.driven(0), rng.uniform(0, 0.45, 7),
                                                strict=False)}
    first = circuit_for_board(b, state, 0, mismatch=2)
    prev = solve(first, [Fix(n, v) for n, v in sorted(drives.items())]).node_voltages
    for _ in range(10):
        state = np.clip(state + rng.normal(0, 0.3, b.n_edges), 0.75, 5.2)
        drives = {n: float(np.clip(v + rng.normal(0, 0.05), 0, 0.45)) for n, v in drives.items()}
        circuit = circuit_for_board(b, state, 0, mismatch=2)
        got = fast.solve(circuit, drives, prev)
        ref = solve(circuit, [Fix(n, v) for n, v in sorted(drives.items())], initial=prev)
        assert got is not None
        np.testing.assert_allclose(got.node_voltages, ref.node_voltages, atol=1e-9)
        np.testing.assert_allclose(got.edge_currents, ref.edge_currents, atol=1e-12, rtol=1e-6)
        assert got.power == pytest.approx(ref.power, rel=1e-6)
        # the world's re-solves pass the first circuit and the new gates: the same state
        same = fast.solve(first, drives, prev, gates=state)
        np.testing.assert_array_equal(same.node_voltages, got.node_voltages)
        np.testing.assert_array_equal(same.constraint_currents, got.constraint_currents)
        prev = got.node_voltages


def test_fast_dc_linear_board_reuses_its_factorisation():
    world = World("gen1-digipot", seed=2)
    b = world.board
    net = b.network()
    fast = NetworkDC(b.n_nodes, net.edges, net.ground)
    circuit = circuit_for_board(b, np.full(b.n_edges, 60.0), 0, mismatch=2)
    for volts in ([0.1, 0.3], [0.2, 0.05]):
        drives = {n: v for n, v in zip(sorted(world.driven(0)), volts, strict=False)}
        ref = solve(circuit, [Fix(n, v) for n, v in sorted(drives.items())])
        got = fast.solve(circuit, drives, None)
        np.testing.assert_allclose(got.node_voltages, ref.node_voltages, atol=1e-12)
    assert len(fast._lin) == 1
