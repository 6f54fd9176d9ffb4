"""Worst-case integer ranges of the firmware's learning step and drivers for one board.

On a 32-bit MicroPython board (the RP2040) small ints are 31-bit: any integer
intermediate outside [-2**30, 2**30 - 1] becomes a heap object, and inside the firmware's
heap-locked learning step that is a ``MemoryError`` (the step stops with a fault). The
64-bit VMs of a PC cannot show this. :func:`intermediates` lists every integer
intermediate of the step (``learn.py``, ``rule.py``/``rule_viper.py``, ``safety.py``)
and of the drivers (``hal.py``) with its worst case, computed from the compiled board
(what ``app.py`` derives from ``board.json``: node volts per code, ``clamp_k16``, gate
codes, ``rc_us``) with every host-settable parameter at the extreme the firmware's
``set_params`` accepts. :func:`check_ranges` rejects a board that could leave its range,
naming the description fields responsible. ``docs/board-format.md`` ("Integer ranges")
explains the checks; ``tests/test_boards_ranges.py`` runs the real step at the extremes
in a 32-bit VM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from learnboard.errors import InputError

SMALL_MAX = (1 << 30) - 1  # largest small int of a 32-bit MicroPython port
SMALL_MIN = -(1 << 30)
# The firmware's parameter extremes (App._validate, Rule.set_params, app.MAX_EXAMPLES).
OVERSAMPLE_MAX = 256  # oversample in 1..256
QUANTA_MAX = 8191  # pulse_us (max_us), max_taps, max_codes in 0..8191
BATCH_MAX = 64  # batch <= max_examples = app.MAX_EXAMPLES
NUDGE16_MAX = 65536  # the nudge (parameter "eta") <= 1.0, in Q16
GATE_CODE_MAX = 16383  # Rule.set_params: g_charge, g_discharge < 16384
RULE_VMAX = 16383  # Rule(vmax=...) accepts node codes up to 16383
RC_MIN = 16  # rc_us >= 16
# Fixed-point constants of lbfw.rule (checked against the module by the tests).
ONE = 1 << 16
SAT = 1 << 28
M_MAX = 32767  # 15-bit mantissa of an encoded factor
SMALL = 8192  # |x| below this: x * m directly

_HEAP = "a 32-bit board's small ints"
_HEAP_WHY = ("; a larger int is a heap object there, i.e. a MemoryError inside the "
             "heap-locked learning step")


@dataclass(frozen=True)
class Intermediate:
    """One integer intermediate of the firmware and its worst case for a board.

    ``name`` points at the code (``file:function: expression``); ``lo``..``hi`` is the
    worst-case range; it must lie within ``lo_limit``..``hi_limit`` (by default a 32-bit
    small int). ``fields`` are the description fields the bound depends on (empty: fixed
    by the firmware); ``fix`` says what to change when it does not hold.
    """

    name: str
    lo: int
    hi: int
    formula: str
    fields: tuple[str, ...] = ()
    fix: str = ""
    lo_limit: int = SMALL_MIN
    hi_limit: int = SMALL_MAX
    limit_is: str = _HEAP
    why: str | None = None  # None: the small-int explanation when the limit is 2^30
    guard: bool = False  # held below the limit by a compare before the operation

    @property
    def ok(self) -> bool:
        return self.lo_limit <= self.lo and self.hi <= self.hi_limit

    @property
    def small_int(self) -> bool:
        """True when the limit is the small-int range (not a bit field or a parameter)."""
        return self.hi_limit == SMALL_MAX and self.lo_limit == SMALL_MIN

    @property
    def consequence(self) -> str:
        if self.why is not None:
            return self.why
        return _HEAP_WHY if self.small_int else ""

    @property
    def magnitude(self) -> int:
        return max(abs(self.lo), abs(self.hi))

    @property
    def ratio(self) -> float:
        """Worst case over its limit, on the side nearer to it (> 1: out of range)."""
        r = 0.0
        if self.hi > 0:
            r = self.hi / self.hi_limit if self.hi_limit > 0 else math.inf
        if self.lo < 0:
            r = max(r, self.lo / self.lo_limit if self.lo_limit < 0 else math.inf)
        return r


@dataclass
class _Board:
    """What ``app.py`` derives from the compiled body (same expressions)."""

    body: dict

    def __post_init__(self) -> None:
        b = self.body
        adc = b["adc"]
        self.adc_bits = adc["bits"]
        self.A = (1 << self.adc_bits) - 1  # App.adc_max: the largest node / gate code
        m = b["nrd"][0][b["outs"][0]["a"]][0]
        self.vmux = b["mux"][m]["n"]
        self.vpc = adc["vref"] / self.A / b["mux"][m]["g"]  # App.vpc
        self.vn = b["lim"]["vn"]
        self.T = int(self.vn / self.vpc + 0.5)  # largest target code (upload_examples)
        self.Y = max(self.A, self.T)  # largest |target - yf| and yc
        self.node_fields = ("adc.bits", "adc.vref", f"muxes.{self.vmux}.gain")

    # -- drivers -----------------------------------------------------------------------

    def driver(self, line: list[int]) -> tuple[str, int, float, float]:
        """Field prefix, bits, vref, gain of voltage output ``line`` (hal.volts_per_code)."""
        if line[0] < 0:
            p = self.body["pwm"]
            return "pwm", p["bits"], p["vref"], p["gain"]
        d = self.body["dacs"][line[0]]
        return f"dacs.{d['n']}", d["bits"], d["vref"], d["gain"]

    def clamp_k16(self, line: list[int]) -> int:
        _, bits, vref, gain = self.driver(line)
        return int(self.vpc / (vref * gain / (1 << bits)) * 65536 + 0.5)

    # -- gates ---------------------------------------------------------------------------

    def gates(self) -> dict | None:
        """Gate codes as App._build_edges / safety.Limits.gate_bounds compute them."""
        b = self.body
        if b["gates"] is None:
            return None
        parts = b["parts"]
        lim = b["lim"]
        hi = lo = None
        gvpc = 1.0
        gmux = ""
        rc = 2200
        for e, ed in enumerate(b["edges"]):
            if ed["k"] != "t":
                continue
            mx = b["mux"][b["grd"][0][e][0]]
            top = None
            if b["gates"]["drv"] == "pulse":  # a pulse gate's state is its read-back code
                gvpc = b["adc"]["vref"] / self.A / mx["g"]
            else:  # a DAC gate's is its DAC code, capped at the DAC's full scale
                dac = b["dacs"][ed["d"][0]["dac"][0]]
                gvpc = dac["vref"] * dac["gain"] / (1 << dac["bits"])
                top = (1 << dac["bits"]) - 1
            gmux = mx["n"]
            part = parts[ed["p"]]
            g_hi = part["vgmax"]
            beta = part["beta"] * (1.0 + 3.0 * part["bs"])
            vt = part["vt"] - 3.0 * part["vts"]
            g_hi = min(g_hi, vt + lim["ie"] / (beta * lim["vn"]))
            g_lo = 0.0
            if lim["g"] is not None:
                g_lo = max(g_lo, lim["g"][0])
                g_hi = min(g_hi, lim["g"][1])
            h = int(g_hi / gvpc) if top is None else min(top, int(g_hi / gvpc))
            lw = int(math.ceil(g_lo / gvpc))
            hi = h if hi is None else max(hi, h)
            lo = lw if lo is None else min(lo, lw)
            rc = max(16, int(part["cg"] * part["rg"] * 1e6))
        rv = b["gates"]["rv"]
        return {"pulse": b["gates"]["drv"] == "pulse", "gvpc": gvpc, "mux": gmux,
                "hi": hi, "lo": lo, "rc": min(65535, rc), "rail": b["gates"]["rail"],
                "g_raw": int(rv / gvpc) if rv is not None else 0,
                "g_charge": min(GATE_CODE_MAX, int(rv / gvpc)) if rv is not None else 0}

    def pos_max(self) -> int:
        """Largest actuator coordinate: a tap, a gate code (read back or set)."""
        top = self.A
        for ed in self.body["edges"]:
            if ed["k"] == "d":
                top = max(top, self.body["parts"][ed["p"]]["nt"] - 1)
        return top

    def batch_shift(self, n: int) -> int:
        """Rule.set_params' batch shift for ``n`` examples per step."""
        vv = self.A * self.A
        bs = 0
        while n * ((vv >> bs) + 1) >= 1 << 30:
            bs += 1
        return bs

    def batch_sums(self) -> tuple[int, int, int]:
        """Largest step sum S (code**2), with the n and the batch shift giving it, over
        every batch 1..64 (Rule.set_params picks the batch shift per n)."""
        vv = self.A * self.A
        best = (0, 1, 0)
        for n in range(1, BATCH_MAX + 1):
            bs = self.batch_shift(n)
            h = (1 << (bs - 1)) if bs else 0
            s = n * ((vv + h) >> bs)
            best = max(best, (s, n, bs))
        return best


def intermediates(body: dict) -> list[Intermediate]:
    """Every integer intermediate of the learning step and the drivers, with its worst
    case for the compiled board ``body`` (``CompiledBoard.body``)."""
    b = _Board(body)
    out: list[Intermediate] = []
    out += _hal(b)
    out += _learn(b)
    out += _rule(b)
    out += _safety(b)
    out += _app(b)
    return out


# --------------------------------------------------------------------------- hal.py


def _hal(b: _Board) -> list[Intermediate]:
    body = b.body
    adc = body["adc"]
    A = b.A
    out = [
        Intermediate("hal.py:Hal._init_adc: adc_shift = 16 - bits", 16 - b.adc_bits,
                     16 - b.adc_bits, f"16 - adc.bits = 16 - {b.adc_bits}", ("adc.bits",),
                     "use adc.bits <= 16: read_u16() has 16 bits", 0, 16,
                     "a right-shift count (read_u16() >> adc_shift)"),
        Intermediate("hal.py:Hal._avg: s += adc.read_u16() >> sh", 0, OVERSAMPLE_MAX * A,
                     f"oversample {OVERSAMPLE_MAX} x node code {A:,}", ("adc.bits",),
                     "use fewer adc.bits"),
    ]
    if adc["t"] != "internal":
        w = 0x1F << (b.adc_bits + 2)
        out += [
            Intermediate("hal.py:SpiAdcChannel.__init__: 0x18 | ch", 0x18, 0x18 | (adc["ch"] - 1),
                         f"start + SGL bits | channel {adc['ch'] - 1}", ("adc.channels",),
                         "use adc.channels <= 8: the request has 3 channel bits", 0, 0x1F,
                         "the 5-bit start/SGL/channel field"),
            Intermediate("hal.py:SpiAdcChannel.__init__: (0x18 | ch) << (bits + 2)", 0, w,
                         f"0x1F << (adc.bits + 2) = 0x1F << {b.adc_bits + 2}", ("adc.bits",),
                         "use adc.bits <= 17: the request is one 3-byte transfer", 0, 0xFFFFFF,
                         "the 3-byte SPI frame"),
            Intermediate("hal.py:SpiAdcChannel.read_u16: (r[0] << 16) | (r[1] << 8) | r[2]", 0,
                         0xFFFFFF, "three received bytes", ()),
            Intermediate("hal.py:SpiAdcChannel.read_u16: (... & self.mask) << self.shift", 0,
                         A << max(0, 16 - b.adc_bits), f"code {A:,} << (16 - adc.bits)",
                         ("adc.bits",), "use adc.bits <= 16", 0, 0xFFFF, "a read_u16() value"),
        ]
    pwm = body["pwm"]
    if pwm is not None and _pwm_used(body):
        top = ((1 << pwm["bits"]) - 1) << max(0, 16 - pwm["bits"])
        out.append(Intermediate("hal.py:Hal.drive: code << v[2] (PWM duty)", 0, top,
                                f"(2^pwm.bits - 1) << (16 - pwm.bits), pwm.bits = {pwm['bits']}",
                                ("pwm.bits",), "use pwm.bits <= 16", 0, 0xFFFF,
                                "PWM.duty_u16()'s range"))
    gates = b.gates()
    for i, d in enumerate(body["dacs"]):
        if not _dac_used(body, i):
            continue
        f = f"dacs.{d['n']}"
        shift = 12 - d["bits"]
        out.append(Intermediate(f"hal.py:Hal.vline: shift = 12 - bits ({f})", shift, shift,
                                f"12 - {f}.bits = 12 - {d['bits']}", (f"{f}.bits",),
                                f"use {f}.bits <= 12: the firmware's DAC word (AD5308-style) "
                                "has 12 data bits", 0, 12, "a left-shift count (code << shift)"))
        ch_top = max(_dac_channels(body, i), default=0)
        out.append(Intermediate(f"hal.py:Hal._dac: (ch << 12) | data ({f})", 0,
                                (ch_top << 12) | 0xFFF, f"channel {ch_top} << 12 | 0xFFF",
                                (f"{f}.channels",), "use DAC channels 0-7: the word has 3 "
                                "channel bits and bit 15 = 0", 0, 0x7FFF,
                                "the 15 bits of a DAC data word"))
        if gates is not None and not gates["pulse"] and _dac_gate(body, i) and shift >= 0:
            out.append(Intermediate(
                f"hal.py:Hal._dac: code << shift, gate code ({f})", 0, gates["hi"] << shift,
                f"gate DAC code {gates['hi']:,} (limits.gate_range[1] in {f}'s volts per "
                f"code, at most its full scale) << {shift}", ("limits.gate_range", f"{f}.bits"),
                f"use {f}.bits <= 12", 0, 0xFFF,
                "the DAC word's 12 data bits (a larger code wraps)"))
    for e, ed in enumerate(body["edges"]):
        for d in ed["d"]:
            if d is not None and "w" in d and ed["k"] == "d":
                nt = body["parts"][ed["p"]]["nt"]
                pname = body["parts"][ed["p"]]["n"]
                out.append(Intermediate(
                    f"hal.py:Hal._pot_write: t (edge {ed['n']})", 0, nt - 1,
                    f"parts.{pname}.n_taps - 1", (f"parts.{pname}.n_taps",),
                    "use a part with at most 257 taps: the SPI pot word has 9 data bits",
                    0, 0x100, "the 9 data bits of the SPI pot word"))
                out.append(Intermediate(
                    f"hal.py:Hal._pot_write: (d[2] << 4) | ((t >> 8) & 1) (edge {ed['n']})", 0,
                    (d["w"] << 4) | 1, f"wiper {d['w']} << 4 | 1", (f"edges[{e}].wiper",),
                    "use wiper 0-15: the word has 4 address bits", 0, 0xFF, "one byte"))
                break
    n_xp = len(body["xp"])
    if n_xp:
        out.append(Intermediate("hal.py:Hal._twin_lines: dirty |= 1 << line[1]", 0,
                                (1 << n_xp) - 1, f"one bit per expander chain ({n_xp})",
                                ("expanders",), "use at most 30 expander chains"))
    spi_pots = [body["parts"][ed["p"]]["nt"] for ed in body["edges"]
                if ed["k"] == "d" and any(d is not None and "w" in d for d in ed["d"])]
    if spi_pots:
        out.append(Intermediate("hal.py:Hal.move: self.ptap[e] + q", -QUANTA_MAX,
                                max(spi_pots) - 1 + QUANTA_MAX,
                                f"tap {max(spi_pots) - 1} + max_taps {QUANTA_MAX}", ()))
    if any(ed["k"] == "t" for ed in body["edges"]) and body["gates"]["drv"] == "pulse":
        out.append(Intermediate("hal.py:Hal._pulse: q if q > 0 else -q", 0, QUANTA_MAX,
                                f"pulse_us <= {QUANTA_MAX}", ()))
    if body.get("isense"):
        out.append(Intermediate("isense.py:Monitors.reg: (self.buf[0] << 8) | self.buf[1]", 0, 0xFFFF,
                                "two received bytes (outside the step)"))
    return out


def _pwm_used(body: dict) -> bool:
    return any(x is not None and x[0] < 0 for p in body["ins"] + body["outs"] for x in p["d"])


def _dac_channels(body: dict, i: int) -> list[int]:
    chans = [x[1] for p in body["ins"] + body["outs"] for x in p["d"] + p.get("db", [])
             if x is not None and x[0] == i]
    for ed in body["edges"]:
        for d in ed["d"]:
            if d is not None and "dac" in d and d["dac"][0] == i:
                chans.append(d["dac"][1])
    return chans


def _dac_used(body: dict, i: int) -> bool:
    return bool(_dac_channels(body, i))


def _dac_gate(body: dict, i: int) -> bool:
    return any(d is not None and "dac" in d and d["dac"][0] == i
               for ed in body["edges"] for d in ed["d"])


# --------------------------------------------------------------------------- learn.py


def _learn(b: _Board) -> list[Intermediate]:
    A, T, Y = b.A, b.T, b.Y
    nf = b.node_fields
    codes = f"node code <= {A:,} (2^adc.bits - 1), target code <= {T:,} (limits.max_node_volts)"
    n_in = max(1, len(b.body["ins"]))
    out = [
        Intermediate("learn.py:Learner._next: (r & 0x1FFFF) << 13", 0, 0x1FFFF << 13,
                     "17 bits << 13", ()),
        Intermediate("learn.py:Learner._next: (r & 0x1FFFFFF) << 5", 0, 0x1FFFFFF << 5,
                     "25 bits << 5", ()),
        Intermediate("learn.py:Learner._drive_in: i * self.n_in + k", 0, BATCH_MAX * n_in,
                     f"{BATCH_MAX} examples x {n_in} inputs", ()),
        Intermediate("learn.py:Learner._nudge: d = target - yf", -A, T, codes,
                     nf + ("limits.max_node_volts",)),
        Intermediate("learn.py:Learner._nudge: self.nudge16 * d", -NUDGE16_MAX * A,
                     NUDGE16_MAX * T, f"nudge 1.0 = {NUDGE16_MAX} (Q16) x |d| <= {Y:,}; {codes}",
                     nf + ("limits.max_node_volts",),
                     "use adc.bits <= 14 (node codes up to 16383)"),
        Intermediate("learn.py:Learner._err: d *= d", 0, Y * Y, f"|d| <= {Y:,}, squared",
                     nf + ("limits.max_node_volts",), "use adc.bits <= 14"),
        Intermediate("learn.py:Learner._err: 0x3FFFFFFF - d", SMALL_MAX - Y * Y, SMALL_MAX,
                     "2^30 - 1 - d*d", (), guard=True),
        Intermediate("learn.py:Learner._err: self.err += d", 0, SMALL_MAX - 1,
                     "saturates below 2^30 - 1 (checked before adding)", (), guard=True),
    ]
    pairs = [p for p in b.body["outs"]
             if p["b"] is not None and p["b"] != b.body["gnd"] and p["db"]]
    if pairs:  # a differential output: the free difference spans -A..A, its target -T..T
        D = A + T
        out += [
            Intermediate("learn.py:Learner._nudge_pair: d = target - (va - vb)", -D, D,
                         f"|target| <= {T:,}, |va - vb| <= {A:,}", nf + ("limits.max_node_volts",)),
            Intermediate("learn.py:Learner._nudge_pair: self.nudge16 * d", -NUDGE16_MAX * D,
                         NUDGE16_MAX * D, f"nudge 1.0 = {NUDGE16_MAX} (Q16) x |d| <= {D:,}",
                         nf + ("limits.max_node_volts",), "use adc.bits <= 13"),
            Intermediate("learn.py:Learner._err: d *= d (differential output)", 0, D * D,
                         f"|d| <= {D:,}, squared", nf + ("limits.max_node_volts",),
                         "use adc.bits <= 13"),
        ]
    for p in b.body["outs"]:
        line = p["d"][-1]
        if line is None:
            continue
        pre, bits, vref, gain = b.driver(line)
        k16 = b.clamp_k16(line)
        if p in pairs:  # a node code plus half the nudge: -D/2 .. A + D/2
            top = (A + (A + T) // 2 + 1) * (k16 + 1)
            out.append(Intermediate(
                f"learn.py:Learner._drive_code: yc * self.clamp_k16[k] (output {p['n']}, a pair)",
                -((A + T) // 2 + 1) * (k16 + 1), top,
                f"yc <= {A:,} + {(A + T) // 2:,} (half the largest nudge) x clamp_k16 {k16:,} "
                "(+1 for float rounding)",
                (f"{pre}.bits", f"{pre}.gain", f"{pre}.vref", f"muxes.{b.vmux}.gain", "adc.bits"),
                _clamp_fix(b, line, pre, bits, vref, gain)))
            continue
        # +1: a board computes clamp_k16 in single-precision floats
        top = Y * (k16 + 1)
        out.append(Intermediate(
            f"learn.py:Learner._drive_clamp: yc * self.clamp_k16[k] (output {p['n']})", 0, top,
            f"yc <= {Y:,} x clamp_k16 {k16:,} (+1 for float rounding); clamp_k16 = node volts "
            f"per code / clamp volts per code x 65536 = ({b.body['adc']['vref']:g} V / {A:,} / "
            f"muxes.{b.vmux}.gain {b.body['mux'][_mux_index(b.body, b.vmux)]['g']:g}) / "
            f"({pre}.vref {vref:g} V x {pre}.gain {gain:g} / 2^{pre}.bits {bits}) x 65536",
            (f"{pre}.bits", f"{pre}.gain", f"{pre}.vref", f"muxes.{b.vmux}.gain", "adc.bits"),
            _clamp_fix(b, line, pre, bits, vref, gain)))
    return out


def _mux_index(body: dict, name: str) -> int:
    return [m["n"] for m in body["mux"]].index(name)


def _clamp_fix(b: _Board, line: list[int], pre: str, bits: int, vref: float, gain: float) -> str:
    """How to bring yc * clamp_k16 below 2^30: fewer clamp-driver bits, a larger driver
    gain, or a larger node-mux gain (each alone)."""
    k_max = SMALL_MAX // b.Y - 1  # largest clamp_k16 that keeps Y * (k + 1) <= 2^30 - 1
    if k_max < 1:
        return "use adc.bits <= 14"
    per_code = b.vpc * 65536 / (k_max - 0.5)  # smallest clamp volts per code allowed
    fixes = []
    top_bits = math.floor(math.log2(vref * gain / per_code)) if vref * gain > per_code else 0
    if 1 <= top_bits < bits:
        fixes.append(f"{pre}.bits <= {top_bits}")
    need_gain = per_code * (1 << bits) / vref
    fixes.append(f"{pre}.gain >= {_up(need_gain)}")
    mx = b.body["mux"][_mux_index(b.body, b.vmux)]
    vol = vref * gain / (1 << bits)
    need_mux = b.body["adc"]["vref"] / b.A / (vol * (k_max - 0.5) / 65536)
    if b.vn * need_mux <= b.body["adc"]["vref"]:  # the node range must still fit the ADC
        fixes.append(f"muxes.{b.vmux}.gain >= {_up(need_mux)} (now {mx['g']:g})")
    return ("the clamp driver resolves far finer steps than the node reading needs: use "
            + ", or ".join(fixes))


def _up(x: float) -> str:
    """``x`` rounded up to 3 significant digits."""
    if x <= 0:
        return "0"
    e = math.floor(math.log10(x)) - 2
    return f"{math.ceil(x / 10**e - 1e-9) * 10**e:.{max(0, -e)}f}"


# --------------------------------------------------------------------------- rule.py


def _rule(b: _Board) -> list[Intermediate]:
    A = b.A
    S, n, bs = b.batch_sums()
    h = (1 << (bs - 1)) if bs else 0
    bs_top = b.batch_shift(BATCH_MAX)  # the largest batch has the largest shift
    h_top = (1 << (bs_top - 1)) if bs_top else 0
    nf = ("adc.bits",)
    sums = f"batch {n} x ((node code {A:,})^2 + {h}) >> batch shift {bs}"
    split_hi = (S >> 15) * M_MAX
    split_lo = ((-S) >> 15) * M_MAX
    low = 0x7FFF * M_MAX + 16384
    t_hi = split_hi + ((low) >> 15)
    t_lo = split_lo
    out = [
        Intermediate("rule.py:Rule.__init__: vmax (node code)", A, A, "2^adc.bits - 1", nf,
                     "use adc.bits <= 14", 1, RULE_VMAX, "the rule's largest node code"),
        Intermediate("rule.py:Rule.add: a * a, b * b", 0, A * A, f"drop {A:,} squared", nf,
                     "use adc.bits <= 14"),
        Intermediate("rule.py:Rule.add: (b * b + h) >> bs", 0, A * A + h_top,
                     f"{A:,}^2 + rounding {h_top}", nf, "use adc.bits <= 14"),
        Intermediate("rule.py:Rule.add: sd[e] += b * b - a", -S, S, sums, nf,
                     "use adc.bits <= 14"),
        Intermediate("rule.py:Rule.add: sf[e] += a", 0, S, sums, nf, "use adc.bits <= 14"),
        Intermediate("rule.py:Rule.apply: x * m (|x| < SMALL)", -(SMALL - 1) * M_MAX,
                     (SMALL - 1) * M_MAX, f"{SMALL - 1} x mantissa {M_MAX}", ()),
        Intermediate("rule.py:Rule.apply: (x >> 15) * m", split_lo, split_hi,
                     f"step sum {S:,} >> 15 x mantissa {M_MAX}", nf, "use adc.bits <= 14"),
        Intermediate("rule.py:Rule.apply: (x & 0x7FFF) * m + 16384", 0, low,
                     f"0x7FFF x mantissa {M_MAX} + 16384", ()),
        Intermediate("rule.py:Rule.apply: t = (x >> 15) * m + (... >> 15)", t_lo, t_hi,
                     "the two halves' products", nf, "use adc.bits <= 14"),
        Intermediate("rule.py:Rule.apply: (y >> 15) * s_m + ((y & 0x7FFF) * s_m) >> 15 (SIGN)",
                     0, t_hi, "as the split product", nf),
        Intermediate("rule.py:Rule.apply: w = x + y - t (SIGN)", -S, S,
                     "S_d + S_f = the clamped sum", nf),
        Intermediate("rule.py:Rule.apply: t << s (guarded)", -SAT, SAT, "saturated to 2^28", ()),
        Intermediate("rule.py:Rule.apply: q << FRAC", -QUANTA_MAX << 16, QUANTA_MAX << 16,
                     f"max_taps/max_codes {QUANTA_MAX} << 16", ()),
        Intermediate("rule.py:Rule.apply: pe + q", -QUANTA_MAX, b.pos_max() + QUANTA_MAX,
                     f"position {b.pos_max():,} + {QUANTA_MAX}", nf),
        Intermediate("rule.py:Rule.apply: (rh << 13) | (rl >> 3) (PRNG)", 0, 0xFFFF << 13 | 0x1FFF,
                     "16-bit halves of xorshift32", ()),
    ]
    g = b.gates()
    res = ONE - 1
    if g is not None and g["pulse"]:
        span = max(g["g_charge"], A)
        rate = (span << 16) // max(RC_MIN, g["rc"])
        res = max(res, rate - 1)
        room = max(g["hi"], A)
        gf = ("adc.bits", f"muxes.{g['mux']}.gain", f"rails.{g['rail']}")
        out += [
            Intermediate("rule.py:Rule.apply: (span << FRAC) // rc", 0, span << 16,
                         f"max(charge-rail code {g['g_charge']:,}, gate read-back {A:,}) << 16",
                         gf, "use adc.bits <= 14 and a charge rail below 16384 gate codes"),
            Intermediate("rule.py:Rule.apply: (room << FRAC) // rate", 0, room << 16,
                         f"max(gate code {g['hi']:,}, {A:,}) << 16", gf, "use adc.bits <= 14"),
            Intermediate("rule.py:Rule.apply: q * rate", -(2 * SAT + res), 2 * SAT + res,
                         "|q * rate| <= |a| (q = a // rate, then clamped)", ()),
        ]
    out.append(Intermediate("rule.py:Rule.apply: a = mulshift(S_d) + mulshift(S_f) + acc[e]",
                            -(2 * SAT + res), 2 * SAT + res,
                            f"two terms saturated at 2^28 + residue < {res + 1:,} "
                            "(one quantum, or one pulse rate)", ("adc.bits",)))
    return out


# --------------------------------------------------------------------------- safety.py


def _safety(b: _Board) -> list[Intermediate]:
    g = b.gates()
    if g is None or not g["pulse"]:
        return [Intermediate("safety.py:Limits._ok: p + q", -QUANTA_MAX, b.pos_max() + QUANTA_MAX,
                             f"position {b.pos_max():,} + {QUANTA_MAX}", ("adc.bits",))]
    A = b.A
    gf = ("adc.bits", f"muxes.{g['mux']}.gain", f"rails.{g['rail']}")
    return [
        Intermediate("safety.py:Limits.pulse_ok: (self.g_charge - g) * q",
                     min(0, g["g_charge"] - A) * QUANTA_MAX, g["g_charge"] * QUANTA_MAX,
                     f"(charge-rail code {g['g_charge']:,} - gate code 0..{A:,}) x pulse_us "
                     f"{QUANTA_MAX}", gf, "use adc.bits <= 14"),
        Intermediate("safety.py:Limits.pulse_ok: g * q", -A * QUANTA_MAX, 0,
                     f"gate code {A:,} x pulse_us -{QUANTA_MAX}", ("adc.bits",),
                     "use adc.bits <= 14"),
    ]


# --------------------------------------------------------------------------- app.py


def _app(b: _Board) -> list[Intermediate]:
    out = [Intermediate("app.py:App._train_step: self.dt_sum += dt", 0, SMALL_MAX - 1,
                        "saturates below 2^30 - 1 (checked before adding; outside the lock)", (), guard=True)]
    os_ = b.body["adc"]["os"]
    out.append(Intermediate("app.py:App._validate: oversample (adc.oversample default)", os_, os_,
                            f"adc.oversample = {os_}", ("adc.oversample",),
                            f"use adc.oversample <= {OVERSAMPLE_MAX}: the firmware refuses more "
                            "(and would not boot with it as its default)", 1, OVERSAMPLE_MAX,
                            "the firmware's oversample range"))
    g = b.gates()
    if g is not None and g["pulse"]:
        out.append(Intermediate(
            "app.py:App._build_edges: g_charge = int(rv / gate_vpc)", 0, g["g_raw"],
            f"rails.{g['rail']} over the gate read-back volts per code {g['gvpc']:.4g} V",
            (f"rails.{g['rail']}", f"muxes.{g['mux']}.gain", "adc.bits"),
            f"the firmware caps the charge-rail code at {GATE_CODE_MAX} and would then "
            "under-estimate each charge pulse: lower the gate read-back resolution "
            f"(adc.bits) or muxes.{g['mux']}.gain", 0, GATE_CODE_MAX,
            "the rule's largest gate code"))
    return out


# --------------------------------------------------------------------------- checks


def failures(body: dict) -> list[Intermediate]:
    """The intermediates that can leave their range, worst first."""
    bad = [x for x in intermediates(body) if not x.ok]
    return sorted(bad, key=lambda x: -x.ratio)


def check_ranges(body: dict, source: str | None = None) -> None:
    """Raise :class:`InputError` naming the fields when any intermediate can leave its
    range (the worst one; the others are listed by name)."""
    bad = failures(body)
    if not bad:
        return
    x = bad[0]
    value = x.hi if x.hi > x.hi_limit else x.lo
    fields = ", ".join(x.fields) if x.fields else "the firmware"
    more = ""
    if len(bad) > 1:
        more = f" (also out of range: {'; '.join(y.name for y in bad[1:4])}" + (
            ", ..." if len(bad) > 4 else "") + ")"
    raise InputError(
        f"{x.name} can reach {value:,} ({x.formula}), outside {x.limit_is} "
        f"{x.lo_limit:,}..{x.hi_limit:,}{x.consequence}; set by {fields}: "
        f"{x.fix or 'change ' + fields}{more}",
        source=source, field=x.fields[0] if x.fields else None)


def headroom(body: dict) -> tuple[Intermediate, Intermediate | None]:
    """The largest small-int intermediate relative to 2^30 overall, and the largest one
    whose bound the description sets (None when no bound depends on it)."""
    xs = [x for x in intermediates(body) if x.small_int and not x.guard]
    worst = max(xs, key=lambda x: x.ratio)
    mine = [x for x in xs if x.fields]
    return worst, (max(mine, key=lambda x: x.ratio) if mine else None)


def _share(x: Intermediate) -> str:
    m = x.magnitude
    near = m > (1 << 30) * 0.999  # by design just below the limit: say by how much
    share = f"2^30 - {(1 << 30) - m:,}" if near else f"{m / (1 << 30):.4f} x 2^30"
    return f"{m:,} = {share} ({x.name})"


def headroom_line(body: dict) -> str:
    """One line for ``learnboard board check``: the largest intermediates against 2^30."""
    worst, mine = headroom(body)
    text = "integer ranges: within 2^30"
    if mine is not None:
        text += f"; largest set by this description {_share(mine)}"
    if mine is None or worst.ratio > mine.ratio:
        text += f"; largest fixed by the firmware {_share(worst)}"
    return text
