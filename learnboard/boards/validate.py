"""Cross-checks of a parsed board: topology, wiring conflicts, part ratings, ADC ranges,
the firmware's integer ranges.

Each check raises :class:`~learnboard.errors.InputError` naming the file, the field
at fault and what to change. :func:`worst_case_current` is the bound the firmware
also keeps, since a board cannot measure edge currents: the largest possible drop over the smallest possible resistance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from learnboard.boards.mcu import MICROCONTROLLERS, Microcontroller
from learnboard.boards.schema import (
    Board,
    DacGateDriver,
    DigipotPart,
    Line,
    PulseGateDriver,
    SpiPotDriver,
    TransistorPart,
    X9cDriver,
)
from learnboard.errors import InputError

# ADC headroom: a gain is accepted when it maps the range to <= vref * (1 + _SLACK)
_SLACK = 1e-9


def digipot_r_lo(part: DigipotPart, tap: int) -> float:
    """Smallest possible resistance at ``tap`` (end-to-end spread low, wiper ignored)."""
    return digipot_nominal(part, tap) * (1.0 - part.tolerance)


def digipot_nominal(part: DigipotPart, tap: int) -> float:
    """Nominal track resistance at ``tap`` (no wiper): log or linear between r_min and r_max."""
    x = tap / (part.n_taps - 1)
    if part.taper == "log":
        return part.r_min * (part.r_max / part.r_min) ** x
    return part.r_min + (part.r_max - part.r_min) * x


def worst_case_current(board: Board, edge: int) -> float:
    """Largest edge current (A) any allowed state can drive: max drop over min resistance."""
    e = board.edges[edge]
    v = board.limits.max_node_volts
    if e.kind == "resistor":
        return v / e.resistance
    part = board.parts[e.part]
    if isinstance(part, DigipotPart):
        lo = board.limits.tap_range[0] if board.limits.tap_range else 0
        return v / digipot_r_lo(part, lo)
    g_hi = board.limits.gate_range[1] if board.limits.gate_range else part.vg_max
    overdrive = max(g_hi - (part.vt - 3 * part.vt_spread), 0.0)
    beta = part.beta * (1 + 3 * part.beta_spread)
    # ohmic current with the source at 0 V, or saturation when the drop exceeds the overdrive
    return beta * overdrive * min(v, overdrive) if v < overdrive else 0.5 * beta * overdrive**2


@dataclass
class _Use:
    what: str
    field: str
    share: str | None  # uses with the same non-None tag may share the resource


class _Resources:
    """Who uses which pin, expander bit, DAC channel: anything used twice is an error."""

    def __init__(self, board: Board):
        self.board = board
        self.uses: dict[tuple, _Use] = {}

    def err(self, message: str, field: str) -> InputError:
        return InputError(message, source=self.board.source, field=field)

    def claim(self, key: tuple, what: str, field: str, share: str | None = None) -> None:
        prior = self.uses.get(key)
        if prior is None:
            self.uses[key] = _Use(what, field, share)
            return
        if share is not None and prior.share == share:
            return
        raise self.err(f"{self.label(key)} is already used as {prior.what} ({prior.field}); "
                       f"each pin or channel has one job: pick a free one", field)

    @staticmethod
    def label(key: tuple) -> str:
        kind = key[0]
        if kind == "gpio":
            return f"GPIO {key[1]}"
        if kind == "pwm":
            return f"PWM slice {key[1]} output {key[2]}"
        return f"{kind} {key[1]}.{key[2]}" if len(key) == 3 else f"{kind} {key[1]}"

    def gpio(self, pin: int, what: str, field: str, share: str | None = None) -> None:
        mcu = MICROCONTROLLERS[self.board.microcontroller]
        if not 0 <= pin < mcu.n_gpio:
            raise self.err(f"GPIO {pin} does not exist on the {mcu.name} (GPIO 0-{mcu.n_gpio - 1})",
                           field)
        self.claim(("gpio", pin), what, field, share)

    def digital(self, line: Line, what: str, field: str, share: str | None = None) -> None:
        """A digital output: a GPIO or an expander bit."""
        if line.device == "":
            self.gpio(line.index, what, field, share)
            return
        exp = self.board.expanders.get(line.device)
        if exp is None:
            from learnboard.boards.reader import suggest

            raise self.err(f"{line} names no expander: declare [expanders.{line.device}] or use a "
                           f"GPIO{suggest(line.device, list(self.board.expanders))}", field)
        if line.index >= exp.bits:
            raise self.err(f"expander {exp.name!r} has bits 0-{exp.bits - 1}, not {line.index}", field)
        self.claim(("expander", exp.name, line.index), what, field, share)

    def analog_out(self, line: Line, what: str, field: str, share: str | None = None) -> None:
        """A voltage output: PWM on a GPIO (needs [pwm]) or a DAC channel."""
        if line.device == "":
            if self.board.pwm is None:
                raise self.err(f"{line} is a PWM output but the board has no [pwm] table "
                               "(frequency, bits, filter gain); add one or use a DAC channel", field)
            self.gpio(line.index, what, field, share)
            mcu = MICROCONTROLLERS[self.board.microcontroller]
            self.claim(("pwm", *mcu.pwm_output(line.index)), what + f" (GPIO {line.index})", field,
                       share)
            return
        dac = self.board.dacs.get(line.device)
        if dac is None:
            from learnboard.boards.reader import suggest

            raise self.err(f"{line} names no DAC: declare [dacs.{line.device}] or use a PWM GPIO"
                           f"{suggest(line.device, list(self.board.dacs))}", field)
        if line.index >= dac.channels:
            raise self.err(f"DAC {dac.name!r} has channels 0-{dac.channels - 1}, not {line.index}", field)
        self.claim(("dac", dac.name, line.index), what, field, share)


def validate(board: Board) -> None:
    """Raise InputError for the first problem found; return quietly for a valid board."""
    _topology(board)
    _ports(board)
    _reads(board)
    _wiring(board)
    _ratings(board)
    _gains(board)
    _learning(board)
    _ranges(board)


def _err(board: Board, message: str, field: str | None) -> InputError:
    return InputError(message, source=board.source, field=field)


def _topology(board: Board) -> None:
    edges = board.edge_array()
    if len(edges) == 0:
        raise _err(board, "a board needs at least one [[edges]] entry", "edges")
    touched = np.zeros(board.n_nodes, dtype=bool)
    touched[edges.ravel()] = True
    # ground may stand apart from the lattice (no edge to it) when bias sources hold the
    # lattice's potential instead: every piece then needs a node a fixed bias always drives
    floating = not touched[board.ground]
    touched[board.ground] = True
    if not touched.all():
        node = board.nodes[int(np.flatnonzero(~touched)[0])]
        raise _err(board, f"node {node!r} is dangling: no edge connects it; connect it with an "
                   "edge or remove it from nodes.names", "nodes.names")
    adj = sp.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                        shape=(board.n_nodes, board.n_nodes))
    _, label = sp.csgraph.connected_components(adj, directed=False)
    if floating:
        held = {label[p.a] for p in board.inputs if p.fixed is not None}
        loose = [n for n in range(board.n_nodes) if n != board.ground and label[n] not in held]
        if loose:
            raise _err(board, f"node {board.nodes[loose[0]]!r} floats: ground "
                       f"{board.nodes[board.ground]!r} has no edge, so every node needs a path "
                       "to an input with a fixed bias voltage; add such an input or an edge to "
                       "ground", "edges")
        return
    cut = np.flatnonzero(label != label[board.ground])
    if cut.size:
        raise _err(board, f"node {board.nodes[cut[0]]!r} has no path to ground "
                   f"{board.nodes[board.ground]!r}: the network is in pieces; add an edge",
                   "edges")


def _ports(board: Board) -> None:
    driven: dict[int, str] = {}
    for kind, ports in (("inputs", board.inputs), ("outputs", board.outputs)):
        for i, p in enumerate(ports):
            field = f"{kind}[{i}]"
            for node in (p.a, p.b):
                if node is None or (node == board.ground and node == p.b):
                    continue
                if node == board.ground:
                    raise _err(board, f"node {board.nodes[node]!r} is ground (always 0 V); "
                               "a port cannot drive or read it alone", field)
                if node in driven:
                    raise _err(board, f"node {board.nodes[node]!r} is already used by "
                               f"{driven[node]}; a node belongs to one port", field)
                driven[node] = field
            pair = p.b is not None and p.b != board.ground
            key = "drive_b" if kind == "inputs" else "clamp_b"
            if pair and not p.drive_b:
                raise _err(board, f"node b {board.nodes[p.b]!r} is not ground, so it needs its "
                           f"own driver: set {key}", field)
            if not pair and p.drive_b:
                raise _err(board, f"{key} is only for the second node of a differential port "
                           "whose second node is not ground; remove it", f"{field}.{key}")
            if p.fixed is not None and not 0 <= p.fixed <= board.limits.max_node_volts:
                raise _err(board, f"fixed value {p.fixed:g} V is outside 0..max_node_volts "
                           f"({board.limits.max_node_volts:g} V)", f"{field}.fixed")
    if not board.inputs:
        raise _err(board, "a board needs at least one [[inputs]] entry", "inputs")
    if not board.outputs:
        raise _err(board, "a board needs at least one [[outputs]] entry", "outputs")


def _reads(board: Board) -> None:
    for net in range(board.n_nets):
        reads: dict[int, str] = {}
        gates: dict[int, str] = {}
        for mux in board.muxes.values():
            if mux.net != net:
                continue
            for ch, node in enumerate(mux.nodes):
                if node < 0:
                    continue
                if node in reads:
                    raise _err(board, f"node {board.nodes[node]!r} of network {net} is already read "
                               f"by {reads[node]}; read each node once per network",
                               f"muxes.{mux.name}.nodes[{ch}]")
                reads[node] = f"muxes.{mux.name} channel {ch}"
            for ch, edge in enumerate(mux.gates):
                if edge < 0:
                    continue
                if board.edges[edge].kind != "transistor":
                    raise _err(board, f"edge {board.edges[edge].name!r} is a "
                               f"{board.edges[edge].kind}: only transistor gates are read back",
                               f"muxes.{mux.name}.gates[{ch}]")
                if edge in gates:
                    raise _err(board, f"gate of {board.edges[edge].name!r} on network {net} is "
                               f"already read by {gates[edge]}", f"muxes.{mux.name}.gates[{ch}]")
                gates[edge] = f"muxes.{mux.name} channel {ch}"
        for node in range(board.n_nodes):
            if node != board.ground and node not in reads:
                raise _err(board, f"node {board.nodes[node]!r} of network {net} is read by no "
                           f"multiplexer channel; list it in a [muxes.X] with net = {net}", "muxes")
        for i, e in enumerate(board.edges):
            if e.kind == "transistor" and i not in gates:
                raise _err(board, f"gate of transistor edge {e.name!r} on network {net} has no "
                           f"read-back channel; list it in a [muxes.X] gates = [...] with net = {net}",
                           "muxes")


def pin_map(board: Board) -> list[tuple[str, str, str]]:
    """Every wired resource of a valid board: (resource, what it does, field), in file order."""
    res = _wiring(board)
    return [(res.label(key), use.what, use.field) for key, use in res.uses.items()
            if key[0] != "wiper"]


def _wiring(board: Board) -> _Resources:
    mcu = MICROCONTROLLERS[board.microcontroller]
    res = _Resources(board)
    for name, bus in board.spi.items():
        _bus_pins(board, res, mcu, f"spi.{name}", "SPI", bus.id, mcu.spi_pins,
                  {"sck": bus.sck, "mosi": bus.mosi, "miso": bus.miso})
    for name, bus in board.i2c.items():
        _bus_pins(board, res, mcu, f"i2c.{name}", "I2C", bus.id, mcu.i2c_pins,
                  {"sda": bus.sda, "scl": bus.scl})
    _unique(board, [(b.id, f"spi.{n}") for n, b in board.spi.items()], "SPI")
    _unique(board, [(b.id, f"i2c.{n}") for n, b in board.i2c.items()], "I2C")
    for name, x in board.expanders.items():
        res.gpio(x.latch, f"latch of expander {name}", f"expanders.{name}.latch")
        if x.oe is not None:
            res.gpio(x.oe, f"output enable of expander {name}", f"expanders.{name}.oe")
    for name, d in board.dacs.items():
        if d.cs is not None:
            res.gpio(d.cs, f"chip select of DAC {name}", f"dacs.{name}.cs")
    _current_sense(board)
    adc = board.adc
    if adc.type == "internal":
        if adc.channels > len(mcu.adc_pins):
            raise _err(board, f"the {mcu.name} has {len(mcu.adc_pins)} ADC inputs, not "
                       f"{adc.channels}", "adc.channels")
        if adc.vref > mcu.adc_vref + 1e-9:
            raise _err(board, f"the {mcu.name}'s ADC reference is at most {mcu.adc_vref:g} V, not "
                       f"{adc.vref:g} V", "adc.vref")
    else:
        res.gpio(adc.cs, "chip select of the ADC", "adc.cs")
    by_channel: dict[int, list[str]] = {}
    for name, m in board.muxes.items():
        field = f"muxes.{name}"
        if m.adc_channel >= adc.channels:
            raise _err(board, f"the ADC has channels 0-{adc.channels - 1}, not {m.adc_channel}",
                       f"{field}.adc_channel")
        by_channel.setdefault(m.adc_channel, []).append(name)
        if adc.type == "internal":
            res.gpio(mcu.adc_pins[m.adc_channel], f"ADC input {m.adc_channel}",
                     f"{field}.adc_channel", share="adc-input")
        for k, pin in enumerate(m.select):
            res.gpio(pin, f"mux select bit {k}", f"{field}.select[{k}]", share=f"mux-select-{k}")
        if m.enable is not None:
            res.gpio(m.enable, f"enable of mux {name}", f"{field}.enable")
    for ch, names in by_channel.items():
        no_enable = [n for n in names if board.muxes[n].enable is None]
        if len(names) > 1 and no_enable:
            raise _err(board, f"ADC channel {ch} is used by muxes {', '.join(names)}; muxes that share "
                       "an ADC channel each need an enable pin", f"muxes.{no_enable[0]}.enable")
    gate_dac = None
    for i, e in enumerate(board.edges):
        for net, d in enumerate(e.drivers):
            field = f"edges[{i}]"
            who = f"{e.name} (network {net})"
            if isinstance(d, X9cDriver):
                res.digital(d.cs, f"chip select of {who}", f"{field}.cs")
                res.digital(d.ud, "X9C U/D", f"{field}.ud", share="x9c-ud")
                res.digital(d.inc, "X9C INC", f"{field}.inc", share="x9c-inc")
            elif isinstance(d, SpiPotDriver):
                res.digital(d.cs, f"chip select of SPI digipots on {d.bus}", f"{field}.cs",
                            share=f"spipot-{d.bus}")
                res.claim(("wiper", d.bus, f"{d.cs}/{d.wiper}"), f"wiper of {who}",
                          f"{field}.wiper")
            elif isinstance(d, PulseGateDriver):
                res.digital(d.charge, f"gate charge of {who}", f"{field}.charge")
                res.digital(d.discharge, f"gate discharge of {who}", f"{field}.discharge")
            elif isinstance(d, DacGateDriver):
                if d.dac.device == "":
                    raise _err(board, "a DAC gate driver needs a DAC channel ('dac.N'), not a GPIO",
                               f"{field}.dac")
                res.analog_out(d.dac, f"gate DAC of {who}", f"{field}.dac")
                # the firmware keeps a DAC gate's state in DAC codes, one unit for all gates
                dac, first = board.dacs[d.dac.device], gate_dac or d.dac.device
                gate_dac = first
                ref = board.dacs[first]
                if (dac.bits, dac.vref, dac.gain) != (ref.bits, ref.vref, ref.gain):
                    raise _err(board, f"gate DAC {d.dac.device} differs from gate DAC {first} in "
                               "bits, vref or gain; give every gate DAC the same volts per code",
                               f"{field}.dac")
    for kind, ports in (("inputs", board.inputs), ("outputs", board.outputs)):
        for i, p in enumerate(ports):
            field = f"{kind}[{i}]"
            for key, lines in (("drive" if kind == "inputs" else "clamp", p.drive),
                               ("drive_b" if kind == "inputs" else "clamp_b", p.drive_b)):
                for line in lines:
                    if line is not None:
                        # the same line on both networks is one driver wired to both
                        res.analog_out(line, f"driver of {p.name}", f"{field}.{key}",
                                       share=f"port-{kind}-{i}-{key}")
            for key, line in (("switch", p.switch), ("switch_b", p.switch_b)):
                if line is not None:
                    res.digital(line, f"output switch of {p.name}", f"{field}.{key}")
    return res


def _bus_pins(board: Board, res: _Resources, mcu: Microcontroller, field: str, kind: str,
              bus_id: int, table: dict, pins: dict) -> None:
    if bus_id not in table:
        raise _err(board, f"the {mcu.name} has {kind} buses {sorted(table)}, not {bus_id}",
                   f"{field}.id")
    for sig, pin in pins.items():
        if pin is None:
            continue
        allowed = table[bus_id][sig]
        if pin not in allowed:
            raise _err(board, f"{kind}{bus_id} {sig.upper()} can be GPIO {', '.join(map(str, allowed))} "
                       f"on the {mcu.name}, not {pin}", f"{field}.{sig}")
        res.gpio(pin, f"{kind}{bus_id} {sig.upper()}", f"{field}.{sig}")


def _unique(board: Board, ids: list, kind: str) -> None:
    seen: dict[int, str] = {}
    for bus_id, field in ids:
        if bus_id in seen:
            raise _err(board, f"{kind} peripheral {bus_id} is already declared as {seen[bus_id]}",
                       f"{field}.id")
        seen[bus_id] = field


def _ratings(board: Board) -> None:
    lim = board.limits
    kinds = {e.kind for e in board.edges}
    used = {e.part for e in board.edges if e.part}
    for name in sorted(used):
        part = board.parts[name]
        if lim.max_edge_amps > part.i_max * (1 + 1e-12):
            raise _err(board, f"{lim.max_edge_amps * 1e3:g} mA is above part {name!r}'s current "
                       f"rating of {part.i_max * 1e3:g} mA; set max_edge_amps <= {part.i_max:g}",
                       "limits.max_edge_amps")
    pots = [board.parts[n] for n in used if isinstance(board.parts[n], DigipotPart)]
    if lim.tap_range is not None:
        lo, hi = lim.tap_range
        n_taps = min((p.n_taps for p in pots), default=None)
        if n_taps is None:
            raise _err(board, "tap_range is for digipot boards; this board has none: remove it",
                       "limits.tap_range")
        if not 0 <= lo < hi <= n_taps - 1:
            raise _err(board, f"must satisfy 0 <= lo < hi <= {n_taps - 1} (the digipots have "
                       f"{n_taps} taps), got [{lo}, {hi}]", "limits.tap_range")
    fets = [board.parts[n] for n in used if isinstance(board.parts[n], TransistorPart)]
    if fets:
        if lim.gate_range is None:
            raise _err(board, "transistor boards need gate_range = [lo, hi] (V)", "limits.gate_range")
        lo, hi = lim.gate_range
        if not 0 <= lo < hi:
            raise _err(board, f"must satisfy 0 <= lo < hi, got [{lo:g}, {hi:g}]", "limits.gate_range")
        vg_max = min(p.vg_max for p in fets)
        if hi > vg_max:
            raise _err(board, f"gate {hi:g} V is beyond the transistors' gate rating of {vg_max:g} V",
                       "limits.gate_range")
        gates = board.gates
        if gates.driver == "pulse":
            rail = board.rails[gates.charge_rail]
            if hi > rail:
                raise _err(board, f"gate {hi:g} V is beyond the {gates.charge_rail!r} rail "
                           f"({rail:g} V) that charges the gates; lower it below the rail",
                           "limits.gate_range")
        else:
            for e in board.edges:
                for d in e.drivers:
                    dac = board.dacs[d.dac.device]
                    top = dac.vref * dac.gain
                    if hi > top * (1 + 1e-9):
                        raise _err(board, f"gate {hi:g} V is beyond DAC {dac.name!r}'s full scale "
                                   f"({top:g} V)", "limits.gate_range")
    elif lim.gate_range is not None and "transistor" not in kinds:
        raise _err(board, "gate_range is for transistor boards; this board has none: remove it",
                   "limits.gate_range")
    for i in range(board.n_edges):
        bound = worst_case_current(board, i)
        if bound > lim.max_edge_amps * (1 + 1e-9):
            raise _err(board, _current_advice(board, i, bound), f"edges[{i}]")


def _current_advice(board: Board, i: int, bound: float) -> str:
    e, lim = board.edges[i], board.limits
    head = (f"edge {e.name!r} can carry {bound * 1e3:.3g} mA in the worst case "
            f"({lim.max_node_volts:g} V across its smallest resistance), above "
            f"limits.max_edge_amps = {lim.max_edge_amps * 1e3:g} mA; ")
    if e.kind == "resistor":
        return head + f"use at least {lim.max_node_volts / lim.max_edge_amps:.4g} ohm or lower max_node_volts"
    part = board.parts[e.part]
    if isinstance(part, DigipotPart):
        need = next((t for t in range(part.n_taps)
                     if lim.max_node_volts / digipot_r_lo(part, t) <= lim.max_edge_amps), None)
        lo = lim.tap_range[0] if lim.tap_range else 0
        v_ok = lim.max_edge_amps * digipot_r_lo(part, lo)
        fix = f"raise limits.tap_range[0] to >= {need}" if need is not None else "use another part"
        return head + f"{fix} or lower max_node_volts to <= {v_ok:.3g} V"
    return head + "lower limits.gate_range[1] or max_node_volts"


def _gains(board: Board) -> None:
    vref = board.adc.vref
    for name, m in board.muxes.items():
        if m.nodes:
            span, what = board.limits.max_node_volts, "max_node_volts"
        else:
            span, what = board.limits.gate_range[1], "gate_range[1]"
        if span * m.gain > vref * (1 + _SLACK):
            raise _err(board, f"{what} {span:g} V x gain {m.gain:g} = {span * m.gain:.4g} V drives "
                       f"the ADC beyond its {vref:g} V reference; use gain <= "
                       f"{math.floor(vref / span * 1000) / 1000:g}", f"muxes.{name}.gain")


def _learning(board: Board) -> None:
    learn = board.learning
    kinds = {e.kind for e in board.edges if e.kind != "resistor"}
    if not kinds:
        raise _err(board, "no edge can learn: add digipot or transistor edges", "edges")
    need = {"taps": "digipot", "sign": "digipot", "gate": "transistor"}[learn.rule]
    if kinds != {need}:
        other = sorted(kinds - {need})
        good = "'gate'" if "transistor" in kinds else "'taps' or 'sign'"
        raise _err(board, f"rule {learn.rule!r} moves {need} edges, but this board has "
                   f"{' and '.join(other)} edges; use rule = {good}", "learning.rule")


def _ranges(board: Board) -> None:
    """Every integer the firmware's learning step and drivers compute stays a small int
    on a 32-bit board (and every word fits its field): see :mod:`.ranges`."""
    from learnboard.boards.compile import compile_board
    from learnboard.boards.ranges import check_ranges

    check_ranges(compile_board(board).body, board.source)


SHUNT_RANGE_VOLTS = 0.16  # the INA219's shunt range at the firmware's PGA /4 (lbfw/isense.py)


def _current_sense(board: Board) -> None:
    """Each monitor on its own I2C address, in a driver's output (one per driver)."""
    drivers = board.drivers()
    seen: dict[tuple, int] = {}
    for i, cs in enumerate(board.current_sense):
        field = f"current_sense[{i}]"
        taken = [d.address for d in board.dacs.values()
                 if d.interface == "i2c" and d.bus == cs.bus]
        if cs.address in taken:
            raise _err(board, f"I2C address 0x{cs.address:02x} on bus {cs.bus!r} is already a "
                       "DAC's; give the current-sense chip its own address", f"{field}.address")
        if (cs.bus, cs.address) in seen:
            raise _err(board, f"I2C address 0x{cs.address:02x} on bus {cs.bus!r} is already "
                       f"current_sense[{seen[(cs.bus, cs.address)]}]'s; give each monitor its "
                       "own address (an INA219 has 16: 0x40-0x4F by its A0/A1 pins)",
                       f"{field}.address")
        seen[(cs.bus, cs.address)] = i
        if (cs.net, cs.node) not in drivers:
            names = ", ".join(board.nodes[n] for net, n in drivers if net == cs.net)
            raise _err(board, "the monitor's shunt sits in a driver's output: name a node "
                       f"that an input or an output clamp drives on network {cs.net} ({names})",
                       f"{field}.node")
        if (cs.net, cs.node) in seen:
            raise _err(board, f"network {cs.net}'s driver of {board.nodes[cs.node]} already has "
                       f"current_sense[{seen[(cs.net, cs.node)]}]; one monitor per driver",
                       f"{field}.node")
        seen[(cs.net, cs.node)] = i
        amps = sum(worst_case_current(board, e) for e, ed in enumerate(board.edges)
                   if cs.node in (ed.a, ed.b))
        if amps * cs.shunt > SHUNT_RANGE_VOLTS:
            raise _err(board, f"{cs.shunt:g} ohm x the node's worst-case current {amps * 1e3:.3g} mA "
                       f"(its edges' bounds) = {amps * cs.shunt * 1e3:.3g} mV, beyond the "
                       f"monitor's {SHUNT_RANGE_VOLTS * 1e3:g} mV range (PGA /4); take at most "
                       f"{SHUNT_RANGE_VOLTS / amps:.3g} ohm", f"{field}.shunt")


def power_report(board: Board) -> str:
    """One line: how this board's power is reported (measured, or the estimate and why)."""
    n = len(board.current_sense)
    if board.power_measured:
        return (f"power: measured ({n} current monitor{'s' if n > 1 else ''}, one in every "
                "driver's output)")
    if not n:
        return "power: device-model estimate (no current monitor)"
    return "power: device-model estimate. " + sensing_note(board)


def sensing_note(board: Board) -> str | None:
    """Why the board's current monitors do not measure its total power (the drivers
    without one), or None when they do or there are none."""
    if not board.current_sense or board.power_measured:
        return None
    missing = ", ".join(f"network {net} node {board.nodes[n]}" for net, n in board.unsensed_drivers())
    return (f"{board.source}: current_sense covers {len(board.current_sense)} of "
            f"{len(board.drivers())} drivers; without a monitor: {missing}. The board reports "
            "its device-model estimate (the monitors' sum is logged as pwr_m); add a "
            "[[current_sense]] in each of those drivers to have its power measured")

