"""``learnboard ports``: serial ports and whether a learnboard firmware answers."""

from __future__ import annotations

import argparse

HELP = "list serial ports (USB ids) and whether a learnboard firmware answers on each"
DESCRIPTION = """\
List the serial ports of this computer with their USB vendor:product ids and serial
numbers, and say hello on each to see whether a learnboard firmware answers (at most
about a second in all, however the ports behave). Running `learnboard emulate` boards
are listed too (their pseudo-terminals, which the OS does not list). Probing writes one small frame to
every port; use --no-probe near instruments that must not receive stray bytes, and note
that opening a port resets some boards (Arduino-style DTR reset)."""
EPILOG = """\
examples:
  learnboard ports
  learnboard ports --port /dev/pts/5       (also probe an emulator's pty)
  learnboard ports --no-probe --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", action="append", default=[],
                        help="also show and probe this device (repeatable), e.g. a `learnboard emulate` pty")
    parser.add_argument("--no-probe", action="store_true", help="do not send hello to the ports")
    parser.add_argument("--timeout", type=float, default=0.5, metavar="S",
                        help="seconds each port has to answer (default 0.5)")
    parser.add_argument("--json", action="store_true", help="print one JSON array")


def run(args: argparse.Namespace) -> int:
    import json

    from learnboard.host.serial_ports import list_ports
    from rich.console import Console
    from rich.table import Table

    ports = list_ports(probe=not args.no_probe, extra=args.port, timeout=args.timeout)
    if args.json:
        print(json.dumps([p.as_dict() for p in ports]))
        return 0
    if not ports:
        Console().print("no serial ports found; is the board plugged in (and its USB cable a data cable)? "
                        "`learnboard emulate` starts a virtual one")
        return 0
    table = Table()
    for col in ("port", "USB id", "serial", "description", "learnboard"):
        table.add_column(col)
    for p in ports:
        if p.hello:
            lb = f"firmware {p.hello.get('fw')}, board {p.hello.get('board')} ({str(p.hello.get('desc_hash'))[:8]})"
        else:
            lb = p.probe
        table.add_row(p.device, p.usb_id, p.serial_number or "", p.description, lb)
    console = Console()
    console.print(table)
    # USB devices, emulated boards and ports the user named: likely boards (not /dev/ttyS0)
    silent = [p.device for p in ports if p.probe == "no answer"
              and (p.vid is not None or p.description.startswith(("learnboard emulate", "given with")))]
    if silent:
        console.print(f"no answer on {', '.join(silent)}: no learnboard firmware runs there yet (a new or "
                      f"empty board); flash it: `learnboard flash --port {silent[0]} --board gen2-clln` "
                      "(your board's profile or .toml)", soft_wrap=True)
    return 0
