"""Analog multiplexer (CD74HC4067, ADG1206) with its front-end gain and settling."""

from __future__ import annotations

import math


class AnalogMux:
    """Select pins pick a channel; an optional enable pin connects the output.

    The output (after the front-end amplifier, ``gain``) follows a channel change as a
    first-order step with time constant ``tau_us`` (switch + amplifier + ADC input).
    """

    __slots__ = ("n_select", "gain", "enable_level", "tau_us", "enable", "_channel",
                 "_channel_since", "_out", "is_connected")

    def __init__(self, n_select: int, *, gain: float = 1.0, enable_level: int | None = None,
                 tau_us: float = 2.0):
        self.n_select = int(n_select)
        self.gain = float(gain)
        self.enable_level = enable_level  # None: always connected
        self.tau_us = float(tau_us)
        self._channel = 0  # the select lines' levels as bits
        self.enable = 0 if enable_level is None else 1 - enable_level  # powers up disabled
        self._channel_since = 0
        self._out = 0.0
        self.is_connected = self.connected  # kept up to date for the world's read path

    @property
    def channel(self) -> int:
        return self._channel

    @property
    def select(self) -> list[int]:
        """The select lines' levels (bit 0 first)."""
        return [(self._channel >> b) & 1 for b in range(self.n_select)]

    @property
    def connected(self) -> bool:
        return self.enable_level is None or self.enable == self.enable_level

    def set_select(self, bit: int, level: int, now_us: int) -> None:
        AnalogMux.set_select_all((self,), bit, level, now_us)

    @staticmethod
    def set_select_all(muxes, bit: int, level: int, now_us: int) -> None:
        """:meth:`set_select` on each of ``muxes`` (muxes wired to one select line)."""
        mask = 1 << bit
        for m in muxes:  # the scan's hot path: a select line is written ~140 times a step
            old = m._channel
            ch = (old | mask) if level else (old & ~mask)
            if ch != old:
                m._channel = ch
                m._channel_since = now_us

    @staticmethod
    def set_select_bank(muxes, bit: int, level: int, now_us: int) -> None:
        """:meth:`set_select_all` for muxes wired to the same select lines in the same
        order (a bank: their channels are always equal, so it is worked out once)."""
        old = muxes[0]._channel
        ch = (old | (1 << bit)) if level else (old & ~(1 << bit))
        if ch != old:
            for m in muxes:
                m._channel = ch
                m._channel_since = now_us

    def set_enable(self, level: int, now_us: int) -> None:
        was = self.is_connected
        self.enable = en = 1 if level else 0
        self.is_connected = now = self.enable_level is None or en == self.enable_level
        if now and not was:
            self._channel_since = now_us

    def output(self, node_volts: float, now_us: int) -> float:
        """Output volts for the selected input ``node_volts`` at time ``now_us`` (gain applied)."""
        target = node_volts * self.gain
        dt = now_us - self._channel_since
        k = math.exp(-dt / self.tau_us) if self.tau_us > 0 else 0.0
        self._out = target + (self._out - target) * k
        self._channel_since = now_us
        return self._out
