"""The watchdog budget of a learning step: its worst-case time from the parameters.

The main loop feeds the watchdog between steps and the hardware layer inside them (each
settle), but a step is also a time the board answers nobody: parameters whose step could
exceed half the watchdog timeout are refused by ``set_params``, naming the largest
contributor. Costs are for an RP2040 at 125 MHz running this firmware from MicroPython,
generous as a budget must be.
"""

from .consts import E_OUT_OF_RANGE
from .server import Fail

CONV_US = 12  # one internal-ADC conversion in the read loop: 2 µs + the loop's Python
SPI_CONV_US = 40  # one SPI-ADC transfer: chip select, the 3-byte call (plus its bits)
SELECT_US = 60  # mux select and enable pin writes around one node read
DRIVE_US = 100  # one voltage output (an SPI/I2C DAC word or a PWM duty)
EDGE_US = 60  # rule arithmetic per edge and example, and per edge at the update
MOVE_US = 400  # one edge's actuation besides its pulse: lines on and off, a few taps


class Budget:
    """What a step's worst case depends on besides the parameters (from board.json)."""

    def __init__(self, body, max_examples):
        adc = body["adc"]
        if adc["t"] == "internal":
            self.conv_us = CONV_US
        else:
            self.conv_us = SPI_CONV_US + 24000000 // max(1, body["spi"][adc["bus"]]["baud"])
        self.adc_st = int(adc["st"])
        # nodes read per scan: the busier network's (-1: ground, not read)
        self.n_read = max(sum(1 for m in net if m[0] >= 0) for net in body["nrd"])
        self.n_gates = sum(1 for ed in body["edges"] if ed["k"] == "t")
        self.n_drive = len(body["ins"]) + len(body["outs"])
        self.n_edges = len(body["edges"])
        self.max_examples = max_examples

    def parts(self, p):
        """Worst-case µs of one step with parameters ``p``, by cause: settling, scans
        (oversampled), pulses (the longest, every edge), and the rest. ``batch`` 0 trains
        on every example, so the board's ``max_examples`` counts."""
        batch = p["batch"] or self.max_examples
        read = self.adc_st + p["oversample"] * self.conv_us + SELECT_US
        return {"settle_us": 2 * batch * p["settle_us"],
                "oversample": (2 * batch * self.n_read + 2 * self.n_gates) * read,
                "pulse_us": self.n_edges * p["pulse_us"],
                "batch": batch * (2 * self.n_drive * DRIVE_US + self.n_edges * EDGE_US)
                + self.n_edges * (MOVE_US + EDGE_US)}

    def step_us(self, p):
        t = 0
        for v in self.parts(p).values():
            t += v
        return t

    def check(self, p, wdt_ms):
        """Raise ``Fail`` (OUT_OF_RANGE, ``field`` the largest contributor) if a step could
        exceed half of ``wdt_ms``."""
        parts = self.parts(p)
        us = 0
        worst = "batch"
        for k in parts:
            us += parts[k]
            if parts[k] > parts[worst]:
                worst = k
        if us > wdt_ms * 500:
            raise Fail(E_OUT_OF_RANGE,
                       "%s = %d: a learning step could take %d ms, over half the %d ms watchdog; "
                       "lower %s (or batch)" % (worst, p[worst], us // 1000, wdt_ms, worst), worst)
