"""The actuators: what sets each edge's state — digipots (X9C, SPI) and gate capacitors.

:class:`Actuators` (a part of ``World``) builds one device per edge and network from the
board description (the part models are in ``learnboard.emulator.devices``), switches the
gate capacitors as their driver lines change, and reads the edge state the physics
solves with: taps, gate volts (leaking while idle), or the frozen value of a stuck edge.
"""

from __future__ import annotations

import numpy as np
from learnboard.emulator.devices import GateCap, SpiDigipot, X9cDigipot
from learnboard.emulator.devices.gate import leak_idle

from learnboard.boards.board_circuit import edge_parameters
from learnboard.boards.schema import DacGateDriver, SpiPotDriver, X9cDriver


class Actuators:
    """The edge devices of ``World`` (``self.edges[net][edge]``: an X9cDigipot, a
    (SpiDigipot, wiper) pair, a GateCap, or None for a fixed resistor)."""

    def _build_edges(self, rng, gate_v0, skew_us) -> None:
        b = self.board
        lim = b.limits.gate_range
        v0 = gate_v0 if gate_v0 is not None else (sum(lim) / 2 if lim else 2.0)
        rail = b.rails.get(b.gates.charge_rail, 8.0) if b.gates else 8.0
        for net in range(b.n_nets):
            r_scale = edge_parameters(b, net, self.seed)["r_scale"]
            for i, e in enumerate(b.edges):
                if e.kind == "resistor":
                    continue
                part = b.parts[e.part]
                drv = e.drivers[net]
                if isinstance(drv, X9cDriver):
                    self.edges[net][i] = X9cDigipot(part.n_taps, part.r_min, part.r_max,
                                                    part.taper, part.r_wiper, r_scale[i],
                                                    part.settle_us, stored_tap=part.n_taps // 2)
                elif isinstance(drv, SpiPotDriver):
                    key = (drv.bus, drv.cs)
                    n_w = 1 + max(d.wiper for ed in b.edges for d in ed.drivers
                                  if isinstance(d, SpiPotDriver) and (d.bus, d.cs) == key)
                    if key not in self._spi_pots:
                        self._spi_pots[key] = SpiDigipot(n_w, part.n_taps, part.r_min,
                                                         part.r_max, part.taper, part.r_wiper,
                                                         1.0, part.settle_us)
                    pot = self._spi_pots[key]
                    pot.wipers[drv.wiper].r_scale = float(r_scale[i])
                    self.edges[net][i] = (pot, drv.wiper)
                else:
                    # leak rate per device spread over [1/3, 5/3] of the part's value
                    # (0.1–0.5 mV/s for 0.3 mV/s)
                    leak = part.gate_leak * rng.uniform(1 / 3, 5 / 3)
                    self.edges[net][i] = GateCap(part.gate_c, part.gate_r, rail, v0, leak,
                                                 skew_us * rng.standard_normal())

    def _gate_switches(self, gate: GateCap, charge, discharge, _lv: int, now: int) -> None:
        """A pulse-gate driver's line changed: both switch levels to the capacitor."""
        c, d = charge(), discharge()
        gate.set_switches(c, d, now)
        (self._active_gates.add if c or d else self._active_gates.discard)(gate)

    def _switch_chain_gates(self, chain: str, bits: int | None, now: int) -> None:
        """Gates whose two switches are outputs of ``chain``: those on a changed bit
        (all if ``bits`` is None) take their switch levels where these changed."""
        by_bit = self._chain_gates[chain]
        latched = self.chains[chain].output_word()
        if bits is None:
            bits = sum(1 << bit for bit in by_bit)
        active = self._active_gates
        while bits:
            low = bits & -bits
            bits ^= low
            for gate, charge, discharge in by_bit.get(low.bit_length() - 1, ()):
                ch = (latched >> charge) & 1
                dc = (latched >> discharge) & 1
                if ch != gate.charge_on or dc != gate.discharge_on:
                    gate.set_switches(ch, dc, now)
                    (active.add if ch or dc else active.discard)(gate)

    def edge_state(self, net: int) -> np.ndarray:
        """Taps (digipots) and gate volts (transistors) of network ``net`` now."""
        now = self.clock.now_us
        if self._idle_gate_nets[net] is not None and not self._active_gates and \
                not self._stuck_values:  # every edge an idle capacitor gate: at once
            gates = self._idle_gate_nets[net]
            return leak_idle(gates, [now] * len(gates), self.faults.leak_scale)
        state = [0.0] * self.board.n_edges  # a list: numpy item writes cost more
        stuck = self._stuck_values
        for i, dev in enumerate(self.edges[net]):
            if stuck and (net, i) in stuck:
                state[i] = stuck[(net, i)]
            elif isinstance(dev, X9cDigipot):
                state[i] = dev.tap
            elif isinstance(dev, GateCap):
                dev.leak_scale = self.faults.leak_scale
                drv = self.board.edges[i].drivers[net]
                if isinstance(drv, DacGateDriver):
                    # held through gate_r by a DAC channel (piecewise constant between reads)
                    dev.target = self._line_volts(drv.dac, now)
                state[i] = dev.advance(now)
            elif isinstance(dev, tuple):
                state[i] = dev[0].taps[dev[1]]
        return np.array(state, dtype=float)

    def set_stuck(self, net: int, edge: int, stuck: bool = True) -> None:
        """Freeze (or free) an edge at its present state: its actuations are lost."""
        key = (net, edge)
        if stuck:
            self._stuck_values[key] = float(self.edge_state(net)[edge])
            self.faults.stuck_edges.add(key)
        else:
            self._stuck_values.pop(key, None)
            self.faults.stuck_edges.discard(key)

    def _gate_volts(self, net: int, edge: int, t_us: int | None = None) -> float:
        """Gate volts (or tap) of one edge at ``t_us`` (now if None; not before its last
        update), as :meth:`edge_state` gives it."""
        t = self.clock._us if t_us is None else t_us
        stuck = self._stuck_values.get((net, edge)) if self._stuck_values else None
        if stuck is not None:
            return stuck
        dev = self.edges[net][edge]
        if isinstance(dev, GateCap):
            dev.leak_scale = self.faults.leak_scale
            if self._dac_gates:  # a board without DAC gate drivers has nothing to look up
                drv = self.board.edges[edge].drivers[net]
                if isinstance(drv, DacGateDriver):
                    dev.target = self._line_volts(drv.dac, t)
            return dev.advance(t)
        return float(self.edge_state(net)[edge])

    def _power_cycle_pots(self) -> None:
        """Board power off and on: X9C taps come back from EEPROM, SPI pots at mid-scale."""
        for net_edges in self.edges:
            for dev in net_edges:
                if isinstance(dev, X9cDigipot):
                    dev.power_cycle()
        for pot in self._spi_pots.values():
            pot.power_cycle()
