"""INA219-style current monitors, one in each driver's output (high side).

Each monitor's shunt sits between a driver and its node; its IN- pin (and bus input)
is on the node, so bus volts x shunt current is the power that driver delivers into the
network, and the sum over every driver is the networks' total. Read between steps only
(floats, I2C): never in the locked step.
"""

from .consts import const

# configuration: 16 V bus range, PGA /4 (+-160 mV shunt range: a node's four edges at
# their current limit through a 10 ohm shunt stay inside it), 12-bit bus, the shunt
# averaged over 32 conversions (17 ms), shunt and bus triggered
_CONFIG = const(0x11EB)
_RIN = 320e3  # ohm, the IN- pin's bus-input impedance (datasheet, active mode)
_ZERO_READS = const(4)  # conversions averaged for each monitor's zero at boot
_POLLS = const(50)  # 1 ms polls for a conversion (17 ms nominal)


class Monitors:
    """The board's monitors: ``[{"bus", "addr", "sh"}, ...]`` from board.json's ``isense``."""

    def __init__(self, hal, spec):
        if type(spec) is dict:  # a board.json compiled when a board had one monitor
            spec = [spec]
        self.clock = hal.clock
        # per monitor: (I2C bus, address, shunt ohm)
        self.mons = tuple((hal.i2c[m["bus"]], m["addr"], m["sh"]) for m in spec)
        self.ptr = bytearray(1)
        self.buf = bytearray(2)
        self.cfg = bytearray((0, _CONFIG >> 8, _CONFIG & 0xFF))
        # each monitor's zero: its offset and the IN- pin's bias current, read with every
        # driver at 0 V (no network current; the bus input carries none at 0 V either)
        self.zero = [0.0] * len(self.mons)
        hal.park()
        hal.settle()
        try:
            self.zero = self.shunt_codes(_ZERO_READS)
        except OSError:  # a monitor that does not answer: no measured power, the board boots
            self.zero = None

    def reg(self, i, r):
        bus, addr, _ = self.mons[i]
        self.ptr[0] = r
        bus.writeto(addr, self.ptr)
        bus.readfrom_into(addr, self.buf)
        return (self.buf[0] << 8) | self.buf[1]

    def convert(self):
        """One triggered conversion on every monitor, waited for (bounded) until each has
        its result (CNVR, bus register bit 1): values of the outputs as they are now."""
        for bus, addr, _ in self.mons:
            bus.writeto(addr, self.cfg)
        for i in range(len(self.mons)):
            for _ in range(_POLLS):
                if self.reg(i, 2) & 2:
                    break
                self.clock.sleep_us(1000)

    def shunt(self, i):
        sh = self.reg(i, 1)  # signed, 10 uV/LSB
        return sh - 0x10000 if sh & 0x8000 else sh

    def shunt_codes(self, n):
        """Per monitor, the mean shunt code of ``n`` conversions."""
        out = [0.0] * len(self.mons)
        for _ in range(n):
            self.convert()
            for i in range(len(self.mons)):
                out[i] += self.shunt(i) / n
        return out

    def power(self):
        """W: the sum over monitors of bus volts (bits 15..3, 4 mV/LSB) times the shunt
        current (the code less its zero, 10 uV/LSB over the shunt, less the IN- pin's
        V_bus / 320 kOhm); None when a monitor does not answer (I2C error)."""
        if self.zero is None:
            return None
        total = 0.0
        try:
            self.convert()
            for i in range(len(self.mons)):
                v = (self.reg(i, 2) >> 3) * 0.004
                total += v * ((self.shunt(i) - self.zero[i]) * 1e-5 / self.mons[i][2] - v / _RIN)
        except OSError:
            return None
        return total
