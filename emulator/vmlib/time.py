"""``time`` for the emulator's VM: the built-in module, with ``ticks_*`` and ``sleep*`` on
the world's virtual clock when ``LB_WORLD`` names the world socket (see ``machine.py``)."""

import os

from utime import *  # noqa: F403

if os.getenv("LB_WORLD"):
    from machine import sleep_ms, sleep_us, ticks_add, ticks_diff, ticks_ms, ticks_us  # noqa: F401

    def sleep(s):
        sleep_us(int(s * 1000000))

    def ticks_cpu():
        return ticks_us()
