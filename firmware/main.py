"""Board entry point: read board.json, wire the board, serve the host on the console.

``mpremote`` can still reach the REPL: the ``repl`` command leaves this loop, and Ctrl-C
works again (``stdio.StdioPort.close`` restores it).
"""

import gc

import machine
from lbfw import app, hal, stdio


def main(path="board.json", wdt_ms=5000, machine=machine):
    """Serve until ``repl``; ``machine`` may be replaced (a fake one in the VM tests)."""
    body, desc_hash = app.load_description(path)
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
    a.run(wait=port.wait)
    port.close()


if __name__ == "__main__":
    main()
