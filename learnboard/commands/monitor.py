"""``learnboard monitor``: watch a board that is already training, without touching it."""

from __future__ import annotations

import argparse

HELP = "watch the telemetry of a board that is already training (read-only)"
DESCRIPTION = """\
Attach to a board's port and show its telemetry live: step, error, power, lambda, steps
per second, link health and fault flags. The monitor only listens and asks read-only
questions (hello, status, stats); it never starts, stops or changes anything, so a board
keeps training as it was told. A serial port has one owner at a time: monitor a board
that trains on its own (started with `train` steps 0 and host_timeout_ms 0), or a
`learnboard emulate` port, not one that `learnboard train` holds open."""
EPILOG = """\
examples:
  learnboard monitor --port /dev/ttyACM0
  learnboard monitor --port /tmp/lb-emu0 --seconds 30 --json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", default=None,
                        help="serial port of the board (emu:PROFILE starts an idle emulated board)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--json", action="store_true", help="print each telemetry frame as a JSON line")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from learnboard.errors import InputError
    from learnboard.host.connect import open_board
    from learnboard.host.live import Live, fault_names, read_only_request, watch

    if args.port is None:
        raise InputError("give the --port of a board that is training (the in-process emulated board "
                         "exists only inside `learnboard train`; `learnboard emulate` gives a port)",
                         field="--port")
    with open_board(args.port) as conn:
        link = conn.link
        status = read_only_request(link, "status")
        print(f"{conn.label}: {conn.hello.get('board')} fw {conn.hello.get('fw')}, state {status['state']}, "
              f"step {status['step']}/{status['target'] or '∞'}", file=sys.stderr)
        live = None
        if not args.json and sys.stderr.isatty():
            live = Live(title="learnboard monitor")
            live.label, live.link = conn.label, link
            live.total = status["target"] or None
            live.tolerance = None
            from rich.live import Live as RichLive

            live._live = RichLive(live.render(status["step"]), console=live.console, refresh_per_second=4)
            live._live.start()

        def on_tlm(t):
            if args.json:
                print(json.dumps(t), flush=True)
            elif live is not None:
                live.update(None, {**t, "rel_err": float("nan")})
            else:
                print(f"step {t['step']} err {t['err']:.4g} V² pwr {t['pwr'] * 1e6:.4g} µW "
                      f"lam {t['lam']:.3g} flt {fault_names(t['flt'])}", flush=True)

        def on_event(name, data):
            print(f"event {name}: {data}", file=sys.stderr, flush=True)

        try:
            watch(link, seconds=args.seconds, on_telemetry=on_tlm, on_event=on_event)
        except KeyboardInterrupt:
            pass
        finally:
            if live is not None and live._live is not None:
                live._live.stop()
    return 0
