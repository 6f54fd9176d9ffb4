"""The ``learnboard`` command: one subcommand per module in :mod:`learnboard.cli`.

Each command module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their command runs, so a slow
import (matplotlib, the emulator) never delays ``learnboard --help``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from learnboard import __version__
from learnboard.errors import Interrupted, LearnboardError

# command name -> (module under learnboard.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "board": ("board", "show, check and compile board descriptions"),
    "solve": ("solve", "solve the DC state of a network or board"),
    "sim": ("sim", "train a simulated network with power-aware coupled learning"),
    "emulate": ("emulate", "run a virtual learning board on a pseudo-terminal"),
    "sweep": ("sweep", "run a grid of learning runs (locally or on Dask) into one results table"),
    "paper": ("paper", "reproduce the power-efficient learning paper: figures, tables, report"),
    "ports": ("ports", "list serial ports and whether a learnboard firmware answers on each"),
    "flash": ("flash", "copy the firmware and a board description onto a board"),
    "info": ("info", "show a board's firmware, protocol, board description and limits"),
    "stop": ("stop", "park a board at once"),
    "repl": ("repl", "hand a board to MicroPython's REPL (no watchdog), e.g. for mpremote"),
    "train": ("train", "train a board with a power-aware schedule, recording a run folder"),
    "monitor": ("monitor", "watch the telemetry of a board that is already training (read-only)"),
    "export": ("export", "write a run folder's telemetry as tidy CSV tables"),
    "plot": ("plot", "draw a run folder's figures (error, power, lambda, trade-off, network)"),
    "repair": ("repair", "write a repaired copy of a run folder with damaged records or checkpoints"),
    "calibrate": ("calibrate", "measure a board's ADC and per-edge device parameters and store them"),
    "compare": ("compare", "compare finished runs side by side: error, power (measured / estimate / true), energy"),
}


EPILOG = """\
Without --port every board command uses the emulated gen2-clln board, in process.
`learnboard COMMAND --help` shows each command's options and examples.

examples:
  learnboard train                                  (train the emulated board; run folder in runs/)
  learnboard emulate --board gen2-clln              (a virtual board on a pty; prints its port)
  learnboard flash --port /dev/pts/5 --board gen2-clln
  learnboard info --port /dev/pts/5
  learnboard plot runs/20261128-171502-regression
"""

# Exit status of a command whose output pipe closed early (`learnboard info --json | head -1`):
# the shell's 128 + SIGPIPE, as a process killed by the signal reports.
EXIT_BROKEN_PIPE = 128 + 13


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="learnboard",
        description="Train self-learning circuit boards, real or emulated, for low error and low power.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"learnboard {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"learnboard.cli.{module_name}")
        cmd = sub.add_parser(
            name,
            help=help_text,
            description=getattr(module, "DESCRIPTION", help_text),
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A reader that stops reading (``| head``) ends it quietly."""
    try:
        code = _main(argv)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at exit
        return code
    except BrokenPipeError:
        # Python ignores SIGPIPE, so a write to a closed pipe raises; stop writing, say
        # nothing (the reader has gone), and point stdout at /dev/null so the
        # interpreter's final flush does not print "Exception ignored ... BrokenPipeError".
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except LearnboardError as exc:
        # an interrupt the user asked for is no error; its message says what is left to do
        kind = "" if isinstance(exc, Interrupted) else "error: "
        print(f"learnboard {args.command}: {kind}{exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"learnboard {args.command}: interrupted", file=sys.stderr)
        return 130

