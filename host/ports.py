"""Serial ports on this computer and whether a learnboard firmware answers on each.

    from learnboard.host.ports import list_ports
    for p in list_ports():
        print(p.device, p.usb_id, p.hello and p.hello["board"])

Probing sends one hello frame per port and waits at most ``timeout`` seconds; every
port is probed in its own thread with a hard deadline, so a port that never answers (or
whose ``open`` blocks, as some Bluetooth ports do) cannot hang the listing.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass


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


def list_ports(*, probe: bool = True, extra: list[str] | tuple[str, ...] = (), timeout: float = 0.5) -> list[PortInfo]:
    """The serial ports pyserial finds (plus ``extra`` devices such as an emulator's pty).

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
    found += [PortInfo(d, "given with --port") for d in extra if d not in known]
    if probe:
        threads = [threading.Thread(target=_probe, args=(p, timeout), daemon=True) for p in found]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 2 * timeout + 1.0
        for p, t in zip(found, threads, strict=True):
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                p.probe = "no answer (port blocked)"
    return found
