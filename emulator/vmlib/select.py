"""``select`` for the emulator's VM: the built-in module; with a world (``LB_WORLD``),
``poll()`` objects that keep the emulated world in step with the firmware's idling.

Each poll is a pass of the firmware's main loop and costs the cost model's pass time
(``machine._PASS_US``, see ``learnboard.emulator.cost_model``) on the virtual clock.
Before a poll the VM's queued ``machine`` writes are sent to the world (so the world is
current whenever the firmware looks for input), and the real time a poll with a timeout
spends waiting advances the virtual clock: while the board idles waiting for the host,
virtual time follows real time, as the in-process board's does (gate leakage, the
firmware's host-silence timer). While the firmware is busy, time stays purely virtual.
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
            if _machine._ah is None:  # booted: the world may run scans ahead
                _machine._script_buffer()
            _machine._owed += _machine._PASS_US  # a pass of the firmware's loop
            _machine._flush()
            if timeout == 0:
                return self._p.poll(0)
            t0 = _utime.ticks_us()
            r = self._p.poll(timeout)
            _machine._idle(_utime.ticks_diff(_utime.ticks_us(), t0))
            return r

        def ipoll(self, timeout=-1, flags=0):
            if _machine._ah is None:
                _machine._script_buffer()
            _machine._owed += _machine._PASS_US
            _machine._flush()
            if timeout == 0:
                return self._p.ipoll(0, flags)
            t0 = _utime.ticks_us()
            r = self._p.ipoll(timeout, flags)
            _machine._idle(_utime.ticks_diff(_utime.ticks_us(), t0))
            return r

    def poll():  # noqa: F811
        return _Poll()
