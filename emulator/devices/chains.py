"""Serial-in / parallel-out chains on SPI: 74HC(T)595 shift registers, ADG1414 switch arrays.

Bit ``k`` is output ``k mod 8`` of chip ``k // 8``; chip 0's serial input is on MOSI.
Each clocked bit enters chip 0's first stage and pushes the rest along the chain, so
bytes sent last-chip-first, MSB first, land with bit 7 on Q7 (docs/board-format.md).
"""

from __future__ import annotations


class ShiftChain:
    """A daisy chain of ``bits`` stages with a storage latch.

    Args:
        bits: chain length (a multiple of 8).
        needs_select: True for parts that shift only while the latch line is low (the
            ADG1414's SYNC); a 74HC595 shifts on every clock whatever RCLK does.
        disabled_level: what an output reads while OE is high (pull-ups: 1).
    """

    __slots__ = ("bits", "needs_select", "disabled_level", "_mask", "shift", "latched",
                 "latch_level", "oe_low", "latches")

    def __init__(self, bits: int, *, needs_select: bool = True, disabled_level: int = 1):
        self.bits = int(bits)
        self.needs_select = needs_select
        self.disabled_level = disabled_level
        self._mask = (1 << self.bits) - 1
        self.shift = 0
        self.latched = 0  # outputs power up off
        self.latch_level = 1
        self.oe_low = True  # without an OE pin the outputs are always enabled
        self.latches = 0

    def spi_write(self, data: bytes) -> None:
        if self.needs_select and self.latch_level:
            return
        # each byte enters chip 0 and pushes the rest along: all of them at once
        self.shift = ((self.shift << (8 * len(data))) | int.from_bytes(data, "big")) & self._mask

    def set_latch(self, level: int) -> bool:
        """Latch line level; returns True when a rising edge copied the register out."""
        level = 1 if level else 0
        rising = level and not self.latch_level
        self.latch_level = level
        if rising:
            self.latched = self.shift
            self.latches += 1
        return bool(rising)

    def set_oe(self, level: int) -> None:
        self.oe_low = not level

    def output(self, k: int) -> int:
        return (self.output_word() >> k) & 1

    def output_word(self) -> int:
        """Every output's level as the bits of one int (-1, all ones, while OE is high
        with pull-ups)."""
        return self.latched if self.oe_low else -self.disabled_level
