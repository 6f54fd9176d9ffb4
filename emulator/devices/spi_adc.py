"""MCP3208/MCP3008-style SPI ADC, bit-level: start bit, SGL/DIFF, D2..D0, then the result.

While CS is low, bits are clocked MSB first. The first 1 is the start bit; the next four
are SGL/DIFF and the channel D2 D1 D0. After them DOUT gives one sample-period bit (read
as 0 here), a null bit (0), then the ``bits``-bit result MSB first; zeros after that.
Pseudo-differential reads (SGL = 0) are answered like single-ended ones of the even
channel of the pair (enough for the firmware, which only reads single-ended). A falling
CS starts a new conversion frame.
"""

from __future__ import annotations

from collections.abc import Callable


class SpiAdc:
    """The converter's serial interface; ``convert(channel) -> code`` samples the input
    (the world supplies it: mux, front end, noise and INL live in its ADC model)."""

    def __init__(self, bits: int, channels: int, convert: Callable[[int], int]):
        self.bits = int(bits)
        self.channels = int(channels)
        self.convert = convert
        self.selected = False
        self.conversions = 0
        self._reset()

    def _reset(self) -> None:
        self._state = 0  # 0: wait for start, 1: config bits, 2: shifting the result out
        self._cfg = 0
        self._n = 0
        self._out = 0  # result bits still to send, MSB first in the low _n_out bits
        self._n_out = 0

    def select(self, low: bool) -> None:
        if low and not self.selected:
            self._reset()
        self.selected = low

    def transfer(self, data: bytes) -> bytes:
        """Bytes clocked in on MOSI -> the bytes DOUT drove meanwhile (zeros if deselected)."""
        if not self.selected:
            return bytes(len(data))
        out = bytearray(len(data))
        for i, byte in enumerate(data):
            o = 0
            for k in range(7, -1, -1):
                o = (o << 1) | self._clock((byte >> k) & 1)
            out[i] = o
        return bytes(out)

    def _clock(self, din: int) -> int:
        if self._state == 0:
            if din:
                self._state, self._cfg, self._n = 1, 0, 0
            return 0
        if self._state == 1:
            self._cfg = (self._cfg << 1) | din
            self._n += 1
            if self._n == 4:
                ch = self._cfg & 7
                if not self._cfg & 8:
                    ch &= 6
                code = int(self.convert(ch)) if ch < self.channels else 0
                self.conversions += 1
                # sample-period bit, null bit, then the result
                self._out = code & ((1 << self.bits) - 1)
                self._n_out = self.bits + 2
                self._state = 2
            return 0
        if self._n_out <= 0:
            return 0
        self._n_out -= 1
        return (self._out >> self._n_out) & 1 if self._n_out < self.bits else 0
