"""``machine`` for the emulator's VM: the built-in module plus ``reset()`` and, when the
environment variable ``LB_WORLD`` names the emulator's world socket, ``Pin``, ``ADC``,
``SPI``, ``I2C`` and ``PWM`` that drive the emulated parts in CPython
(``learnboard.emulator.world_server``), with ``ticks_us``/``ticks_diff``/``sleep_us``/
``sleep_ms`` on the virtual clock. Writes are sent without waiting; only reads block.
"""

import os

from _lbboard import reset as _hard_reset
from umachine import *  # noqa: F403

_path = os.getenv("LB_WORLD")
_sock = None

if _path:
    import socket
    import struct

    _sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    _sock.connect(struct.pack("H", socket.AF_UNIX) + _path.encode() + b"\0")
    _hdr2 = bytearray(3)
    _read_buf = bytearray(4)

    def _send(b):
        _sock.write(b)

    def _recv(n):
        mv = memoryview(_read_buf)
        got = 0
        while got < n:
            r = _sock.readinto(mv[got:n])
            if not r:
                raise OSError("world socket closed")
            got += r
        return _read_buf

    def ticks_us():
        _send(b"T")
        return struct.unpack("<I", _recv(4))[0]

    def ticks_ms():
        return ticks_us() // 1000

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def ticks_add(t, d):
        return (t + d) & 0x3FFFFFFF

    def sleep_us(us):
        if us > 0:
            _send(struct.pack("<BI", 68, int(us)))  # 'D'

    def sleep_ms(ms):
        sleep_us(int(ms * 1000))

    def sync():
        """Block until the world has handled every request sent so far."""
        _send(b"Q")
        _recv(1)

    def _gpio(p):
        if hasattr(p, "id"):
            return p.id
        if isinstance(p, str):
            return int(p[2:])
        return int(p)

    class Pin:  # noqa: F811
        IN, OUT, OPEN_DRAIN, ALT = 0, 1, 2, 3
        PULL_UP, PULL_DOWN = 1, 2

        def __init__(self, id, mode=-1, pull=-1, value=None, **kw):
            self.id = _gpio(id)
            self._v = 0
            if value is not None:
                self.value(value)

        def init(self, mode=-1, pull=-1, value=None, **kw):
            if value is not None:
                self.value(value)

        def value(self, x=None):
            if x is None:
                return self._v
            self._v = 1 if x else 0
            _hdr2[0] = 80  # 'P'
            _hdr2[1] = self.id
            _hdr2[2] = self._v
            _send(_hdr2)

        def __call__(self, x=None):
            return self.value(x)

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        high = on
        low = off

    class ADC:  # noqa: F811
        CORE_TEMP = 4

        def __init__(self, pin):
            ch = _gpio(pin)
            self.channel = ch - 26 if (ch >= 26 or hasattr(pin, "id")) else ch
            self._req = bytes((65, self.channel))  # 'A'

        def read_u16(self):
            _send(self._req)
            return struct.unpack("<H", _recv(2))[0]

    class SPI:  # noqa: F811
        MSB, LSB = 1, 0

        def __init__(self, id, baudrate=1000000, **kw):
            self.id = id
            self.baudrate = baudrate

        def init(self, baudrate=None, **kw):
            if baudrate:
                self.baudrate = baudrate

        def write(self, buf):
            _send(struct.pack("<BBIH", 83, self.id, self.baudrate, len(buf)))  # 'S'
            _send(buf)

        def read(self, n, write=0):
            self.write(bytes([write]) * n)
            return bytes(n)

        def readinto(self, buf, write=0):
            self.write(bytes([write]) * len(buf))
            for i in range(len(buf)):
                buf[i] = 0

        def write_readinto(self, wbuf, rbuf):
            self.write(wbuf)
            for i in range(len(rbuf)):
                rbuf[i] = 0

    class I2C:  # noqa: F811
        def __init__(self, id, scl=None, sda=None, freq=400000, **kw):
            self.id = id

        def writeto(self, addr, buf, stop=True):
            _send(struct.pack("<BBBH", 73, self.id, addr, len(buf)))  # 'I'
            _send(buf)
            if not _recv(1)[0]:
                raise OSError(19)  # ENODEV
            return len(buf)

    class PWM:  # noqa: F811
        def __init__(self, dest, freq=None, duty_u16=None, **kw):
            self.gpio = _gpio(dest)
            self._f = freq or 1000
            self._d = 0
            if duty_u16 is not None:
                self.duty_u16(duty_u16)

        def freq(self, f=None):
            if f is None:
                return self._f
            self._f = f

        def duty_u16(self, d=None):
            if d is None:
                return self._d
            self._d = d
            _send(struct.pack("<BBH", 87, self.gpio, d))  # 'W'

        def deinit(self):
            self.duty_u16(0)


def reset():
    """Hard reset of the virtual board (the world's MCU resets first); does not return."""
    if _sock is not None:
        _sock.write(b"R")
    _hard_reset()
