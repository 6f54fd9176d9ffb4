"""Hand a board to MicroPython's REPL with no watchdog running, and the way back from a
firmware that hangs or resets in a loop.

    from learnboard.host.maintenance import enter_repl, rescue

    port = enter_repl("/dev/ttyACM0")        # firmware -> maintenance boot; the new port
    port = rescue("/dev/ttyACM0")            # Ctrl-C until the board stops at its REPL

Both follow the board across the reset that drops its USB port
(:func:`learnboard.host.serial_ports.find_again`) and return the port it answers on.
"""

from __future__ import annotations

import os
import time

from learnboard.errors import LinkError

PROMPT = b">>> "
ESCAPED = b"stopped at boot by Ctrl-C"
"""What ``main.py`` prints when a Ctrl-C in its boot window stopped it (no watchdog)."""
MAINTENANCE = b"maintenance boot"
"""What ``main.py`` prints when it boots into the REPL on the ``repl`` command's note."""
STABLE_S = 9.0
"""A prompt without either line counts once the port stayed up this long: longer than
the RP2040's longest watchdog timeout (8.388 s), so no watchdog was left running."""


def _serial(port: str, timeout: float = 0.05):
    import serial

    return serial.Serial(port, baudrate=115200, timeout=timeout)


def at_prompt(port: str, seconds: float = 3.0) -> bool:
    """True if the board on ``port`` shows MicroPython's friendly prompt within
    ``seconds`` (Ctrl-B leaves a raw REPL; a running firmware takes it as noise)."""
    try:
        s = _serial(port)
    except Exception:  # noqa: BLE001 - pyserial: absent or busy port
        return False
    buf = b""
    try:
        deadline = time.monotonic() + seconds
        poke = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= poke:
                s.write(b"\r\x02")
                poke = time.monotonic() + 0.5
            buf = (buf + s.read(512))[-512:]
            if PROMPT in buf:
                return True
    except Exception:  # noqa: BLE001 - the port dropped: not at a prompt
        return False
    finally:
        s.close()
    return False


def enter_repl(port: str, *, timeout: float = 30.0) -> str:
    """Ask the firmware on ``port`` for its maintenance boot (protocol ``repl``); return
    the port the board is at its REPL on. A board already at its REPL is left there."""
    from .link import Link
    from .serial_ports import current_port

    port = current_port(port)  # an emulated board that reset since: its port now
    since = time.time()
    # a board at its REPL goes to the raw REPL first: hello's bytes then cannot soft-reset
    # it into main.py, and at_prompt's Ctrl-B brings it back to the friendly prompt
    link = Link.open(port, timeout=1.0, retries=2, stop_repl=True)
    try:
        try:
            hello = link.hello()
        except LinkError:
            hello = None
        if hello is not None:
            try:
                link.call("repl")
            except LinkError:
                pass  # the reply may go with the port as the board resets
    finally:
        link.close()
    if hello is None:
        if at_prompt(port):
            return port
        raise LinkError(f"{port}: neither the learnboard firmware nor a MicroPython prompt answered; if "
                        f"the firmware hangs or resets in a loop, run `learnboard repl --port {port} --rescue`")
    return back_at_prompt(port, timeout=timeout, since=since)


def back_at_prompt(port: str, *, timeout: float = 30.0, since: float | None = None) -> str:
    """After the ``repl`` command: follow the board across its reset (the port drops, as
    USB does) and wait for its REPL prompt; return the port. A firmware that left its
    loop without a reset (older ones) keeps its port."""
    from .serial_ports import find_again

    deadline = time.monotonic() + timeout
    new = find_again(port, timeout=timeout, since=since)
    while time.monotonic() < deadline:
        if at_prompt(new, min(3.0, max(0.1, deadline - time.monotonic()))):
            return new
        if not os.path.exists(new):
            new = find_again(new, timeout=max(0.1, deadline - time.monotonic()))
    raise LinkError(f"{port}: the board did not show its REPL within {timeout:g} s after the repl command; "
                    f"look at its output with `mpremote connect {new} repl`")


def rescue(port: str, *, timeout: float = 60.0) -> str:
    """Send Ctrl-C to ``port`` (following it across resets) until the board stops at its
    REPL with no watchdog running; return the port."""
    from .serial_ports import _successor

    deadline = time.monotonic() + timeout
    cur = port
    while time.monotonic() < deadline:
        nxt = _successor(cur)
        if nxt is not None:
            cur = nxt
        try:
            s = _serial(cur)
        except Exception:  # noqa: BLE001 - not back yet
            time.sleep(0.02)
            continue
        found = _interrupt(s, deadline)
        if found:
            return cur
    raise LinkError(f"{port}: the board did not stop at its REPL within {timeout:g} s; reset it (press its "
                    "reset button, or unplug and replug it) while `learnboard repl --rescue` runs")


def _interrupt(s, deadline: float) -> bool:
    """Ctrl-C every 20 ms on the open port ``s`` until a sure prompt; False if the port
    dropped (the board reset) or the time is up."""
    buf = b""
    prompt_at = None
    try:
        while time.monotonic() < deadline:
            if prompt_at is None:
                s.write(b"\x03")
            data = s.read(256)
            buf = (buf + data)[-1024:]
            if PROMPT in buf and (ESCAPED in buf or MAINTENANCE in buf):
                return True
            if PROMPT in buf and prompt_at is None:
                prompt_at = time.monotonic()
            if prompt_at is not None and time.monotonic() - prompt_at > STABLE_S:
                return True
        return False
    except Exception:  # noqa: BLE001 - pyserial: the port dropped with a reset
        return False
    finally:
        try:
            s.close()
        except Exception:  # noqa: BLE001
            pass
