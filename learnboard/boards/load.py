"""Read a board description (TOML) into a validated :class:`~learnboard.boards.schema.Board`.

Parsing checks types, required fields and unknown keys table by table; the
cross-checks (pins used twice, ratings, gains, connectivity) live in
:mod:`learnboard.boards.validate`. Every mistake raises
:class:`~learnboard.errors.InputError` naming the file and the field path.
"""

from __future__ import annotations

import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from learnboard.boards.reader import Table, describe, suggest
from learnboard.boards.schema import (
    INITS,
    KINDS,
    RULES,
    Adc,
    Board,
    CurrentSense,
    Dac,
    DacGateDriver,
    DigipotPart,
    Edge,
    Expander,
    Gates,
    I2cBus,
    Learning,
    Limits,
    Line,
    Mux,
    Port,
    PulseGateDriver,
    Pwm,
    SpiBus,
    SpiPotDriver,
    TransistorPart,
    X9cDriver,
)
from learnboard.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FORMAT_VERSION = 1
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_LINE = re.compile(r"^(?:[Gg][Pp](\d+)|([A-Za-z_][A-Za-z0-9_\-]*)\.(\d+))$")


def profile_names() -> list[str]:
    """Names of the board profiles shipped with learnboard."""
    folder = resources.files("learnboard.boards.profiles")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def profile_path(name: str) -> Path:
    return Path(str(resources.files("learnboard.boards.profiles").joinpath(f"{name}.toml")))


def resolve(name_or_path: str | Path) -> Path:
    """The file for a shipped profile name or a path; a clear error when neither exists."""
    text = str(name_or_path)
    path = Path(text)
    if path.is_file():
        return path
    if "/" not in text and not text.endswith(".toml") and text in profile_names():
        return profile_path(text)
    names = profile_names()
    raise InputError(
        f"no board file or shipped profile named {text!r}{suggest(text, names)}; "
        f"shipped profiles: {', '.join(names)} (or give the path of a .toml file)",
        source=text,
    )


def load_board(name_or_path: str | Path) -> Board:
    """Load and validate a board: a shipped profile name (``gen2-clln``) or a TOML file path."""
    path = resolve(name_or_path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(f"cannot read board file: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start}); save it as UTF-8",
                         source=str(path)) from None
    return parse_board(text, source=str(path))


def parse_board(text: str, source: str = "<board>") -> Board:
    """Parse and validate a board description given as TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"TOML syntax error: {exc}; fix the file's syntax there",
                         source=source) from None
    return board_from_data(_extended(data, source), source)


_EXTENDS_DEPTH = 4  # a profile extending one that extends ...: no loops, no deep chains


def _extended(data: dict, source: str, depth: int = 0) -> dict:
    """``data`` on top of the shipped profile its ``extends`` names (tables merged key by
    key, every other value — arrays of tables too — the extending file's), so a variant
    of a board states only what it adds or changes."""
    base = data.pop("extends", None)
    if base is None:
        return data
    names = profile_names()
    if not isinstance(base, str) or base not in names:
        raise InputError(f"extends = {base!r} is not a shipped profile{suggest(str(base), names)}; "
                         f"use one of {', '.join(names)}", source=source, field="extends")
    if depth >= _EXTENDS_DEPTH:
        raise InputError(f"extends: more than {_EXTENDS_DEPTH} profiles deep (a loop?)",
                         source=source, field="extends")
    parent = tomllib.loads(profile_path(base).read_text(encoding="utf-8"))
    return _merged(_extended(parent, base, depth + 1), data)


def _merged(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        old = base.get(key)
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def board_from_data(data: dict, source: str = "<board>") -> Board:
    """Build and validate a board from already-parsed TOML data (a dict)."""
    board = build_board(data, source)
    from learnboard.boards.validate import validate

    validate(board)
    return board


# --------------------------------------------------------------------------- helpers


def _name(t: Table, key: str, default: Any = ...) -> str:
    value = t.get(key, str) if default is ... else t.get(key, str, default)
    if value is not None and not _NAME.match(value):
        raise t.error(f"{value!r} is not a valid name: use letters, digits, '_' and '-', "
                      "starting with a letter", key)
    return value


def _line(t: Table, key: str, value: Any, where: str | None = None) -> Line:
    """A line from an int (GPIO) or a string 'GP5' / 'device.N'."""
    field = where or t.field(key)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise InputError(f"GPIO number must be >= 0, got {value}", source=t.source, field=field)
        return Line("", value)
    if isinstance(value, str):
        m = _LINE.match(value.strip())
        if m:
            if m.group(1) is not None:
                return Line("", int(m.group(1)))
            return Line(m.group(2), int(m.group(3)))
    raise InputError(
        f"{describe(value)} is not a line: write a GPIO number (5 or 'GP5') or "
        "'<expander or dac>.<bit or channel>' (e.g. 'cs.3')",
        source=t.source, field=field,
    )


def _gpio(t: Table, key: str, default: Any = ...) -> int | None:
    value = t.get(key, int) if default is ... else t.get(key, int, default)
    if value is not None and value < 0:
        raise t.error(f"GPIO number must be >= 0, got {value}", key)
    return value


def _per_net(t: Table, key: str, n_nets: int, *, shared: bool = False, optional: bool = False,
             allow_none: bool = False) -> tuple[Line | None, ...]:
    """One line per network; a single value is accepted on single boards (or when shared)."""
    if optional and not t.has(key):
        t.seen.add(key)
        return ()
    value = t.get(key, object)
    if not isinstance(value, list):
        if n_nets > 1 and not shared:
            raise t.error(f"twin board: give one line per network as a 2-element array "
                          f"[free, clamped], not {describe(value)}", key)
        return (_line(t, key, value),) * n_nets
    if len(value) != n_nets:
        what = "[free, clamped]" if n_nets == 2 else "[line]"
        raise t.error(f"must have one line per network ({n_nets}: {what}), not {len(value)}", key)
    out: list[Line | None] = []
    for i, item in enumerate(value):
        if allow_none and item == "":
            out.append(None)
        else:
            out.append(_line(t, key, item, f"{t.field(key)}[{i}]"))
    return tuple(out)


def _node(t: Table, key: str, value: Any, index: dict[str, int], where: str | None = None) -> int:
    field = where or t.field(key)
    if not isinstance(value, str):
        raise InputError(f"must be a node name (string), not {describe(value)}",
                         source=t.source, field=field)
    if value not in index:
        raise InputError(
            f"node {value!r} is not declared in nodes.names{suggest(value, list(index))}; "
            "add it there or fix the name",
            source=t.source, field=field,
        )
    return index[value]


# --------------------------------------------------------------------------- sections


def build_board(data: dict, source: str) -> Board:
    """Turn parsed TOML into a :class:`Board` (types and references checked, not ratings)."""
    top = Table(data, "", source)
    version = top.integer("format", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise top.error(f"format {version} is not supported; this learnboard reads format "
                        f"{FORMAT_VERSION}", "format")

    b = top.table("board")
    name = _name(b, "name")
    description = b.get("description", str, "")
    mcu = b.get("microcontroller", str)
    from learnboard.boards.mcu import MICROCONTROLLERS

    if mcu.lower() not in MICROCONTROLLERS:
        raise b.error(f"microcontroller {mcu!r} is not supported yet{suggest(mcu.lower(), list(MICROCONTROLLERS))}; "
                      f"supported: {', '.join(MICROCONTROLLERS)}", "microcontroller")
    mcu = mcu.lower()
    networks = b.choice("networks", ("twin", "single"))
    b.done()
    n_nets = 2 if networks == "twin" else 1

    nt = top.table("nodes")
    names = nt.items("names", str, min_length=2)
    for i, node in enumerate(names):
        if not _NAME.match(node):
            raise nt.error(f"{node!r} is not a valid node name (letters, digits, '_', '-')",
                           f"names[{i}]")
    dup = _first_dup(names)
    if dup is not None:
        raise nt.error(f"node {dup!r} is declared twice; node names must be unique", "names")
    index = {n: i for i, n in enumerate(names)}
    ground = _node(nt, "ground", nt.get("ground", str), index)
    positions = None
    if nt.has("positions"):
        rows = nt.items("positions", list, length=len(names))
        for i, row in enumerate(rows):
            if len(row) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                        for v in row):
                raise nt.error("each position must be [x, y] (two numbers)", f"positions[{i}]")
        positions = np.array(rows, dtype=float)
    else:
        nt.seen.add("positions")
    nt.done()

    rt = top.table("rails", {})
    rails = {}
    if isinstance(rt, Table):
        for key in list(rt.data):
            if not _NAME.match(key):
                raise rt.error("rail names use letters, digits, '_' and '-'", key)
            rails[key] = rt.number(key, lo=-100, hi=100, unit="V")
        rt.done()

    parts = {}
    for pname, pt in top.named_tables("parts").items():
        parts[pname] = _part(pname, pt)

    spi = {}
    for bname, st in top.named_tables("spi").items():
        spi[bname] = SpiBus(bname, st.integer("id", lo=0), _gpio(st, "sck"), _gpio(st, "mosi"),
                            _gpio(st, "miso", None), st.integer("baud", 1_000_000, lo=1))
        st.done()
    i2c = {}
    for bname, it in top.named_tables("i2c").items():
        i2c[bname] = I2cBus(bname, it.integer("id", lo=0), _gpio(it, "sda"), _gpio(it, "scl"),
                            it.integer("freq", 400_000, lo=1))
        it.done()

    expanders = {}
    for xname, xt in top.named_tables("expanders").items():
        expanders[xname] = Expander(
            xname, xt.get("part", str, ""), _bus_ref(xt, "bus", spi, "spi"), _gpio(xt, "latch"),
            xt.integer("bits", lo=1, hi=4096), _gpio(xt, "oe", None),
        )
        xt.done()

    dacs = {}
    for dname, dt in top.named_tables("dacs").items():
        interface = dt.choice("interface", ("spi", "i2c"), "spi")
        buses = spi if interface == "spi" else i2c
        dacs[dname] = Dac(
            dname, dt.get("part", str, ""), interface, _bus_ref(dt, "bus", buses, interface),
            _gpio(dt, "cs", None), dt.integer("address", None, lo=0, hi=127),
            dt.integer("channels", lo=1, hi=256), dt.integer("bits", lo=1, hi=24),
            dt.number("vref", lo=0, lo_open=True, unit="V"), dt.number("gain", 1.0, lo=0, lo_open=True),
            dt.number("settle_us", 10.0, lo=0, unit="us"),
        )
        if interface == "spi" and dacs[dname].cs is None:
            raise dt.error("an SPI DAC needs its chip-select GPIO", "cs")
        if interface == "i2c" and dacs[dname].address is None:
            raise dt.error("an I2C DAC needs its 7-bit address", "address")
        dt.done()

    pwm = None
    pt = top.table("pwm", None)
    if pt is not None:
        pwm = Pwm(pt.integer("freq", lo=1), pt.integer("bits", lo=1, hi=16),
                  pt.number("vref", lo=0, lo_open=True, unit="V"),
                  pt.number("gain", 1.0, lo=0, lo_open=True), pt.number("settle_us", lo=0, unit="us"))
        pt.done()

    at = top.table("adc")
    adc_type = at.choice("type", ("internal", "spi"))
    adc = Adc(adc_type, at.integer("bits", lo=1, hi=24), at.number("vref", lo=0, lo_open=True, unit="V"),
              at.integer("oversample", 1, lo=1, hi=4096), at.number("settle_us", 0.0, lo=0, unit="us"),
              at.get("part", str, ""),
              _bus_ref(at, "bus", spi, "spi") if adc_type == "spi" else _absent(at, "bus", "an internal ADC"),
              _gpio(at, "cs") if adc_type == "spi" else _absent(at, "cs", "an internal ADC"),
              at.integer("channels", 4 if adc_type == "internal" else None, lo=1, hi=64))
    if adc.channels is None:
        raise at.error("an SPI ADC needs its number of input channels", "channels")
    at.done()

    gates = None
    gt = top.table("gates", None)
    if gt is not None:
        gates = Gates(gt.choice("driver", ("pulse", "dac")), gt.get("charge_rail", str, ""),
                      gt.number("pulse_us", 100.0, lo=0, lo_open=True, unit="us"))
        if gates.driver == "pulse" and gates.charge_rail not in rails:
            raise gt.error(f"pulse gate drivers charge toward a supply rail: name one of "
                           f"[rails] ({', '.join(rails) or 'none declared'})"
                           f"{suggest(gates.charge_rail, list(rails))}", "charge_rail")
        gt.done()

    xt = top.table("x9c", None)
    x9c_default = {}
    if xt is not None:
        for key in ("ud", "inc"):
            x9c_default[key] = _line(xt, key, xt.get(key, object))
        xt.done()

    edges = [_edge(i, et, index, parts, n_nets, x9c_default, gates, spi)
             for i, et in enumerate(top.tables("edges"))]
    dup = _first_dup([e.name for e in edges])
    if dup is not None:
        raise InputError(f"edge name {dup!r} is used twice; edge names must be unique",
                         source=source, field="edges")
    edge_index = {e.name: i for i, e in enumerate(edges)}

    inputs = [_port(i, t, index, n_nets, True) for i, t in enumerate(top.tables("inputs"))]
    outputs = [_port(i, t, index, n_nets, False) for i, t in enumerate(top.tables("outputs"))]
    dup = _first_dup([p.name for p in inputs + outputs])
    if dup is not None:
        raise InputError(f"port name {dup!r} is used twice among inputs and outputs",
                         source=source, field="inputs")

    muxes = {}
    for mname, mt in top.named_tables("muxes").items():
        muxes[mname] = _mux(mname, mt, index, edge_index, n_nets)

    lt = top.table("limits")
    gate_range = lt.items("gate_range", float, None, length=2)
    tap_range = lt.items("tap_range", int, None, length=2)
    limits = Limits(lt.number("max_node_volts", lo=0, lo_open=True, unit="V"),
                    lt.number("max_edge_amps", lo=0, lo_open=True, unit="A"),
                    tuple(gate_range) if gate_range else None,
                    tuple(tap_range) if tap_range else None,
                    lt.get("reason", str, hint="say why these limits (which part rating they protect)"))
    if not limits.reason.strip():
        raise lt.error("say why these limits hold (e.g. which part rating they protect)", "reason")
    lt.done()

    current_sense = tuple(_current_sense(ct, i2c, index, n_nets) for ct in _sense_tables(top))

    ln = top.table("learning")
    learning = Learning(ln.choice("rule", RULES), ln.number("alpha", lo=0, lo_open=True),
                        ln.number("eta", lo=0, lo_open=True, hi=1), ln.number("lambda", 0.0, lo=0),
                        ln.get("task", str), ln.choice("init", INITS, "uniform"),
                        ln.integer("null_offset_every", 0, lo=0), ln.get("anneal", bool, True))
    ln.done()
    top.done()

    return Board(
        name=name, description=description, microcontroller=mcu, networks=networks,
        nodes=tuple(names), ground=ground, positions=positions, rails=rails, parts=parts,
        edges=tuple(edges), inputs=tuple(inputs), outputs=tuple(outputs), spi=spi, i2c=i2c,
        expanders=expanders, dacs=dacs, pwm=pwm, adc=adc, muxes=muxes, gates=gates,
        limits=limits, learning=learning, source=source, current_sense=current_sense,
    )


def _sense_tables(top: Table) -> list[Table]:
    """``[[current_sense]]`` (one table per monitor), or a single ``[current_sense]``
    table read as a list of one."""
    if isinstance(top.data.get("current_sense"), dict):
        return [top.table("current_sense")]
    return top.tables("current_sense", [])


def _current_sense(ct: Table, i2c: dict, index: dict[str, int], n_nets: int) -> CurrentSense:
    net = ct.integer("net", 0, lo=0, hi=n_nets - 1)
    cs = CurrentSense(
        ct.get("part", str, "INA219"), _bus_ref(ct, "bus", i2c, "i2c"),
        ct.integer("address", lo=0, hi=127), ct.number("shunt", lo=0, lo_open=True, unit="ohm"),
        net, _node(ct, "node", ct.get("node", str), index))
    ct.done()
    return cs


def _first_dup(items: list) -> Any:
    seen = set()
    for item in items:
        if item in seen:
            return item
        seen.add(item)
    return None


def _absent(t: Table, key: str, what: str) -> None:
    if t.has(key):
        raise t.error(f"{what} has no {key!r}; remove it (or set type = \"spi\")", key)
    t.seen.add(key)
    return None


def _bus_ref(t: Table, key: str, buses: dict, kind: str) -> str:
    bus = t.get(key, str)
    if bus not in buses:
        raise t.error(f"no [{kind}.{bus}] bus is declared{suggest(bus, list(buses))}; "
                      f"declared: {', '.join(buses) or 'none'}", key)
    return bus


def _part(name: str, t: Table):
    kind = t.choice("kind", ("digipot", "transistor"))
    if kind == "digipot":
        part = DigipotPart(
            name, t.integer("n_taps", lo=2, hi=4096), t.number("r_min", lo=0, unit="ohm"),
            t.number("r_max", lo=0, lo_open=True, unit="ohm"), t.choice("taper", ("log", "linear")),
            t.number("r_wiper", 0.0, lo=0, unit="ohm"), t.number("tolerance", 0.2, lo=0, hi=0.99),
            t.number("i_max", lo=0, lo_open=True, unit="A"), t.choice("interface", ("x9c", "spi")),
            t.number("settle_us", 0.0, lo=0, unit="us"),
        )
        if part.r_max <= part.r_min:
            raise t.error(f"must be larger than r_min ({part.r_min:g} ohm)", "r_max")
        if part.taper == "log" and part.r_min <= 0:
            raise t.error("a log taper needs r_min > 0 (the resistance at tap 0)", "r_min")
    else:
        part = TransistorPart(
            name, t.choice("polarity", ("n",), "n"), t.number("vt", lo=-10, hi=10, unit="V"),
            t.number("beta", lo=0, lo_open=True, unit="A/V^2"),
            t.number("sub_slope", 0.1, lo=0, lo_open=True, unit="V/decade"),
            t.number("gate_c", lo=0, lo_open=True, unit="F"), t.number("gate_r", lo=0, lo_open=True, unit="ohm"),
            t.number("vg_max", lo=0, lo_open=True, unit="V"), t.number("i_max", lo=0, lo_open=True, unit="A"),
            t.number("vt_spread", 0.0, lo=0, unit="V"), t.number("beta_spread", 0.0, lo=0, hi=0.99),
            t.number("gate_leak", 0.0, lo=0, unit="V/s"),
        )
    t.done()
    return part


def _edge(i: int, t: Table, index: dict, parts: dict, n_nets: int, x9c_default: dict,
          gates: Gates | None, spi: dict) -> Edge:
    name = _name(t, "name", f"e{i}")
    ends = t.get("nodes", list)
    if len(ends) != 2:
        raise t.error(f"must name two nodes [a, b] (drop = V_a - V_b), not {len(ends)}", "nodes")
    a = _node(t, "nodes", ends[0], index, f"{t.field('nodes')}[0]")
    b = _node(t, "nodes", ends[1], index, f"{t.field('nodes')}[1]")
    if a == b:
        raise t.error(f"connects node {ends[0]!r} to itself; an edge needs two different nodes", "nodes")
    kind = t.choice("kind", KINDS)
    part = resistance = None
    drivers: tuple = ()
    if kind == "resistor":
        resistance = t.number("resistance", lo=0, lo_open=True, unit="ohm")
        for key in ("part",):
            _absent(t, key, "a resistor edge")
    else:
        part = t.get("part", str, hint=f"name a [parts.X] table of kind {kind!r}")
        if part not in parts:
            raise t.error(f"no [parts.{part}] is declared{suggest(part, list(parts))}; "
                          f"declared parts: {', '.join(parts) or 'none'}", "part")
        if parts[part].kind != kind:
            raise t.error(f"part {part!r} is a {parts[part].kind}, but this edge's kind is {kind!r}",
                          "part")
        t.seen.add("resistance")
        if t.has("resistance"):
            raise t.error(f"only resistor edges have a fixed resistance; a {kind} edge takes it "
                          "from its part", "resistance")
        if kind == "digipot":
            drivers = _pot_drivers(t, parts[part], n_nets, x9c_default, spi)
        else:
            drivers = _gate_drivers(t, n_nets, gates)
    t.done()
    return Edge(name, a, b, kind, part, resistance, drivers)


def _pot_drivers(t: Table, part: DigipotPart, n_nets: int, x9c_default: dict, spi: dict) -> tuple:
    cs = _per_net(t, "cs", n_nets)
    if part.interface == "x9c":
        lines = {}
        for key in ("ud", "inc"):
            if t.has(key):
                lines[key] = _per_net(t, key, n_nets, shared=True)
            elif key in x9c_default:
                t.seen.add(key)
                lines[key] = (x9c_default[key],) * n_nets
            else:
                raise t.error(f"an x9c digipot needs its {key.upper()} line: set {key} here or "
                              f"in the board's [x9c] table (shared by all X9C edges)", key)
        for key in ("bus", "wiper"):
            _absent(t, key, "an x9c digipot")
        return tuple(X9cDriver(cs[n], lines["ud"][n], lines["inc"][n]) for n in range(n_nets))
    bus = _bus_ref(t, "bus", spi, "spi")
    wiper = t.get("wiper", object, 0)
    wipers = wiper if isinstance(wiper, list) else [wiper] * n_nets
    if len(wipers) != n_nets or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 0
                                        for w in wipers):
        raise t.error(f"must be a wiper number >= 0 (or one per network), not {describe(wiper)}",
                      "wiper")
    for key in ("ud", "inc"):
        _absent(t, key, "an SPI digipot")
    return tuple(SpiPotDriver(bus, cs[n], wipers[n]) for n in range(n_nets))


def _gate_drivers(t: Table, n_nets: int, gates: Gates | None) -> tuple:
    if gates is None:
        raise t.error("transistor edges need a [gates] table (driver, charge rail, pulse width)",
                      "kind")
    if gates.driver == "pulse":
        charge = _per_net(t, "charge", n_nets)
        discharge = _per_net(t, "discharge", n_nets)
        _absent(t, "dac", "a pulse-driven gate (the [gates] driver is \"pulse\")")
        return tuple(PulseGateDriver(charge[n], discharge[n]) for n in range(n_nets))
    dac = _per_net(t, "dac", n_nets)
    for key in ("charge", "discharge"):
        _absent(t, key, "a DAC-driven gate (the [gates] driver is \"dac\")")
    return tuple(DacGateDriver(dac[n]) for n in range(n_nets))


def _port(i: int, t: Table, index: dict, n_nets: int, is_input: bool) -> Port:
    name = _name(t, "name")
    has_node, has_nodes = t.has("node"), t.has("nodes")
    t.seen.update(("node", "nodes"))
    if has_node == has_nodes:
        raise t.error("give either node = \"n\" (one node) or nodes = [\"a\", \"b\"] "
                      "(a differential value V_a - V_b)", "node")
    if has_node:
        a, b = _node(t, "node", t.data["node"], index), None
    else:
        ends = t.get("nodes", list)
        if len(ends) != 2:
            raise t.error(f"a differential port names two nodes [a, b], not {len(ends)}", "nodes")
        a = _node(t, "nodes", ends[0], index, f"{t.field('nodes')}[0]")
        b = _node(t, "nodes", ends[1], index, f"{t.field('nodes')}[1]")
        if a == b:
            raise t.error("the two nodes of a differential port must differ", "nodes")
    key, key_b = ("drive", "drive_b") if is_input else ("clamp", "clamp_b")
    if is_input:
        drive = _per_net(t, key, n_nets, shared=True)
        drive_b = _per_net(t, key_b, n_nets, shared=True, optional=True)
        fixed = t.number("fixed", None)
        switch = switch_b = None
    else:
        # twin boards clamp only the clamped network (index 1); the free one floats
        if n_nets == 2:
            if t.has(key) and isinstance(t.data[key], list):
                raise t.error("on a twin board the clamp drives the clamped network only: "
                              "give one line, e.g. clamp = \"dac.6\"", key)
            clamp = _line(t, key, t.get(key, object))
            drive = (None, clamp)
            drive_b = ()
            if t.has(key_b):
                drive_b = (None, _line(t, key_b, t.get(key_b, object)))
            t.seen.add(key_b)
            for k in ("switch", "switch_b"):
                _absent(t, k, "a twin board's output (its free network simply floats)")
            switch = switch_b = None
        else:
            drive = (_line(t, key, t.get(key, object)),)
            drive_b = (_line(t, key_b, t.get(key_b, object)),) if t.has(key_b) else ()
            t.seen.add(key_b)
            switch = _line(t, "switch", t.get("switch", object, hint=(
                "a single-network board floats or drives each output through an analog switch")))
            switch_b = _line(t, "switch_b", t.get("switch_b", object)) if t.has("switch_b") else None
            t.seen.add("switch_b")
        fixed = None
        _absent(t, "fixed", "an output")
    common = t.number("common", None, lo=0, unit="V")
    if b is None and common is not None:
        raise t.error("only a differential port (nodes = [a, b]) has a common-mode voltage", "common")
    t.done()
    return Port(name, a, b, drive, drive_b, switch, switch_b, fixed, common)


def _mux(name: str, t: Table, index: dict, edge_index: dict, n_nets: int) -> Mux:
    select = t.items("select", int, [])
    if len(select) > 6:
        raise t.error(f"{len(select)} select pins address {1 << len(select)} channels; "
                      "muxes have at most 64", "select")
    n_ch = 1 << len(select)
    net = t.integer("net", 0, lo=0, hi=n_nets - 1)
    has_nodes, has_gates = t.has("nodes"), t.has("gates")
    if has_nodes == has_gates:
        raise t.error("list what each channel reads: nodes = [node names] or "
                      "gates = [transistor edge names] (\"\" for an unused channel)", "nodes")
    key = "nodes" if has_nodes else "gates"
    t.seen.update(("nodes", "gates"))
    names = t.items(key, str)
    if len(names) > n_ch:
        raise t.error(f"{len(names)} channels listed but {len(select)} select pins address only "
                      f"{n_ch}; add select pins or remove channels", key)
    refs = edge_index if key == "gates" else index
    resolved = []
    for i, item in enumerate(names):
        if item == "":
            resolved.append(-1)
            continue
        if item not in refs:
            what = "edge" if key == "gates" else "node"
            declared = "edges" if key == "gates" else "nodes.names"
            raise InputError(f"{what} {item!r} is not declared in {declared}{suggest(item, list(refs))}",
                             source=t.source, field=f"{t.field(key)}[{i}]")
        resolved.append(refs[item])
    dup = _first_dup([r for r in resolved if r >= 0])
    if dup is not None:
        raise t.error(f"{names[resolved.index(dup)]!r} is on two channels of this mux; "
                      "each is read once", key)
    mux = Mux(name, t.get("part", str, ""), tuple(select), _gpio(t, "enable", None),
              t.integer("enable_level", 0, lo=0, hi=1),
              t.integer("adc_channel", lo=0), t.number("gain", 1.0, lo=0, lo_open=True), net,
              tuple(resolved) if key == "nodes" else (),
              tuple(resolved) if key == "gates" else ())
    t.done()
    return mux
