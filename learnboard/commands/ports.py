"""``learnboard ports``: serial ports and whether a learnboard firmware answers."""

from __future__ import annotations

import argparse

HELP = "list serial ports (USB ids) and whether a learnboard firmware answers on each"
DESCRIPTION = """\
List the serial ports of this computer with their USB vendor:product ids and serial
numbers, and say hello on each to see whether a learnboard firmware answers (at most
about a second in all, however the ports behave). Probing writes one small frame to
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

    from rich.console import Console
    from rich.table import Table

    from learnboard.host.ports import list_ports

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
    Console().print(table)
    return 0
