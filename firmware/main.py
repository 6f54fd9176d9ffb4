"""Board entry point, kept small on the board's filesystem (the ``lbfw`` package may be
frozen into the MicroPython image; this file is not, so ``learnboard flash`` replaces it).

Each boot, in order:

1. **The way back.** After a watchdog reset that nobody asked for (a wedged firmware, or
   one resetting in a loop) the board waits ``ESCAPE_MS`` for a Ctrl-C (0x03) on the USB
   serial port before it starts anything. A Ctrl-C then stops here, at the REPL, with
   no watchdog running: ``learnboard repl --rescue`` (or ``mpremote``) sends it.
2. **Maintenance boot.** If ``REPL_FLAG`` exists (written by the protocol's ``repl``
   command just before it resets the board), it is removed and the board stays at the
   REPL with no watchdog: ``mpremote`` works for as long as you like; ``machine.reset()``
   (or ``learnboard flash``) starts the firmware again (``RESET_NOTE`` is left for it).
3. **The firmware**, with Ctrl-C off (a 0x03 on the line is data from here on) and the
   watchdog armed (``WDT_MS``) before the board is wired.

A reset the host or the firmware asks for leaves ``RESET_NOTE`` first; without it a
``machine.WDT_RESET`` cause means the watchdog ran out (the rp2 port reports
``machine.reset()`` as a watchdog reset too), and the firmware reports ``F_WATCHDOG``.
"""

import gc

import machine
from lbfw import desc

WDT_MS = 5000
"""Watchdog timeout (ms, the RP2040 allows up to 8388): the main loop feeds it every pass,
long work every settle; parameters whose learning step could exceed half of it are refused."""
ESCAPE_MS = 1000
"""How long the board listens for a Ctrl-C after an unasked-for watchdog reset."""
REPL_FLAG = "lb_repl"
"""Beside board.json: boot into the REPL with no watchdog, once."""
RESET_NOTE = "lb_reset"
"""Beside board.json: the coming reset is asked for, not the watchdog's doing."""


def _take(path):
    """Remove ``path``; True if it was there."""
    import os

    try:
        os.remove(path)
    except OSError:
        return False
    return True


def _escape_window(ms):
    """Listen ``ms`` for a Ctrl-C (the port's USB stack raises KeyboardInterrupt for a
    0x03 byte); True if one came: the board then stays at the REPL."""
    import select
    import sys
    import time

    p = select.poll()
    p.register(sys.stdin, select.POLLIN)
    t0 = time.ticks_ms()
    left = ms
    try:
        while left > 0:
            if p.poll(left):
                sys.stdin.read(1)  # anything but Ctrl-C is ignored
            left = ms - time.ticks_diff(time.ticks_ms(), t0)
    except KeyboardInterrupt:
        print("learnboard: stopped at boot by Ctrl-C; no watchdog running")
        return True
    return False


def _boot(here, machine):
    """Steps 1 and 2: None to stay at the REPL, else whether the watchdog reset the board."""
    asked = _take(here + RESET_NOTE)
    watchdog = machine.reset_cause() == machine.WDT_RESET and not asked
    if watchdog and _escape_window(ESCAPE_MS):
        return None
    if _take(here + REPL_FLAG):
        f = open(here + RESET_NOTE, "w")  # the reset that ends maintenance is asked for
        f.close()
        print("learnboard: maintenance boot, no watchdog; machine.reset() starts the firmware")
        return None
    return watchdog


def main(path="board.json", wdt_ms=WDT_MS, machine=machine):
    """Serve until ``repl``; ``machine`` may be replaced (a fake one in the VM tests)."""
    here = path[: path.rfind("/") + 1]
    watchdog = _boot(here, machine)
    if watchdog is None:
        return
    # From here a 0x03 on the line is data, not Ctrl-C: noise, a second program or a
    # frame reaching the board while it boots must not stop the firmware at the REPL
    # (lbfw.stdio keeps it off; the ``repl`` command turns it back on).
    import micropython

    if hasattr(micropython, "kbd_intr"):
        micropython.kbd_intr(-1)
    g = globals()
    for name in ("_boot", "_take", "_escape_window"):  # their bytecode: heap for the firmware
        del g[name]
    gc.collect()  # before the compiler's peak: what boot left is free and in one piece
    # Boot compiles the modules (from source; it peaks at ~165 KB) and builds long-lived
    # tables among the compiler's garbage. Rare collections scattered the live objects
    # over the heap until a 1 kB frame buffer found no room in 192 KB: collect every few
    # kB until the board is wired (docs/firmware.md, boot memory).
    if hasattr(gc, "threshold"):
        gc.threshold(4096)
    from lbfw import app, consts, hal, stdio

    body, desc_hash = desc.load_description(path)
    port = stdio.StdioPort()
    wdt = machine.WDT(timeout=wdt_ms) if wdt_ms else None
    a = app.App(body, desc_hash, machine, hal.Clock(), port, wdt=wdt, wdt_ms=wdt_ms,
                boot_flt=consts.F_WATCHDOG if watchdog else 0, repl_flag=here + REPL_FLAG,
                reset_note=here + RESET_NOTE)
    del body
    gc.collect()
    if hasattr(gc, "threshold"):
        gc.threshold(-1)
    a.run(wait=port.wait)
    port.close()


if __name__ == "__main__":
    main()
