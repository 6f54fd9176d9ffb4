"""The in-memory form of a board description (see ``docs/board-format.md``).

Everything is resolved: node and edge references are integer indices, every
per-network field holds one entry per network (``n_nets``: 2 for twin boards —
index 0 the free network, 1 the clamped one — or 1 for single-network boards).
A :class:`Line` names one digital output or analog channel: ``device == ""`` is the
microcontroller itself (a GPIO pin, or a PWM output on that pin), otherwise the name
of an expander (shift-register bit) or a DAC (channel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

KINDS = ("resistor", "digipot", "transistor")
RULES = ("taps", "sign", "gate")
INITS = ("low", "uniform", "random")  # a session's initial edge states ([learning] init)


class Line(NamedTuple):
    """One output line or channel: ``("", 5)`` is GPIO 5, ``("cs", 3)`` bit 3 of expander ``cs``."""

    device: str
    index: int

    def __str__(self) -> str:
        return f"GP{self.index}" if not self.device else f"{self.device}.{self.index}"


class Channel(NamedTuple):
    """Where a voltage is read: channel ``channel`` of multiplexer ``mux``."""

    mux: str
    channel: int


@dataclass(frozen=True)
class DigipotPart:
    name: str
    n_taps: int
    r_min: float  # ohm, end resistance at tap 0 (log taper: the small end)
    r_max: float  # ohm, at the last tap
    taper: str  # "log" | "linear"
    r_wiper: float  # ohm, typical
    tolerance: float  # relative end-to-end spread (0.15 = ±15 %)
    i_max: float  # ampere, wiper current rating
    interface: str  # "x9c" | "spi"
    settle_us: float
    kind: str = "digipot"


@dataclass(frozen=True)
class TransistorPart:
    name: str
    polarity: str  # "n" (only NMOS for now)
    vt: float  # V
    beta: float  # A/V^2
    sub_slope: float  # V per decade below threshold
    gate_c: float  # F, gate memory capacitor
    gate_r: float  # ohm, gate charge resistor
    vg_max: float  # V, gate rating
    i_max: float  # A, drain current rating
    vt_spread: float  # V, device-to-device std (emulator)
    beta_spread: float  # relative std (emulator)
    gate_leak: float  # V/s, idle gate drift (emulator)
    kind: str = "transistor"


Part = DigipotPart | TransistorPart


@dataclass(frozen=True)
class X9cDriver:
    cs: Line
    ud: Line
    inc: Line


@dataclass(frozen=True)
class SpiPotDriver:
    bus: str
    cs: Line
    wiper: int


@dataclass(frozen=True)
class PulseGateDriver:
    charge: Line
    discharge: Line


@dataclass(frozen=True)
class DacGateDriver:
    dac: Line


Driver = X9cDriver | SpiPotDriver | PulseGateDriver | DacGateDriver


@dataclass(frozen=True)
class Edge:
    name: str
    a: int  # drop is V_a - V_b
    b: int
    kind: str
    part: str | None  # digipot / transistor part name
    resistance: float | None  # ohm, resistor edges
    drivers: tuple[Driver, ...]  # one per network; () for resistors


@dataclass(frozen=True)
class Port:
    """An input or an output: node ``a`` or the pair ``(a, b)`` (value ``V_a - V_b``)."""

    name: str
    a: int
    b: int | None
    drive: tuple[Line | None, ...]  # inputs: per network; outputs: clamp per network (None: floats)
    drive_b: tuple[Line | None, ...]  # the same for node b of a pair (when b is not ground)
    switch: Line | None = None  # single-network outputs: connects the clamp driver
    switch_b: Line | None = None
    fixed: float | None = None  # inputs: a bias source always driven to this value (V)
    common: float | None = None  # pairs: common-mode voltage (V)


@dataclass(frozen=True)
class SpiBus:
    name: str
    id: int
    sck: int
    mosi: int
    miso: int | None
    baud: int


@dataclass(frozen=True)
class I2cBus:
    name: str
    id: int
    sda: int
    scl: int
    freq: int


@dataclass(frozen=True)
class Expander:
    """A chain of serial-in parallel-out outputs (74HC595s, ADG1414 switches) on SPI."""

    name: str
    part: str
    bus: str
    latch: int  # GPIO: low while shifting, rising edge latches
    bits: int
    oe: int | None  # GPIO, active-low output enable (held high until initialised)


@dataclass(frozen=True)
class Dac:
    name: str
    part: str
    interface: str  # "spi" | "i2c"
    bus: str
    cs: int | None  # GPIO chip select (spi)
    address: int | None  # 7-bit address (i2c)
    channels: int
    bits: int
    vref: float  # V at full scale, before gain
    gain: float  # output stage: node volts = code / 2**bits * vref * gain
    settle_us: float


@dataclass(frozen=True)
class Pwm:
    freq: int  # Hz
    bits: int
    vref: float  # logic high (V)
    gain: float  # RC filter + divider
    settle_us: float


@dataclass(frozen=True)
class Adc:
    type: str  # "internal" | "spi"
    bits: int
    vref: float
    oversample: int
    settle_us: float
    part: str
    bus: str | None
    cs: int | None
    channels: int


@dataclass(frozen=True)
class CurrentSense:
    """An I2C current/power monitor (INA219-style): its shunt is in series with the
    driver of node ``node`` on network ``net`` (high side, between the driver's output and
    the node), its bus-voltage input reads that node, so bus volts × shunt volts / shunt
    is the power that driver delivers into the network."""

    part: str
    bus: str  # I2C bus name
    address: int  # 7-bit
    shunt: float  # ohm
    net: int
    node: int


@dataclass(frozen=True)
class Mux:
    """An analog multiplexer in front of one ADC channel, with its front-end gain."""

    name: str
    part: str
    select: tuple[int, ...]  # GPIO, LSB first
    enable: int | None  # GPIO
    enable_level: int  # level of ``enable`` that connects the mux (0: active low)
    adc_channel: int
    gain: float
    net: int  # which network it reads
    nodes: tuple[int, ...]  # node index per mux channel (-1: unused)
    gates: tuple[int, ...]  # edge index per mux channel (-1: unused), gate read-back

    @property
    def n_channels(self) -> int:
        return 1 << len(self.select)


@dataclass(frozen=True)
class Gates:
    driver: str  # "pulse" | "dac"
    charge_rail: str  # rail name a charge pulse drives toward
    pulse_us: float


@dataclass(frozen=True)
class Limits:
    max_node_volts: float
    max_edge_amps: float
    gate_range: tuple[float, float] | None
    tap_range: tuple[int, int] | None
    reason: str


@dataclass(frozen=True)
class Learning:
    rule: str
    alpha: float
    eta: float
    lam: float
    task: str
    # what a session starts from when neither its flags nor its schedule file say
    init: str = "uniform"  # the edges' initial state ("low", "uniform", "random")
    null_offset_every: int = 0  # steps between the board's null-offset measurements; 0: off
    anneal: bool = True  # transistor boards: learning rate annealed 1.0 -> 0.2, else `alpha`


@dataclass(frozen=True)
class Board:
    """A validated board description. Build it with :func:`learnboard.boards.load_board`."""

    name: str
    description: str
    microcontroller: str
    networks: str  # "twin" | "single"
    nodes: tuple[str, ...]
    ground: int
    positions: np.ndarray | None
    rails: dict[str, float]
    parts: dict[str, Part]
    edges: tuple[Edge, ...]
    inputs: tuple[Port, ...]
    outputs: tuple[Port, ...]
    spi: dict[str, SpiBus]
    i2c: dict[str, I2cBus]
    expanders: dict[str, Expander]
    dacs: dict[str, Dac]
    pwm: Pwm | None
    adc: Adc
    muxes: dict[str, Mux]
    gates: Gates | None
    limits: Limits
    learning: Learning
    source: str = field(default="<board>", compare=False)
    current_sense: tuple[CurrentSense, ...] = ()  # one monitor per sensed driver

    @property
    def n_nets(self) -> int:
        """Number of physical networks: 2 for twin boards, 1 for single."""
        return 2 if self.networks == "twin" else 1

    @property
    def has_gates(self) -> bool:
        """Whether any edge is a transistor (its gate is what learns)."""
        return any(e.kind == "transistor" for e in self.edges)

    def drivers(self) -> list[tuple[int, int]]:
        """(network, node) of every driver that can hold a node away from 0 V: each
        input's (bias included) and each output clamp's, on every network (ground
        excluded: a ground return delivers no power)."""
        out: list[tuple[int, int]] = []
        for net in range(self.n_nets):
            for port in self.inputs + self.outputs:
                for node, lines in ((port.a, port.drive), (port.b, port.drive_b)):
                    if node is None or node == self.ground or not lines:
                        continue
                    line = lines[net] if len(lines) > net else lines[0]
                    if line is not None and (net, node) not in out:
                        out.append((net, node))
        return out

    def unsensed_drivers(self) -> list[tuple[int, int]]:
        """:meth:`drivers` without a current monitor in their output."""
        sensed = {(cs.net, cs.node) for cs in self.current_sense}
        return [d for d in self.drivers() if d not in sensed]

    @property
    def power_measured(self) -> bool:
        """True when current monitors sit in every driver (:meth:`drivers`): only then
        is the sum of their readings the networks' total power."""
        return bool(self.current_sense) and not self.unsensed_drivers()

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    def node_index(self, name: str) -> int:
        return self.nodes.index(name)

    def edge_index(self, name: str) -> int:
        return [e.name for e in self.edges].index(name)

    def edge_array(self) -> np.ndarray:
        """Integer array (E, 2) of edge endpoints."""
        return np.array([(e.a, e.b) for e in self.edges], dtype=np.int64).reshape(-1, 2)

    def node_channel(self, node: int, net: int = 0) -> Channel | None:
        """The mux channel that reads ``node`` on network ``net`` (None for an unread ground)."""
        for mux in self.muxes.values():
            if mux.net == net and node in mux.nodes:
                return Channel(mux.name, mux.nodes.index(node))
        return None

    def gate_channel(self, edge: int, net: int = 0) -> Channel | None:
        """The mux channel that reads back the gate of transistor ``edge`` on network ``net``."""
        for mux in self.muxes.values():
            if mux.net == net and edge in mux.gates:
                return Channel(mux.name, mux.gates.index(edge))
        return None

    def network(self):
        """The topology as a :class:`learnboard.network.Network` (ground = the board's ground)."""
        from learnboard.network import Network

        return Network(self.n_nodes, self.edge_array(), self.ground, self.positions, name=self.name)
