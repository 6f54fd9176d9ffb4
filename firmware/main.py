"""Board entry point: read board.json, wire the board, serve the host on the console.

``mpremote`` can still reach the REPL: the ``repl`` command leaves this loop, and Ctrl-C
works again (``stdio.StdioPort.close`` restores it).
"""

import gc

import machine
from lbfw import desc


def main(path="board.json", wdt_ms=5000, machine=machine):
    """Serve until ``repl``; ``machine`` may be replaced (a fake one in the VM tests)."""
    # Boot compiles the modules (from source; it peaks at ~165 KB) and builds long-lived
    # tables among the compiler's garbage. Rare collections scattered the live objects
    # over the heap until a 1 kB frame buffer found no room in 192 KB: collect every few
    # kB until the board is wired (docs/firmware.md, boot memory).
    if hasattr(gc, "threshold"):
        gc.threshold(4096)
    from lbfw import app, hal, stdio

    body, desc_hash = desc.load_description(path)
    port = stdio.StdioPort()
    wdt = None
    if wdt_ms and hasattr(machine, "WDT"):
        try:
            wdt = machine.WDT(timeout=wdt_ms)
        except Exception:  # a port without a usable watchdog
            wdt = None
    a = app.App(body, desc_hash, machine, hal.Clock(), port, wdt=wdt)
    del body
    gc.collect()
    if hasattr(gc, "threshold"):
        gc.threshold(-1)
    a.run(wait=port.wait)
    port.close()


if __name__ == "__main__":
    main()
