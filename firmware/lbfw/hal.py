"""Hardware layer: the board's pins, buses and converters, wired from board.json.

Everything goes through a ``machine`` module object and a clock object (``ticks_us``,
``sleep_us``) passed in, so the same code drives a real board, the unix VM with a fake
``machine``, or the emulator. The application only calls the *seam* methods below
(one level above the pins); a test may replace the whole ``Hal`` by an object with the
same methods (``tests/fake_board.py`` does, with the real physics behind it):

    drive(line, code)            voltage output ``line`` (index into ``vlines``) to a code
    read_nodes(net, out)         oversampled node codes of network ``net`` into ``out``
    read_gates(pos, net, mask)   pulse-gate read-back codes of network ``net`` into ``pos``
    move(e, q)                   edge e: q taps (X9C/SPI pot), q us of pulse
    set_dac_gate(e, code)        DAC gate e: its DAC code (written absolute)
    switch(on)                   single-network boards: connect the clamp drivers
    settle()                     wait the settle time (and feed the watchdog)
    park()                       every voltage output to code 0

Hot-path methods allocate nothing: lines are resolved to small tuples at build time.
Supported: GPIO and shift-register/switch-chain digital lines, PWM and SPI/I2C DAC
voltage outputs, internal ADC behind GPIO-selected muxes, X9C digipots (CS/UD/INC,
deselect only with INC low so the wiper is never stored), pulse gates (charge /
discharge lines) and DAC gates, SPI ADCs (MCP3208/MCP3008-style 3-byte single-ended
reads), SPI digipots (MCP41x1/42x1-style 16-bit wiper writes, the tap tracked here and
written absolute) and optional I2C current monitors (INA219-style, ``read_power``).
"""

from . import consts
from .consts import const  # micropython.const (a plain function under CPython)

# consts.K_POT / K_PULSE as literals for the step's per-edge reads and moves (an imported
# name costs a global lookup, a local one more frame slot)
_POT = const(1)
_PULSE = const(2)
if (_POT, _PULSE) != (consts.K_POT, consts.K_PULSE):
    raise ImportError("lbfw.hal: edge kinds differ from lbfw.consts")

# Voltage-output kinds.
_PWM = 0
_DAC_SPI = 1
_DAC_I2C = 2


def _no_feed():
    pass


class Clock:
    """The port's clock (``time`` module): ``ticks_us``, ``ticks_ms``, ``ticks_diff``,
    ``sleep_us``."""

    def __init__(self):
        import time
        if hasattr(time, "ticks_us"):
            self.ticks_us = time.ticks_us
            self.ticks_ms = time.ticks_ms
            self.ticks_diff = time.ticks_diff
            self.sleep_us = time.sleep_us
        else:  # CPython
            self.ticks_us = lambda: int(time.perf_counter() * 1e6) & 0x3FFFFFFF
            self.ticks_ms = lambda: int(time.perf_counter() * 1e3) & 0x3FFFFFFF
            self.ticks_diff = lambda a, b: ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000
            self.sleep_us = lambda us: time.sleep(us * 1e-6)


class Hal:
    """Pins and converters of one board; see the module docstring for the seam."""

    def __init__(self, body, machine, clock):
        self.m = machine
        self.clock = clock
        self.feed = _no_feed  # the watchdog's feed, set by the application
        self.nets = body["nets"]
        self.pins = {}
        self.spi = [self._spi_bus(s) for s in body["spi"]]
        self.i2c = [machine.I2C(b["id"], sda=self._pin(b["sda"]), scl=self._pin(b["scl"]),
                                freq=b["f"]) for b in body["i2c"]]
        self._init_expanders(body["xp"])
        self._init_outputs(body)
        self._init_adc(body)
        self._init_edges(body)
        self.settle_us = int(body["adc"]["st"])
        self.out_settle_us = self._out_settle(body)
        self._init_sense(body)  # (it parks and settles the outputs to read the zeros)

    # -- construction -----------------------------------------------------------------

    def _spi_bus(self, s):
        if s.get("miso", -1) < 0:  # write-only bus (chains, DACs, pots)
            return self.m.SPI(s["id"], baudrate=s["baud"], sck=self._pin(s["sck"]),
                              mosi=self._pin(s["mosi"]))
        return self.m.SPI(s["id"], baudrate=s["baud"], sck=self._pin(s["sck"]),
                          mosi=self._pin(s["mosi"]),
                          miso=self.m.Pin(s["miso"], getattr(self.m.Pin, "IN", 0)))

    def _pin(self, n, mode=None, value=None):
        if n < 0:
            return None
        p = self.pins.get(n)
        if p is None:
            p = self.m.Pin(n, self.m.Pin.OUT if mode is None else mode)
            if value is not None:
                p.value(value)
            self.pins[n] = p
        return p

    def _init_expanders(self, xps):
        self.xp = []
        for x in xps:
            oe = self._pin(x["oe"], value=1) if x["oe"] >= 0 else None
            latch = self._pin(x["latch"], value=1)
            buf = bytearray(x["bits"] // 8)
            self.xp.append((self.spi[x["bus"]], latch, buf, oe))
        for i in range(len(self.xp)):  # a safe (all off) pattern before enabling
            self._flush(i)
            oe = self.xp[i][3]
            if oe is not None:
                oe.value(0)

    def _dline(self, line):
        """A digital line ``[dev, n]`` as (kind, object, bit): kind 0 GPIO, 1 expander."""
        if line is None:
            return None
        dev, n = line
        if dev < 0:
            return (0, self._pin(n, value=0), 0)
        return (1, dev, n)

    def _init_outputs(self, body):
        # Voltage output lines (inputs' and outputs' drivers), one list index each.
        self.vlines = []
        self.vkeys = []
        self.pwm = body["pwm"]
        self.dacs = body["dacs"]
        self.pwm_objs = {}
        self._dac_buf = bytearray(2)

    def vline(self, line):
        """Index of voltage output ``line`` (``[dev, n]``), created on first use."""
        key = (line[0], line[1])
        for i in range(len(self.vkeys)):
            if self.vkeys[i] == key:
                return i
        dev, n = key
        if dev < 0:
            p = self.m.PWM(self._pin(n))
            p.freq(int(self.pwm["f"]))
            p.duty_u16(0)
            self.vlines.append((_PWM, p, 16 - self.pwm["bits"], None))
        else:
            d = self.dacs[dev]
            shift = 12 - d["bits"]
            if d["if"] == "i2c":
                self.vlines.append((_DAC_I2C, self.i2c[d["bus"]], shift, (d["addr"], n)))
            else:
                cs = self._pin(d["cs"], value=1)
                self.vlines.append((_DAC_SPI, self.spi[d["bus"]], shift, (cs, n)))
        self.vkeys.append(key)
        return len(self.vkeys) - 1

    def volts_per_code(self, line):
        """Volts of one code on voltage output ``line`` (configuration only)."""
        dev = line[0]
        if dev < 0:
            p = self.pwm
            return p["vref"] * p["gain"] / (1 << p["bits"])
        d = self.dacs[dev]
        return d["vref"] * d["gain"] / (1 << d["bits"])

    def max_code(self, line):
        dev = line[0]
        return (1 << (self.pwm["bits"] if dev < 0 else self.dacs[dev]["bits"])) - 1

    def _out_settle(self, body):
        st = 0
        if body["pwm"] is not None:
            st = max(st, body["pwm"]["st"])
        for d in body["dacs"]:
            st = max(st, d["st"])
        return int(st)

    def _init_adc(self, body):
        a = body["adc"]
        self.os = a["os"]
        self.adc_shift = 16 - a["bits"]
        if a["t"] == "internal":
            self.adc = [self.m.ADC(26 + c) for c in range(a["ch"])]
        else:
            cs = self._pin(a["cs"], value=1)
            self.adc = [SpiAdcChannel(self.spi[a["bus"]], cs, c, a["bits"])
                        for c in range(a["ch"])]
        self.mux = []
        # muxes on the same select lines share what those lines hold now (a channel;
        # every line starts low): a read writes only the lines that change, ~3 us each
        # on a board
        groups = []
        self.mgrp = bytearray(len(body["mux"]))
        for i, mx in enumerate(body["mux"]):
            sel = tuple(self._pin(p, value=0) for p in mx["sel"])
            en = self._pin(mx["en"], value=1 - mx["enl"]) if mx["en"] >= 0 else None
            self.mux.append((sel, en, mx["enl"], self.adc[mx["ac"]]))
            key = tuple(mx["sel"])
            if key not in groups:
                groups.append(key)
            self.mgrp[i] = groups.index(key)
        self.gch = bytearray(len(groups))
        # Per network, per node: (mux, channel); -1 = not read (ground: code 0).
        self.nrd = [(bytes(r[0] + 1 for r in net), bytes(max(0, r[1]) for r in net))
                    for net in body["nrd"]]
        self.grd = [(bytes(r[0] + 1 for r in net), bytes(max(0, r[1]) for r in net))
                    for net in body["grd"]]

    def _init_edges(self, body):
        from array import array
        self.edrv = []  # per edge: tuple of per-network driver tuples
        self.ekind = bytearray(len(body["edges"]))  # consts.K_*, as safety.Limits.kind
        self.spot = bytearray(len(body["edges"]))  # 1: a K_POT edge is an SPI pot, 0: X9C
        self.ptap = array("h", bytes(2 * len(body["edges"])))  # SPI pots: present tap
        self.pmax = array("h", bytes(2 * len(body["edges"])))
        self._pot_buf = bytearray(2)
        gate_lines = []
        for e, ed in enumerate(body["edges"]):
            nets = []
            for d in ed["d"]:
                if d is None or ed["k"] == "r":
                    continue
                if "inc" in d:
                    self.ekind[e] = consts.K_POT
                    nets.append((self._dline(d["cs"]), self._dline(d["ud"]), self._dline(d["inc"])))
                elif "ch" in d:
                    self.ekind[e] = consts.K_PULSE
                    nets.append((self._dline(d["ch"]), self._dline(d["dc"])))
                elif "dac" in d:
                    self.ekind[e] = consts.K_DAC
                    nets.append((self.vline(d["dac"]),))
                    gate_lines.append(nets[-1][0])
                else:
                    self.ekind[e] = consts.K_POT
                    self.spot[e] = 1
                    nets.append((self._dline(d["cs"]), self.spi[d["bus"]], d["w"]))
            if self.spot[e]:
                self.ptap[e] = body["parts"][ed["p"]]["nt"] // 2  # power-up: mid-scale
            if self.ekind[e] == consts.K_POT:
                self.pmax[e] = body["parts"][ed["p"]]["nt"] - 1
            for net in nets:  # X9C and SPI pot chip selects idle high (deselected)
                if self.ekind[e] == consts.K_POT:
                    self._set(net[0], 1)
            self.edrv.append(tuple(nets))
        self.gate_lines = tuple(gate_lines)  # DAC-gate outputs: park leaves them alone
        sw = []
        for o in body["outs"]:
            for key in ("sw", "swb"):
                if o.get(key) is not None:
                    sw.append(self._dline(o[key]))
        self.sw = tuple(sw)
        for i in range(len(self.xp)):
            self._flush(i)

    # -- digital lines ----------------------------------------------------------------

    def _flush(self, i):
        spi, latch, buf, _ = self.xp[i]
        latch.value(0)
        spi.write(buf)  # buf[0] is the last chip of the chain (sent first)
        latch.value(1)

    def _set(self, line, v):
        """Set a digital line; expander bits are latched at once."""
        if line[0] == 0:
            line[1].value(v)
        else:
            self._set_bit(line[1], line[2], v)

    def _set_bit(self, dev, bit, v):
        self._put_bit(dev, bit, v)
        self._flush(dev)

    def _put_bit(self, dev, bit, v):
        """Set an expander bit in the buffer only (latched by the next _flush)."""
        buf = self.xp[dev][2]
        i = len(buf) - 1 - (bit >> 3)
        m = 1 << (bit & 7)
        buf[i] = buf[i] | m if v else buf[i] & (0xFF ^ m)

    # -- seam -------------------------------------------------------------------------

    def drive(self, i, code):
        """Set voltage output ``i`` (a ``vline`` index) to ``code``."""
        v = self.vlines[i]
        if v[0] == _PWM:
            v[1].duty_u16(code << v[2])
        else:
            self._dac(v, code)

    def _dac(self, v, code):
        # AD5308-style 16-bit word: channel in bits 14..12, data left-aligned in 11..0.
        w = (v[3][1] << 12) | ((code << v[2]) & 0xFFF)
        b = self._dac_buf
        b[0] = w >> 8
        b[1] = w & 0xFF
        if v[0] == _DAC_SPI:
            v[3][0].value(0)
            v[1].write(b)
            v[3][0].value(1)
        else:
            v[1].writeto(v[3][0], b)

    def settle(self):
        # every example of a learning step, self_test's drops and each measurement
        # pass here: one feed per settle keeps a long batch from starving the watchdog
        self.clock.sleep_us(self.out_settle_us)
        self.feed()

    # Small functions: MicroPython heap-allocates frames of more than 11 slots.
    def _sample(self, mx, ch):
        m = self.mux[mx]
        self._select(m[0], mx, ch)
        en = m[1]
        if en is not None:
            en.value(m[2])
        self.clock.sleep_us(self.settle_us)
        s = self._avg(m[3])
        if en is not None:
            en.value(1 - m[2])
        return s

    def _select(self, sel, mx, ch):
        g = self.mgrp[mx]
        d = ch ^ self.gch[g]  # the lines that change
        self.gch[g] = ch
        for b in range(len(sel)):
            if (d >> b) & 1:
                sel[b].value((ch >> b) & 1)

    def _avg(self, adc):
        s = 0
        sh = self.adc_shift
        n = self.os
        for _ in range(n):
            s += adc.read_u16() >> sh
        return s // n

    def read_nodes(self, net, out):
        """Oversampled codes of every node of network ``net`` into ``out`` (0 = not read)."""
        rd = self.nrd[net]
        for k in range(len(out)):
            out[k] = self._read(rd, k)

    def _read(self, rd, k):
        m = rd[0][k]
        return self._sample(m - 1, rd[1][k]) if m else 0

    def read_gates(self, pos, net=0, mask=None):
        """Gate read-back codes of network ``net``'s pulse gates into ``pos``: every
        pulse gate, or those where ``mask`` (per edge) is ``K_PULSE``."""
        if mask is None:
            mask = self.ekind
        rd = self.grd[net]
        for e in range(len(mask)):
            if mask[e] == _PULSE:
                pos[e] = self._read(rd, e)

    def read_gate(self, net, e):
        mux, ch = self.grd[net]
        return self._sample(mux[e] - 1, ch[e]) if mux[e] else -1

    def move(self, e, q):
        """Move edge ``e`` by ``q`` on every network (sign = direction, +1 = up)."""
        # Index loops: a for-in over a tuple reserves 4 more frame slots for its iterator.
        n = len(self.edrv[e])
        if self.ekind[e] == _PULSE:
            self._pulse(self.edrv[e], q)
        elif self.ekind[e] == _POT:
            if self.spot[e]:
                self.set_tap(e, self.ptap[e] + q)
            else:
                for j in range(n):
                    self._x9c(self.edrv[e][j], q)

    def set_tap(self, e, t):
        """SPI digipot edge ``e``: write tap ``t`` (clamped to the part) on every network."""
        t = 0 if t < 0 else (self.pmax[e] if t > self.pmax[e] else t)
        self.ptap[e] = t
        for k in range(len(self.edrv[e])):
            self._pot_write(self.edrv[e][k], t)

    def init_taps(self, pos):
        """Put every digipot on the tap the learner starts from (``pos[e]``).

        SPI pots are written absolute. An X9C wiper comes back from power-up (or stays,
        after an MCU-only reset) wherever its EEPROM or the last run left it, which the
        firmware cannot read: counting from an assumed tap could put it below the safe
        range. So each is homed first: ``n_taps`` steps up land on the top end stop
        (steps up only raise the resistance, so no current limit can be crossed on the
        way), then it is counted down to ``pos[e]``."""
        for e in range(len(self.ekind)):
            self.feed()
            if self.spot[e]:
                self.set_tap(e, pos[e])
            elif self.ekind[e] == consts.K_POT:
                self.move(e, self.pmax[e] + 1)
                self.move(e, pos[e] - self.pmax[e])

    def _pot_write(self, d, t):
        # MCP41x1/42x1 16-bit command: address (wiper) in bits 15..12, command 00 = write
        # in bits 11..10, data in bits 8..0 (129 positions: 0..128).
        b = self._pot_buf
        b[0] = (d[2] << 4) | ((t >> 8) & 1)
        b[1] = t & 0xFF
        self._set(d[0], 0)
        d[1].write(b)
        self._set(d[0], 1)

    def set_dac_gate(self, e, code):
        for d in self.edrv[e]:
            self.drive(d[0], code)

    def _x9c(self, d, q):
        inc = d[2]
        self._set(inc, 0)
        self._set(d[0], 0)
        self._set(d[1], 1 if q > 0 else 0)
        self._x9c_pulses(inc, q if q > 0 else -q)
        self._set(d[0], 1)  # deselect with INC low: the X9C then does not store the wiper

    def _x9c_pulses(self, inc, n):
        for _ in range(n):
            self._set(inc, 1)
            self.clock.sleep_us(1)
            self._set(inc, 0)  # the wiper moves on the falling edge
            self.clock.sleep_us(1)

    def _pulse(self, drv, q):
        """One gate pulse of ``q`` µs on every network at once (charge if q > 0): each
        expander is updated once to switch the twins on and once to switch them off, so
        every gate conducts q plus one update, as a pulse per network would, in half the
        bus time."""
        j = 0 if q > 0 else 1
        self._twin_lines(drv, j, 1)
        self.clock.sleep_us(q if q > 0 else -q)
        self._twin_lines(drv, j, 0)

    def _twin_lines(self, drv, j, v):
        dirty = 0  # a bit per expander to update
        for k in range(len(drv)):
            line = drv[k][j]
            if line[0] == 0:
                line[1].value(v)
            else:
                self._put_bit(line[1], line[2], v)
                dirty |= 1 << line[1]
        dev = 0
        while dirty:
            if dirty & 1:
                self._flush(dev)
            dirty >>= 1
            dev += 1

    def pulse_overhead_us(self):
        """How much longer than asked a gate pulse really conducts: the time to switch
        its line off (a whole shift-register update on chained boards). Measured by
        timing the switch-off of an idle charge line, which changes nothing."""
        for e in range(len(self.edrv)):
            if self.ekind[e] == consts.K_PULSE and self.edrv[e]:
                line = self.edrv[e][0][0]
                t0 = self.clock.ticks_us()
                self._set(line, 0)
                return self.clock.ticks_diff(self.clock.ticks_us(), t0)
        return 0

    def _init_sense(self, body):
        # the monitors' driver is its own module, loaded only on a board that has them
        self.sense = None
        if body.get("isense"):
            from .isense import Monitors
            self.sense = Monitors(self, body["isense"])

    def read_power(self):
        """Measured power (W) the drivers deliver into the networks (``isense.Monitors``),
        or None without monitors. Allocates a few floats: call between steps."""
        return None if self.sense is None else self.sense.power()

    def switch(self, on):
        """Single-network boards: connect (on) or float (off) the output clamps."""
        for s in self.sw:
            self._set(s, 1 if on else 0)

    def park(self):
        """Every port's voltage output to 0 V, the clamps off. DAC gates keep their
        codes: 0 V would take each gate below its range."""
        for i in range(len(self.vlines)):
            if i not in self.gate_lines:
                self.drive(i, 0)
        self.switch(False)


class SpiAdcChannel:
    """One single-ended input of an MCP3208/MCP3008-style SPI ADC, read like
    ``machine.ADC.read_u16``: a 3-byte transfer while CS is low sends the start bit, SGL
    and the channel (D2..D0) so that the ``bits`` result bits end the third byte."""

    def __init__(self, spi, cs, ch, bits):
        self.spi = spi
        self.cs = cs
        self.mask = (1 << bits) - 1
        self.shift = 16 - bits
        w = (0x18 | ch) << (bits + 2)  # start, SGL, D2 D1 D0, then sample + null bit
        self.tx = bytearray((w >> 16, (w >> 8) & 0xFF, w & 0xFF))
        self.rx = bytearray(3)

    def read_u16(self):
        self.cs.value(0)
        self.spi.write_readinto(self.tx, self.rx)
        self.cs.value(1)
        r = self.rx
        return ((((r[0] << 16) | (r[1] << 8) | r[2]) & self.mask) << self.shift)
