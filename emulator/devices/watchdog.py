"""The RP2040's watchdog and reset reason, on the emulator's virtual clock.

What MicroPython's ``rp2`` port does (``machine_wdt.c``, ``modmachine.c``):

* ``machine.WDT(id=0, timeout=ms)`` starts the watchdog; ``id`` must be 0 and
  ``timeout`` at most :data:`MAX_TIMEOUT_MS` (the 24-bit counter at 2 ticks per µs).
  There is no ``deinit``: nothing stops it but a reset of the chip. Creating another
  ``WDT`` loads the new timeout (``watchdog_enable`` again), as on the board.
* ``feed()`` reloads the counter; if it runs out the chip resets.
* A soft reset (Ctrl-D, ``machine.soft_reset()``) is only the interpreter restarting:
  the watchdog keeps counting, so a program left at the REPL is reset a timeout later.
* A hard reset (watchdog expiry, ``machine.reset()``, the RUN pin, power) stops it.
* ``machine.reset_cause()`` is :data:`WDT_RESET` after a watchdog expiry *and* after
  ``machine.reset()`` (which the rp2 port implements with ``watchdog_reboot``; the
  hardware cannot tell the two apart), :data:`PWRON_RESET` after power-on or the RUN pin.

The device lives in CPython beside the world (it survives the VM process, as the chip's
watchdog survives a soft reset). Front ends call :meth:`Watchdog.on_reset` before each
boot and set :attr:`Watchdog.on_expire` to reset the board when it fires.
"""

from __future__ import annotations

from collections.abc import Callable

MAX_TIMEOUT_MS = 8388
"""RP2040: 0xffffff ticks / 2 per µs / 1000."""

PWRON_RESET = 1
"""``machine.PWRON_RESET`` on rp2."""
WDT_RESET = 3
"""``machine.WDT_RESET`` on rp2."""

NEVER = 1 << 62


class Watchdog:
    """One RP2040 watchdog on ``clock`` (a :class:`~.clock.VirtualClock`)."""

    __slots__ = ("clock", "timeout_us", "deadline_us", "cause", "expiries", "on_expire", "_rebooting")

    def __init__(self, clock) -> None:
        self.clock = clock
        self.timeout_us = 0
        self.deadline_us = NEVER
        """Virtual µs at which it fires (:data:`NEVER` while stopped): a cheap test."""
        self.cause = PWRON_RESET
        """What ``machine.reset_cause()`` answers in this boot."""
        self.expiries = 0
        """Watchdog resets so far."""
        self.on_expire: Callable[[], None] | None = None
        """Called once (from the clock listener) when it runs out; resets the board."""
        self._rebooting = False
        clock.on_advance(self._check, self._fires_at)

    @property
    def running(self) -> bool:
        return self.deadline_us != NEVER

    def start(self, timeout_ms: int) -> None:
        """``machine.WDT(timeout=timeout_ms)``; raises ``ValueError`` as the rp2 port does."""
        timeout_ms = int(timeout_ms)
        if timeout_ms > MAX_TIMEOUT_MS:
            raise ValueError(f"timeout exceeds {MAX_TIMEOUT_MS}")
        if timeout_ms < 0:
            raise ValueError("timeout must be >= 0 ms")
        self.timeout_us = timeout_ms * 1000
        self.feed()

    def feed(self) -> None:
        """``WDT.feed()``: a no-op while stopped (there is no WDT object then anyway)."""
        if self.timeout_us:
            self.deadline_us = self.clock.now_us + self.timeout_us
            self.clock.wake()  # (a new timeout may end earlier than the last deadline)

    def reboot(self) -> None:
        """``machine.reset()``: the rp2 port reboots through the watchdog, so the next
        boot reports :data:`WDT_RESET`."""
        self._rebooting = True

    def _fires_at(self) -> int:
        """The clock's ``quiet_until``: :meth:`_check` acts from the deadline on."""
        return self.deadline_us

    def _check(self, now_us: int) -> None:
        if now_us >= self.deadline_us:
            self.deadline_us = NEVER
            self.timeout_us = 0
            self.expiries += 1
            if self.on_expire is not None:
                self.on_expire()

    def on_reset(self, kind: str) -> None:
        """Before a boot of ``kind``: ``"soft"`` changes nothing; ``"watchdog"``, and
        ``"hard"`` after :meth:`reboot`, boot with :data:`WDT_RESET`; ``"hard"`` (the RUN
        pin), ``"power-on"`` and an emulator ``"crash"`` with :data:`PWRON_RESET`."""
        if kind == "soft":
            return
        if kind == "watchdog" or (kind == "hard" and self._rebooting):
            self.cause = WDT_RESET
        else:
            self.cause = PWRON_RESET
        self._rebooting = False
        self.deadline_us = NEVER
        self.timeout_us = 0
