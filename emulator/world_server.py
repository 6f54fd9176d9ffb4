r"""Serve a :class:`~learnboard.emulator.world.World` to the VM's ``machine`` over a Unix socket.

The VM side is ``emulator/vmlib/machine.py`` (active when ``LB_WORLD`` names the socket).
Requests are one opcode byte and a little-endian payload; writes get no answer, so the
VM never waits on them (it queues them and sends them in one write) — only reads block
for a reply, and every reply starts with the world's clock (µs, u32) for the VM to adopt.
The replies to one batch of requests go back in one write (a whole ``machine.adc_scan``
of the VM — one ``U`` per node — is one round trip).

| op | payload | reply |
|---|---|---|
| ``P`` | gpio u8, level u8 | — |
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
| ``H`` | — (hello) | now u32, k u8, k × (bus << 7 \| addr) of acknowledging I2C parts |
| ``B`` | channel u8, n u8 | now u32 (after), n × u16 conversions (:meth:`World.adc_read_block`) |
| ``U`` | channel u8, n u8, shift u8 | now u32 (after), u32 sum of ``code >> shift`` (:meth:`World.adc_sum`) |
| ``A`` | channel u8 | u16 (one conversion) |
| ``T`` | — | ticks_us u32 |
| ``Q`` | — | now u32 (sync) |
| ``M`` | m u8, m × (k u8, 8 select GPIOs u8, enable GPIO u8 (255: none), level u8, ADC u8) (the HAL's muxes) | — |
| ``N`` | settle u16, n u8, shift u8, count u8, masked u8, count × mux+1, count × channel[, count × kind] (a scan, :meth:`World.adc_scan`) | now u32 (after), count × u16 codes, the pin levels of ``M``'s muxes (select pins, then enable) |
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

from learnboard.emulator.world import World

_FIXED = {80: 2, 87: 3, 68: 4, 116: 0, 82: 0, 72: 0, 66: 2, 85: 3, 65: 1, 84: 0, 81: 0,
          71: 2, 70: 0}  # by opcode
_HEAD = {83: 8, 88: 8, 73: 5, 89: 5}  # variable length: header bytes, the length u16 at its end
_MASK32 = 0xFFFFFFFF


class WorldServer:
    """Accept VM connections on ``path`` (one at a time, a new one after each reset)."""

    def __init__(self, world: World, path: str):
        self.world = world
        self.path = path
        self.lock = threading.Lock()
        self.requests = 0
        """Requests handled (writes and reads)."""
        self.round_trips = 0
        """Answered batches: the times the VM waited (for reads, hello, sync; a whole
        ``adc_scan`` is one)."""
        self.sends = 0
        """Socket reads that brought requests (each one VM-side write, or part of one)."""
        self.busy_s = 0.0
        """Seconds spent handling requests (the world's share of the time)."""
        self._muxes: tuple | None = None  # the connected VM's HAL muxes (request M)
        self._mux_pins: tuple = ()  # their pins as a scan answers them: select, enable
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
            self._muxes = None
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
        size = len(buf)
        pos = 0
        n = 0
        reply = bytearray()  # the answers of this batch, sent in one write at the end
        deferred = []  # (offset in reply, placeholder) of sums converted at the end
        w.begin_batch()
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
                    if op == 80:  # P
                        w.set_pin(buf[pos + 1], buf[pos + 2])
                    elif op == 116:  # t
                        clock.ticks_us()
                    elif op == 68:  # D
                        clock.sleep_us(int.from_bytes(buf[pos + 1:end], "little"))
                    elif op == 66:  # B
                        codes = w.adc_read_block(buf[pos + 1], buf[pos + 2])
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little")
                                     + codes.astype("<u2").tobytes())
                    elif op == 85:  # U
                        total = w.adc_sum(buf[pos + 1], buf[pos + 2], buf[pos + 3])
                        if total < 0:
                            deferred.append((len(reply) + 4, total))
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little")
                                     + (total & _MASK32).to_bytes(4, "little"))
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
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little")
                                     + bytes([len(acks)]) + acks)
                    elif op == 65:  # A
                        reply += (struct.pack("<H", w.adc_read_u16(buf[pos + 1])))
                    elif op == 84:  # T
                        reply += (struct.pack("<I", clock.ticks_us()))
                    else:  # Q
                        reply += ((clock.now_us & _MASK32).to_bytes(4, "little"))
                elif op == 77 or op == 78:  # M, N
                    end = self._scan_request(buf, pos, size, reply, deferred)
                    if end is None:
                        break
                elif op in _HEAD:
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
        except OSError:  # an unknown request (ConnectionError): drop the batch
            return size
        finally:
            _answer_deferred(w, reply, deferred)
            self.requests += n
            if reply:
                self.round_trips += 1  # the VM waited for this batch's answers
                try:
                    conn.sendall(reply)
                except OSError:  # the VM went away while we answered
                    pos = size
        return pos

    def _scan_request(self, buf, pos: int, size: int, reply: bytearray,
                      deferred: list) -> int | None:
        """Request ``M`` (the HAL's mux pins) or ``N`` (a whole scan) at ``pos``: run it
        and return where the next request starts, or None if it is not all here yet."""
        if pos + 2 > size:
            return None
        if buf[pos] == 77:
            end = pos + 2 + 12 * buf[pos + 1]
            if end > size:
                return None
            muxes = []
            for at in range(pos + 2, end, 12):
                k = buf[at]
                muxes.append((tuple(buf[at + 1:at + 1 + k]),
                              None if buf[at + 9] == 255 else buf[at + 9], buf[at + 10],
                              buf[at + 11]))
            self._muxes = tuple(muxes)
            self._mux_pins = tuple(g for sel, en, _, _ in muxes
                                   for g in (sel if en is None else sel + (en,)))
            return end
        if pos + 7 > size:
            return None
        count, masked = buf[pos + 5], buf[pos + 6]
        end = pos + 7 + count * (3 if masked else 2)
        if end > size:
            return None
        if self._muxes is None:
            raise ConnectionError("world server: a scan (N) before the muxes (M)")
        w = self.world
        at = pos + 7
        rd = (bytes(buf[at:at + count]), bytes(buf[at + count:at + 2 * count]))
        kind = bytes(buf[at + 2 * count:end]) if masked else None
        # the conversions queued so far in this batch are answered first: the scan is a
        # batch of its own
        _answer_deferred(w, reply, deferred)
        out = [0] * count
        try:
            w.adc_scan(self._muxes, rd, buf[pos + 1] | (buf[pos + 2] << 8), buf[pos + 3],
                       buf[pos + 4], out, kind)
        finally:
            w.begin_batch()
        pins = w.pins
        reply += (w.clock.now_us & _MASK32).to_bytes(4, "little")
        reply += struct.pack(f"<{count}H", *out)
        reply += bytes(pins.get(g, 0) for g in self._mux_pins)
        return end

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _answer_deferred(world: World, reply: bytearray, deferred: list) -> None:
    """End the world's conversion batch and write each deferred sum into its place
    (``(offset in reply, placeholder)``) of ``reply``."""
    totals = world.end_batch()
    for at, total in deferred:
        reply[at:at + 4] = (totals[-1 - total] & _MASK32).to_bytes(4, "little")
    deferred.clear()
