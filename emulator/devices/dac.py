"""Voltage outputs: an SPI DAC (AD5308-style) and PWM + RC filter, with resolution and settling.

Both settle as a first-order step whose time constant brings a full-scale step to within
½ LSB in ``settle_us`` (``tau = settle_us / ln(2**(bits+1))``).
"""

from __future__ import annotations

import math


class _Settling:
    __slots__ = ("tau_us", "_from", "_to", "_since")

    def __init__(self, n: int, bits: int, settle_us: float):
        self.tau_us = settle_us / math.log(2 ** (bits + 1)) if settle_us > 0 else 0.0
        self._from = [0.0] * n
        self._to = [0.0] * n
        self._since = [0] * n

    def set(self, ch: int, volts: float, now_us: int) -> None:
        self._from[ch] = self.value(ch, now_us)
        self._to[ch] = volts
        self._since[ch] = now_us

    def value(self, ch: int, now_us: int) -> float:
        if self.tau_us <= 0:
            return self._to[ch]
        k = math.exp(-(now_us - self._since[ch]) / self.tau_us)
        return self._to[ch] + (self._from[ch] - self._to[ch]) * k

    def target(self, ch: int) -> float:
        return self._to[ch]


class SpiDac:
    """Multi-channel SPI DAC, AD5308/AD5318/AD5328 word format.

    16-bit words MSB first while SYNC (CS) is low: bit 15 = 0 for a data write, bits
    14–12 the channel address, then the code left-justified in bits 11…(12−bits). Words
    with bit 15 set are control words (gain, buffer, LDAC setup) and are counted only.
    Outputs update at once (LDAC tied low); power-on output is 0 V.
    """

    def __init__(self, channels: int = 8, bits: int = 8, vref: float = 2.5, gain: float = 1.0,
                 settle_us: float = 0.0):
        self.channels = int(channels)
        self.bits = int(bits)
        self.vref = float(vref)
        self.gain = float(gain)
        self.codes = [0] * self.channels
        self.control_words = 0
        self._out = _Settling(self.channels, self.bits, settle_us)
        self._buf = bytearray()
        self.selected = False

    def volts_for(self, code: int) -> float:
        return code / (1 << self.bits) * self.vref * self.gain

    def select(self, low: bool, now_us: int) -> None:
        """SYNC level change: low starts a frame, the rising edge ends it."""
        if low and not self.selected:
            self._buf = bytearray()
        if not low and self.selected:
            self._buf = bytearray()  # an incomplete word is discarded
        self.selected = low

    def spi_write(self, data: bytes, now_us: int) -> None:
        if not self.selected:
            return
        self._buf += data
        while len(self._buf) >= 2:
            word = (self._buf[0] << 8) | self._buf[1]
            del self._buf[:2]
            if word & 0x8000:
                self.control_words += 1
                continue
            ch = (word >> 12) & 0x7
            if ch < self.channels:
                code = (word >> (12 - self.bits)) & ((1 << self.bits) - 1)
                self.codes[ch] = code
                self._out.set(ch, self.volts_for(code), now_us)

    def output(self, ch: int, now_us: int) -> float:
        """Output volts of channel ``ch`` at ``now_us`` (settling included)."""
        return self._out.value(ch, now_us)

    def target(self, ch: int) -> float:
        return self._out.target(ch)


class PwmRc:
    """A PWM pin behind an RC filter and divider: ``duty / 2**bits · vref · gain``.

    ``duty_u16`` is quantised to the counter resolution ``bits`` (RP2040: set by the
    frequency); ripple is neglected (the filter is chosen to keep it under ½ LSB).
    """

    def __init__(self, bits: int = 12, vref: float = 3.3, gain: float = 1.0,
                 settle_us: float = 0.0, freq: int = 30000):
        self.bits = int(bits)
        self.vref = float(vref)
        self.gain = float(gain)
        self.freq = int(freq)
        self.duty = 0  # in counter units 0 .. 2**bits
        self._out = _Settling(1, self.bits, settle_us)

    def set_duty_u16(self, duty_u16: int, now_us: int) -> None:
        d = max(0, min(65535, int(duty_u16)))
        self.duty = (d * (1 << self.bits) + 32768) >> 16
        self._out.set(0, self.duty / (1 << self.bits) * self.vref * self.gain, now_us)

    def output(self, now_us: int) -> float:
        return self._out.value(0, now_us)

    def target(self) -> float:
        return self._out.target(0)
