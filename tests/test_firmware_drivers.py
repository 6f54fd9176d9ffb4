"""Pin-level behaviour of the hardware layer (lbfw.hal) under CPython with a recording
fake ``machine``: X9C moves (never an EEPROM store), pulse gates, shift-register chains."""

from __future__ import annotations

from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board


class Rec:
    """A ``machine`` module that logs pin levels and SPI bytes, and a no-op clock."""

    def __init__(self):
        self.log = []
        rec = self

        class Pin:
            OUT = 1

            def __init__(self, n, mode=0):
                self.n = n

            def value(self, v=None):
                rec.log.append(("pin", self.n, v))

        class SPI:
            def __init__(self, *a, **k):
                pass

            def write(self, buf):
                rec.log.append(("spi", bytes(buf)))

        class PWM:
            def __init__(self, pin):
                self.pin = pin

            def freq(self, f):
                pass

            def duty_u16(self, d):
                rec.log.append(("pwm", self.pin.n, d))

        class ADC:
            def __init__(self, pin):
                pass

            def read_u16(self):
                return 0x8000

        self.Pin, self.SPI, self.PWM, self.ADC = Pin, SPI, PWM, ADC
        self.I2C = None

    def ticks_us(self):
        return 0

    def ticks_diff(self, a, b):
        return a - b

    def sleep_us(self, us):
        self.log.append(("sleep", us))


def _decode(raw, bits):
    # bit k = output k%8 of chip k//8; the last chip's byte is sent first
    return [(raw[len(raw) - 1 - k // 8] >> (k % 8)) & 1 for k in range(bits)]


def _levels(log, xp_latch, bits, start):
    """Replay the log from chain bytes ``start``: yield (pin levels, chain bits) per event."""
    pins = {}
    chain = _decode(start, bits)
    last_spi = None
    for ev in log:
        if ev[0] == "pin":
            pins[ev[1]] = ev[2]
        elif ev[0] == "spi":
            last_spi = ev[1]
        if ev[0] == "pin" and ev[1] == xp_latch and ev[2] == 1 and last_spi is not None:
            chain = _decode(last_spi, bits)
        yield dict(pins), list(chain)


def test_x9c_move_counts_taps_and_never_stores():
    body = compile_board(load_board("gen1-digipot")).body
    rec = Rec()
    hal = Hal(body, rec, rec)
    edge = body["edges"][5]
    cs_bits = [d["cs"][1] for d in edge["d"]]
    inc = edge["d"][0]["inc"][1]
    ud = edge["d"][0]["ud"][1]
    latch = body["xp"][0]["latch"]
    start = bytes(hal.xp[0][2])
    rec.log.clear()
    hal.move(5, -3)
    falls = {b: 0 for b in cs_bits}
    prev = None
    for pins, chain in _levels(rec.log, latch, body["xp"][0]["bits"], start):
        for b in cs_bits:
            selected = chain[b] == 0
            if prev is not None:
                was_sel = prev[1][b] == 0
                if was_sel and not selected:
                    assert pins.get(inc) == 0  # deselect only with INC low: no store
                if selected and prev[0].get(inc) == 1 and pins.get(inc) == 0:
                    falls[b] += 1
                    assert pins.get(ud) == 0  # down
        # never two chips of the same edge selected on different networks at once
        assert sum(chain[b] == 0 for b in cs_bits) <= 1
        prev = (pins, chain)
    assert falls == {b: 3 for b in cs_bits}


def test_pulse_gate_charges_for_the_commanded_time():
    body = compile_board(load_board("gen2-clln")).body
    rec = Rec()
    hal = Hal(body, rec, rec)
    latch = body["xp"][0]["latch"]
    ch = [d["ch"][1] for d in body["edges"][3]["d"]]
    start = bytes(hal.xp[0][2])
    rec.log.clear()
    hal.move(3, 120)
    on = [c for _, c in _levels(rec.log, latch, 128, start)]
    # the twins' charge switches go on in one latch and off in the next: every gate
    # conducts the same 120 us (plus one update), and only those two switches move
    twins = [(c[ch[0]], c[ch[1]]) for c in on]
    assert [t for i, t in enumerate(twins) if i == 0 or t != twins[i - 1]] == \
        [(0, 0), (1, 1), (0, 0)]
    assert [s for s in rec.log if s[0] == "sleep"] == [("sleep", 120)]
    assert all(sum(c) == 2 * c[ch[0]] for c in on)  # never a discharge switch with them
