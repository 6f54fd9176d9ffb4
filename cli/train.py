"""``learnboard train``: a power-aware training session on a board, recorded in a run folder."""

from __future__ import annotations

import argparse

from learnboard.cli.learning_flags import ALPHA_HELP, ETA_HELP, LAMBDA_HELP, TRAIN_BREAKING

HELP = "train a board (real or emulated) with a power-aware schedule, recording a run folder"
DESCRIPTION = """\
Upload a task's examples to a board and train it in chunks of steps while the host runs
the schedule: constant lambda, a lambda ramp, or the tolerance controller (the paper's:
lambda 0 until the relative error C/C0 is under tau, then lambda grows x1.05 every 100
steps while the error stays under tau and halves when it does not). alpha is the
learning rate, eta the nudge and lambda the power weight, as in learnboard sim and the
paper. Everything goes into runs/<date>-<name>/: the resolved configuration, the board
description, the telemetry log, checkpoints, summary.json and figures/ (as learnboard
plot draws them). A killed session continues with --resume RUN_DIR. Without --port the
emulated default board (gen2-clln) trains; repeat --port to train several boards in
parallel, one session each. Ctrl-C stops after the current chunk and still writes the
summary. A session holds its port: another program's command on it is refused (watch the
session with `learnboard monitor --port P`); `learnboard stop --port P` ends it at once
with the board parked.

""" + TRAIN_BREAKING
EPILOG = """\
examples:
  learnboard train                                   (emulated gen2-clln, default task)
  learnboard train --steps 2000 --tolerance task --json
  learnboard train --port /dev/ttyACM0 --schedule schedules/ramp.toml --name ramp1
  learnboard train --port emu:gen2-clln --port emu:gen2-clln --lambda 0.005
  learnboard train --alpha 0.5 --eta 0.5 --steps 500   (learning rate 0.5, nudge 0.5)
  learnboard train --resume runs/20261128-171502-regression
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", action="append", default=None,
                        help="serial port or emu:PROFILE; repeat to train boards in parallel "
                             "(default: the emulated default board)")
    parser.add_argument("--board", metavar="NAME|FILE", default=None,
                        help="board description (checked against the board's hash)")
    parser.add_argument("--task", metavar="NAME|FILE", default=None,
                        help="task name or CSV (default: the board profile's task; regression, the paper's linear map, on the shipped ones)")
    parser.add_argument("--schedule", metavar="FILE", default=None, help="schedule TOML (docs/training.md)")
    parser.add_argument("--steps", type=int, default=None, help="total steps (default 1000)")
    parser.add_argument("--runs", metavar="DIR", default="runs", help="folder of run folders (default runs)")
    parser.add_argument("--name", default=None, help="run name (default: <task>)")
    parser.add_argument("--lambda", "--lam", dest="lam", type=float, default=None,
                        help=f"{LAMBDA_HELP}; held constant, in [0, 1]")
    parser.add_argument("--tolerance", default=None, metavar="TAU|task",
                        help="tolerance controller with this relative error (or the task's)")
    parser.add_argument("--lambda-start", type=float, default=None,
                        help="tolerance controller: first lambda once under tau (default 1e-9)")
    parser.add_argument("--check-every", type=int, default=None,
                        help="tolerance controller: steps between lambda updates (default 100)")
    parser.add_argument("--lambda-up", type=float, default=None,
                        help="tolerance controller: factor while under tau (default 1.05)")
    parser.add_argument("--init", choices=("low", "uniform", "random"), default=None,
                        help="initial edge states (low = the paper's good initial condition)")
    parser.add_argument("--alpha", type=float, default=None,
                        help=f"{ALPHA_HELP} (default: the board's; on transistor boards annealed "
                             "1.0 -> 0.2 over the session)")
    parser.add_argument("--eta", type=float, default=None, help=f"{ETA_HELP} (default: the board's)")
    parser.add_argument("--every", type=int, default=10, help="telemetry every N steps (default 10)")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="checkpoint every N steps")
    parser.add_argument("--seed", type=int, default=0, help="seed of the task data and of the emulated board (default 0)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue a stopped session")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument("--quiet", action="store_true", help="no live dashboard")
    parser.add_argument("--no-plot", action="store_true",
                        help="do not draw the run's figures at the end (learnboard plot RUN_DIR does)")


def _config(args):
    from learnboard.host.schedule import load_schedule, schedule_from_flags
    from learnboard.host.session import TrainConfig

    from learnboard.errors import InputError

    base = load_schedule(args.schedule) if args.schedule else None
    tol = args.tolerance
    if tol is not None and tol != "task":
        try:
            tol = float(tol)
        except ValueError:
            raise InputError(f"{tol!r} is not a number or 'task'", field="--tolerance") from None
    sched = schedule_from_flags(steps=args.steps, lam=args.lam, tolerance=tol, init=args.init, base=base,
                                every=args.check_every, start=args.lambda_start, up=args.lambda_up)
    for flag, v in (("--every", args.every), ("--checkpoint-every", args.checkpoint_every)):
        if v < 1:
            raise InputError("must be at least 1", field=flag)
    import math

    if args.alpha is not None and not (math.isfinite(args.alpha) and args.alpha >= 0):
        raise InputError(f"{args.alpha} must be a finite number >= 0 (the learning rate)",
                         field="--alpha")
    if args.eta is not None and not 0 < args.eta <= 1:
        raise InputError(f"{args.eta} must lie in (0, 1] (the nudge)", field="--eta")
    return TrainConfig(task=args.task or "", schedule=sched, alpha=args.alpha, eta=args.eta,
                       telemetry_every=args.every, checkpoint_every=args.checkpoint_every,
                       seed=args.seed, name=args.name or "")


def _default_task(board) -> str:
    """The board profile's ``[learning] task``, else the paper's regression (it learns on
    every shipped board)."""
    return getattr(getattr(board, "learning", None), "task", None) or "regression"


def _one(port, args, config, resume_dir, stop_event, live_ok, index):
    from learnboard.host.ownership import own_port

    from learnboard.errors import InputError

    board = args.board
    if resume_dir is not None and board is None and (port is None or port.startswith("emu:")):
        board = resume_dir.read_config().get("board")
        if port is not None:
            board = None
        elif not isinstance(board, str) or not board:
            raise InputError(f"field 'board' is {board!r}: not a board name; give --board",
                             source=str(resume_dir.config_path))
    with own_port(port, "learnboard train", None if resume_dir is None else resume_dir.path) as own:
        return _own(port, args, config, resume_dir, stop_event, live_ok, index, board, own)


def _own(port, args, config, resume_dir, stop_event, live_ok, index, board, own):
    """A session on ``port``, which this process holds (``own``; None for an in-process board)."""
    import threading

    from learnboard.cli.connection import open_board
    from learnboard.host.live import Live, Quiet
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.session import run_session

    if port is not None and not port.startswith("emu:") and resume_dir is None:
        import sys

        from learnboard.host.calibration import fetch_if_missing

        # another lab PC: the board's own calibration (stored by `learnboard calibrate`)
        fetch_if_missing(port, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    with open_board(port, board=board, seed=args.seed) as conn:
        park_event = threading.Event()
        if own is not None:
            def on_stop() -> None:  # `learnboard stop --port`: park now, from the watcher's thread
                park_event.set()  # first: the session then knows whose park it sees
                conn.link.request("park", {}, timeout=0.3, retries=2)

            own.watch(on_stop)
        if not config.task:
            config.task = _default_task(conn.board)
        if not config.name:
            config.name = config.task.replace("/", "_").rsplit(".", 1)[0] or "run"
        if resume_dir is not None:
            rf = resume_dir
        else:
            from learnboard.host.session import load_session_task

            load_session_task(config.task, conn.board, config.seed)  # a bad --task: no run folder
            name = config.name if index is None else f"{config.name}-{index}"
            rf = RunFolder.create(args.runs, name)
        live = Live(console=None) if live_ok else Quiet()
        if own is not None:
            own.announce(rf.path)  # `learnboard monitor --port` follows this run
        return run_session(conn, config, rf, live=live, resume=resume_dir is not None,
                           stop_event=stop_event, park_event=park_event)


def _plot(run_dir) -> None:
    """The run's figures into RUN_DIR/figures; a plotting failure must not hide the summary."""
    import sys

    from learnboard.host.plots import plot_run

    from learnboard.errors import LearnboardError

    try:
        plot_run(run_dir)
    except (LearnboardError, OSError, ValueError) as exc:
        print(f"warning: figures not drawn ({exc}); retry with: learnboard plot {run_dir}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    import json
    import signal
    import sys
    import threading

    from learnboard.host.runfolder import RunFolder
    from learnboard.host.session import resume_config

    from learnboard.errors import InputError, LearnboardError

    ports = args.port or [None]
    resume_dir = None
    if args.resume:
        if len(ports) > 1:
            raise InputError("--resume continues one run: give at most one --port", field="--resume")
        resume_dir = RunFolder.open(args.resume)
        config = resume_config(resume_dir)
    else:
        config = _config(args)
    stop_event = threading.Event()

    def on_sigint(signum, frame):
        if stop_event.is_set():
            raise KeyboardInterrupt
        stop_event.set()
        print("stopping after the current chunk (Ctrl-C again to abort)", file=sys.stderr)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
    live_ok = not args.quiet and not args.json and len(ports) == 1 and sys.stderr.isatty()
    if len(ports) == 1:
        summaries = [_one(ports[0], args, config, resume_dir, stop_event, live_ok, None)]
    else:
        import copy

        results: list = [None] * len(ports)

        def work(i, port):
            try:
                results[i] = _one(port, args, copy.deepcopy(config), None, stop_event, False, i)
            except LearnboardError as exc:
                results[i] = exc

        threads = [threading.Thread(target=work, args=(i, p), name=f"train-{i}") for i, p in enumerate(ports)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        summaries = results
    failed = 0
    for port, s in zip(ports, summaries, strict=True):
        if isinstance(s, BaseException):
            failed += 1
            print(f"error: {port or 'emulated board'}: {s}", file=sys.stderr)
            continue
        if not args.no_plot:
            _plot(s.run_dir)
        if args.json:
            print(json.dumps(s.as_dict()))
        else:
            d = s.as_dict()
            tp = f", true {d['true_power'] * 1e6:.4g} µW" if d["true_power"] is not None else ""
            reached = "" if d["reached"] is None else (" (within tolerance)" if d["reached"] else
                                                       f" (tolerance {d['tolerance']:.3g} not reached)")
            test = f", test {d['test_error']:.3g}" if d["test_error"] is not None else ""
            acc = f", accuracy {d['accuracy']:.1%}" if d["accuracy"] is not None else ""
            print(f"{d['port']}: {d['steps']} steps ({d['stop_reason']}), C/C0 {d['relative_error']:.3g}"
                  f"{reached}{test}{acc}, power {d['power'] * 1e6:.4g} µW{tp}, lambda {d['lambda']:.3g}"
                  f" -> {d['run_dir']}")
    return 1 if failed else 0
