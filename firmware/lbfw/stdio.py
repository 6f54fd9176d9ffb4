"""A non-blocking byte port over the console streams (USB serial on a board, stdin/stdout
of the unix VM), for ``server.Server``.

Opening it disables the keyboard interrupt (``micropython.kbd_intr(-1)``) so a 0x03
byte in a frame does not raise KeyboardInterrupt; ``close()`` restores Ctrl-C.
"""

import select
import sys

try:
    import micropython
except ImportError:
    micropython = None


class StdioPort:
    """``read()`` returns what is available now (a memoryview valid until the next
    call) or None; ``write(data)`` sends all of ``data``. ``eof`` turns True when the
    input stream ends (the unix VM's stdin closed)."""

    def __init__(self, inp=None, out=None, chunk=128):
        self.inp = inp if inp is not None else sys.stdin.buffer
        self.out = out if out is not None else sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(self.inp, select.POLLIN)
        self._ipoll = getattr(self.poller, "ipoll", None)
        self.buf = bytearray(chunk)
        self._mv = memoryview(self.buf)
        self._one = bytearray(1)
        self.eof = False
        if micropython is not None and hasattr(micropython, "kbd_intr"):
            micropython.kbd_intr(-1)

    def _ready(self):
        if self._ipoll is not None:
            for _ in self._ipoll(0):
                return True
            return False
        return bool(self.poller.poll(0))

    def read(self):
        buf = self.buf
        one = self._one
        n = 0
        # Byte by byte: stream reads of n bytes block until all n arrive.
        while n < len(buf) and not self.eof and self._ready():
            if not self.inp.readinto(one):
                self.eof = True
                break
            buf[n] = one[0]
            n += 1
        return self._mv[0:n] if n else None

    def wait(self, timeout_ms):
        """Block until input is available or ``timeout_ms`` passes (for idle loops)."""
        if not self.eof:
            self.poller.poll(timeout_ms)

    def write(self, data):
        self.out.write(data)
        flush = getattr(self.out, "flush", None)
        if flush is not None:
            flush()

    def close(self):
        if micropython is not None and hasattr(micropython, "kbd_intr"):
            micropython.kbd_intr(3)
