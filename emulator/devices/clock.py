"""Virtual time: every tick read, sleep and bus transfer advances an emulated clock.

Nothing sleeps in real time, so charging, settling and leakage depend only on what the
firmware did, and a seeded run is reproducible. Tick values wrap like MicroPython's
(``TICKS_PERIOD = 2**30``), so firmware must use ``ticks_diff``, as on a board.
"""

from __future__ import annotations

TICKS_PERIOD = 1 << 30
_NEVER = 1 << 62  # later than any virtual time
_MASK = TICKS_PERIOD - 1
_HALF = TICKS_PERIOD >> 1


class VirtualClock:
    """Emulated time in integer microseconds since power-on.

    Args:
        tick_cost_us: how far one ``ticks_us``/``ticks_ms`` read advances the clock, so a
            busy-wait on the ticks ends (a real read costs about a microsecond).
    """

    __slots__ = ("_us", "tick_cost_us", "_listeners", "_quiet_until", "_horizon")

    def __init__(self, tick_cost_us: int = 1):
        self._us = 0
        self.tick_cost_us = int(tick_cost_us)
        self._listeners: list = []
        self._quiet_until: list = []
        # no listener acts for an advance to a time before this (0: ask them all)
        self._horizon = 0

    @property
    def now_us(self) -> int:
        return self._us

    @property
    def now_s(self) -> float:
        return self._us * 1e-6

    def on_advance(self, callback, quiet_until=None) -> None:
        """Call ``callback(now_us)`` after every advance (watchdogs, timers).
        ``quiet_until()``, if given, tells the earliest µs at which the callback would do
        anything: its calls for earlier times are no-ops (:meth:`quiet_through`)."""
        self._listeners.append(callback)
        self._quiet_until.append(quiet_until)
        self._horizon = 0

    def wake(self) -> None:
        """A listener's ``quiet_until`` may have moved earlier (a watchdog started or
        fed, a run of reads begun): the next advance calls every listener again. Only
        earlier moves need this; the calls an advance skips are those before the
        smallest ``quiet_until`` seen after the last calls, which by each listener's own
        word do nothing."""
        self._horizon = 0

    def _notify(self) -> None:
        """Call every listener (the clock reached a time at which one may act), then
        note when one may act next."""
        for cb in self._listeners:
            cb(self._us)
        horizon = _NEVER
        for until in self._quiet_until:
            if until is None:
                horizon = 0
                break
            t = until()
            if t < horizon:
                horizon = t
        self._horizon = horizon

    def quiet_through(self, t_us: int) -> bool:
        """Whether every listener would do nothing when called for any time up to
        ``t_us``: then a block of work that advances the clock step by step may move it
        there at once, skipping calls that are no-ops (a listener without
        ``quiet_until`` always counts as acting)."""
        for until in self._quiet_until:
            if until is None or until() <= t_us:
                return False
        return True

    def advance_us(self, dt_us: float) -> None:
        """Move time forward by ``dt_us`` (rounded to whole µs; negative is an error)."""
        step = int(round(dt_us))
        if step < 0:
            raise ValueError(f"time cannot go back ({dt_us} us)")
        if step:
            self._us += step
            if self._us >= self._horizon:
                self._notify()

    def advance_int(self, us: int) -> None:
        """:meth:`advance_us` for a whole number of µs (``us >= 0``), without rounding:
        the emulated ``machine``'s hot path."""
        if us:
            self._us += us
            if self._us >= self._horizon:
                self._notify()

    # MicroPython time API --------------------------------------------------------
    def ticks_us(self) -> int:
        self.advance_us(self.tick_cost_us)
        return self._us & _MASK

    def ticks_ms(self) -> int:
        self.advance_us(self.tick_cost_us)
        return (self._us // 1000) & _MASK

    def ticks_cpu(self) -> int:
        return self.ticks_us()

    @staticmethod
    def ticks_add(ticks: int, delta: int) -> int:
        return (ticks + delta) & _MASK

    @staticmethod
    def ticks_diff(end: int, start: int) -> int:
        """Signed difference ``end - start`` of two wrapped tick values."""
        return ((end - start + _HALF) & _MASK) - _HALF

    def sleep_us(self, us: float) -> None:
        self.advance_us(max(0, us))

    def sleep_ms(self, ms: float) -> None:
        self.advance_us(max(0, ms) * 1000)

    def sleep(self, s: float) -> None:
        self.advance_us(max(0, s) * 1e6)

    def time_ns(self) -> int:
        return self._us * 1000
