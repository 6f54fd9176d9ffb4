"""``machine`` for the emulator's VM: the built-in module plus ``reset()`` and, when the
environment variable ``LB_WORLD`` names the emulator's world socket, ``Pin``, ``ADC``,
``SPI``, ``I2C`` and ``PWM`` that drive the emulated parts in CPython
(``learnboard.emulator.world_server``), with ``ticks_us``/``ticks_diff``/``sleep_us``/
``sleep_ms`` on the virtual clock.

Speed without losing exactness (the hot paths allocate nothing, so they also run under
``micropython.heap_lock()``):

* writes (pins, PWM, SPI, I2C, sleeps, tick reads) are queued in a fixed buffer and sent
  in one socket write when the VM must wait for the world anyway: at an ADC read or
  :func:`sync`, when the buffer fills, when the program sleeps 1 ms or more, idles or
  polls its input (``select.poll``, see ``select.py``), and when the VM exits;
* a pin write that does not change the level is not sent (the world ignores it too);
* I2C acknowledges come from the address list the world sends when the VM connects;
* the virtual clock is kept here too: sleeps, tick reads (1 µs each) and SPI transfers
  advance it by the same rules as the world's clock, and every blocking reply carries the
  world's time, which the VM adopts;
* an ADC read fetches a block of conversions of that input at once (as many as the
  previous run of consecutive reads of one input, at most 64): the world converts them
  one after the other (2 µs apart, mux settling, noise and the converter's non-linearity
  per sample — the ADC runs free, like the RP2040's round-robin FIFO mode), and the next
  reads are answered from the block until anything else is queued. Conversions fetched
  but not read still took their time;
* ``adc_scan`` (``_lbscan.py``, loaded with the first ``ADC``): a whole mux scan of the
  firmware HAL in one request and one round trip — the world runs the HAL's read loop
  (``World.adc_scan``, as the in-process machine does) and answers the codes and the
  pin levels it left.
"""

import os

from _lbboard import reset as _hard_reset
from umachine import *  # noqa: F403

_path = os.getenv("LB_WORLD")
PWRON_RESET = 1  # rp2's values (modmachine.c)
WDT_RESET = 3
_WDT_MAX_MS = 8388  # rp2040: 24-bit counter, 2 ticks per us
_sock = None
_TICK_COST_US = 1  # keep equal to learnboard.emulator.devices.clock.VirtualClock's default
_MASK = 0x3FFFFFFF
_MAX_BLOCK = 64
_LIMIT = 1024 - 80  # flush before a request could overflow the buffer

if _path:
    _out = None  # queued requests (allocated by _start)
    _n = 0  # bytes queued in _out
    _rx = None
    _tmp = None
    _lv = None  # last level sent per GPIO (0xff: unknown)
    _now = 0  # virtual µs, as the world's clock
    _blk_ch = -1  # ADC input of the fetched block; -1: none valid
    _blk_pos = 0
    _blk_len = 0
    _streak = 0  # consecutive reads of the block's input
    _want = 1  # block length to fetch next
    adc_scan = None  # the whole-scan extension (_lbscan.py), set by the first ADC
    _acks = b""
    _wdt_us = 0  # the watchdog's timeout (0: not started in this VM)
    _wdt_at = 0  # virtual µs when it runs out, as far as this VM knows (if _wdt_us)

    def _start():
        """Connect to the world on first use, not at import: the firmware reads its
        board.json before it touches a pin, and needs a large free block for it."""
        global _sock, _out, _rx, _tmp, _lv, _n, _acks
        import socket
        import sys

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(b"\x01\x00" + _path.encode() + b"\0")  # sockaddr_un: AF_UNIX (1), path
        _sock = s
        _out = bytearray(1024)
        _rx = bytearray(8 + 2 * _MAX_BLOCK + 64)  # (+ the pin levels after a scan)
        _tmp = bytearray(len(_rx))
        _lv = bytearray(b"\xff" * 256)
        if hasattr(sys, "atexit"):
            sys.atexit(_flush)  # what a program queued last still reaches the world
        # hello: the world's time and the I2C addresses that acknowledge (bus << 7 | addr)
        _out[0] = 72  # 'H'
        _n = 1
        _flush()
        _recv(5)
        _adopt_now()
        acks = bytearray(_rx[4])
        if len(acks):
            _recv(len(acks))
            for i in range(len(acks)):
                acks[i] = _rx[i]
        _acks = acks

    def _flush():
        global _n
        if _n:
            _sock.write(_out, _n)
            _n = 0

    def _queued(k):
        """``k`` bytes were queued: a fetched ADC block is stale; flush when full."""
        global _n
        _n += k
        if _blk_ch >= 0:
            _end_run()
        if _n > _LIMIT:
            _flush()

    def _end_run():
        global _blk_ch, _want
        _blk_ch = -1
        _want = _streak if _streak > 0 else 1

    def _u32(at, v):
        _out[at] = v & 0xFF
        _out[at + 1] = (v >> 8) & 0xFF
        _out[at + 2] = (v >> 16) & 0xFF
        _out[at + 3] = (v >> 24) & 0xFF

    def _recv(n):
        """Read exactly ``n`` reply bytes into ``_rx`` (no allocation)."""
        got = _sock.readinto(_rx, n)
        if not got:
            raise OSError("world socket closed")
        while got < n:
            r = _sock.readinto(_tmp, n - got)
            if not r:
                raise OSError("world socket closed")
            for i in range(r):
                _rx[got + i] = _tmp[i]
            got += r
        return _rx

    def _adopt_now():
        global _now
        _now = _rx[0] | (_rx[1] << 8) | (_rx[2] << 16) | (_rx[3] << 24)

    def ticks_us():
        global _now
        if _sock is None:
            _start()
        _out[_n] = 116  # 't': the world's clock moves as ours
        _queued(1)
        _now += _TICK_COST_US
        return _now & _MASK

    def ticks_ms():
        return ticks_us() // 1000

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def ticks_add(t, d):
        return (t + d) & 0x3FFFFFFF

    def sleep_us(us):
        global _now
        us = int(us)
        if us > 0:
            if _sock is None:
                _start()
            _out[_n] = 68  # 'D'
            _u32(_n + 1, us)
            _queued(5)
            _now += us
            if _wdt_us and _now >= _wdt_at:  # the watchdog runs out in this sleep: nothing after it
                sync()  # may happen (the world resets the board and never answers)
            elif us >= 1000:  # the program waits: let the world catch up
                _flush()

    def sleep_ms(ms):
        sleep_us(int(ms * 1000))

    def _idle(us):
        """The firmware waited ``us`` real µs for input (``select.poll``): virtual time
        follows real time while the board idles, as the in-process board's does."""
        sleep_us(us)
        _flush()

    def sync():
        """Block until the world has handled every request sent so far; adopt its time."""
        if _sock is None:
            _start()
        _out[_n] = 81  # 'Q'
        _queued(1)
        _flush()
        _recv(4)
        _adopt_now()

    def now_us():
        """The virtual clock (µs since power-on), unwrapped."""
        if _sock is None:
            _start()
        return _now

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
            if _sock is None:
                _start()
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
            v = 1 if x else 0
            self._v = v
            g = self.id
            if _lv[g] != v:  # the world ignores a write that keeps the level
                _lv[g] = v
                _out[_n] = 80  # 'P'
                _out[_n + 1] = g
                _out[_n + 2] = v
                _queued(3)

        def __call__(self, x=None):
            return self.value(x)

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        high = on
        low = off

    def _fetch(ch, new_run):
        global _n, _blk_ch, _blk_pos, _blk_len, _streak
        if new_run:
            _streak = 1
        k = _want if _want < _MAX_BLOCK else _MAX_BLOCK
        _out[_n] = 66  # 'B'
        _out[_n + 1] = ch
        _out[_n + 2] = k
        _n += 3
        _flush()
        _recv(4 + 2 * k)
        _adopt_now()
        _blk_ch = ch
        _blk_pos = 1
        _blk_len = k
        return _rx[4] | (_rx[5] << 8)

    class ADC:  # noqa: F811
        CORE_TEMP = 4

        def __init__(self, pin):
            global adc_scan
            if _sock is None:
                _start()
            ch = _gpio(pin)
            self.channel = ch - 26 if (ch >= 26 or hasattr(pin, "id")) else ch
            if adc_scan is None:  # loaded with the first ADC, once board.json is read
                from _lbscan import adc_scan  # noqa: F401 (boot needs the heap before)

        def read_u16(self):
            global _blk_pos, _streak
            ch = self.channel
            if ch == _blk_ch:
                _streak += 1
                i = _blk_pos
                if i < _blk_len:
                    _blk_pos = i + 1
                    return _rx[4 + 2 * i] | (_rx[5 + 2 * i] << 8)
                return _fetch(ch, False)  # the run is longer than the block
            if _blk_ch >= 0:  # another input at once: that run ended
                _end_run()
            return _fetch(ch, True)

        def read_u16_sum(self, n, shift=0):
            """Sum of ``read_u16() >> shift`` over ``n`` conversions in one round trip
            (the firmware's oversampling; ``World.adc_sum``)."""
            global _n
            if not 0 < n < 256:
                s = 0
                for _ in range(n):
                    s += self.read_u16() >> shift
                return s
            if _blk_ch >= 0:
                _end_run()
            _out[_n] = 85  # 'U'
            _out[_n + 1] = self.channel
            _out[_n + 2] = n
            _out[_n + 3] = shift
            _n += 4
            _flush()
            _recv(8)
            _adopt_now()
            return _rx[4] | (_rx[5] << 8) | (_rx[6] << 16) | (_rx[7] << 24)

    class SPI:  # noqa: F811
        MSB, LSB = 1, 0

        def __init__(self, id, baudrate=1000000, **kw):
            if _sock is None:
                _start()
            self.id = id
            self.baudrate = baudrate

        def init(self, baudrate=None, **kw):
            if baudrate:
                self.baudrate = baudrate

        def write(self, buf):
            global _now
            n = len(buf)
            if _n + 8 + n > len(_out):
                _flush()
            if 8 + n > len(_out):
                raise ValueError("SPI write too long for the emulator")
            at = _n
            _out[at] = 83  # 'S'
            _out[at + 1] = self.id
            _u32(at + 2, self.baudrate)
            _out[at + 6] = n & 0xFF
            _out[at + 7] = n >> 8
            for i in range(n):
                _out[at + 8 + i] = buf[i]
            _queued(8 + n)
            # the world's clock: round(n * 8e6 / baud), ties to even
            b = self.baudrate if self.baudrate > 0 else 1
            x = n * 8000000
            q = x // b
            r2 = 2 * (x % b)
            if r2 > b or (r2 == b and q & 1):
                q += 1
            _now += q

        def write_readinto(self, wbuf, rbuf):
            """Full duplex: MOSI ``wbuf``, MISO into ``rbuf`` (a selected SPI ADC answers)."""
            global _n
            n = len(wbuf)
            if n > _MAX_BLOCK * 2 or len(rbuf) < n:
                raise ValueError("SPI transfer too long for the emulator")
            if _n + 8 + n > len(_out):
                _flush()
            if _blk_ch >= 0:
                _end_run()
            at = _n
            _out[at] = 88  # 'X'
            _out[at + 1] = self.id
            _u32(at + 2, self.baudrate)
            _out[at + 6] = n & 0xFF
            _out[at + 7] = n >> 8
            for i in range(n):
                _out[at + 8 + i] = wbuf[i]
            _n = at + 8 + n
            _flush()
            _recv(4 + n)
            _adopt_now()
            for i in range(n):
                rbuf[i] = _rx[4 + i]

        def readinto(self, buf, write=0):
            w = bytearray(len(buf))
            for i in range(len(w)):
                w[i] = write
            self.write_readinto(w, buf)

        def read(self, n, write=0):
            buf = bytearray(n)
            self.readinto(buf, write)
            return bytes(buf)

    class I2C:  # noqa: F811
        def __init__(self, id, scl=None, sda=None, freq=400000, **kw):
            if _sock is None:
                _start()
            self.id = id

        def scan(self):
            return [a & 0x7F for a in _acks if a >> 7 == self.id]

        def readfrom_into(self, addr, buf, stop=True):
            global _n
            n = len(buf)
            if n > _MAX_BLOCK * 2:
                raise ValueError("I2C read too long for the emulator")
            if _n + 5 > len(_out):
                _flush()
            if _blk_ch >= 0:
                _end_run()
            _out[_n] = 89  # 'Y'
            _out[_n + 1] = self.id
            _out[_n + 2] = addr
            _out[_n + 3] = n & 0xFF
            _out[_n + 4] = n >> 8
            _n += 5
            _flush()
            _recv(5 + n)
            _adopt_now()
            if not _rx[4]:
                raise OSError(19)  # ENODEV: no part answers
            for i in range(n):
                buf[i] = _rx[5 + i]

        def readfrom(self, addr, n, stop=True):
            buf = bytearray(n)
            self.readfrom_into(addr, buf)
            return bytes(buf)

        def writeto(self, addr, buf, stop=True):
            n = len(buf)
            key = ((self.id & 1) << 7) | (addr & 0x7F)
            found = False
            for a in _acks:
                if a == key:
                    found = True
            if not found:
                raise OSError(19)  # ENODEV: no part answers
            if _n + 5 + n > len(_out):
                _flush()
            at = _n
            _out[at] = 73  # 'I'
            _out[at + 1] = self.id
            _out[at + 2] = addr
            _out[at + 3] = n & 0xFF
            _out[at + 4] = n >> 8
            for i in range(n):
                _out[at + 5 + i] = buf[i]
            _queued(5 + n)
            return n

    class WDT:
        """The RP2040 watchdog (``learnboard.emulator.devices.watchdog``) on the virtual
        clock: it cannot be stopped, survives a soft reset, and resets the board."""

        def __init__(self, id=0, timeout=5000):
            if id != 0:
                raise ValueError(f"WDT({id}) doesn't exist")
            if not 0 <= timeout <= _WDT_MAX_MS:  # rp2 casts to uint32: negative is huge
                raise ValueError("timeout exceeds 8388")
            global _wdt_us, _wdt_at
            if _sock is None:
                _start()
            _out[_n] = 71  # 'G'
            _out[_n + 1] = timeout & 0xFF
            _out[_n + 2] = timeout >> 8
            _queued(3)
            _flush()
            _wdt_us = timeout * 1000
            _wdt_at = _now + _wdt_us

        def feed(self):
            # sent at once: the VM may next sit at a REPL prompt, where the emulator
            # moves the clock on by itself and must see this feed first
            global _wdt_at
            if _wdt_us and _now >= _wdt_at:  # too late: the world resets the board first
                sync()
            _out[_n] = 70  # 'F'
            _queued(1)
            _flush()
            _wdt_at = _now + _wdt_us

    def reset_cause():
        """``PWRON_RESET`` or ``WDT_RESET`` (also after ``machine.reset()``, as on rp2).
        The emulator passes it in ``LB_RESET_CAUSE`` when it boots the VM: main.py asks
        first thing, before board.json is read, when the world's buffers must not yet
        take their place in the heap."""
        return int(os.getenv("LB_RESET_CAUSE") or PWRON_RESET)

    class PWM:  # noqa: F811
        def __init__(self, dest, freq=None, duty_u16=None, **kw):
            if _sock is None:
                _start()
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
            _out[_n] = 87  # 'W'
            _out[_n + 1] = self.gpio
            _out[_n + 2] = d & 0xFF
            _out[_n + 3] = (d >> 8) & 0xFF
            _queued(4)

        def deinit(self):
            self.duty_u16(0)


def reset():
    """Hard reset of the virtual board (the world's MCU resets first); does not return."""
    if _path:
        if _sock is None:
            _start()
        _flush()
        _sock.write(b"R")  # rp2 reboots through the watchdog: the next boot says WDT_RESET
    _hard_reset()


if not _path:

    def reset_cause():
        """A board without an emulated world has no watchdog: always power-on."""
        return PWRON_RESET
