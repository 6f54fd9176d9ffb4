"""``learnboard flash``: copy the firmware and a board description onto a board."""

from __future__ import annotations

import argparse

HELP = "copy the firmware and a board description onto a board (or the emulated board)"
DESCRIPTION = """\
Flash the learnboard firmware (boot.py, main.py, lbfw/) and the compiled board
description (board.json) onto a MicroPython board with mpremote. A running firmware is
asked to leave binary mode first; files whose sha256 on the board already matches are
skipped; the board is then reset and checked by its hello (firmware version, protocol,
description hash).

Without --port the flash folder of the emulated board is written instead (what
`learnboard emulate --board NAME` boots from)."""
EPILOG = """\
examples:
  learnboard flash --port /dev/ttyACM0 --board gen2-clln
  learnboard flash --port /dev/ttyACM0 --board my-board.toml --mpy   (precompiled, faster boot)
  learnboard flash --port /dev/ttyACM0          (firmware only; keeps the board's board.json)
  learnboard flash --board gen1-digipot         (the emulated board's flash folder)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", default=None,
                        help="serial port of the board (default: the emulated board's flash folder)")
    parser.add_argument("--board", metavar="FILE|NAME", default=None,
                        help="board description: profile name, .toml or compiled board.json "
                             "(default with --port: keep the board's own; without: gen2-clln)")
    parser.add_argument("--mpy", action="store_true",
                        help="precompile lbfw/ with mpy-cross after checking the board's .mpy ABI")
    parser.add_argument("--flash-dir", metavar="DIR", default=None,
                        help="without --port: the flash folder to write (default: the emulator's)")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="S",
                        help="seconds the reset board has to answer hello (default 15)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from learnboard.host.flashing import flash
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    err = Console(stderr=True)
    quiet = args.json
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  console=err, transient=True, disable=quiet or not err.is_terminal) as bar:
        tasks: dict[str, int] = {}

        def progress(path: str, done: int, total: int) -> None:
            if path not in tasks:
                tasks[path] = bar.add_task(path, total=total)
            bar.update(tasks[path], completed=done)

        def log(msg: str) -> None:
            if not quiet:
                err.print(f"[dim]{msg}[/dim]")

        flash_dir, vm = args.flash_dir, None
        if args.port is None:  # the emulated board's flash folder, for the VM that boots it
            from learnboard.emulator.vm import micropython_executable
            from learnboard.emulator.vm_board import board_key, default_flash_dir

            flash_dir = flash_dir or default_flash_dir(board_key(args.board))
            vm = micropython_executable() if args.mpy else None
        from learnboard.host.ownership import own_port

        with own_port(args.port, "learnboard flash"):
            report = flash(args.port, args.board, mpy=args.mpy, flash_dir=flash_dir, vm=vm,
                           progress=progress, verify_timeout=args.timeout, log=log)
    if args.json:
        print(json.dumps(report.as_dict()))
        return 0
    out = Console(file=sys.stdout, soft_wrap=True)
    out.print(f"flashed {report.target}: {len(report.written)} files written "
              f"({report.bytes_written} B), {len(report.skipped)} unchanged, "
              f"{len(report.removed)} stale removed in {report.seconds:.1f} s")
    if report.hello:
        h = report.hello
        out.print(f"board answers: firmware {h.get('fw')}, protocol {h.get('proto')}, "
                  f"board {h.get('board')}, description {str(h.get('desc_hash'))[:12]}")
    elif report.desc_hash:
        out.print(f"description {report.desc_hash[:12]}; start it with `learnboard emulate --board "
                  f"{args.board or 'gen2-clln'}`" + (f" --flash {args.flash_dir}" if args.flash_dir else ""))
    return 0
