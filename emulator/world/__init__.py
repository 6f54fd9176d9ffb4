"""The analog world of an emulated board: its parts, wired as the board description says.

:class:`World` builds the device models (mux + ADC, DACs / PWM + RC, shift chains, X9C and
SPI digipots, gate capacitors) and the twin-network physics with device mismatch from a
board description and a seed. Pin levels, SPI/I2C traffic and virtual time drive the
parts; the DC state of each network is re-solved only when an actuation has changed the
circuit (a tap, a gate beyond ``resolve_tol``, a driven voltage) — never just because it
is read. It also exposes the true physical state for tests and for comparing with what
the firmware reports.

The package's modules are the parts of the board (``docs/emulator.md``, "The world
package"): ``wiring`` (pins and buses), ``outputs`` (DACs, PWM), ``actuators``
(digipots, gate capacitors), ``solution`` (the DC solves and the one cache that says
when they hold), ``conversions`` (the ADC) and ``kernels`` (compiled arithmetic with
plain-Python references).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from learnboard.emulator.devices import (
    AdcModel,
    AnalogMux,
    GateCap,
    ShiftChain,
    SpiDac,
    SpiDigipot,
    VirtualClock,
)
from learnboard.emulator.devices.adc import E11_CODES
from learnboard.emulator.devices.watchdog import Watchdog
from learnboard.emulator.world.actuators import Actuators
from learnboard.emulator.world.conversions import (
    RP2040_TEMP_CHANNEL,
    RP2040_TEMP_VOLTS,
    Conversions,
)
from learnboard.emulator.world.kernels import warm_up as adc_warm_up
from learnboard.emulator.world.outputs import Outputs
from learnboard.emulator.world.solution import CircuitSolution, SolveCache
from learnboard.emulator.world.wiring import Wiring

from learnboard.board_id import emulated_uid
from learnboard.boards import Board, Line, load_board
from learnboard.boards.schema import DacGateDriver
from learnboard.errors import InputError
from learnboard.physics.dc_newton import warm_up as dc_warm_up

__all__ = ["RP2040_TEMP_CHANNEL", "RP2040_TEMP_VOLTS", "SOLVES_ENV", "Faults", "SolveCache",
           "TrueState", "World", "solves_mode"]


SOLVES_ENV = "LEARNBOARD_EMULATOR_SOLVES"
"""Environment setting of :func:`solves_mode` for every world made without ``solves=``."""
SOLVES_MODES = ("lazy", "eager")


def solves_mode(value: str | None = None) -> str:
    """How a world takes the DC re-solves that reads ask for (``docs/emulator.md``,
    "Lazy and eager solves"): ``value``, else :data:`SOLVES_ENV`, else ``"lazy"``.
    ``"lazy"``: a block of conversions while a linear network's drives settle takes its
    per-sample re-solves from the network's linear map in one compiled pass; ``"eager"``:
    the reference, one re-solve after another in Python as single reads take them.
    Both give the same codes, clock and solve counts."""
    where = "solves"
    if value is None:
        value = os.environ.get(SOLVES_ENV) or "lazy"
        where = SOLVES_ENV
    mode = str(value).strip().lower()
    if mode not in SOLVES_MODES:
        raise InputError(f"{value!r} is not a solve mode: use lazy (the default) or "
                         f"eager (the reference path)", field=where)
    return mode


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


class World(Wiring, Outputs, Actuators, CircuitSolution, Conversions):
    """Emulated parts and physics of ``board`` (a Board, a profile name or a TOML path).

    Args:
        seed: one seed for device mismatch, ADC noise, leak rates and pulse skews.
        faults: fault knobs (can be changed later through :attr:`faults`).
        clock: a shared :class:`VirtualClock` (a new one by default).
        adc_noise_lsb: ADC input noise; ``None``: 1 LSB rms for the RP2040's ADC.
        gate_v0: initial gate volts (default the middle of ``limits.gate_range``).
        resolve_tol: gate change (V) that triggers a new solve.
        skew_us: std of the per-edge pulse-length skew (the small learning bias).
        solves: ``"lazy"`` or ``"eager"``; None: :data:`SOLVES_ENV`, else ``"lazy"``
            (:func:`solves_mode`).
    """

    def __init__(self, board: Board | str | Path, seed: int = 0, faults: Faults | None = None,
                 clock: VirtualClock | None = None, adc_noise_lsb: float | None = None,
                 gate_v0: float | None = None, resolve_tol: float = 1e-5,
                 skew_us: float = 0.2, solves: str | None = None):
        self.board = board if isinstance(board, Board) else load_board(board)
        b = self.board
        self.seed = int(seed)
        self.solves_mode = solves_mode(solves)
        self._eager_solves = self.solves_mode == "eager"
        # the MCU's unique id: stable per board and seed, marked as emulated (board_id)
        self.uid = emulated_uid(self.board.name, self.seed)
        self.faults = faults or Faults()
        self.clock = clock or VirtualClock()
        self.watchdog = Watchdog(self.clock)  # the MCU's; kept across VM processes
        self.resolve_tol = float(resolve_tol)
        self.pins: dict[int, int] = {}
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
        self.pwms: dict = {}
        self._gpio_watch: dict[int, list] = {}
        self._line_watch: dict[str, dict[int, list[tuple[Line, object]]]] = {}
        self._active_gates: set = set()  # gates with a switch on: they move between reads
        self._line_levels: dict[Line, int] = {}
        # chain -> bit -> (gate, charge bit, discharge bit): gates switched from one chain
        self._chain_gates: dict[str, dict[int, list[tuple[GateCap, int, int]]]] = {}
        self.edges: list[list] = [[None] * b.n_edges for _ in range(b.n_nets)]
        self._spi_pots: dict[tuple, SpiDigipot] = {}
        self._stuck_values: dict[tuple[int, int], float] = {}
        self._spi_parts: dict = {}  # bus id -> the parts listening on it
        self._build_inputs()
        self._build_edges(rng, gate_v0, skew_us)
        self._build_watches()
        self._mux_pins = {p for m in b.muxes.values()
                          for p in m.select + ((m.enable,) if m.enable is not None else ())}
        # an output is settled to 1e-7 V after ~20 time constants of its settling law
        self._out_settle_us = 3.0 * max([d.settle_us for d in b.dacs.values()] +
                                        [b.pwm.settle_us if b.pwm else 0.0])
        self._max_leak = max([g.leak for net in self.edges for g in net
                              if isinstance(g, GateCap)] + [0.0])
        self._dac_gates = any(isinstance(d, DacGateDriver) for e in b.edges for d in e.drivers)
        # per network: its edges if all are pulse-driven capacitor gates (edge_state's
        # vectorised path while none is switched), else None
        self._idle_gate_nets = [
            list(self.edges[net]) if all(isinstance(g, GateCap) for g in self.edges[net]) and
            not any(isinstance(e.drivers[net], DacGateDriver) for e in b.edges) else None
            for net in range(b.n_nets)]
        self._build_solution()
        # the compiled paths are loaded now rather than in the first learning step
        if b.has_gates:
            dc_warm_up()
        self._build_conversions()
        adc_warm_up()
        self._build_read_parts()

    def true_state(self, net: int = 0) -> TrueState:
        """What the physics says on network ``net`` now (solved if the circuit changed)."""
        sol = self.solution(net)
        return TrueState(sol.node_voltages.copy(), sol.edge_currents.copy(), float(sol.power),
                         self.edge_state(net))

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
                self._cache.snapshot())

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
        self._cache.restore(solves)

    # ------------------------------------------------------------------ power events
    def mcu_reset(self) -> None:
        """The microcontroller resets (soft or hard): its pins float and PWM stops; the
        external parts (DACs, chains, digipots, gate capacitors) keep their state."""
        now = self.clock.now_us
        self.pins.clear()
        self._outputs_off(now)
        self._cache.actuated(now, self._out_settle_us)  # no cached solve survives

    def power_cycle(self) -> None:
        """Board power off and on: X9C taps come back from EEPROM, SPI pots at mid-scale,
        DACs at 0 V, chains cleared; gate capacitors keep most of their charge."""
        self.mcu_reset()
        now = self.clock.now_us
        self._power_cycle_pots()
        self._dacs_power_cycle(now)
        for name, chain in self.chains.items():
            chain.shift = chain.latched = 0
            if self.board.expanders[name].oe is not None:
                chain.set_oe(1)
        self._lines_changed()

    def on_reset(self, kind: str) -> None:
        """Hook for ``VMBoard(on_reset=...)``: ``"power-on"`` power-cycles the parts,
        other resets only reset the microcontroller."""
        self.watchdog.on_reset(kind)
        if kind == "power-on":
            self.power_cycle()
        else:
            self.mcu_reset()
