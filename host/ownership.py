"""One process owns a serial port at a time.

    with own_port("/dev/ttyACM0", "learnboard info"):
        ...   # nobody else's learnboard command talks to the board meanwhile

A second program on a port steals the first one's replies (the board answers whoever
asks, on the one line they share), so every learnboard command that talks to a board
first takes the port's lock: ``<port>.lock`` in the private run-time folder
(:mod:`learnboard.private_dir`), locked with ``flock`` (``LOCK_EX | LOCK_NB``; on Windows
``msvcrt.locking``). The OS drops the lock when its holder ends, however it ends (a kill,
a crash), so a lock is never stale. A lock file, not the device itself, because a USB
board's device node vanishes at each reset (the lock must outlive that), ptys and
``socket://`` URLs have none, and ``learnboard flash`` hands the port to mpremote, which
locks the device itself. Beside the lock, ``<port>.json`` (:class:`~.schemas.PortEntry`)
says who holds it: command, PID, run folder — the message a refused command prints.

``learnboard stop`` is never refused: it leaves a request file ``<port>.stop`` that the
owner polls (:meth:`Ownership.watch`); the owner parks the board at once and removes the
file. An owner that does not answer within :data:`STOP_ANSWER_S` is passed over: the
stop opens the port itself and parks the board (:func:`ask_owner_to_stop`).
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from learnboard.errors import InputError, LearnboardError
from learnboard.private_dir import open_lock_file, private_dir, read_private, write_private

from .schemas import PortEntry, try_convert

STOP_ANSWER_S = 1.0
"""Seconds an owner has to park its board on a ``learnboard stop`` request."""
POLL_S = 0.05
"""How often an owner looks for a stop request."""


class PortBusy(LearnboardError):
    """Another process holds the port (``holder``: its registry entry, when it wrote one)."""

    def __init__(self, port: str, holder: PortEntry | None):
        self.port, self.holder = port, holder
        super().__init__(busy_message(port, holder))


def busy_message(port: str, holder: PortEntry | None) -> str:
    """One line: who holds ``port`` and what to do."""
    who = "another program"
    if holder is not None:
        run = f", run {holder.run_dir}" if holder.run_dir else ""
        who = f"`{holder.command or 'learnboard'}` (pid {holder.pid}{run})"
    watch = (f"watch it with `learnboard monitor --port {port}`, " if holder is not None and holder.run_dir
             else "wait until it ends, ")
    return f"{port} is in use by {who}; {watch}or park the board with `learnboard stop --port {port}`"


def lockable(port: str | None) -> bool:
    """Whether ``port`` is a port the OS shares between processes (not None, not ``emu:``:
    an in-process emulated board belongs to its own process)."""
    return bool(port) and not port.startswith("emu:")


def port_key(port: str) -> str:
    """The file name stem of ``port``'s lock and entry. A device path is resolved first,
    so two names of one device (``/dev/serial/by-id/...`` and ``/dev/ttyACM0``) share a lock."""
    name = os.path.realpath(port) if port.startswith("/") else port
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip("._") or "port"


def _files(port: str) -> tuple[Path, Path, Path]:
    folder = private_dir("ports")
    key = port_key(port)
    return folder / f"{key}.lock", folder / f"{key}.json", folder / f"{key}.stop"


def _open_lock(path: Path) -> int:
    try:
        return open_lock_file(path)
    except OSError as exc:  # ELOOP: a symlink planted under the lock's name is never followed
        what = "is a symlink, which learnboard never follows" if exc.errno == errno.ELOOP else exc.strerror
        raise LearnboardError(f"{path}: cannot open this port's lock file ({what}); remove it and "
                              "try again") from None


def _try_lock(fd: int) -> bool:
    """Lock ``fd`` without waiting; False when another open file holds the lock."""
    if os.name == "nt":  # pragma: no cover - Windows: a byte-range lock, dropped when the process ends
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _read_entry(path: Path) -> PortEntry | None:
    try:
        data = json.loads(read_private(path))
    except (OSError, ValueError):
        return None
    try:
        return try_convert(data, PortEntry)
    except InputError:
        return None


def holder(port: str) -> PortEntry | None:
    """Who holds ``port`` now: its registry entry (a placeholder one with pid 0 when the
    holder has not written it yet), or None when the port is free."""
    if not lockable(port):
        return None
    lock, entry, _ = _files(port)
    if not os.path.lexists(lock):
        return None  # never held (no lock file is made just to look)
    fd = _open_lock(lock)
    try:
        if _try_lock(fd):
            return None  # free (closing the descriptor releases the lock)
    finally:
        os.close(fd)
    return _read_entry(entry) or PortEntry(pid=0, port=port, command="another learnboard command")


def held_ports() -> list[PortEntry]:
    """The registry entries of the ports held now (by this user's learnboard commands)."""
    found = []
    for path in sorted(private_dir("ports").glob("*.json")):
        entry = _read_entry(path)
        if entry is not None and entry.port and holder(entry.port) is not None:
            found.append(entry)
    return found


class Ownership:
    """A port this process holds (see :func:`own_port`)."""

    def __init__(self, port: str, command: str, run_dir: str | Path | None = None):
        self.port, self.command = port, command
        self.run_dir = "" if run_dir is None else str(Path(run_dir).resolve())
        self._lock_path, self._entry_path, self._stop_path = _files(port)
        self._fd: int | None = None
        self._since = time.time()
        self._watcher: threading.Thread | None = None
        self._done = threading.Event()

    def acquire(self) -> None:
        fd = _open_lock(self._lock_path)
        if not _try_lock(fd):
            os.close(fd)
            held = _read_entry(self._entry_path)
            raise PortBusy(self.port, held or PortEntry(pid=0, port=self.port,
                                                        command="another learnboard command"))
        self._fd = fd
        try:  # a request left by a stop that ended before this owner existed is not for it
            os.unlink(self._stop_path)
        except FileNotFoundError:
            pass
        self.announce()

    def announce(self, run_dir: str | Path | None = None) -> None:
        """Write (again) who holds the port; ``run_dir``: the run folder now known."""
        if run_dir is not None:
            self.run_dir = str(Path(run_dir).resolve())
        entry = {"port": self.port, "pid": os.getpid(), "command": self.command, "run_dir": self.run_dir,
                 "since": self._since}
        try:
            write_private(self._entry_path, json.dumps(entry).encode())
        except OSError as exc:  # the lock holds the port all the same; only the message suffers
            print(f"learnboard: warning: {self._entry_path}: cannot write who holds {self.port} "
                  f"({exc.strerror})", file=sys.stderr)

    def watch(self, on_stop: Callable[[], None]) -> None:
        """Answer ``learnboard stop`` requests from now on: ``on_stop()`` (from a thread of
        its own) must park the board; once it returned, the request is answered. One that
        raises leaves the request unanswered, and the stop parks the board itself."""

        def loop() -> None:
            while not self._done.wait(POLL_S):
                if not self._stop_path.exists():
                    continue
                try:
                    on_stop()
                except Exception:  # noqa: BLE001 - unanswered: `learnboard stop` parks it itself
                    return
                try:
                    os.unlink(self._stop_path)  # the answer: parked
                except FileNotFoundError:
                    pass
                return

        self._watcher = threading.Thread(target=loop, name="learnboard-stop-watch", daemon=True)
        self._watcher.start()

    def release(self) -> None:
        self._done.set()
        if self._watcher is not None:
            self._watcher.join(timeout=2 * POLL_S + 1.0)
        if self._fd is None:
            return
        try:
            if (_read_entry(self._entry_path) or PortEntry(pid=-1)).pid == os.getpid():
                os.unlink(self._entry_path)
        except OSError:
            pass
        os.close(self._fd)  # releases the lock
        self._fd = None


@contextmanager
def own_port(port: str | None, command: str, run_dir: str | Path | None = None) -> Iterator[Ownership | None]:
    """Hold ``port`` for ``command`` (e.g. "learnboard info") while the block runs, or
    raise :class:`PortBusy` naming who holds it. No-op (yields None) for no port or an
    ``emu:`` board."""
    if not lockable(port):
        yield None
        return
    own = Ownership(port, command, run_dir)
    own.acquire()
    try:
        yield own
    finally:
        own.release()


def ask_owner_to_stop(port: str, wait_s: float = STOP_ANSWER_S) -> tuple[PortEntry | None, bool]:
    """Ask the process holding ``port`` to park its board: ``(holder, answered)``. ``holder``
    None: nobody holds the port. ``answered`` False: it did not park the board within
    ``wait_s`` seconds (or does not answer stop requests); the caller parks it itself."""
    held = holder(port)
    if held is None:
        return None, False
    _, _, stop = _files(port)
    try:
        write_private(stop, json.dumps({"pid": os.getpid(), "at": time.time()}).encode())
    except OSError:  # no way to ask: the caller parks the board itself
        return held, False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not stop.exists():
            return held, True
        if holder(port) is None:  # the owner ended meanwhile (its board is no longer held)
            break
        time.sleep(0.01)
    try:
        os.unlink(stop)  # unanswered: withdrawn, the caller parks the board
    except FileNotFoundError:
        return held, True  # answered at the last moment
    return held, False
