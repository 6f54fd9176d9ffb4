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
* only names that MicroPython's ``machine`` on the RP2040 has are public; the clock and
  the plumbing are private (``_ticks_us``, ``_sync``, ...) and reach the firmware only
  through ``time`` (``time.py``), as on a board.
"""

import os as _os

from _lbboard import reset as _hard_reset
from umachine import Signal, idle, mem8, mem16, mem32, soft_reset, time_pulse_us  # noqa: F401

_path = _os.getenv("LB_WORLD")
PWRON_RESET = 1  # rp2's values (modmachine.c)
WDT_RESET = 3
_WDT_MAX_MS = 8388  # rp2040: 24-bit counter, 2 ticks per us
_sock = None
_TICK_COST_US = 1  # keep equal to learnboard.emulator.devices.clock.VirtualClock's default
_MASK = 0x3FFFFFFF
_NOW_FAST = _MASK - _TICK_COST_US  # below these a tick read moves only _now and _sub
_SUB_FAST = 1000 - _TICK_COST_US
_MAX_BLOCK = 64
# the cost model (learnboard.emulator.cost_model): virtual µs per call into machine/time
# and per main-loop pass (input poll); LB_COST = "call,pass", default the rp2040 model's
_cost = (_os.getenv("LB_COST") or "3,5").split(",")
_CALL_US = int(_cost[0])
_PASS_US = int(_cost[1])
# the host while the firmware waits for it (learnboard.emulator.cost_model): a prompt one
# answers TURN µs of board time after the board went idle; one silent for SILENT µs of
# real time is silent on the board too. LB_HOST = "turn,silent"
_cost = (_os.getenv("LB_HOST") or "1000,2000000").split(",")
_TURN_US = int(_cost[0])
_SILENT_US = int(_cost[1])
del _cost
_TICK_EXTRA = _CALL_US - _TICK_COST_US if _CALL_US > _TICK_COST_US else 0
_ADC_PERIOD_US = 2 + _CALL_US  # a conversion (500 kS/s), then the call's return
_OUT = 256  # bytes of queued requests (+3 for a script's answer put before one)
_LIMIT = _OUT - 80  # flush before a request could overflow the buffer

if _path:
    _out = None  # queued requests (allocated by _start)
    _n = 0  # bytes queued in _out
    _rx = None
    _tmp = None
    _lv = None  # last level sent per GPIO (0xff: unknown)
    # The virtual clock as the board's ticks: µs and ms since power-on, each modulo 2^30
    # (a 32-bit board's small ints end there), and the µs into the current ms.
    _now = 0
    _ms = 0
    _sub = 0
    _blk_ch = -1  # ADC input of the fetched block; -1: none valid
    _blk_pos = 0
    _blk_len = 0
    _bb = None  # the buffer holding the block's conversions (_rx, or the script _sp)
    _bo = 4  # where its first conversion starts there
    _streak = 0  # consecutive reads of the block's input
    _want = 1  # block length to fetch next
    _acks = b""
    _sp = None  # the world's script: requests it ran ahead, with their answers
    _sp_len = 0
    _sp_cur = -1  # script bytes the firmware's requests matched so far; -1: no script
    _hdr = None
    _ah = None  # _lbahead, the script's side (imported once the firmware has booted)
    _owed = 0  # µs of the firmware's calls not yet sent to the world (cost model)
    _waited = -1  # real µs this idle spell has waited for the host; -1: not idle
    _silent = False  # the host has been silent past _SILENT_US: real time counts
    _debt = 0  # µs of a silent host's time not yet on the clock
    _wdt_us = 0  # the watchdog's timeout (0: not started in this VM)
    _wdt_at = 0  # virtual µs when it runs out, as far as this VM knows (if _wdt_us)

    def _start():
        """Connect to the world on first use, not at import: the firmware reads its
        board.json before it touches a pin, and needs a large free block for it."""
        global _sock, _out, _rx, _tmp, _lv, _n, _acks, _hdr
        import socket
        import sys

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(b"\x01\x00" + _path.encode() + b"\0")  # sockaddr_un: AF_UNIX (1), path
        _sock = s
        _out = bytearray(_OUT + 3)
        _rx = bytearray(8 + 2 * _MAX_BLOCK)
        _tmp = bytearray(64)  # (the rest of a reply that came in parts)
        _hdr = bytearray(2)
        _lv = bytearray(64)  # GPIOs 0..63 (the RP2040 has 30): every level unknown
        for i in range(64):
            _lv[i] = 255
        if hasattr(sys, "atexit"):
            sys.atexit(_flush)  # what a program queued last still reaches the world
        # hello: the world's time and the I2C addresses that acknowledge (bus << 7 | addr)
        _out[0] = 72  # 'H'
        _n = 1
        _flush()
        _recv(17)
        _boot_clock()
        acks = bytearray(_rx[16])
        if len(acks):
            _recv(len(acks))
            for i in range(len(acks)):
                acks[i] = _rx[i]
        _acks = acks

    def _flush():
        global _n
        if _owed:
            _pay()
        if _n:
            _sock.write(_out, _n)
            _n = 0

    def _queued(k):
        """``k`` bytes were queued: a fetched ADC block is stale; flush when full. A
        request the world's script holds next is not sent (the world ran it already)."""
        global _n
        if _blk_ch >= 0:
            _end_run()
        if _sp_cur >= 0 and _ah.has(k):
            return
        _n += k
        if _n > _LIMIT:
            _flush()

    def _pay():
        """Send the firmware's call costs owed so far as a sleep of the world, before
        the next request (the world's clock moves as ours)."""
        global _owed, _now
        o = _owed
        _owed = 0
        _out[_n] = 68  # 'D'
        _u32(_n + 1, o)
        _advance(o)
        _queued(5)

    def _script_buffer():
        """From the firmware's first input poll, once it has booted (the heap is fullest
        at boot, and a board's firmware needs every KB there): load the script side
        (``_lbahead.py``) and tell the world it may send scripts."""
        global _ah
        if _sock is None:
            _start()
        try:
            import _lbahead
        except MemoryError:
            return
        if _lbahead.buffer():
            _ah = _lbahead

    def _charge():
        """A firmware call into ``machine``: its cost is paid before what it does."""
        global _owed
        _owed += _CALL_US
        if _owed:
            _pay()

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
        return _recv_into(_rx, n)

    def _recv_into(dst, n):
        got = _sock.readinto(dst, n) if n else 0
        if n and not got:
            raise OSError("world socket closed")
        while got < n:
            r = _sock.readinto(_tmp, min(n - got, len(_tmp)))
            if not r:
                raise OSError("world socket closed")
            for i in range(r):
                dst[got + i] = _tmp[i]
            got += r
        return dst

    def _advance(us):
        """Move the clock ``us`` µs (0 <= us < 2^30) with every intermediate below 2^30:
        a heap int here would be a MemoryError in the firmware's locked step."""
        global _now, _ms, _sub
        room = _MASK - _now
        _now = _now + us if us <= room else us - room - 1
        q = us // 1000
        r = _sub + us % 1000
        if r >= 1000:
            r -= 1000
            q += 1
        _sub = r
        room = _MASK - _ms
        _ms = _ms + q if q <= room else q - room - 1

    def _boot_clock():
        """Set the clock from the world's hello (``_rx``): µs, ms since power-on, µs into the
        ms, and the watchdog's timeout and time left."""
        global _now, _ms, _sub, _wdt_us, _wdt_at
        _now = _rx[0] | (_rx[1] << 8) | (_rx[2] << 16) | ((_rx[3] & 0x3F) << 24)
        _ms = _rx[4] | (_rx[5] << 8) | (_rx[6] << 16) | ((_rx[7] & 0x3F) << 24)
        _sub = _rx[8] | (_rx[9] << 8)
        # a watchdog still running from before a soft reset: its deadline, as this VM counts
        _wdt_us = (_rx[10] | (_rx[11] << 8)) * 1000
        _wdt_at = _ticks_add(_now, _rx[12] | (_rx[13] << 8) | (_rx[14] << 16) | ((_rx[15] & 0x3F) << 24))

    def _adopt_now():
        """Take the world's time (u32 µs; its low 30 bits are ticks_us) from ``_rx``."""
        _adopt(_rx[0] | (_rx[1] << 8) | (_rx[2] << 16) | ((_rx[3] & 0x3F) << 24))

    def _adopt(t):
        """Take the world's time ``t`` (ticks_us), the ms count following it."""
        global _now, _ms, _sub
        d = _ticks_diff(t, _now)
        if d >= 0:
            _advance(d)
        else:  # the world is a little behind what this side counted: step back
            _now = t
            r = _sub + d
            while r < 0:
                r += 1000
                _ms = (_ms - 1) & _MASK
            _sub = r

    def _ticks_us():
        global _now, _sub, _owed
        if _sock is None:
            _start()
        _owed += _TICK_EXTRA
        if _owed:
            _pay()
        _out[_n] = 116  # 't': the world's clock moves as ours
        _queued(1)
        if _now < _NOW_FAST and _sub < _SUB_FAST:  # the hot path: no wrap, no new ms
            _now += _TICK_COST_US
            _sub += _TICK_COST_US
        else:
            _advance(_TICK_COST_US)
        return _now

    def _ticks_ms():
        _ticks_us()
        return _ms

    def _ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

    def _ticks_add(t, d):
        return (t + d) & 0x3FFFFFFF

    def _sleep_us(us):
        global _owed
        us = int(us)
        us = (us if us > 0 else 0) + _owed + _CALL_US
        _owed = 0
        _sleep_raw(us)

    def _sleep_raw(us):
        while us > 0x1FFFFFFF:  # a sleep of 9 minutes or more: in pieces the clock can take
            _sleep_raw(0x1FFFFFFF)
            us -= 0x1FFFFFFF
        if us > 0:
            if _sock is None:
                _start()
            _out[_n] = 68  # 'D'
            _u32(_n + 1, us)
            _queued(5)
            _advance(us)
            if _wdt_us and (us >= 1000 or _ticks_diff(_now, _wdt_at) >= 0):
                # a watchdog runs: the world may reset the chip within this sleep (its clock,
                # not this VM's estimate, decides), and then nothing after it may happen:
                # wait for the world, which never answers once the power is cut
                _sync()
            elif us >= 1000:  # the program waits: let the world catch up
                _flush()

    def _sleep_ms(ms):
        _sleep_us(int(ms * 1000))

    def _idle_begin():
        """Before a ``select.poll`` with a timeout: the µs of virtual time to pay now
        instead of waiting (a silent host's time, paid a poll at a time so the watchdog
        sees every pass), else 0. The first poll of an idle spell is a pass of the
        firmware's loop; the polls after it are the same wait (how many there are
        depends on how fast the host is, not on the firmware)."""
        global _owed, _waited, _debt
        if _debt:
            pay = _debt if _debt < 20000 else 20000
            _debt -= pay
            _owed += _PASS_US
            return pay
        if _waited < 0 or _silent:
            _owed += _PASS_US
            if _waited < 0:
                _waited = 0
                if _sock is None:
                    _start()
                _out[_n] = 119  # 'w': the firmware waits (the host may read the truth)
                _queued(1)
        _flush()
        return 0

    def _idle(us, ready):
        """The firmware waited ``us`` real µs for input (``select.poll``), which came
        (``ready``) or not. A host that answers within _SILENT_US answers _TURN_US after
        the board went idle, whatever it really took: a seeded session is the same run
        every time. A longer silence is board time too (the watchdog, the gates' keeping
        and the host-silence park see it), as on a board."""
        global _waited, _silent, _debt
        if _silent:
            _sleep_raw(us)
            if ready:
                _silent = False
                _waited = -1
        elif ready:
            _waited = -1
            _sleep_raw(_TURN_US)
        else:
            _waited += us
            if _waited > _SILENT_US:
                _silent = True
                _debt = _waited
        _flush()

    def _sync():
        """Block until the world has handled every request sent so far; adopt its time."""
        if _sock is None:
            _start()
        _out[_n] = 81  # 'Q'
        _queued(1)
        _flush()
        _recv(4)
        _adopt_now()

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
            global _owed, _now
            _owed += _CALL_US
            if x is None:
                return self._v
            v = 1 if x else 0
            self._v = v
            g = self.id
            if _lv[g] != v:  # the world ignores a write that keeps the level
                _lv[g] = v
                if _owed > 255:
                    _pay()
                o = _owed  # the calls' costs ride on the write: 'p' sleeps, then sets
                _owed = 0
                _advance(o)
                _out[_n] = 112  # 'p'
                _out[_n + 1] = g
                _out[_n + 2] = v
                _out[_n + 3] = o
                _queued(4)

        def __call__(self, x=None):
            return self.value(x)

        def on(self):
            self.value(1)

        def off(self):
            self.value(0)

        high = on
        low = off

    def _fetch(ch, new_run):
        global _n, _blk_ch, _blk_pos, _blk_len, _streak, _sp_len, _sp_cur, _bb, _bo
        if new_run:
            _streak = 1
        k = _want if _want < _MAX_BLOCK else _MAX_BLOCK
        if _owed:
            _pay()
        if _n + 4 > _OUT:
            _flush()
        _out[_n] = 66  # 'B'
        _out[_n + 1] = ch
        _out[_n + 2] = k
        _out[_n + 3] = _ADC_PERIOD_US
        if _sp_cur >= 0 and _ah.block(k):
            _blk_ch = ch
            _blk_pos = 1
            _blk_len = k
            return _bb[_bo] | (_bb[_bo + 1] << 8)
        _n += 4
        _flush()
        _recv(4 + 2 * k)
        _adopt_now()
        _recv_into(_hdr, 2)
        m = _hdr[0] | (_hdr[1] << 8)
        if m:
            _recv_into(_sp, m)
            _sp_len = m
            _sp_cur = 0
        _blk_ch = ch
        _blk_pos = 1
        _blk_len = k
        _bb = _rx
        _bo = 4
        return _rx[4] | (_rx[5] << 8)

    class ADC:  # noqa: F811
        CORE_TEMP = 4

        def __init__(self, pin):
            if _sock is None:
                _start()
            ch = _gpio(pin)
            self.channel = ch - 26 if (ch >= 26 or hasattr(pin, "id")) else ch

        def read_u16(self):
            global _blk_pos, _streak
            ch = self.channel
            if ch == _blk_ch and not _owed:  # (a call between reads: the block is stale)
                _streak += 1
                i = _blk_pos
                if i < _blk_len:
                    _blk_pos = i + 1
                    i = _bo + 2 * i
                    return _bb[i] | (_bb[i + 1] << 8)
                return _fetch(ch, False)  # the run is longer than the block
            if _blk_ch >= 0:  # another input at once: that run ended
                _end_run()
            return _fetch(ch, True)

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
            _charge()
            n = len(buf)
            if _n + 8 + n > _OUT:
                _flush()
            if 8 + n > _OUT:
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
            # the world's clock: round(n * 8e6 / baud), ties to even, summed over chunks
            # of at most 134 bytes so that no product passes 2^30
            b = self.baudrate if self.baudrate > 0 else 1
            q = r = 0
            left = n
            while left:
                c = left if left < 134 else 134
                left -= c
                x = c * 8000000
                q += x // b
                r += x % b
                if r >= b:
                    r -= b
                    q += 1
            r2 = 2 * r
            if r2 > b or (r2 == b and q & 1):
                q += 1
            _advance(q)

        def write_readinto(self, wbuf, rbuf):
            """Full duplex: MOSI ``wbuf``, MISO into ``rbuf`` (a selected SPI ADC answers)."""
            global _n
            n = len(wbuf)
            if n > _MAX_BLOCK * 2 or len(rbuf) < n:
                raise ValueError("SPI transfer too long for the emulator")
            if _sp_cur >= 0:  # a request never in a script: end the script first
                _ah.end(0)
            _charge()
            if _n + 8 + n > _OUT:
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
            _charge()
            return [a & 0x7F for a in _acks if a >> 7 == self.id]

        def readfrom_into(self, addr, buf, stop=True):
            global _n
            n = len(buf)
            if n > _MAX_BLOCK * 2:
                raise ValueError("I2C read too long for the emulator")
            if _sp_cur >= 0:  # a request never in a script: end the script first
                _ah.end(0)
            _charge()
            if _n + 5 > _OUT:
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
            _charge()
            n = len(buf)
            key = ((self.id & 1) << 7) | (addr & 0x7F)
            found = False
            for a in _acks:
                if a == key:
                    found = True
            if not found:
                raise OSError(19)  # ENODEV: no part answers
            if _n + 5 + n > _OUT:
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
            _wdt_at = _ticks_add(_now, _wdt_us)

        def feed(self):
            # sent at once: the VM may next sit at a REPL prompt, where the emulator
            # moves the clock on by itself and must see this feed first
            global _wdt_at
            _charge()  # a call like any other: its cost is on the clock before the feed
            if _wdt_us and _ticks_diff(_now, _wdt_at) >= 0:  # too late: the world resets
                _sync()  # the board first
            _out[_n] = 70  # 'F'
            _queued(1)
            _flush()
            _wdt_at = _ticks_add(_now, _wdt_us)

    def reset_cause():
        """``PWRON_RESET`` or ``WDT_RESET`` (also after ``machine.reset()``, as on rp2).
        The emulator passes it in ``LB_RESET_CAUSE`` when it boots the VM: main.py asks
        first thing, before board.json is read, when the world's buffers must not yet
        take their place in the heap."""
        return int(_os.getenv("LB_RESET_CAUSE") or PWRON_RESET)

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
            _charge()
            if f is None:
                return self._f
            self._f = f

        def duty_u16(self, d=None):
            _charge()
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


def unique_id():
    """The board's 8-byte unique id, as rp2's ``machine.unique_id()``: the emulated MCU's
    (learnboard.board_id.emulated_uid), passed by the emulator as hex in ``LB_UID``; a VM
    started without it is an emulated board too, of no particular seed. Built on each
    call (the firmware asks once, at boot), so importing this module does no more work."""
    return bytes.fromhex(_os.getenv("LB_UID") or "4c42450000000000")


def reset():
    """Hard reset of the virtual board (the world's MCU resets first); does not return."""
    if _path:
        if _sock is None:
            _start()
        if _sp_cur >= 0:
            _ah.end(0)
        _flush()
        _sock.write(b"R")  # rp2 reboots through the watchdog: the next boot says WDT_RESET
    _hard_reset()


if not _path:

    def reset_cause():
        """A board without an emulated world has no watchdog: always power-on."""
        return PWRON_RESET
