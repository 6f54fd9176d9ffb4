"""``learnboard stop``: park a board at once."""

from __future__ import annotations

import argparse

HELP = "park a board at once (inputs to 0 V, learning stopped)"
DESCRIPTION = """\
Park a board now: every input and clamp to 0 V, training stopped. Works whatever the
board is doing (training, idle, or a session on another computer has gone). The park
request is sent before anything else is checked; a firmware other than this host's is
then reported as an error that says to run `learnboard flash`."""
EPILOG = """\
examples:
  learnboard stop --port /dev/ttyACM0
  learnboard stop                      (the emulated default board)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", default=None,
                        help="serial port of the board (default: the emulated default board)")


def run(args: argparse.Namespace) -> int:
    from learnboard.host.flashing import check_hello
    from learnboard.host.link import Link

    from learnboard.errors import LinkError

    if args.port is None:
        from learnboard.cli.connection import open_board

        with open_board() as conn:
            reply = conn.link.call("park")
            hello, label = conn.hello, conn.label
    else:
        # No hello first: parking must not wait for anything it does not need.
        with Link.open(args.port, timeout=0.5, retries=3) as link:
            try:
                reply = link.call("park")
            except LinkError as exc:
                raise LinkError(f"{args.port}: the board did not confirm parking ({exc}); if it runs "
                                "no learnboard firmware, unplug it or press its reset button") from exc
            hello, label = link.hello(), args.port
    print(f"{label}: parked" if reply.get("parked") else f"{label}: park answered {reply!r}")
    check_hello(hello, label, port=args.port)
    return 0
