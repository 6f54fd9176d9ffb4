"""Serve a :class:`~learnboard.emulator.world.World` to the VM's ``machine`` over a Unix socket.

The VM side is ``emulator/vmlib/machine.py`` (active when ``LB_WORLD`` names the socket).
Requests are one opcode byte and a little-endian payload; writes get no answer, so the
VM never waits on them — only reads (``A`` ADC, ``T`` ticks, ``I`` I2C ack, ``Q`` sync)
block for a reply.

| op | payload | reply |
|---|---|---|
| ``P`` | gpio u8, level u8 | — |
| ``W`` | gpio u8, duty u16 | — |
| ``S`` | bus u8, baud u32, n u16, n bytes | — |
| ``D`` | µs u32 (sleep) | — |
| ``R`` | — (MCU reset) | — |
| ``A`` | channel u8 | u16 |
| ``T`` | — | ticks_us u32 |
| ``I`` | bus u8, addr u8, n u16, n bytes | ack u8 |
| ``Q`` | — | ``!`` |
"""

from __future__ import annotations

import os
import socket
import struct
import threading

from learnboard.emulator.world import World

_FIXED = {b"P": 2, b"W": 3, b"D": 4, b"R": 0, b"A": 1, b"T": 0, b"Q": 0}


class WorldServer:
    """Accept VM connections on ``path`` (one at a time, a new one after each reset)."""

    def __init__(self, world: World, path: str):
        self.world = world
        self.path = path
        self.lock = threading.Lock()
        self.requests = 0
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(4)
        self._closed = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name="lb-world-server")
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._idle.clear()
            try:
                self._serve(conn)
            finally:
                conn.close()
                self._idle.set()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no VM is connected (all its requests handled)."""
        return self._idle.wait(timeout)

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            with self.lock:
                used = self._handle(conn, buf)
            del buf[:used]

    def _handle(self, conn, buf: bytearray) -> int:
        """Run every complete request in ``buf``; return the bytes consumed."""
        w = self.world
        pos = 0
        while pos < len(buf):
            op = bytes(buf[pos:pos + 1])
            if op in _FIXED:
                end = pos + 1 + _FIXED[op]
                if end > len(buf):
                    break
                body = bytes(buf[pos + 1:end])
                if op == b"P":
                    w.set_pin(body[0], body[1])
                elif op == b"W":
                    w.set_pwm(body[0], struct.unpack("<H", body[1:])[0])
                elif op == b"D":
                    w.clock.sleep_us(struct.unpack("<I", body)[0])
                elif op == b"R":
                    w.mcu_reset()
                elif op == b"A":
                    conn.sendall(struct.pack("<H", w.adc_read_u16(body[0])))
                elif op == b"T":
                    conn.sendall(struct.pack("<I", w.clock.ticks_us()))
                else:
                    conn.sendall(b"!")
            elif op in (b"S", b"I"):
                head = 8 if op == b"S" else 5
                if pos + head > len(buf):
                    break
                n = struct.unpack("<H", buf[pos + head - 2:pos + head])[0]
                end = pos + head + n
                if end > len(buf):
                    break
                data = bytes(buf[pos + head:end])
                if op == b"S":
                    w.spi_write(buf[pos + 1], data, struct.unpack("<I", buf[pos + 2:pos + 6])[0])
                else:
                    conn.sendall(bytes([w.i2c_write(buf[pos + 1], buf[pos + 2], data)]))
            else:
                raise ConnectionError(f"world server: unknown request {op!r}")
            pos = end
            self.requests += 1
        return pos

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
