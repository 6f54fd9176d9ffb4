"""``time`` for the emulator's VM: the built-in module, with ``ticks_*`` and ``sleep*`` on
the world's virtual clock when ``LB_WORLD`` names the world socket (see ``machine.py``).
Only the names MicroPython's ``time`` has on the RP2040 are public (the unix port's
``clock`` is not)."""

import os as _os

from utime import *  # noqa: F403

try:
    del clock  # noqa: F821 (unix only)
except NameError:
    pass

if _os.getenv("LB_WORLD"):
    from machine import _sleep_ms as sleep_ms  # noqa: F401
    from machine import _sleep_us as sleep_us  # noqa: F401
    from machine import _ticks_add as ticks_add  # noqa: F401
    from machine import _ticks_diff as ticks_diff  # noqa: F401
    from machine import _ticks_ms as ticks_ms  # noqa: F401
    from machine import _ticks_us as ticks_us

    def sleep(s):
        sleep_us(int(s * 1000000))

    def ticks_cpu():
        return ticks_us()
