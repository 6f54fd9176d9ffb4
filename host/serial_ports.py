"""Serial ports on this computer and whether a learnboard firmware answers on each.

    from learnboard.host.serial_ports import list_ports
    for p in list_ports():
        print(p.device, p.usb_id, p.hello and p.hello["board"])

Probing sends one hello frame per port and waits at most ``timeout`` seconds; every
port is probed in its own thread with a hard deadline, so a port that never answers (or
whose ``open`` blocks, as some Bluetooth ports do) cannot hang the listing.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from learnboard.emulated_ports import alive as _alive
from learnboard.emulated_ports import (
    announce_emulated,  # noqa: F401 - part of this module's API
    emulated_dir,
)
from learnboard.errors import InputError

from .schemas import EmulatorEntry, read_json, try_convert


@dataclass
class PortInfo:
    """One serial port: what the OS knows, and what a probe found."""

    device: str
    description: str = ""
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    hello: dict | None = None  # the learnboard firmware's hello, when one answered
    probe: str = "not probed"  # "learnboard", "no answer", "busy: ...", "not probed"

    @property
    def usb_id(self) -> str:
        """``VID:PID`` in hex, or "" for a port that is not USB."""
        return f"{self.vid:04x}:{self.pid:04x}" if self.vid is not None and self.pid is not None else ""

    def as_dict(self) -> dict:
        d = asdict(self)
        d["usb_id"] = self.usb_id
        return d


def _probe(info: PortInfo, timeout: float) -> None:
    from learnboard.errors import LinkError

    from .link import Link

    try:
        link = Link.open(info.device, timeout=timeout, retries=0, exclusive=True)
    except LinkError as exc:
        info.probe = f"busy: {str(exc).split(':', 2)[-1].strip()[:60]}"
        return
    try:
        info.hello = link.hello()
        info.probe = "learnboard"
    except LinkError:
        info.probe = "no answer"
    finally:
        link.close()


# -- virtual boards of `learnboard emulate` --------------------------------------------
# pyserial does not list pseudo-terminals, so each `learnboard emulate` announces its pty
# in a small file (learnboard.emulated_ports writes them; here they are read and checked).


def _emulated_entries() -> list[EmulatorEntry]:
    """The announcements of the running emulators (damaged or stale files are passed over)."""
    out = []
    try:
        entries = sorted(emulated_dir().glob("*.json"))
    except OSError:
        return []
    for entry in entries:
        try:
            d = try_convert(read_json(entry), EmulatorEntry)
        except InputError:
            continue
        if d is not None and _alive(d.pid):
            out.append(d)
    return out


def _successor(old: str, within_s: float = 120.0, since: float | None = None) -> str | None:
    """The current port of the ``learnboard emulate`` that served ``old`` before (None:
    not an emulated port, or it is still the current one). Pty numbers are reused, so
    of the emulators that once had ``old`` the one that moved last (and lately) wins;
    with ``since`` (``time.time()`` when the caller lost ``old``) only one that moved
    then or later, else only one that left ``old`` after any live board took it."""
    best = None
    now = time.time()
    entries = _emulated_entries()
    if since is None:
        # a live board that took ``old`` after a candidate left it owns the path now: the
        # candidate's move is history (several emulators on one machine reuse pty numbers)
        since = max((d.at or d.moved_at for d in entries if d.port == old), default=0.0)
    for d in entries:
        if old in d.previous and d.port != old and now - d.moved_at <= within_s and d.moved_at >= since:
            if best is None or d.moved_at > best[0]:
                best = (d.moved_at, d.port)
    return None if best is None else best[1]


def emulated_truth(port: str) -> str | None:
    """The truth-probe socket a running ``learnboard emulate`` announced for ``port``
    (None: not an emulated port, or one without a probe)."""
    for d in _emulated_entries():
        if d.port == port and d.truth and os.path.exists(d.truth):
            return d.truth
    return None


def current_port(port: str) -> str:
    """Where the board last seen on ``port`` is now: the port a ``learnboard emulate``
    announced after a reset dropped ``port``, else ``port`` itself."""
    new = _successor(port)
    return new if new is not None and os.path.exists(new) else port


_IDENTITY_KEYS = ("board", "desc_hash", "uid")


def _is_board(port: str, identity: tuple[str, ...], quiet_s: float = 4.0) -> bool:
    """Whether the firmware on ``port`` has this ``(board, desc_hash)`` or
    ``(board, desc_hash, uid)`` (hello's fields, in that order). Listens first: a
    board that is still booting takes a 0x03 inside a frame as Ctrl-C, so hello goes out
    only after its boot event, or after ``quiet_s`` of silence."""
    from learnboard.errors import LinkError

    from .link import Link
    from .ownership import holder

    if holder(port) is not None:  # another command's board: a hello would take one of its replies
        return False
    try:
        link = Link.open(port, timeout=0.5, retries=1, exclusive=True)
    except (LinkError, TypeError):
        return False
    try:
        link.next_event(timeout=quiet_s)
        h = link.hello()
        return tuple(h.get(k) for k in _IDENTITY_KEYS[:len(identity)]) == tuple(identity)
    except LinkError:
        return False
    finally:
        link.close()


def _moved_since(old: str, since: float) -> str | None:
    """The current port of an emulator that had ``old`` (now or before) and moved its
    port at or after ``since`` (``time.time()``)."""
    for d in _emulated_entries():
        if d.moved_at >= since and (old in d.previous or d.port == old):
            return d.port
    return None


def find_again(old: str, *, identity: tuple[str, ...] | None = None, timeout: float = 20.0,
               gone_within: float = 3.0, since: float | None = None) -> str:
    """The port of a board that just reset and dropped its USB serial port ``old``.

    First waits (at most ``gone_within`` s) until ``old`` is gone or a ``learnboard
    emulate`` announced a new port for it; then until the board is back: the same path
    (a Pico usually comes back under its old name), the emulator's new pty, or — given
    ``identity`` (hello's board name and description hash, and its unique id when
    given as a third element) — any port whose firmware
    answers hello with that identity (e.g. ``ttyACM1`` while ``ttyACM0`` was still held
    open). ``since`` (``time.time()`` just before the caller reset the board): an
    emulator that gave the board its old path again after that is followed at once.
    Raises LinkError after ``timeout`` s.
    """
    from learnboard.errors import LinkError

    deadline = time.monotonic() + timeout
    gone_by = time.monotonic() + gone_within
    while time.monotonic() < gone_by and os.path.exists(old) and _successor(old, since=since) is None:
        again = None if since is None else _moved_since(old, since)
        if again is not None and os.path.exists(again):
            return again  # an emulator gave the board the same path again
        time.sleep(0.02)
    probe_at = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        new = _successor(old, since=since)
        if new is not None and os.path.exists(new):
            return new
        if os.path.exists(old) or "://" in old:
            return old
        if identity is not None and time.monotonic() >= probe_at:
            probe_at = time.monotonic() + 1.0
            for p in list_ports(probe=False):
                if p.device != old and _is_board(p.device, identity):
                    return p.device
        time.sleep(0.05)
    raise LinkError(f"{old}: the board did not come back within {timeout:g} s after its reset; "
                    "check the cable, then `learnboard ports`")


def emulated_ports() -> list[tuple[str, str]]:
    """``(pty, board)`` of every running ``learnboard emulate`` of this user."""
    found = []
    for d in _emulated_entries():
        if os.path.exists(d.port):
            found.append((d.port, d.board))
    return found


def list_ports(*, probe: bool = True, extra: list[str] | tuple[str, ...] = (), timeout: float = 0.5) -> list[PortInfo]:
    """The serial ports pyserial finds, the ptys of running ``learnboard emulate`` boards,
    and ``extra`` devices.

    Args:
        probe: send a hello to each port and record the answer.
        extra: more device paths or URLs to show and probe.
        timeout: seconds a port has to answer; the whole probe ends within about
            ``2 * timeout + 1`` seconds whatever the ports do.
    """
    from serial.tools import list_ports as lp

    found = [PortInfo(p.device, p.description or "", p.vid, p.pid, p.serial_number, p.manufacturer)
             for p in sorted(lp.comports(), key=lambda p: p.device)]
    known = {p.device for p in found}
    for port, board in emulated_ports():
        if port not in known:
            found.append(PortInfo(port, f"learnboard emulate ({board})"))
            known.add(port)
    found += [PortInfo(d, "given with --port") for d in extra if d not in known]
    if probe:
        from .ownership import holder

        for p in found:  # a held port: a probe could steal one of its owner's replies
            held = holder(p.device)
            if held is not None:
                run = f", run {Path(held.run_dir).name}" if held.run_dir else ""
                p.probe = f"busy: {held.command} (pid {held.pid}{run})"
        found_probe = [p for p in found if not p.probe.startswith("busy")]
        threads = [threading.Thread(target=_probe, args=(p, timeout), daemon=True) for p in found_probe]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 2 * timeout + 1.0
        for p, t in zip(found_probe, threads, strict=True):
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                p.probe = "no answer (port blocked)"
    return found


def follow(old: str) -> str:
    """For ``Link.open(port, follow=follow)``: the port of the board whose ``old`` port just
    dropped (the link saw it go, so a replug from half a second before counts)."""
    return find_again(old, since=time.time() - 0.5)
