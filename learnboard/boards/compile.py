"""Compile a board into the canonical JSON form the firmware reads (``board.json``).

The body is plain JSON — MicroPython has ``json`` built in — with sorted keys, no
spaces, short keys, integer indices instead of names and ``-1`` for "none". Its
sha256 over the canonical bytes identifies the board everywhere (board, emulator,
host). ``board.json`` wraps it as ``{"b":<body>,"h":"<sha256 hex>"}``, itself
canonical, so the body is exactly bytes ``[5:-72]`` of the file and the firmware can
check the hash without re-serialising. Keys are documented in ``docs/board-format.md``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from learnboard.boards.schema import (
    Board,
    DacGateDriver,
    DigipotPart,
    Line,
    PulseGateDriver,
    SpiPotDriver,
    X9cDriver,
)
from learnboard.errors import InputError

COMPILED_VERSION = 1
KIND_CODES = {"resistor": "r", "digipot": "d", "transistor": "t"}
_HEAD, _TAIL = b'{"b":', 72  # file = _HEAD + body + ',"h":"' + 64 hex + '"}'


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no spaces, ASCII only, no NaN."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


@dataclass(frozen=True)
class CompiledBoard:
    """A compiled board: the JSON body, its canonical bytes and their sha256."""

    body: dict
    canonical: bytes
    sha256: str

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the hash (how logs and the CLI name a board)."""
        return self.sha256[:8]

    @property
    def name(self) -> str:
        return self.body["name"]

    def to_bytes(self) -> bytes:
        """The bytes of ``board.json``: ``{"b":<body>,"h":"<sha256>"}``."""
        return _HEAD + self.canonical + b',"h":"' + self.sha256.encode() + b'"}'

    def write(self, path: str | Path) -> Path:
        """Write ``board.json`` (or any path) and return the path."""
        path = Path(path)
        try:
            path.write_bytes(self.to_bytes())
        except OSError as exc:
            raise InputError(f"cannot write compiled board: {exc.strerror}", source=str(path)) from None
        return path

    @classmethod
    def from_body(cls, body: dict) -> CompiledBoard:
        data = canonical(body)
        return cls(body, data, hashlib.sha256(data).hexdigest())

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "board.json") -> CompiledBoard:
        """Read ``board.json`` bytes back, checking the stored hash."""
        try:
            wrapper = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"not a compiled board (invalid JSON: {exc}); recompile it with "
                             "'learnboard board compile'", source=source) from None
        if not isinstance(wrapper, dict) or set(wrapper) != {"b", "h"} or not isinstance(
                wrapper["b"], dict):
            raise InputError('not a compiled board: expected {"b": body, "h": sha256}; recompile '
                             "it with 'learnboard board compile'", source=source)
        compiled = cls.from_body(wrapper["b"])
        if compiled.sha256 != wrapper["h"]:
            raise InputError(f"hash mismatch: stored {str(wrapper['h'])[:8]}, content "
                             f"{compiled.short_id}; the file was edited or damaged: recompile it",
                             source=source)
        if wrapper["b"].get("v") != COMPILED_VERSION:
            raise InputError(f"compiled format {wrapper['b'].get('v')!r} is not {COMPILED_VERSION}; "
                             "recompile with this learnboard", source=source)
        return compiled

    @classmethod
    def read(cls, path: str | Path) -> CompiledBoard:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read compiled board: {exc.strerror}", source=str(path)) from None
        return cls.from_bytes(data, str(path))


def board_hash(board: Board) -> str:
    """sha256 hex of the board's canonical compiled form."""
    return compile_board(board).sha256


def compile_board(board: Board) -> CompiledBoard:
    """The canonical compact form of ``board`` (see ``docs/board-format.md``)."""
    return CompiledBoard.from_body(_body(board))


def _none(value: int | None) -> int:
    return -1 if value is None else value


def _body(board: Board) -> dict:
    spi_names = list(board.spi)
    i2c_names = list(board.i2c)
    exp_names = list(board.expanders)
    dac_names = list(board.dacs)
    part_names = sorted(board.parts)
    mux_names = list(board.muxes)

    def digital(line: Line | None) -> list[int] | None:
        if line is None:
            return None
        return [-1 if line.device == "" else exp_names.index(line.device), line.index]

    def analog(line: Line | None) -> list[int] | None:
        if line is None:
            return None
        return [-1 if line.device == "" else dac_names.index(line.device), line.index]

    def driver(d) -> dict:
        if isinstance(d, X9cDriver):
            return {"cs": digital(d.cs), "ud": digital(d.ud), "inc": digital(d.inc)}
        if isinstance(d, SpiPotDriver):
            return {"bus": spi_names.index(d.bus), "cs": digital(d.cs), "w": d.wiper}
        if isinstance(d, PulseGateDriver):
            return {"ch": digital(d.charge), "dc": digital(d.discharge)}
        if isinstance(d, DacGateDriver):
            return {"dac": analog(d.dac)}
        raise TypeError(d)

    def part(p) -> dict:
        if isinstance(p, DigipotPart):
            return {"n": p.name, "k": "d", "nt": p.n_taps, "rmin": p.r_min, "rmax": p.r_max,
                    "tp": p.taper, "rw": p.r_wiper, "tol": p.tolerance, "imax": p.i_max,
                    "if": p.interface, "st": p.settle_us}
        return {"n": p.name, "k": "t", "pol": p.polarity, "vt": p.vt, "beta": p.beta,
                "ss": p.sub_slope, "cg": p.gate_c, "rg": p.gate_r, "vgmax": p.vg_max,
                "imax": p.i_max, "vts": p.vt_spread, "bs": p.beta_spread, "leak": p.gate_leak}

    edges = []
    for e in board.edges:
        rec = {"n": e.name, "a": e.a, "b": e.b, "k": KIND_CODES[e.kind],
               "p": -1 if e.part is None else part_names.index(e.part),
               "d": [driver(d) for d in e.drivers]}
        if e.resistance is not None:
            rec["r"] = e.resistance
        edges.append(rec)

    def port(p, is_input: bool) -> dict:
        rec = {"n": p.name, "a": p.a, "b": _none(p.b),
               "d": [analog(x) for x in p.drive], "db": [analog(x) for x in p.drive_b]}
        if p.common is not None:
            rec["cm"] = p.common
        if is_input:
            rec["fx"] = p.fixed
        else:
            rec["sw"] = digital(p.switch)
            rec["swb"] = digital(p.switch_b)
        return rec

    def reads(kind: str) -> list[list[list[int]]]:
        count = board.n_nodes if kind == "nodes" else board.n_edges
        out = []
        for net in range(board.n_nets):
            row = [[-1, -1] for _ in range(count)]
            for m, mux in enumerate(board.muxes.values()):
                if mux.net != net:
                    continue
                for ch, idx in enumerate(getattr(mux, kind)):
                    if idx >= 0:
                        row[idx] = [m, ch]
            out.append(row)
        return out

    adc = board.adc
    lim = board.limits
    body: dict[str, Any] = {
        "v": COMPILED_VERSION,
        "name": board.name,
        "desc": board.description,
        "mcu": board.microcontroller,
        "nets": board.n_nets,
        "nodes": list(board.nodes),
        "gnd": board.ground,
        "pos": None if board.positions is None else [[float(x), float(y)] for x, y in board.positions],
        "rails": dict(board.rails),
        "parts": [part(board.parts[n]) for n in part_names],
        "edges": edges,
        "ins": [port(p, True) for p in board.inputs],
        "outs": [port(p, False) for p in board.outputs],
        "spi": [{"n": b.name, "id": b.id, "sck": b.sck, "mosi": b.mosi, "miso": _none(b.miso),
                 "baud": b.baud} for b in board.spi.values()],
        "i2c": [{"n": b.name, "id": b.id, "sda": b.sda, "scl": b.scl, "f": b.freq}
                for b in board.i2c.values()],
        "xp": [{"n": x.name, "part": x.part, "bus": spi_names.index(x.bus), "latch": x.latch,
                "bits": x.bits, "oe": _none(x.oe)} for x in board.expanders.values()],
        "dacs": [{"n": d.name, "part": d.part, "if": d.interface,
                  "bus": (spi_names if d.interface == "spi" else i2c_names).index(d.bus),
                  "cs": _none(d.cs), "addr": _none(d.address), "ch": d.channels, "bits": d.bits,
                  "vref": d.vref, "gain": d.gain, "st": d.settle_us} for d in board.dacs.values()],
        "pwm": None if board.pwm is None else {
            "f": board.pwm.freq, "bits": board.pwm.bits, "vref": board.pwm.vref,
            "gain": board.pwm.gain, "st": board.pwm.settle_us},
        "adc": {"t": adc.type, "bits": adc.bits, "vref": adc.vref, "os": adc.oversample,
                "st": adc.settle_us, "part": adc.part,
                "bus": -1 if adc.bus is None else spi_names.index(adc.bus), "cs": _none(adc.cs),
                "ch": adc.channels},
        "mux": [{"n": m.name, "part": m.part, "sel": list(m.select), "en": _none(m.enable),
                 "enl": m.enable_level, "ac": m.adc_channel, "g": m.gain, "net": m.net}
                for m in board.muxes.values()],
        "nrd": reads("nodes"),
        "grd": reads("gates"),
        "gates": None if board.gates is None else {
            "drv": board.gates.driver, "rail": board.gates.charge_rail,
            "rv": board.rails.get(board.gates.charge_rail), "pw": board.gates.pulse_us},
        "lim": {"vn": lim.max_node_volts, "ie": lim.max_edge_amps,
                "g": None if lim.gate_range is None else list(lim.gate_range),
                "taps": None if lim.tap_range is None else list(lim.tap_range), "why": lim.reason},
        "learn": {"rule": board.learning.rule, "alpha": board.learning.alpha,
                  "eta": board.learning.eta, "lam": board.learning.lam,
                  "task": board.learning.task},
    }
    if board.current_sense:  # only then: boards without one keep their hash
        body["isense"] = [{"part": cs.part, "bus": i2c_names.index(cs.bus), "addr": cs.address,
                           "sh": float(cs.shunt), "net": cs.net, "node": cs.node}
                          for cs in board.current_sense]
    assert mux_names == [m["n"] for m in body["mux"]]
    return body
