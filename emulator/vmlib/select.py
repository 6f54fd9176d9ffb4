"""``select`` for the emulator's VM: the built-in module; with a world (``LB_WORLD``),
``poll()`` objects that keep the emulated world in step with the firmware's idling.

Each poll is a pass of the firmware's main loop and costs the cost model's pass time
(``machine._PASS_US``, see ``learnboard.emulator.cost_model``) on the virtual clock.
Before a poll the VM's queued ``machine`` writes are sent to the world (so the world is
current whenever the firmware looks for input). While the board idles waiting for the
host, a host that answers within 2 s of real time answers 1 ms of board time after the
board went idle (``machine._idle``), so a seeded session is the same run every time; a
host silent for longer is silent on the board too, its time paid a poll at a time.
While the firmware is busy, time stays purely virtual.
"""

import os as _os

import uselect as _uselect
from uselect import *  # noqa: F403

if _os.getenv("LB_WORLD"):
    import machine as _machine
    import utime as _utime

    class _Poll:
        def __init__(self):
            self._p = _uselect.poll()

        def register(self, obj, mask=_uselect.POLLIN | _uselect.POLLOUT):
            self._p.register(obj, mask)

        def unregister(self, obj):
            self._p.unregister(obj)

        def modify(self, obj, mask):
            self._p.modify(obj, mask)

        def poll(self, timeout=-1):
            return self._wait(self._p.poll, timeout, ())

        def ipoll(self, timeout=-1, flags=0):
            return self._wait(self._p.ipoll, timeout, (flags,))

        def _wait(self, poll, timeout, extra):
            if _machine._ah is None:  # booted: the world may run scans ahead
                _machine._script_buffer()
            if timeout == 0:
                _machine._owed += _machine._PASS_US  # a pass of the firmware's loop
                _machine._flush()
                return poll(0, *extra)
            pay = _machine._idle_begin()
            if pay:  # a silent host's time: on the clock now, no real wait
                _machine._idle(pay, False)
                return poll(0, *extra)
            if timeout > 0 and not _machine._silent:
                # the host's time is not board time: one wait until it answers (or falls
                # silent), not a pass every few ms, whose count would depend on the host
                timeout = (_machine._SILENT_US - _machine._waited) // 1000 + 1
            t0 = _utime.ticks_us()
            r = poll(timeout, *extra)
            # ipoll's iterator does not say whether input came: taken as an answer
            _machine._idle(_utime.ticks_diff(_utime.ticks_us(), t0), bool(r) or bool(extra))
            return r

    def poll():  # noqa: F811
        return _Poll()
