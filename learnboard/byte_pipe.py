"""An in-memory byte pipe: two connected ends that move bytes between threads.

The host's link talks to the in-process emulated board through one (the board's
firmware reads the other end), and tests put a firmware ``App`` on one. It sits in the
core because both the host and the emulator use it and neither may import the other.
"""

from __future__ import annotations

import threading


class _Pipe:
    # One direction of a memory pair.
    def __init__(self) -> None:
        self.data = bytearray()
        self.cond = threading.Condition()
        self.closed = False


class MemoryTransport:
    """One end of an in-memory byte pipe; ``timeout=0`` makes ``read`` non-blocking
    (what the firmware's server expects of its port)."""

    def __init__(self, rx: _Pipe, tx: _Pipe, timeout: float):
        self._rx = rx
        self._tx = tx
        self.timeout = timeout

    def read(self, size: int = 4096) -> bytes:
        with self._rx.cond:
            if not self._rx.data and self.timeout and not self._rx.closed:
                self._rx.cond.wait(self.timeout)
            out = bytes(self._rx.data[:size])
            del self._rx.data[:size]
            return out

    def write(self, data: bytes) -> None:
        with self._tx.cond:
            if self._tx.closed:
                raise OSError("memory transport closed")
            self._tx.data += data
            self._tx.cond.notify_all()

    def close(self) -> None:
        for pipe in (self._rx, self._tx):
            with pipe.cond:
                pipe.closed = True
                pipe.cond.notify_all()


def memory_pair(
    timeout_a: float = 0.05, timeout_b: float = 0.0
) -> tuple[MemoryTransport, MemoryTransport]:
    """Two connected ends: by default ``a`` for the host (blocking reads with a timeout)
    and ``b`` for a board (non-blocking reads)."""
    ab, ba = _Pipe(), _Pipe()
    return MemoryTransport(ba, ab, timeout_a), MemoryTransport(ab, ba, timeout_b)
