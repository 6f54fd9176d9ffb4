"""``learnboard monitor``: watch a board that is already training, without touching it."""

from __future__ import annotations

import argparse

HELP = "watch the telemetry of a board that is already training (read-only)"
DESCRIPTION = """\
Show a training session's telemetry live: step, error, power, lambda, steps per second,
link health and fault flags — without touching the board. Give the run folder that
`learnboard train` writes (works for every session, emulated ones too), or the --port of
the board: while `learnboard train` holds that port, the monitor follows that session's
run folder (a serial port has one owner; a second program talking to it would steal the
session's replies); a board that trains on its own (train steps 0, host_timeout_ms 0) is
listened to directly, with read-only questions only (hello, status, stats). It never
starts, stops or changes anything. Ends when the session writes its summary (or, followed
through --port, ends without one: then with the command that resumes it), after
--seconds, or on Ctrl-C. A run folder is shown from its newest record on (a finished run:
its last telemetry and its summary); --from-start replays the whole log."""
EPILOG = """\
examples:
  learnboard monitor runs/20261129-035140-regression       (a session in another terminal)
  learnboard monitor --port /dev/ttyACM0                    (the session training that board)
  learnboard monitor --port /dev/pts/5 --seconds 30 --json  (one JSON line per record)
  learnboard monitor runs/20261129-035140-regression --from-start --json   (a whole log, as JSON lines)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", nargs="?", metavar="RUN_DIR", default=None,
                        help="run folder of a session to follow (instead of --port)")
    parser.add_argument("--port", metavar="P", default=None,
                        help="serial port of the board (emu:PROFILE starts an idle emulated board)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--json", action="store_true", help="print each telemetry frame as a JSON line")
    parser.add_argument("--from-start", action="store_true",
                        help="with a run folder: replay every record already logged, not only the newest "
                             "(a finished run is printed whole)")


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from learnboard.cli.connection import open_board
    from learnboard.host.follow import run_holding
    from learnboard.host.live import Live, fault_names, read_only_request, watch

    from learnboard.errors import InputError, LinkError

    if args.run_dir is not None and args.port is not None:
        raise InputError("give either a RUN_DIR or --port, not both", field="--port")
    run_dir = args.run_dir if args.run_dir is not None else (run_holding(args.port) if args.port else None)
    if run_dir is not None:
        if args.port:
            print(f"{args.port} is held by `learnboard train`: following {run_dir}", file=sys.stderr)
        return _follow(run_dir, args)
    if args.port is None:
        raise InputError("give the RUN_DIR of a session (`learnboard monitor runs/<date>-<name>`; works for "
                         "in-process emulated sessions too) or the --port of a board that is training",
                         field="RUN_DIR")
    from learnboard.host.ownership import own_port

    with own_port(args.port, "learnboard monitor"), open_board(args.port) as conn:
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
        except LinkError as exc:  # the board went away under the monitor: say which, and what to check
            if conn.label in str(exc):
                raise
            raise LinkError(f"{conn.label}: {str(exc).rstrip('.')}; check that the board is connected and "
                            "powered (`learnboard ports` lists the boards present)") from exc
        finally:
            if live is not None and live._live is not None:
                live._live.stop()
    return 0


def _follow(run_dir, args) -> int:
    """Follow a run folder's log (the session holds the board)."""
    import json
    import sys
    from pathlib import Path

    from learnboard.host.follow import follow_run, run_holding
    from learnboard.host.live import Live, fault_names

    live = None
    if not args.json and sys.stderr.isatty():
        from rich.live import Live as RichLive

        live = Live(title="learnboard monitor")
        live.label = str(run_dir)
        live.tolerance = None
        try:
            stop = json.loads((Path(run_dir) / "config.json").read_text())["schedule"]["stop"]
            live.total = int(stop["steps"]) if stop.get("steps") else None
        except (OSError, ValueError, KeyError, TypeError):
            live.total = None
        live._live = RichLive(live.render(0), console=live.console, refresh_per_second=4)
        live._live.start()

    def on_record(rec):
        kind = rec.get("kind")
        if args.json:
            print(json.dumps(rec, default=str), flush=True)
        elif kind == "tlm":
            if live is not None and live._live is not None:
                live.update(None, rec)
            else:
                print(f"step {rec['step']} C/C0 {rec.get('rel_err', float('nan')):.4g} "
                      f"pwr {rec['pwr'] * 1e6:.4g} µW lam {rec['lam']:.3g} flt {fault_names(rec['flt'])}",
                      flush=True)
        elif kind == "summary":
            if live is not None and live._live is not None:
                live._live.stop()
                live._live = None
            print(f"finished: {rec.get('steps')} steps ({rec.get('stop_reason')}), C/C0 "
                  f"{rec.get('relative_error', float('nan')):.3g}, power {rec.get('power', 0) * 1e6:.4g} µW",
                  file=sys.stderr, flush=True)
        elif kind == "event":
            print(f"event {rec.get('name')}", file=sys.stderr, flush=True)

    try:
        # followed through its port: the session that held the port must still hold it
        alive = (lambda: run_holding(args.port) == Path(run_dir)) if args.port else None
        follow_run(run_dir, on_record=on_record, seconds=args.seconds, from_start=args.from_start, alive=alive)
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None and live._live is not None:
            live._live.stop()
    return 0
