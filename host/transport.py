"""Byte transports for the link: pyserial (any ``serial_for_url`` URL), file
descriptors (pipes to a subprocess, a pty), and an in-memory pair for tests and the
emulator. A transport moves bytes only; framing lives in ``codec``.

``read(size)`` waits at most the transport's ``timeout`` seconds and returns the bytes
available (``b""`` if none); ``write(data)`` sends everything.
"""

from __future__ import annotations

import os
import select
import threading
import time
from typing import Protocol

# the in-memory pair lives in the core: the emulator's in-process board uses it too
from learnboard.byte_pipe import MemoryTransport, memory_pair

__all__ = ["FdTransport", "FollowingSerialTransport", "MemoryTransport", "SerialTransport",
           "Transport", "memory_pair"]


class Transport(Protocol):
    """What ``Link`` needs from a byte channel."""

    def read(self, size: int = 4096) -> bytes: ...

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class SerialTransport:
    """A pyserial port from a URL: ``/dev/ttyACM0``, ``loop://``, ``socket://h:p``, ..."""

    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 0.05, **kwargs):
        import serial

        self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=timeout, **kwargs)

    def read(self, size: int = 4096) -> bytes:
        first = self.port.read(1)  # waits up to the port's timeout
        if not first:
            return b""
        waiting = min(size - 1, self.port.in_waiting)
        return first + self.port.read(waiting) if waiting > 0 else first

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        except OSError:
            raise
        except Exception as exc:  # termios.error from flush: the device vanished (a reset)
            raise OSError(f"{self.port.port}: {exc}") from exc

    def close(self) -> None:
        self.port.close()


class FollowingSerialTransport:
    """A :class:`SerialTransport` that follows its board across resets that drop USB.

    A board's USB serial port vanishes when the chip resets (a watchdog reset,
    ``machine.reset()``) and comes back, often under the same name, sometimes under a new
    one. When a read fails, this transport finds the board again with ``find(old_url)``
    (e.g. :func:`learnboard.host.serial_ports.find_again`), reopens it and calls
    ``on_replug(new_url)`` (a :class:`~learnboard.host.link.Link` then queues a ``boot``
    event: the board rebooted). Writes while the board is away wait for it, then go to
    the new port; a write that fails is dropped (the link's retry sends it again).

    Listen before talking: after a reopen, writes also wait until the link has heard a
    whole frame from the board (:meth:`board_spoke`, called for its boot event) or
    ``quiet_s`` passed. While it boots a board still takes 0x03 as Ctrl-C (after a
    watchdog reset it even listens for one, see ``firmware/main.py``), and a frame may
    hold that byte; a frame from the board comes only once the firmware has turned
    Ctrl-C off, whereas loose bytes (a banner, boot output) may come before.
    """

    quiet_s = 4.0

    def __init__(self, url: str, find, *, baudrate: int = 115200, timeout: float = 0.05,
                 wait_s: float = 30.0, **kwargs):
        self.url = url
        self._find = find
        self._kw = dict(baudrate=baudrate, timeout=timeout, **kwargs)
        self._t = SerialTransport(url, **self._kw)
        self._up = threading.Condition()
        self._ok = True
        self._quiet_until = 0.0
        self._closed = False
        self._gone: BaseException | None = None  # the board did not come back (find gave up)
        self.wait_s = wait_s
        self.replugs = 0
        self.on_replug = None

    def read(self, size: int = 4096) -> bytes:
        try:
            data = self._t.read(size)
        except Exception:  # pyserial: the device vanished (SerialException, OSError)
            if self._closed:
                raise
            self._replug()
            return b""
        if not self._ok and time.monotonic() >= self._quiet_until:
            self.board_spoke()
        return data

    def board_spoke(self) -> None:
        """The board is up: writes held since the reopen may go."""
        if self._ok:  # called for every frame: nothing held, nothing to wake
            return
        with self._up:
            self._ok = True
            self._up.notify_all()

    def _replug(self) -> None:
        with self._up:
            self._ok = False
        try:
            self._t.close()
        except Exception:  # noqa: BLE001 - the old port is gone anyway
            pass
        try:
            url = self._find(self.url)  # raises when the board does not come back
            self._t = SerialTransport(url, **self._kw)
        except BaseException as exc:
            with self._up:  # writers waiting for the board learn now that it is gone
                self._gone = exc
                self._up.notify_all()
            raise
        with self._up:
            self.url = url
            self.replugs += 1
            self._quiet_until = time.monotonic() + self.quiet_s  # writes wait (see read)
        if self.on_replug is not None:
            self.on_replug(url)

    def write(self, data: bytes) -> None:
        with self._up:
            if not self._up.wait_for(lambda: self._ok or self._closed or self._gone is not None, self.wait_s):
                raise OSError(f"{self.url}: the board did not come back after a reset; check the cable, "
                              "then `learnboard ports`")
            if self._gone is not None:
                raise OSError(str(self._gone))
            t = self._t
        try:
            t.write(data)
        except Exception:  # noqa: BLE001 - the port dropped under us: the reader reopens it
            pass

    def close(self) -> None:
        self._closed = True
        with self._up:
            self._up.notify_all()
        self._t.close()


class FdTransport:
    """Raw file descriptors: a subprocess's pipes, or a pty master."""

    def __init__(self, read_fd: int, write_fd: int, *, timeout: float = 0.05):
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.timeout = timeout

    def read(self, size: int = 4096) -> bytes:
        ready, _, _ = select.select([self.read_fd], [], [], self.timeout)
        if not ready:
            return b""
        try:
            return os.read(self.read_fd, size)
        except OSError:  # a pty whose other side closed reads as EIO
            return b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.write_fd, view) :]

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass
