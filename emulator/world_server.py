r"""Serve a :class:`~learnboard.emulator.world.World` to the VM's ``machine`` over a Unix socket.

The VM side is ``emulator/vmlib/machine.py`` (active when ``LB_WORLD`` names the socket).
Requests are one opcode byte and a little-endian payload; writes get no answer, so the
VM never waits on them (it queues them and sends them in one write) — only reads block
for a reply, and every reply starts with the world's clock (µs, u32) for the VM to adopt.
The replies to one batch of requests go back in one write.

| op | payload | reply |
|---|---|---|
| ``P`` | gpio u8, level u8 | — |
| ``p`` | gpio u8, level u8, µs u8 (the firmware's call costs before it, ``cost_model``) | — |
| ``W`` | gpio u8, duty u16 | — |
| ``S`` | bus u8, baud u32, n u16, n bytes | — |
| ``I`` | bus u8, addr u8, n u16, n bytes (the VM checked the address) | — |
| ``X`` | bus u8, baud u32, n u16, n bytes (full-duplex SPI) | now u32, n bytes of MISO |
| ``Y`` | bus u8, addr u8, n u16 (I2C read) | now u32, ack u8, n bytes |
| ``D`` | µs u32 (sleep) | — |
| ``t`` | — (a tick read: the clock moves by its tick cost) | — |
| ``R`` | — (MCU reset: ``machine.reset()``) | — |
| ``G`` | timeout ms u16 (``machine.WDT``, checked by the VM) | — |
| ``F`` | — (``WDT.feed()``) | — |
| ``H`` | — (hello) | now u32, ms u32 (µs // 1000 modulo 2^30), sub u16 (µs % 1000), watchdog timeout ms u16 (0: not running) and µs left u32, k u8, k × (bus << 7 \| addr) of acknowledging I2C parts |
| ``B`` | channel u8, n u8, period u8 | now u32 (after), n × u16 conversions ``period`` µs apart (:meth:`World.adc_block`), script length u16, the script (``read_ahead.py``) |
| ``C`` | script bytes used u16 | — (the VM's answer to a script, ``read_ahead.py``) |
| ``K`` | — (the VM has room for scripts from now on) | — |
| ``A`` | channel u8 | u16 (one conversion) |
| ``T`` | — | ticks_us u32 |
| ``Q`` | — | now u32 (sync) |
| ``w`` | — (the firmware waits for the host: :attr:`WorldServer.waiting`) | — |
"""

from __future__ import annotations

import os
import socket
import struct
import sys
import threading
import time

from learnboard.emulator.read_ahead import ReadAhead
from learnboard.emulator.world import World

_FIXED = {119: 0, 80: 2, 112: 3, 87: 3, 68: 4, 116: 0, 82: 0, 72: 0, 66: 3, 65: 1, 84: 0, 81: 0, 67: 2, 75: 0,
          71: 2, 70: 0}  # by opcode
_HEAD = {83: 8, 88: 8, 73: 5, 89: 5}  # variable length: header bytes, the length u16 at its end
_MASK32 = 0xFFFFFFFF


def _watchdog_hello(wd, now: int) -> bytes:
    """The running watchdog for a VM that boots (a soft reset does not stop it): its
    timeout and the µs left, so the new VM stops at the sleep that crosses the deadline."""
    if not wd.running:
        return bytes(6)
    left = max(0, min(wd.deadline_us - now, 0x3FFFFFFF))
    return (wd.timeout_us // 1000).to_bytes(2, "little") + left.to_bytes(4, "little")


class WorldServer:
    """Accept VM connections on ``path`` (one at a time, a new one after each reset)."""

    def __init__(self, world: World, path: str):
        self.world = world
        self.path = path
        self.lock = threading.Lock()
        self.requests = 0
        """Requests handled (writes and reads)."""
        self.round_trips = 0
        """Answered batches: the times the VM waited (for reads, hello, sync)."""
        self.sends = 0
        """Socket reads that brought requests (each one VM-side write, or part of one)."""
        self.read_ahead = ReadAhead(world)
        self.waiting = threading.Event()
        """Set while the firmware waits for the host (its last request was ``w``): the
        world is then as the firmware left it, and a truth read sees the same numbers in
        every run of a seeded session."""
        self.waits = 0
        """``w`` requests since the VM connected (0: no program in it waits on ``select.poll``,
        e.g. one that is not the firmware: nothing to wait for)."""
        """The run-ahead of mux scans (``read_ahead.py``)."""
        self.busy_s = 0.0
        """Seconds spent handling requests (the world's share of the time)."""
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        self._sock.listen(4)
        self._closed = threading.Event()
        self._cut = False
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
            self._cut = False
            self.read_ahead.reset()
            try:
                self._serve(conn)
            finally:
                conn.close()
                self._idle.set()

    def cut(self) -> None:
        """Power is gone: ignore the connected VM's further requests and answer none
        (call under :attr:`lock`, e.g. from a clock listener; the VM is killed next)."""
        self._cut = True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no VM is connected (all its requests handled)."""
        return self._idle.wait(timeout)

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        self.waits = 0  # a new VM: its program has not waited yet
        while True:
            try:
                data = conn.recv(65536)
            except OSError:  # the VM died (power cut, kill)
                return
            if not data:
                return
            if self._cut:
                buf.clear()
                continue
            buf += data
            self.sends += 1
            with self.lock:
                t0 = time.perf_counter()
                used = self._handle(conn, buf)
                self.busy_s += time.perf_counter() - t0
            del buf[:used]

    def _handle(self, conn, buf: bytearray) -> int:
        """Run every complete request in ``buf``; return the bytes consumed."""
        w = self.world
        clock = w.clock
        fixed = _FIXED
        if buf[0] != 119:
            self.waiting.clear()  # the firmware runs again
        size = len(buf)
        pos = 0
        n = 0
        reply = bytearray()  # the answers of this batch, sent in one write at the end
        ra = self.read_ahead
        mux_pins = ra._mux_pins
        try:
            while pos < size:
                if self._cut:
                    return size
                op = buf[pos]
                k = fixed.get(op)
                if k is not None:
                    end = pos + 1 + k
                    if end > size:
                        break
                    if op != 67 and ra._pending is not None:  # (ra.pending, inline)
                        raise ConnectionError("world server: a request before the "
                                              "answer to a script (C)")
                    if op == 119:  # w: the firmware waits for the host (see ``waiting``)
                        self.waits += 1
                        self.waiting.set()
                    elif op == 80:  # P
                        w.set_pin(buf[pos + 1], buf[pos + 2])
                    elif op == 112:  # p: a sleep, then P
                        clock.advance_int(buf[pos + 3])
                        w.set_pin(buf[pos + 1], buf[pos + 2])
                    elif op == 116:  # t
                        clock.ticks_us()
                    elif op == 68:  # D
                        clock.advance_int(buf[pos + 1] | (buf[pos + 2] << 8) |
                                          (buf[pos + 3] << 16) | (buf[pos + 4] << 24))
                    elif op == 66:  # B
                        codes = w.adc_block(buf[pos + 1], buf[pos + 2], buf[pos + 3])
                        reply += (clock.now_us & _MASK32).to_bytes(4, "little")
                        reply += struct.pack(f"<{len(codes)}H", *codes)
                        script = b"" if self._cut else ra.script_after(ra.seen(bytes(buf[pos:end])))
                        reply += len(script).to_bytes(2, "little") + script
                    elif op == 67:  # C
                        ra.commit(buf[pos + 1] | (buf[pos + 2] << 8))
                    elif op == 75:  # K
                        ra.enabled = True
                    elif op == 87:  # W
                        w.set_pwm(buf[pos + 1], buf[pos + 2] | (buf[pos + 3] << 8))
                    elif op == 82:  # R
                        w.watchdog.reboot()  # rp2: machine.reset() reboots by the watchdog
                        w.mcu_reset()
                    elif op == 70:  # F
                        w.watchdog.feed()
                    elif op == 71:  # G
                        w.watchdog.start(buf[pos + 1] | (buf[pos + 2] << 8))
                    elif op == 72:  # H
                        acks = bytes((bus << 7) | a for bus in (0, 1) for a in w.i2c_addresses(bus))
                        now = clock.now_us
                        reply += ((now & _MASK32).to_bytes(4, "little")
                                  + ((now // 1000) & 0x3FFFFFFF).to_bytes(4, "little")
                                  + (now % 1000).to_bytes(2, "little")
                                  + _watchdog_hello(w.watchdog, now)
                                  + bytes([len(acks)]) + acks)
                    elif op == 65:  # A
                        reply += (struct.pack("<H", w.adc_read_u16(buf[pos + 1])))
                    elif op == 84:  # T
                        reply += (struct.pack("<I", clock.ticks_us()))
                    else:  # Q
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little"))
                    if op == 68 or ((op == 80 or op == 112) and buf[pos + 1] in mux_pins):
                        ra.seen(bytes(buf[pos:end]))
                    elif op != 66 and op != 67:
                        ra.end_run()  # (what seen() does with any other pin write)
                elif op in _HEAD:
                    if ra._pending is not None:  # (ra.pending, inline)
                        raise ConnectionError("world server: a request before the "
                                              "answer to a script (C)")
                    ra.end_run()
                    head = _HEAD[op]
                    if pos + head > size:
                        break
                    k = buf[pos + head - 2] | (buf[pos + head - 1] << 8)
                    end = pos + head + (0 if op == 89 else k)
                    if end > size:
                        break
                    data = bytes(buf[pos + head:end])
                    if op == 83:  # S
                        w.spi_write(buf[pos + 1], data, int.from_bytes(buf[pos + 2:pos + 6], "little"))
                    elif op == 73:  # I
                        w.i2c_write(buf[pos + 1], buf[pos + 2], data)
                    elif op == 88:  # X
                        miso = w.spi_transfer(buf[pos + 1], data, int.from_bytes(buf[pos + 2:pos + 6], "little"))
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little") + bytes(miso))
                    else:  # Y
                        got = w.i2c_read(buf[pos + 1], buf[pos + 2], k)
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little")
                                     + (b"\x00" + bytes(k) if got is None else b"\x01" + bytes(got)))
                else:
                    raise ConnectionError(f"world server: unknown request {bytes([op])!r}")
                pos = end
                n += 1
        except OSError as exc:  # a request out of protocol (ConnectionError): drop the batch
            # (the VM may now wait for an answer that never comes: say why)
            print(f"learnboard emulator: {exc}; requests dropped", file=sys.stderr, flush=True)
            return size
        finally:
            self.requests += n
            if reply and self._cut:
                # the power went during this batch: the chip stopped there, so the VM gets
                # no answer (it would run on past the reset until it is killed)
                reply = b""
            if reply:
                self.round_trips += 1  # the VM waited for this batch's answers
                try:
                    conn.sendall(reply)
                except OSError:  # the VM went away while we answered
                    pos = size
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

