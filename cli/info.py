"""``learnboard info``: what a board runs — firmware, protocol, board, limits."""

from __future__ import annotations

import argparse

HELP = "show a board's firmware, protocol, board description and limits"
DESCRIPTION = """\
Say hello to a board and print what it reports: firmware version, protocol, the board
description it runs (name and hash), capabilities and safety limits, and the learning
steps per second the emulator's RP2040 cost model predicts for that board (one example a
step; the firmware's calls, bus transfers, conversions and waits at 125 MHz, not the
rule's arithmetic between them: an upper bound). Without --port the emulated default
board answers. A firmware or protocol other than this host's, or (with
--board) another description, is an error that says to run `learnboard flash`."""
EPILOG = """\
examples:
  learnboard info --port /dev/ttyACM0
  learnboard info --port /dev/ttyACM0 --board gen2-clln --json
  learnboard info                                  (the emulated gen2-clln board)
"""


# the hello's limit keys, as a user reads them
LIMITS = {"n_edges": "edges", "n_nodes": "nodes", "vn": "max node voltage (V)", "ie": "max edge current (A)",
          "max_examples": "max examples on the board"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", default=None,
                        help="serial port of the board (default: the emulated default board)")
    parser.add_argument("--board", metavar="FILE|NAME", default=None,
                        help="the description the board should run; checked against its hash")
    parser.add_argument("--json", action="store_true", help="print the hello as one JSON object")


def run(args: argparse.Namespace) -> int:
    import json

    from learnboard.cli.connection import open_board
    from learnboard.host.flashing import FirmwareMismatch, check_hello, firmware_version
    from learnboard.host.live import fault_names
    from learnboard.host.ownership import own_port
    from rich.console import Console
    from rich.table import Table

    with own_port(args.port, "learnboard info"), open_board(args.port, board=args.board) as conn:
        hello = dict(conn.hello)
        stats = conn.link.call("status")
    mismatch = None
    try:
        check_hello(hello, conn.label, port=args.port)
    except FirmwareMismatch as exc:
        mismatch = exc
    predicted = _predicted_steps_s(args.board or hello.get("board"))
    if args.json:
        print(json.dumps({"port": conn.label, "host_firmware": firmware_version(), **hello,
                          "status": stats, "rp2040_steps_s": predicted}))
    else:
        from learnboard.board_id import describe

        table = Table(title=conn.label, show_header=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, label in (("fw", "firmware"), ("proto", "protocol"), ("impl", "implementation"),
                           ("mpy", ".mpy ABI"), ("board", "board"), ("desc_hash", "description hash"),
                           ("uid", "unique id"), ("caps", "capabilities"), ("max_frame", "max frame (B)")):
            value = hello.get(key)
            if key == "uid":  # an emulated board's id is marked, so it is never taken for a real one
                value = describe(value) if value else None
            if key == "caps" and value is not None:
                value = ", ".join(value)
            table.add_row(label, "—" if value is None else str(value))
        for key, value in (hello.get("limits") or {}).items():
            table.add_row(LIMITS.get(key, f"limit {key}"), f"{value:.4g}" if isinstance(value, float) else str(value))
        table.add_row("RP2040 steps/s (predicted)",
                      "—" if predicted is None else
                      f"≤ {predicted:.0f} (cost model rp2040, 1 example per step)")
        flt = stats.get("flt")
        table.add_row("state", f"{stats.get('state')} (step {stats.get('step')} of its last train call, "
                               f"fault flags {fault_names(flt) if isinstance(flt, int) else flt})")
        Console().print(table)
    if mismatch is not None:
        raise mismatch
    return 0


def _predicted_steps_s(board) -> float | None:
    """Steps/s the RP2040 cost model predicts for ``board`` (a profile name or a
    description file), or None when the host does not know that description."""
    from learnboard.emulator.predict import rp2040_steps_per_s

    from learnboard.errors import LearnboardError

    if not board:
        return None
    try:
        return rp2040_steps_per_s(board)
    except (LearnboardError, OSError):
        return None
