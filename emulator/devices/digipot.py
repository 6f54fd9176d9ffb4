"""Digital potentiometers: the X9C pin-level state machine and an SPI digipot (MCP41xx-style).

Resistance at tap ``t`` is the taper (``log``: ``r_min·(r_max/r_min)^(t/(n−1))``,
``linear``) scaled by the part's end-to-end error (``r_scale``, within ±tolerance), plus
the wiper resistance. Taps never wrap.
"""

from __future__ import annotations

import numpy as np

from learnboard.physics.devices import digipot_resistance


class _Track:
    def __init__(self, n_taps, r_min, r_max, taper, r_wiper, r_scale, settle_us):
        self.n_taps = int(n_taps)
        self.r_min, self.r_max, self.taper = float(r_min), float(r_max), taper
        self.r_wiper = float(r_wiper)
        self.r_scale = float(r_scale)
        self.settle_us = float(settle_us)
        self._moved_at: int | None = None
        self._prev_tap = 0

    def track(self, tap) -> float:
        return float(digipot_resistance(np.asarray(tap, dtype=float), self.n_taps, self.r_min,
                                        self.r_max, self.taper, 0.0)) * self.r_scale

    def resistance_of(self, tap: int, now_us: int | None = None) -> float:
        """Ohms at ``tap``; within ``settle_us`` of a move, make-before-break: the old and
        new taps' tracks are briefly in parallel, so the resistance dips."""
        r = self.track(tap)
        if now_us is not None and self._moved_at is not None and \
                now_us - self._moved_at < self.settle_us:
            r_old = self.track(self._prev_tap)
            r = r * r_old / (r + r_old)
        return r + self.r_wiper

    def _mark_move(self, old: int, now_us: int) -> None:
        self._prev_tap = old
        self._moved_at = now_us


class X9cDigipot(_Track):
    """X9C102/103/104/503/303 three-wire digipot, per the Intersil datasheet.

    * CS low selects; while selected, each **falling** edge of INC moves the wiper one tap
      up (U/D high, toward more resistance here) or down (U/D low), stopping at the ends.
    * CS rising while INC is **high** stores the tap in EEPROM (≈ 20 ms during which the
      part ignores its inputs) — counted in ``eeprom_writes`` as wear; after
      ``endurance`` writes the store no longer takes. CS rising with INC low: no store.
    * Power-up restores the stored tap; an MCU reset does not touch the part.
    """

    def __init__(self, n_taps: int = 100, r_min: float = 40.0, r_max: float = 32000.0,
                 taper: str = "log", r_wiper: float = 40.0, r_scale: float = 1.0,
                 settle_us: float = 100.0, stored_tap: int = 0, store_ms: float = 20.0,
                 endurance: int = 100_000):
        super().__init__(n_taps, r_min, r_max, taper, r_wiper, r_scale, settle_us)
        self.stored_tap = int(stored_tap)
        self.tap = self.stored_tap
        self.store_us = store_ms * 1000.0
        self.endurance = int(endurance)
        self.eeprom_writes = 0
        self.end_stop_hits = 0
        self.cs = 1
        self.ud = 0
        self.inc = 1
        self._busy_until = -1

    def power_cycle(self) -> None:
        """Power off and on: the wiper comes back at the stored tap."""
        self.tap = self.stored_tap
        self.cs, self.inc = 1, 1
        self._busy_until = -1
        self._moved_at = None

    def _busy(self, now_us: int) -> bool:
        return now_us < self._busy_until

    def set_ud(self, level: int, now_us: int) -> None:
        self.ud = 1 if level else 0

    def set_inc(self, level: int, now_us: int) -> bool:
        """INC level; returns True when the wiper moved."""
        level = 1 if level else 0
        falling = self.inc == 1 and level == 0
        self.inc = level
        if not (falling and self.cs == 0) or self._busy(now_us):
            return False
        new = self.tap + (1 if self.ud else -1)
        if not 0 <= new < self.n_taps:
            self.end_stop_hits += 1
            return False
        self._mark_move(self.tap, now_us)
        self.tap = new
        return True

    def set_cs(self, level: int, now_us: int) -> None:
        level = 1 if level else 0
        rising = self.cs == 0 and level == 1
        self.cs = level
        if rising and self.inc == 1 and not self._busy(now_us):
            self.eeprom_writes += 1
            if self.eeprom_writes <= self.endurance:
                self.stored_tap = self.tap
            self._busy_until = now_us + self.store_us

    @property
    def worn_out(self) -> bool:
        return self.eeprom_writes > self.endurance

    def resistance(self, now_us: int | None = None) -> float:
        return self.resistance_of(self.tap, now_us)


class SpiDigipot:
    """An SPI digipot with one or more volatile wipers (MCP41x1/42x1 command format).

    16-bit commands MSB first while CS is low: bits 15–12 the memory address (wiper
    0 = 0x0, wiper 1 = 0x1), bits 11–10 the command (00 write, 01 increment, 10
    decrement; 11 read is answered with zeros), bits 8–0 the data; writes above the
    last tap clamp to it. Power-up: every wiper at mid-scale.
    """

    def __init__(self, n_wipers: int = 1, n_taps: int = 129, r_min: float = 75.0,
                 r_max: float = 10000.0, taper: str = "linear", r_wiper: float = 75.0,
                 r_scale=1.0, settle_us: float = 0.0):
        scales = np.broadcast_to(np.asarray(r_scale, dtype=float), (n_wipers,))
        self.wipers = [_Track(n_taps, r_min, r_max, taper, r_wiper, s, settle_us) for s in scales]
        self.n_taps = int(n_taps)
        self.taps = [self.n_taps // 2] * n_wipers
        self.selected = False
        self._buf = bytearray()

    def power_cycle(self) -> None:
        self.taps = [self.n_taps // 2] * len(self.taps)

    def select(self, low: bool, now_us: int) -> None:
        if low != self.selected:
            self._buf = bytearray()
        self.selected = low

    def spi_write(self, data: bytes, now_us: int) -> None:
        if not self.selected:
            return
        self._buf += data
        while len(self._buf) >= 2:
            word = (self._buf[0] << 8) | self._buf[1]
            del self._buf[:2]
            addr, cmd, value = word >> 12, (word >> 10) & 3, word & 0x1FF
            if addr >= len(self.taps):
                continue
            old = self.taps[addr]
            if cmd == 0:
                new = min(value, self.n_taps - 1)
            elif cmd == 1:
                new = min(old + 1, self.n_taps - 1)
            elif cmd == 2:
                new = max(old - 1, 0)
            else:
                continue
            if new != old:
                self.wipers[addr]._mark_move(old, now_us)
            self.taps[addr] = new

    def resistance(self, wiper: int = 0, now_us: int | None = None) -> float:
        return self.wipers[wiper].resistance_of(self.taps[wiper], now_us)
