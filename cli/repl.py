"""``learnboard repl``: hand a board to MicroPython's REPL, with no watchdog running."""

from __future__ import annotations

import argparse

HELP = "hand a board to MicroPython's REPL (no watchdog), e.g. for mpremote"
DESCRIPTION = """\
Hand a board running the learnboard firmware to MicroPython's REPL for as long as you
like: the firmware parks the board and resets it into a maintenance boot that starts
neither the firmware nor the watchdog (a running watchdog cannot be stopped otherwise,
and would reset the board a few seconds into an mpremote session). The reset drops the
USB serial port; the board comes back on the same port or a new one, which is printed
on standard output. `machine.reset()` or `learnboard flash` starts the firmware again.

--rescue is the way back from a firmware that hangs or resets in a loop: after a reset
the watchdog did not ask for, the board listens for a second for Ctrl-C before it starts
anything. This command sends Ctrl-C continuously until the board answers at its REPL;
reset the board (or let its watchdog do it) while it waits."""
EPILOG = """\
examples:
  learnboard repl --port /dev/ttyACM0
      /dev/ttyACM0                            <- the port the board came back on
  mpremote connect /dev/ttyACM0 exec "import time; time.sleep(20); print('alive')"
  learnboard repl --port /dev/ttyACM0 --rescue     (a firmware that hangs: press reset)
  learnboard flash --port /dev/ttyACM0 --board gen2-clln   (the firmware again)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", required=True, help="serial port of the board")
    parser.add_argument("--rescue", action="store_true",
                        help="send Ctrl-C until the board stops at its REPL (a hung or reset-looping firmware)")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="S",
                        help="seconds to wait for the board (default 60; with --rescue, for you to reset it)")


def run(args: argparse.Namespace) -> int:
    from learnboard.errors import InputError

    if not args.timeout > 0:
        raise InputError(f"must be > 0 seconds, got {args.timeout}", field="--timeout")
    from learnboard.host.ownership import own_port

    from learnboard.errors import Interrupted

    with own_port(args.port, "learnboard repl"):
        try:
            return _run(args)
        except KeyboardInterrupt:
            # the firmware may have been told to leave already: the board is stopped, or resetting
            raise Interrupted(f"repl of {args.port} interrupted: the board may be stopped at its REPL; run "
                              f"`learnboard flash --port {args.port}` to start its firmware again") from None


def _run(args: argparse.Namespace) -> int:
    import sys

    from learnboard.host.maintenance import enter_repl, rescue

    if args.rescue:
        print(f"learnboard repl: sending Ctrl-C to {args.port}; reset the board now "
              f"(waiting up to {args.timeout:g} s)", file=sys.stderr, flush=True)
        port = rescue(args.port, timeout=args.timeout)
    else:
        port = enter_repl(args.port, timeout=args.timeout)
    print(port, flush=True)
    print(f"learnboard repl: the board is at its REPL on {port}, no watchdog running; "
          f"`mpremote connect {port} repl` to use it, `learnboard flash --port {port}` or "
          "machine.reset() to start the firmware again", file=sys.stderr)
    return 0
