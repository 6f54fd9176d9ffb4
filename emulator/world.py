"""The analog world of an emulated board: its parts, wired as the board description says.

:class:`World` builds the device models (mux + ADC, DACs / PWM + RC, shift chains, X9C and
SPI digipots, gate capacitors) and the twin-network physics with device mismatch from a
board description and a seed. Pin levels, SPI/I2C traffic and virtual time drive the
parts; the DC state of each network is re-solved only when an actuation has changed the
circuit (a tap, a gate beyond ``resolve_tol``, a driven voltage) — never just because it
is read. It also exposes the true physical state for tests and for comparing with what
the firmware reports.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from learnboard.emulator.adc_kernel import block_codes
from learnboard.emulator.adc_kernel import warm_up as adc_warm_up
from learnboard.emulator.devices import (
    AdcModel,
    AnalogMux,
    GateCap,
    PwmRc,
    ShiftChain,
    SpiDac,
    SpiDigipot,
    VirtualClock,
    X9cDigipot,
)
from learnboard.emulator.devices.adc import E11_CODES
from learnboard.emulator.devices.current_sense import CurrentSense
from learnboard.emulator.devices.gate import leak_idle
from learnboard.emulator.devices.spi_adc import SpiAdc
from learnboard.emulator.devices.watchdog import Watchdog

from learnboard.boards import Board, Line, load_board
from learnboard.boards.circuit import circuit_for_board, edge_parameters
from learnboard.boards.schema import DacGateDriver, PulseGateDriver, SpiPotDriver, X9cDriver
from learnboard.errors import InputError
from learnboard.physics import Fix, solve
from learnboard.physics.circuit import TRANSISTOR
from learnboard.physics.dc_newton import warm_up
from learnboard.physics.network_dc import NetworkDC as FastDC

RP2040_TEMP_CHANNEL = 4
RP2040_TEMP_VOLTS = 0.706  # sensor at 27 °C (RP2040 datasheet)


@dataclass
class Faults:
    """Fault knobs: stuck edges ``{(net, edge)}`` (state frozen, actuations lost), dead ADC
    inputs ``{channel}`` (read 0 V), and scales for ADC noise and gate leakage."""

    stuck_edges: set = field(default_factory=set)
    dead_adc: set = field(default_factory=set)
    noise_scale: float = 1.0
    leak_scale: float = 1.0


@dataclass
class TrueState:
    """What the physics says, not what the board measures."""

    node_voltages: np.ndarray  # (N,) V
    edge_currents: np.ndarray  # (E,) A, from a to b
    power: float  # W dissipated in the network
    edge_state: np.ndarray  # taps or gate volts


class World:
    """Emulated parts and physics of ``board`` (a Board, a profile name or a TOML path).

    Args:
        seed: one seed for device mismatch, ADC noise, leak rates and pulse skews.
        faults: fault knobs (can be changed later through :attr:`faults`).
        clock: a shared :class:`VirtualClock` (a new one by default).
        adc_noise_lsb: ADC input noise; ``None``: 1 LSB rms for the RP2040's ADC.
        gate_v0: initial gate volts (default the middle of ``limits.gate_range``).
        resolve_tol: gate change (V) that triggers a new solve.
        skew_us: std of the per-edge pulse-length skew (the small learning bias).
    """

    def __init__(self, board: Board | str | Path, seed: int = 0, faults: Faults | None = None,
                 clock: VirtualClock | None = None, adc_noise_lsb: float | None = None,
                 gate_v0: float | None = None, resolve_tol: float = 1e-5,
                 skew_us: float = 0.2):
        self.board = board if isinstance(board, Board) else load_board(board)
        b = self.board
        self.seed = int(seed)
        self.faults = faults or Faults()
        self.clock = clock or VirtualClock()
        self.watchdog = Watchdog(self.clock)  # the MCU's; kept across VM processes
        self.resolve_tol = float(resolve_tol)
        self.pins: dict[int, int] = {}
        self.solves = 0
        rng = np.random.default_rng([self.seed, 5])
        internal = b.adc.type == "internal"
        self.adc = AdcModel(b.adc.bits, b.adc.vref,
                            noise_lsb=(1.0 if internal else 0.5) if adc_noise_lsb is None
                            else adc_noise_lsb,
                            spikes=E11_CODES if internal and b.microcontroller == "rp2040" else (),
                            seed=[self.seed, 11])
        self.muxes = {n: AnalogMux(len(m.select), gain=m.gain,
                                   enable_level=m.enable_level if m.enable is not None else None)
                      for n, m in b.muxes.items()}
        self.chains = {n: ShiftChain(x.bits, needs_select="595" not in x.part)
                       for n, x in b.expanders.items()}
        for n, x in b.expanders.items():
            if x.oe is not None:
                self.chains[n].set_oe(1)  # pulled up until the firmware enables it
        self.dacs = {n: SpiDac(d.channels, d.bits, d.vref, d.gain, d.settle_us)
                     for n, d in b.dacs.items()}
        self.pwms: dict[int, PwmRc] = {}
        self._gpio_watch: dict[int, list] = {}
        self._line_watch: dict[str, dict[int, list[tuple[Line, object]]]] = {}
        # actuation bookkeeping: a cached solve stays valid while nothing was actuated,
        # no gate is being driven and leakage cannot have moved a gate by resolve_tol
        self._gen = 0
        self._dynamic_until = 0
        self._active_gates: set = set()
        self._line_levels: dict[Line, int] = {}
        # chain -> bit -> (gate, charge bit, discharge bit): gates switched from one chain
        self._chain_gates: dict[str, dict[int, list[tuple[GateCap, int, int]]]] = {}
        self.edges: list[list] = [[None] * b.n_edges for _ in range(b.n_nets)]
        self._spi_pots: dict[tuple, SpiDigipot] = {}
        self._stuck_values: dict[tuple[int, int], float] = {}
        self._build_inputs()
        self._build_edges(rng, gate_v0, skew_us)
        self._build_watches()
        self._solved: list = [None] * b.n_nets
        self._checked: list = [None] * b.n_nets  # (gen, solve time) of the last full check
        self._solved_at: list = [0] * b.n_nets
        self._mux_pins = {p for m in b.muxes.values()
                          for p in m.select + ((m.enable,) if m.enable is not None else ())}
        # an output is settled to 1e-7 V after ~20 time constants of its settling law
        self._out_settle_us = 3.0 * max([d.settle_us for d in b.dacs.values()] +
                                        [b.pwm.settle_us if b.pwm else 0.0])
        self._max_leak = max([g.leak for net in self.edges for g in net
                              if isinstance(g, GateCap)] + [0.0])
        self._dac_gates = any(isinstance(d, DacGateDriver) for e in b.edges for d in e.drivers)
        # read path: per ADC input, its muxes as (mux, nodes, gates, net); per
        # network, node volts as a list valid while (gen, until µs, leak scale) hold
        self._adc_mux: dict[int, list] = {}  # any ADC's inputs (external ADCs have more)
        for name, m in b.muxes.items():
            self._adc_mux.setdefault(m.adc_channel, []).append(
                (self.muxes[name], m.nodes or None, m.gates or None, m.net))
        self._vcache: list = [None] * b.n_nets
        self._fast_dc: FastDC | None = None
        self._kpow: dict = {}
        self._circuits: dict = {}  # (net, edge state bytes) -> Circuit of the last solve
        self._drive_tables: dict = {}  # net -> driven() table
        self._spi_parts: dict = {}  # bus id -> the parts listening on it
        self._circuit_base: dict = {}  # net -> (first circuit, its transistor mask): gate-only
        self._gates_only = all(e.kind in ("transistor", "resistor") for e in b.edges)
        self._linops: dict = {}  # (net, conductances, driven nodes) -> linear map
        # per network: its edges if all are pulse-driven capacitor gates (edge_state's
        # vectorised path while none is switched), else None
        self._idle_gate_nets = [
            list(self.edges[net]) if all(isinstance(g, GateCap) for g in self.edges[net]) and
            not any(isinstance(e.drivers[net], DacGateDriver) for e in b.edges) else None
            for net in range(b.n_nets)]
        # the compiled paths are loaded now rather than in the first learning step
        if any(e.kind == "transistor" for e in b.edges):
            warm_up()
        # raw code -> what ADC.read_u16 returns (the code scaled to 16 bits, its top bits
        # replicated below as MicroPython's rp2 port does)
        sh = 16 - self.adc.bits
        self._u16_of_code = [((c << sh) | (c >> (self.adc.bits - sh))) & 0xFFFF if sh > 0
                             else c for c in range(len(self.adc._t_list) + 1)]
        self._u16_array = np.array(self._u16_of_code, dtype=np.int64)
        self._zero_arrays: dict = {}
        self._code_arrays: dict = {}  # n -> a block's code buffer (read out as a list)
        adc_warm_up()
        self._build_read_parts()

    def _build_read_parts(self) -> None:
        """Parts that answer reads (PARTS): an SPI ADC on MISO, an I2C current monitor."""
        b = self.board
        self.spi_adc = None
        if b.adc.type == "spi":
            self.spi_adc = SpiAdc(b.adc.bits, b.adc.channels, self._adc_code)
            self._gpio(b.adc.cs, lambda lv, now, a=self.spi_adc: a.select(not lv))
        self.current_sense = None
        cs = b.current_sense
        if cs is not None:
            self.current_sense = CurrentSense(cs.address, cs.shunt, self._sensed,
                                              seed=[self.seed, 13])

    def _adc_code(self, channel: int) -> int:
        """One raw conversion of ADC input ``channel`` (external ADC)."""
        volts = self.adc_input_volts(channel)
        return int(self.adc.convert(np.array([volts]), noise_scale=self.faults.noise_scale)[0])

    def _sensed(self) -> tuple[float, float]:
        """Current monitor: (amps its shunt passes from the driver into node ``node`` of
        its network, volts at that node)."""
        cs = self.board.current_sense
        sol = self.solution(cs.net)
        ends = self.board.edge_array()
        amps = float(np.sum(sol.edge_currents * ((ends[:, 0] == cs.node).astype(float)
                                                 - (ends[:, 1] == cs.node))))
        return amps, float(sol.node_voltages[cs.node])

    def spi_transfer(self, bus_id: int, data: bytes, baud: int) -> bytes:
        """A full-duplex SPI transfer: the bytes on MOSI reach every part (as
        :meth:`spi_write`), MISO carries what a selected SPI ADC on the bus sends."""
        miso = bytes(len(data))
        if self.spi_adc is not None and self.board.spi[self.board.adc.bus].id == bus_id:
            miso = self.spi_adc.transfer(data)
        self.spi_write(bus_id, data, baud)
        return miso

    def i2c_read(self, bus_id: int, addr: int, n: int) -> bytes | None:
        """An I2C read of ``n`` bytes; None when no part answers (NACK)."""
        cs = self.board.current_sense
        if cs is not None and cs.address == addr and self.board.i2c[cs.bus].id == bus_id:
            return self.current_sense.read(n)
        if addr in self.i2c_addresses(bus_id):
            return bytes(n)
        return None

    # ------------------------------------------------------------------ construction
    def _build_inputs(self) -> None:
        pwm = self.board.pwm
        for port in self.board.inputs + self.board.outputs:
            for line in port.drive + port.drive_b:
                if line is not None and not line.device:
                    self.pwms[line.index] = PwmRc(pwm.bits, pwm.vref, pwm.gain, pwm.settle_us,
                                                  pwm.freq)

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

    def _watch_line(self, line: Line, callback) -> None:
        if not line.device:
            self._gpio_watch.setdefault(line.index, []).append(callback)
        else:
            self._line_watch.setdefault(line.device, {}).setdefault(line.index, []).append(
                (line, callback))
            self._line_levels[line] = self.line_level(line)

    def _build_watches(self) -> None:
        b = self.board
        shared: dict = {}  # (gpio, bit) -> the muxes on that select line, one callback
        for name, m in b.muxes.items():
            for bit, gpio in enumerate(m.select):
                shared.setdefault((gpio, bit), []).append(self.muxes[name])
        for name, m in b.muxes.items():
            mux = self.muxes[name]
            for bit, gpio in enumerate(m.select):
                group = shared[(gpio, bit)]
                if group[0] is mux:  # cb(level, now)
                    bank = all(b.muxes[n].select == m.select for n, other in self.muxes.items()
                               if other in group)
                    self._gpio(gpio, partial(AnalogMux.set_select_bank if bank else
                                             AnalogMux.set_select_all, tuple(group), bit))
            if m.enable is not None:
                self._gpio(m.enable, mux.set_enable)  # cb(level, now)
        for name, x in b.expanders.items():
            chain = self.chains[name]
            def latch(lv, now, c=chain, n=name):
                old = c.latched
                if c.set_latch(lv):
                    self._lines_changed(n, old ^ c.latched)
            self._gpio(x.latch, latch)
            if x.oe is not None:
                self._gpio(x.oe, lambda lv, now, c=chain, n=name: (c.set_oe(lv),
                                                                   self._lines_changed(n)))
        for name, d in b.dacs.items():
            if d.interface == "spi" and d.cs is not None:
                self._gpio(d.cs, lambda lv, now, dac=self.dacs[name]: dac.select(not lv, now))
        for (_bus, cs), pot in self._spi_pots.items():
            self._watch_line(cs, lambda lv, now, p=pot: p.select(not lv, now))
        for net in range(b.n_nets):
            for i, e in enumerate(b.edges):
                drv = e.drivers[net] if e.drivers else None
                dev = self.edges[net][i]
                if isinstance(drv, X9cDriver):
                    self._watch_line(drv.cs, dev.set_cs)  # cb(level, now)
                    self._watch_line(drv.ud, dev.set_ud)
                    self._watch_line(drv.inc, dev.set_inc)
                elif isinstance(drv, PulseGateDriver):
                    chain = drv.charge.device
                    if chain and chain == drv.discharge.device:  # read from the latch word
                        by_bit = self._chain_gates.setdefault(chain, {})
                        for bit in (drv.charge.index, drv.discharge.index):
                            by_bit.setdefault(bit, []).append(
                                (dev, drv.charge.index, drv.discharge.index))
                        continue
                    switches = partial(self._gate_switches, dev,
                                       self._level_getter(drv.charge),
                                       self._level_getter(drv.discharge))
                    self._watch_line(drv.charge, switches)
                    self._watch_line(drv.discharge, switches)

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

    def _level_getter(self, line: Line):
        """``level()`` of a digital line, as :meth:`line_level` gives it."""
        if not line.device:
            return partial(self.pins.get, line.index, 0)
        return partial(self.chains[line.device].output, line.index)

    def _gpio(self, gpio: int, callback) -> None:
        self._gpio_watch.setdefault(gpio, []).append(callback)

    def _lines_changed(self, chain: str | None = None, bits: int | None = None) -> None:
        """Deliver changed expander lines (of ``chain``, or all; only ``bits`` if given)."""
        now = self.clock.now_us
        self._gen += 1
        if chain is None:
            for name in self._chain_gates:
                self._switch_chain_gates(name, None, now)
        elif chain in self._chain_gates:
            self._switch_chain_gates(chain, bits, now)
        if bits is not None and chain is not None:  # a latch: only the bits that changed
            by_bit = self._line_watch.get(chain)
            if not by_bit:
                return
            latched = self.chains[chain].output_word()  # (no callback changes it)
            levels = self._line_levels
            while bits:
                low = bits & -bits
                bits ^= low
                group = by_bit.get(low.bit_length() - 1)
                if group:
                    lv = 1 if latched & low else 0
                    for line, cb in group:
                        if lv != levels[line]:
                            levels[line] = lv
                            cb(lv, now)
            return
        chains = self._line_watch.values() if chain is None else [self._line_watch.get(chain, {})]
        watches = []
        for by_bit in chains:
            if bits is None:
                watches.extend(w for group in by_bit.values() for w in group)
            else:
                while bits:
                    low = bits & -bits
                    watches.extend(by_bit.get(low.bit_length() - 1, ()))
                    bits ^= low
        for line, cb in watches:
            lv = self.line_level(line)
            if lv != self._line_levels[line]:
                self._line_levels[line] = lv
                cb(lv, now)

    # ------------------------------------------------------------------ pins and buses
    def line_level(self, line: Line) -> int:
        """Level of a digital line: a GPIO, or an expander bit as latched (OE honoured)."""
        if not line.device:
            return self.pins.get(line.index, 0)
        return self.chains[line.device].output(line.index)

    def set_pin(self, gpio: int, level: int) -> None:
        level = 1 if level else 0
        if self.pins.get(gpio) != level:
            self.pin_changed(gpio, level)

    def pin_changed(self, gpio: int, level: int) -> None:
        """:meth:`set_pin` for a level (0 or 1) that differs from the pin's."""
        self.pins[gpio] = level
        if gpio not in self._mux_pins:
            self._gen += 1
        cbs = self._gpio_watch.get(gpio)
        if cbs:
            now = self.clock._us
            for cb in cbs:
                cb(level, now)

    def spi_write(self, bus_id: int, data: bytes, baud: int) -> None:
        """Bytes clocked out on SPI peripheral ``bus_id``; each part listens if selected."""
        now = self.clock._us
        self._gen += 1
        until = now + self._out_settle_us
        if until > self._dynamic_until:
            self._dynamic_until = until
        parts = self._spi_parts.get(bus_id)
        if parts is None:  # (write, takes the time) of every part on the bus, in order
            parts = []
            for name, bus in self.board.spi.items():
                if bus.id != bus_id:
                    continue
                for xn, x in self.board.expanders.items():
                    if x.bus == name:
                        parts.append((self.chains[xn].spi_write, False))
                for dn, d in self.board.dacs.items():
                    if d.interface == "spi" and d.bus == name:
                        parts.append((self.dacs[dn].spi_write, True))
                for (pbus, _), pot in self._spi_pots.items():
                    if pbus == name:
                        parts.append((pot.spi_write, True))
            parts = self._spi_parts[bus_id] = tuple(parts)
        for write, timed in parts:
            if timed:
                write(data, now)
            else:
                write(data)
        self.clock.advance_us(len(data) * 8e6 / max(1, baud))

    def i2c_write(self, bus_id: int, addr: int, data: bytes) -> bool:
        """An I2C write; False when no part answers (NACK). I2C DACs take the same
        16-bit words as the SPI DAC model."""
        cs = self.board.current_sense
        if cs is not None and cs.address == addr and self.board.i2c[cs.bus].id == bus_id:
            self.current_sense.write(bytes(data))  # a monitor: no actuation
            return True
        now = self.clock.now_us
        self._gen += 1
        self._dynamic_until = max(self._dynamic_until, now + self._out_settle_us)
        for dn, d in self.board.dacs.items():
            if d.interface == "i2c" and d.address == addr and self.board.i2c[d.bus].id == bus_id:
                dac = self.dacs[dn]
                dac.select(True, now)
                dac.spi_write(bytes(data), now)
                dac.select(False, now)
                return True
        return False

    def i2c_addresses(self, bus_id: int) -> list[int]:
        cs = self.board.current_sense
        sense = [cs.address] if cs is not None and self.board.i2c[cs.bus].id == bus_id else []
        return sorted([d.address for d in self.board.dacs.values()
                       if d.interface == "i2c" and self.board.i2c[d.bus].id == bus_id] + sense)

    def set_pwm(self, gpio: int, duty_u16: int) -> None:
        pwm = self.pwms.get(gpio)
        if pwm is None:
            p = self.board.pwm
            pwm = self.pwms[gpio] = PwmRc(p.bits, p.vref, p.gain, p.settle_us, p.freq) if p \
                else PwmRc()
        pwm.set_duty_u16(duty_u16, self.clock.now_us)
        self._gen += 1
        self._dynamic_until = max(self._dynamic_until, self.clock.now_us + self._out_settle_us)

    # ------------------------------------------------------------------ analog state
    def _line_volts(self, line: Line, now: int) -> float:
        if not line.device:
            return self.pwms[line.index].output(now)
        return self.dacs[line.device].output(line.index, now)

    def driven(self, net: int) -> dict[int, float]:
        """Node -> volts for every node a driver holds on network ``net`` now."""
        table = self._drive_tables.get(net)
        if table is None:  # (node, line, switch that must be on or None), built once
            table = []
            single = self.board.n_nets == 1
            for port in self.board.inputs + self.board.outputs:
                is_out = port in self.board.outputs
                for nodes, lines, sw in ((port.a, port.drive, port.switch),
                                         (port.b, port.drive_b, port.switch_b)):
                    if nodes is None or not lines:
                        continue
                    line = lines[net] if len(lines) > net else lines[0]
                    if line is None:
                        continue
                    table.append((nodes, line,
                                  sw if is_out and single and sw is not None else None))
            self._drive_tables[net] = table
        now = self.clock.now_us
        out: dict[int, float] = {}
        for nodes, line, sw in table:
            if sw is not None and not self.line_level(sw):
                continue
            out[nodes] = self._line_volts(line, now)
        out.pop(self.board.ground, None)
        return out

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

    def solution(self, net: int):
        """The DC solution of network ``net``, re-solved only if the circuit changed."""
        for key in self.faults.stuck_edges - set(self._stuck_values):
            self.set_stuck(*key)
        now = self.clock.now_us
        chk = self._checked[net]
        if chk is not None and chk[0] == self._gen and not self._active_gates and \
                not self._dac_gates and now >= self._dynamic_until and \
                (now - chk[1]) * 1e-6 * self._max_leak * self.faults.leak_scale \
                <= self.resolve_tol and \
                len(self.faults.stuck_edges) == len(self._stuck_values):
            return self._sol(net)
        state = self.edge_state(net)
        drives = self.driven(net)
        prev = self._solved[net]
        if prev is not None:
            p_state, p_drives, sol = prev
            if p_drives.keys() == drives.keys() and \
                    all(abs(p_drives[k] - v) <= 1e-7 for k, v in drives.items()) and \
                    np.max(np.abs(p_state - state), initial=0.0) <= self.resolve_tol:
                self._checked[net] = (self._gen, self._solved_at[net])
                return sol if sol is not None else self._sol(net)
        warm = None if prev is None or prev[2] is None else prev[2].node_voltages
        # warm-started re-solve (same model and tolerance); the general solver otherwise.
        # Where gate volts are the only change, the network's first circuit with these
        # gates (no new circuit object unless that fails)
        kept = self._circuit_base.get(net)
        tried = kept is not None and self._fast_dc is not None and bool(np.isfinite(state).all())
        sol = self._fast_dc.solve(kept[0], drives, warm, gates=state) if tried else None
        if sol is None:
            circuit = self._gate_circuit(net, state)
            if circuit is None:
                key = (net, state.tobytes())
                circuit = self._circuits.get(key)
                if circuit is None:  # digipot boards: the same taps come back while drives settle
                    circuit = self.circuit(net, state)
                    self._circuits = {k: c for k, c in self._circuits.items() if k[0] != net}
                    self._circuits[key] = circuit
            if self._fast_dc is None:
                self._fast_dc = FastDC(circuit.n_nodes, circuit.network.edges,
                                       circuit.network.ground)
            if not tried:
                sol = self._fast_dc.solve(circuit, drives, warm)
            if sol is None:
                fixes = [Fix(n, v) for n, v in sorted(drives.items())]
                sol = solve(circuit, fixes, initial=warm)
        self.solves += 1
        self._solved[net] = (state, drives, sol)
        self._solved_at[net] = now
        self._checked[net] = (self._gen, now)
        return sol

    def _gate_circuit(self, net: int, state: np.ndarray):
        """:meth:`circuit` for a new ``state`` of a network whose only state-dependent
        parameters are gate volts (transistors and fixed resistors, no digipots, the
        hook not overridden): the network's first circuit with its gates replaced —
        the arrays circuit_for_board gives. None otherwise."""
        kept = self._circuit_base.get(net)
        if kept is None:
            if type(self).circuit is not World.circuit or not self._gates_only:
                return None
            base = self.circuit(net, state)
            self._circuit_base[net] = (base, base.kind == TRANSISTOR)
            return base
        if not math.isfinite(float(state.sum())):
            return None  # the full constructor reports it
        base, is_t = kept
        c = copy.copy(base)
        c.gate = np.where(is_t, state, 0.0)
        c._index = dict(base._index)
        return c

    def circuit(self, net: int, state: np.ndarray):
        """The physics of network ``net`` at edge ``state`` (a hook: a calibrated twin,
        learnboard.emulator.twin, overrides it with measured device parameters)."""
        return circuit_for_board(self.board, state, twin=net, mismatch=self.seed)

    def true_state(self, net: int = 0) -> TrueState:
        sol = self.solution(net)
        return TrueState(sol.node_voltages.copy(), sol.edge_currents.copy(), float(sol.power),
                         self.edge_state(net))

    def _node_volts(self, net: int, node: int) -> float:
        """Volts of ``node`` on network ``net`` now: :meth:`solution`'s, kept as a list
        for as long as that solution's own validity check would pass (no actuation,
        nothing settling or pulsing, leakage below ``resolve_tol``)."""
        c = self._vcache[net]
        if c is not None and c[0] == self._gen and self.clock._us <= c[1] and \
                c[2] == self.faults.leak_scale and \
                len(self.faults.stuck_edges) == len(self._stuck_values):
            return c[3][node]
        sol = self.solution(net)
        volts = sol.node_voltages.tolist()
        now = self.clock._us
        if not self._active_gates and not self._dac_gates and now >= self._dynamic_until:
            rate = 1e-6 * self._max_leak * self.faults.leak_scale
            until = self._checked[net][1] + self.resolve_tol / rate if rate > 0 else float("inf")
            self._vcache[net] = (self._gen, until, self.faults.leak_scale, volts)
        return volts[node]

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

    def _adc_sources(self, channel: int) -> list:
        """(mux, source volts) of every enabled mux on ADC input ``channel``."""
        out = []
        for mux, nodes, gates, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            ch = mux._channel
            src = 0.0
            if nodes is not None and ch < len(nodes) and nodes[ch] >= 0:
                src = self._node_volts(net, nodes[ch])
            elif gates is not None and ch < len(gates) and gates[ch] >= 0:
                src = self._gate_volts(net, gates[ch])
            out.append((mux, src))
        return out

    def _adc_volts(self, channel: int, sources: list, now: int) -> float:
        if not sources:
            return RP2040_TEMP_VOLTS if channel == RP2040_TEMP_CHANNEL else 0.0
        volts = [mux.output(src, now) for mux, src in sources]
        return min(max(sum(volts) / len(volts), 0.0), self.adc.vref)  # contention averages

    def adc_input_volts(self, channel: int) -> float:
        """Volts at ADC input ``channel`` now (mux, front-end gain and settling included)."""
        if channel in self.faults.dead_adc:
            return 0.0
        # the hot path of every conversion: _adc_sources + _adc_volts without the lists
        now = self.clock._us
        acc = 0.0
        n = 0
        for mux, nodes, gates, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            ch = mux._channel
            src = 0.0
            if nodes is not None and ch < len(nodes) and nodes[ch] >= 0:
                src = self._node_volts(net, nodes[ch])
            elif gates is not None and ch < len(gates) and gates[ch] >= 0:
                src = self._gate_volts(net, gates[ch])
            acc += mux.output(src, now)
            n += 1
        if not n:
            return RP2040_TEMP_VOLTS if channel == RP2040_TEMP_CHANNEL else 0.0
        return min(max(acc / n, 0.0), self.adc.vref)  # contention averages

    def adc_block(self, channel: int, n: int, period_us: int = 2) -> list[int]:
        """``n`` conversions of input ``channel``, ``period_us`` apart (2: back to back at
        500 kS/s), as ``machine.ADC.read_u16`` returns them: the same codes, clock and
        device state as ``n`` :meth:`adc_read_u16` calls with ``period_us - 2`` µs of
        other work after each (the emulated ``machine``'s reads are answered from these
        blocks). While outputs settle or gates move, the sources are taken per sample;
        otherwise once (only gate leakage, ~1e-9 V per block, is left out), while mux
        settling, noise and non-linearity act per sample."""
        if not 0 <= channel <= RP2040_TEMP_CHANNEL:
            raise InputError(f"ADC channel {channel} does not exist (0..4 on the RP2040)",
                             field="adc")
        period = max(2, int(period_us))
        if n < 1:
            return []
        now = self.clock._us
        dead = channel in self.faults.dead_adc
        if not dead and now >= self._dynamic_until and not self._active_gates and \
                not self._dac_gates:
            codes = self._block_steady(channel, n, period)
            if codes is not None:
                return codes
        adc = self.adc
        ns = self.faults.noise_scale
        if not dead and (now < self._dynamic_until or self._active_gates or self._dac_gates):
            # drives settling or gates moving: the sources change from sample to sample,
            # so take them per sample exactly as single reads do
            if not self._active_gates and not self._dac_gates:
                out = self._adc_block_linear(channel, n, period)
                if out is not None:
                    return out
            out = []
            clock = self.clock
            for _ in range(n):
                out.append(self.adc_read_u16(channel))
                if period > 2:
                    clock.advance_us(period - 2)
            return out
        sources = [] if dead else self._adc_sources(channel)
        one = sources[0] if len(sources) == 1 else None
        if one is not None:
            v0 = min(max(one[0].output(one[1], now), 0.0), adc.vref)
        else:
            v0 = 0.0 if dead else self._adc_volts(channel, sources, now)
        t = adc._t_list
        u16 = self._u16_of_code
        last = now + period * (n - 1)
        if n > 1 and one is not None:
            settled = abs(one[0]._out - one[1] * one[0].gain) < 1e-9
        elif n > 1 and sources:
            settled = all(abs(mux._out - src * mux.gain) < 1e-9 for mux, src in sources)
        else:
            settled = True
        noisy = bool(adc.noise_lsb and ns)
        if settled:
            x = v0 / adc._lsb * adc._g1 + adc.offset_lsb
            if noisy:
                z = self._zero_arrays.get(n)
                if z is None:
                    z = self._zero_arrays[n] = np.zeros(n)
                codes = self._block_codes(x, 0.0, z, n, adc.noise_lsb * ns)
            else:
                codes = [u16[bisect_right(t, x)]] * n
            if one is not None and n > 1:
                one[0].output(one[1], last)  # the mux's state
            elif sources and n > 1:
                self._adc_volts(channel, sources, last)
        elif one is not None and one[0].tau_us > 0 and 0.0 <= one[0]._out <= adc.vref and \
                0.0 <= one[1] * one[0].gain <= adc.vref:
            # one mux still settling: its output relaxes to the target by
            # exp(-period / tau) per sample and stays inside the range
            mux, src = one
            target = src * mux.gain
            kp = self._settle_powers(mux.tau_us, n, period)
            a0 = target / adc._lsb * adc._g1 + adc.offset_lsb
            b0 = (v0 - target) * (adc._g1 / adc._lsb)
            if noisy:
                codes = self._block_codes(a0, b0, self._kp_array(mux.tau_us, n, period), n,
                                          adc.noise_lsb * ns)
            else:
                codes = [u16[bisect_right(t, a0 + b0 * k)] for k in kp]
            mux.output(src, last)  # the mux's state
        else:
            codes = []
            for i in range(n):
                v = v0 if i == 0 else (self._adc_volts(channel, sources, now + period * i)
                                       if sources else v0)
                codes.append(u16[adc.code(v, ns)])
        self.clock.advance_int(period * n)
        return codes

    def _linear_op(self, net: int):
        """For a linear network whose last solve is current: the node volts as a linear map
        of the drive volts — ``(rows, lines)`` with ``rows[node]`` the coefficient per
        driven node (sorted as :meth:`solution` sorts them) and ``lines`` the driving
        line of each — or None (transistor networks, the general solver, no solve yet)."""
        prev = self._solved[net]
        if prev is None or self._fast_dc is None:
            return None
        p_state, p_drives, _sol = prev
        circuit = self._circuits.get((net, p_state.tobytes()))
        if circuit is None:
            return None
        fixed = tuple(sorted(p_drives))
        key = (net, circuit.conductance.tobytes(), fixed)
        op = self._linops.get(key)
        if op is not None:
            return op
        if not self._fast_dc._kinds_of(circuit)[0] or not fixed:
            return None
        # the drive table as driven() walks it (the last port on a node wins)
        table = {}
        for nodes, line, sw in self._drive_tables[net]:
            if sw is not None and not self.line_level(sw):
                continue
            table[nodes] = line
        if tuple(sorted(k for k in table if k != self.board.ground)) != fixed:
            return None
        # columns: the node volts of a unit volt on one driven node (superposition)
        cols = [self._fast_dc.solve(circuit, {k: float(k == j) for k in fixed}, None)
                for j in fixed]
        if any(c is None for c in cols):
            return None
        m = np.stack([c.node_voltages for c in cols], axis=1)
        op = (m.tolist(), [self._line_getter(table[k]) for k in fixed])
        if len(self._linops) > 256:
            self._linops.clear()
        self._linops[key] = op
        return op

    def _sol(self, net: int):
        """The last solve of ``net`` as a DCSolution (a re-solve that :meth:`adc_block` took
        from the linear map is completed here, when someone asks for it)."""
        p_state, drives, sol = self._solved[net]
        if sol is None:
            circuit = self._circuits[(net, p_state.tobytes())]
            sol = self._fast_dc.solve(circuit, drives, None)
            self._solved[net] = (p_state, drives, sol)
        return sol

    def _linear_ready(self, net: int):
        """The linear map of ``net`` if :meth:`solution` would now keep its last circuit
        (taps and driven nodes unchanged, no stuck-edge fault pending), else None."""
        prev = self._solved[net]
        if prev is None or self.faults.stuck_edges - set(self._stuck_values):
            return None
        op = self._linear_op(net)
        if op is None:
            return None
        chk = self._checked[net]
        now = self.clock._us
        if chk is not None and chk[0] == self._gen and now >= self._dynamic_until and \
                (now - chk[1]) * 1e-6 * self._max_leak * self.faults.leak_scale \
                <= self.resolve_tol:
            return op  # solution() would return the cached solve without looking
        if prev[1].keys() != self.driven(net).keys() or \
                np.max(np.abs(prev[0] - self.edge_state(net)), initial=0.0) > self.resolve_tol:
            return None
        return op

    def _line_getter(self, line: Line):
        """``volts_at(now_us)`` of voltage output ``line`` (:meth:`_line_volts` bound)."""
        if not line.device:
            return partial(self.pwms[line.index]._out.value, 0)
        return partial(self.dacs[line.device]._out.value, line.index)

    def _adc_block_linear(self, channel: int, n: int, period: int):
        """:meth:`adc_block` while drives settle on linear (digipot) networks: what ``n``
        :meth:`adc_read_u16` calls give — :meth:`solution`'s bookkeeping per sample (a
        re-solve whenever a drive moved by more than 1e-7 V since the last one) — with
        each re-solve's node volts from the network's linear map of the drive volts
        (the same solution to rounding) instead of a factorised solve; the full solution
        of the last one is completed only if asked for (:meth:`_sol`). None where it
        does not apply (then the caller reads sample by sample). ``period``: µs from one
        conversion to the next."""
        srcs = []
        nets = {}
        for mux, nodes, gates, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            ch = mux._channel
            if nodes is not None and ch < len(nodes) and nodes[ch] >= 0:
                if net not in nets:
                    op = self._linear_ready(net)
                    if op is None:  # new taps: solve (sample 0 as a single read takes it)
                        self.solution(net)
                        op = self._linear_op(net)
                        if op is None:
                            return None
                    nets[net] = op
                srcs.append((mux, net, nodes[ch]))
            elif gates is not None and ch < len(gates) and gates[ch] >= 0:
                return None
            else:
                srcs.append((mux, None, 0))
        if not nets:
            return None
        clock = self.clock
        adc = self.adc
        ns = self.faults.noise_scale
        vref = adc.vref
        gen = self._gen
        leak = self._max_leak * self.faults.leak_scale * 1e-6
        tol = self.resolve_tol
        bits = adc.bits
        sh16 = 16 - bits
        listeners = clock._listeners  # a watchdog checks every advance
        # per network: [rows, drive getters, drive volts of the last solve, {node: volts},
        # moved]
        st = {}
        for net, (rows, lines) in nets.items():
            p_drives = self._solved[net][1]
            sol = self._solved[net][2]
            st[net] = [rows, lines, [p_drives[k] for k in sorted(p_drives)],
                       None if sol is None else sol.node_voltages, False]
        codes = []
        for _ in range(n):
            now = clock._us
            for net, s in st.items():
                chk = self._checked[net]
                if chk is not None and chk[0] == gen and now >= self._dynamic_until and \
                        (now - chk[1]) * leak <= tol:
                    continue  # solution(): the cached solve holds
                vals = [volts_at(now) for volts_at in s[1]]
                if all(abs(p - v) <= 1e-7 for p, v in zip(s[2], vals, strict=True)):
                    self._checked[net] = (gen, self._solved_at[net])
                    continue
                s[2] = vals
                s[3] = None
                s[4] = True
                self.solves += 1
                self._solved_at[net] = now
                self._checked[net] = (gen, now)
            acc = 0.0
            for mux, net, node in srcs:
                if net is None:
                    v = 0.0
                else:
                    s = st[net]
                    volts = s[3]
                    if volts is None:
                        volts = s[3] = {}
                    if isinstance(volts, dict):
                        v = volts.get(node)
                        if v is None:
                            v = volts[node] = sum([a * d for a, d in zip(s[0][node], s[2],
                                                                          strict=True)])
                    else:
                        v = volts[node]
                acc += mux.output(v, now)
            v = min(max(acc / len(srcs), 0.0), vref)
            code = adc.code(v, ns)  # AdcModel.read_u16's bit replication, inline
            codes.append(((code << sh16) | (code >> (bits - sh16))) & 0xFFFF if sh16 > 0
                         else code)
            if listeners:
                clock.advance_us(period)  # 500 kS/s back to back
            else:
                clock._us += period
        for net, s in st.items():
            if s[4]:  # the last re-solve, completed by _sol() when asked for
                p_state, p_drives, _ = self._solved[net]
                self._solved[net] = (p_state, dict(zip(sorted(p_drives), s[2], strict=True)),
                                     None)
        return codes

    def _block_steady(self, channel: int, n: int, period: int) -> list[int] | None:
        """:meth:`adc_block`'s usual case, its arithmetic in its order with less
        bookkeeping: one mux connected to the input, settled or settling inside the
        ADC's range, noise on. None (nothing changed) otherwise. The hot path of every
        node read: the mux's output law, the node-volts cache check and the block's
        conversions are inline here."""
        found = None
        for entry in self._adc_mux.get(channel, ()):
            if entry[0].is_connected:
                if found is not None:
                    return None
                found = entry
        if found is None:
            return None
        adc = self.adc
        faults = self.faults
        ns = faults.noise_scale
        if not (adc.noise_lsb and ns):
            return None
        mux, nodes, gates, net = found
        ch = mux._channel
        now = self.clock._us
        if nodes is not None and ch < len(nodes) and nodes[ch] >= 0:
            c = self._vcache[net]  # _node_volts's cache check, inline
            if c is not None and c[0] == self._gen and now <= c[1] and \
                    c[2] == faults.leak_scale and \
                    len(faults.stuck_edges) == len(self._stuck_values):
                src = c[3][nodes[ch]]
            else:
                src = self._node_volts(net, nodes[ch])
        elif gates is not None and ch < len(gates) and gates[ch] >= 0:
            src = self._gate_volts(net, gates[ch])
        else:
            src = 0.0
        tau = mux.tau_us
        target = src * mux.gain  # AnalogMux.output, inline
        k = math.exp(-(now - mux._channel_since) / tau) if tau > 0 else 0.0
        out = target + (mux._out - target) * k
        vref = adc.vref
        if n > 1 and not abs(out - target) < 1e-9:  # still settling (the usual case)
            if not (tau > 0 and 0.0 <= out <= vref and 0.0 <= target <= vref):
                return None
            a0 = target / adc._lsb * adc._g1 + adc.offset_lsb
            b0 = (out - target) * (adc._g1 / adc._lsb)
            kp = self._kpow.get((tau, n, period, "a"))
            if kp is None:
                kp = self._kp_array(tau, n, period)
        else:
            a0 = min(max(out, 0.0), vref) / adc._lsb * adc._g1 + adc.offset_lsb
            b0 = 0.0
            kp = self._zero_arrays.get(n)
            if kp is None:
                kp = self._zero_arrays[n] = np.zeros(n)
        # the conversions (_block_codes, inline)
        if adc._zi + n > len(adc._za):
            adc.ahead(n)  # draws the next block of deviates
        codes = self._code_arrays.get(n)
        if codes is None:
            codes = self._code_arrays[n] = np.empty(n, dtype=np.int64)
        zi = adc._zi
        block_codes(adc.transitions, self._u16_array, a0, b0, kp, adc._za, zi,
                    adc.noise_lsb * ns, codes)
        adc._zi = zi + n  # AdcModel.skip
        if n > 1:  # the mux's state at the last conversion (AnalogMux.output, inline)
            dt = period * (n - 1)
            k = math.exp(-dt / tau) if tau > 0 else 0.0
            mux._out = target + (out - target) * k
            mux._channel_since = now + dt
        else:
            mux._out = out
            mux._channel_since = now
        self.clock.advance_int(period * n)
        return codes.tolist()

    def _block_codes(self, a0: float, b0: float, kp, n: int, sig: float) -> list[int]:
        """The u16 codes of ``n`` noisy conversions at ``a0 + b0 kp[i]`` input LSB
        (:func:`adc_kernel.block_codes`), the noise taken from the ADC's stream."""
        adc = self.adc
        if adc._zi + n > len(adc._za):
            adc.ahead(n)  # draws the next block of deviates
        out = self._code_arrays.get(n)
        if out is None:
            out = self._code_arrays[n] = np.empty(n, dtype=np.int64)
        zi = adc._zi
        block_codes(adc.transitions, self._u16_array, a0, b0, kp, adc._za, zi, sig, out)
        adc._zi = zi + n  # AdcModel.skip
        return out.tolist()

    def _kp_array(self, tau_us: float, n: int, period_us: int):
        key = (tau_us, n, period_us, "a")
        kp = self._kpow.get(key)
        if kp is None:
            kp = self._kpow[key] = np.array(self._settle_powers(tau_us, n, period_us))
        return kp

    def _settle_powers(self, tau_us: float, n: int, period_us: int = 2) -> list[float]:
        """exp(-period i µs / tau) for i < n (cached)."""
        key = (tau_us, n, period_us)
        kp = self._kpow.get(key)
        if kp is None:
            kp = self._kpow[key] = [math.exp(-float(period_us) * i / tau_us) for i in range(n)]
        return kp

    def adc_read_u16(self, channel: int) -> int:
        """One conversion of ADC input ``channel``, as ``machine.ADC.read_u16`` returns it."""
        if not 0 <= channel <= RP2040_TEMP_CHANNEL:
            raise InputError(f"ADC channel {channel} does not exist (0..4 on the RP2040)",
                             field="adc")
        code = self.adc.read_u16(self.adc_input_volts(channel), self.faults.noise_scale)
        self.clock.advance_us(2)  # 500 kS/s
        return code

    def block_is_cached(self, channel: int, n: int, period_us: int = 2) -> bool:
        """Whether :meth:`adc_block` on ``channel`` now would take every node it reads
        from the kept solves (no new solve): the world server runs such reads ahead."""
        end = self.clock._us + max(2, int(period_us)) * n
        for mux, nodes, _gates, net in self._adc_mux.get(channel, ()):
            if not mux.is_connected:
                continue
            ch = mux._channel
            if nodes is not None and ch < len(nodes) and nodes[ch] >= 0:
                c = self._vcache[net]
                if c is None or c[0] != self._gen or end > c[1] or \
                        c[2] != self.faults.leak_scale or \
                        len(self.faults.stuck_edges) != len(self._stuck_values):
                    return False
        return True

    # ------------------------------------------------------------------ undo of reads
    def read_state(self) -> tuple:
        """What mux-pin writes, sleeps and conversions change (clock, pins, muxes, the
        ADC's noise stream, gate volts, the solve bookkeeping), for
        :meth:`restore_read_state` (the world server's speculative reads). Device
        settings (taps, DAC codes, switches) are not in it: those ops never run ahead."""
        adc = self.adc
        return (self.clock._us, dict(self.pins),
                [(m.enable, m._channel, m._channel_since, m._out, m.is_connected)
                 for m in self.muxes.values()],
                (adc._za, adc._zi, adc._z, adc.rng.bit_generator.state),
                [(g.v, g._t) for net in self.edges for g in net if isinstance(g, GateCap)],
                (list(self._vcache), list(self._solved), list(self._checked),
                 list(self._solved_at), self.solves, self._gen))

    def restore_read_state(self, state: tuple) -> None:
        """Go back to a :meth:`read_state` (the clock too, without its listeners)."""
        now, pins, muxes, noise, gates, solves = state
        self.clock._us = now
        self.pins.clear()
        self.pins.update(pins)
        for m, (en, ch, since, out, conn) in zip(self.muxes.values(), muxes, strict=True):
            m.enable, m._channel, m._channel_since = en, ch, since
            m._out, m.is_connected = out, conn
        adc = self.adc
        adc._za, adc._zi, adc._z, rng = noise
        adc.rng.bit_generator.state = rng
        caps = (g for net in self.edges for g in net if isinstance(g, GateCap))
        for g, (v, t) in zip(caps, gates, strict=True):
            g.v, g._t = v, t
        vc, so, ch, sa, self.solves, self._gen = solves
        self._vcache[:], self._solved[:], self._checked[:], self._solved_at[:] = vc, so, ch, sa

    # ------------------------------------------------------------------ power events
    def mcu_reset(self) -> None:
        """The microcontroller resets (soft or hard): its pins float and PWM stops; the
        external parts (DACs, chains, digipots, gate capacitors) keep their state."""
        now = self.clock.now_us
        self.pins.clear()
        for pwm in self.pwms.values():
            pwm.set_duty_u16(0, now)
        self._gen += 1  # the PWM outputs changed: no cached solve survives
        self._dynamic_until = max(self._dynamic_until, now + self._out_settle_us)

    def power_cycle(self) -> None:
        """Board power off and on: X9C taps come back from EEPROM, SPI pots at mid-scale,
        DACs at 0 V, chains cleared; gate capacitors keep most of their charge."""
        self.mcu_reset()
        now = self.clock.now_us
        for net_edges in self.edges:
            for dev in net_edges:
                if isinstance(dev, X9cDigipot):
                    dev.power_cycle()
        for pot in self._spi_pots.values():
            pot.power_cycle()
        for dac in self.dacs.values():
            for ch in range(dac.channels):
                dac.codes[ch] = 0
                dac._out.set(ch, 0.0, now)
        for name, chain in self.chains.items():
            chain.shift = chain.latched = 0
            if self.board.expanders[name].oe is not None:
                chain.set_oe(1)
        self._lines_changed()

    def on_reset(self, kind: str) -> None:
        """Hook for ``VirtualBoard(on_reset=...)``: ``"power-on"`` power-cycles the parts,
        other resets only reset the microcontroller."""
        self.watchdog.on_reset(kind)
        if kind == "power-on":
            self.power_cycle()
        else:
            self.mcu_reset()

