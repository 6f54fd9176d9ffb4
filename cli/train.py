"""``learnboard train``: a power-aware training session on a board, recorded in a run folder."""

from __future__ import annotations

import argparse

from learnboard.cli.learning_flags import ALPHA_HELP, ETA_HELP, LAMBDA_HELP, TRAIN_BREAKING

HELP = "train a board (real or emulated) with a power-aware schedule, recording a run folder"
DESCRIPTION = """\
Upload a task's examples to a board and train it in chunks of steps while the host runs
the schedule: constant lambda, a lambda ramp, or the tolerance controller: --tolerance
task finds the lowest power at the task's error by itself (lambda 0 until the relative
error C/C0 is under 0.8 tau, then lambda from a start the board's rule gives, multiplied
or divided every steps/50 steps as the error is under or over 0.8 tau, by a factor that
shrinks on every reversal; --controller paper runs the paper's rule instead). alpha is the
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
  learnboard train --tolerance task                  (low power at the task's error)
  learnboard train --port /dev/ttyACM0 --schedule schedules/ramp.toml --name ramp1
  learnboard train --port emu:gen2-clln --port emu:gen2-clln --lambda 0.005
  learnboard train --alpha 0.5 --eta 0.5 --steps 500   (learning rate 0.5, nudge 0.5)
  learnboard train --resume runs/20261128-171502-regression   (on the board it was recorded on)
  learnboard train --resume runs/20261128-171502-regression --steps 3000   (train further)
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
                        help="tolerance controller with this relative error C/C0 in (0, 1) (or the task's)")
    parser.add_argument("--controller", choices=("adaptive", "paper"), default=None,
                        help="with --tolerance: adaptive (default; its constants from the board and "
                             "the steps) or the paper's (1e-9, x1.05 every 100 steps, halved above tau)")
    parser.add_argument("--lambda-start", type=float, default=None,
                        help="with --tolerance: first lambda once under the aim (default: adaptive "
                             "a quarter of the board's balance lambda, paper 1e-9)")
    parser.add_argument("--check-every", type=int, default=None,
                        help="with --tolerance: steps between lambda updates (default: adaptive "
                             "steps/50 in 10..100, paper 100)")
    parser.add_argument("--lambda-up", type=float, default=None,
                        help="with --tolerance: factor while under the aim (default: adaptive 2, "
                             "shrinking on reversals; paper 1.05)")
    parser.add_argument("--null-offset-every", type=int, default=None, metavar="N",
                        help="every N steps the board measures the rule's update at zero nudge "
                             "and subtracts it, per edge, from the following steps' (removes "
                             "the learning bias of twin mismatch and converter offsets; "
                             "0 = off; default: the profile's [learning] null_offset_every, "
                             "0 on most boards; docs/training.md)")
    parser.add_argument("--init", choices=("low", "uniform", "random"), default=None,
                        help="initial edge states (low = the paper's good initial condition; "
                             "default: the profile's [learning] init, uniform on most boards)")
    parser.add_argument("--alpha", type=float, default=None,
                        help=f"{ALPHA_HELP} (default: the board's; on transistor boards annealed "
                             "1.0 -> 0.2 over the session unless the profile says anneal = false)")
    parser.add_argument("--eta", type=float, default=None, help=f"{ETA_HELP} (default: the board's)")
    parser.add_argument("--every", type=int, default=None, help="telemetry every N steps (default 10)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every N steps (default 200)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the task data and of the emulated board (default 0)")
    parser.add_argument("--resume", metavar="RUN_DIR", default=None,
                        help="continue a stopped session on the board it was recorded on (its port, "
                             "followed if it moved; the board is checked by its identity); with "
                             "--steps, train a finished run further")
    parser.add_argument("--other-board", action="store_true",
                        help="with --resume: continue on another board than the recorded one "
                             "(the run log marks the change)")
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
                                every=args.check_every, start=args.lambda_start, up=args.lambda_up,
                                controller=args.controller,
                                null_offset_every=args.null_offset_every)
    every = 10 if args.every is None else args.every
    checkpoint_every = 200 if args.checkpoint_every is None else args.checkpoint_every
    for flag, v in (("--every", every), ("--checkpoint-every", checkpoint_every)):
        if v < 1:
            raise InputError("must be at least 1", field=flag)
    import math

    if args.alpha is not None and not (math.isfinite(args.alpha) and args.alpha >= 0):
        raise InputError(f"{args.alpha} must be a finite number >= 0 (the learning rate)",
                         field="--alpha")
    if args.eta is not None and not 0 < args.eta <= 1:
        raise InputError(f"{args.eta} must lie in (0, 1] (the nudge)", field="--eta")
    return TrainConfig(task=args.task or "", schedule=sched, alpha=args.alpha, eta=args.eta,
                       telemetry_every=every, checkpoint_every=checkpoint_every,
                       seed=0 if args.seed is None else args.seed, name=args.name or "")


# options that set what a run is: a resumed run keeps what it recorded
_FIXED_ON_RESUME = (("task", "--task"), ("schedule", "--schedule"), ("lam", "--lambda"),
                    ("tolerance", "--tolerance"), ("controller", "--controller"),
                    ("lambda_start", "--lambda-start"),
                    ("check_every", "--check-every"), ("lambda_up", "--lambda-up"),
                    ("init", "--init"), ("null_offset_every", "--null-offset-every"), ("alpha", "--alpha"), ("eta", "--eta"),
                    ("every", "--every"), ("checkpoint_every", "--checkpoint-every"),
                    ("seed", "--seed"), ("name", "--name"))


def _changed_on_resume(args, config) -> list[str]:
    """The options given with --resume that differ from what the run recorded (the same
    value again, e.g. the original command line repeated, is no change)."""
    import copy

    recorded = {"task": config.task, "alpha": config.alpha, "eta": config.eta,
                "every": config.telemetry_every, "checkpoint_every": config.checkpoint_every,
                "seed": config.seed, "name": config.name}
    changed, schedule_flags = [], []
    for attr, flag in _FIXED_ON_RESUME:
        value = getattr(args, attr)
        if value is None:
            continue
        if attr in recorded:
            if value != recorded[attr]:
                changed.append(flag)
        else:
            schedule_flags.append(flag)
    if schedule_flags:
        given = copy.copy(args)
        given.steps = None
        fresh = _config(given)
        fresh.schedule.stop.steps = config.schedule.stop.steps
        for key in ("init", "null_offset_every"):  # not given: the board's, as recorded
            if getattr(fresh.schedule, key) is None:
                setattr(fresh.schedule, key, getattr(config.schedule, key))
        if fresh.as_dict()["schedule"] != config.as_dict()["schedule"]:
            changed += schedule_flags
    return changed


def _resume_setup(args):
    """The run folder and configuration of ``--resume``; None for the folder when there
    is nothing to do (a finished run and no --steps beyond it)."""
    from learnboard.host.resume import (
        check_run_checkpoint,
        finished,
        recorded_board,
        resume_command,
    )
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.session import resume_config

    from learnboard.errors import InputError

    rf = RunFolder.open(args.resume)
    config = resume_config(rf)
    for flag in _changed_on_resume(args, config):
        raise InputError(f"cannot change a resumed run: it continues with the {flag[2:]} it "
                         f"recorded in config.json; drop {flag}, or start a new run without "
                         "--resume", field=flag)
    recorded_board(rf)  # a damaged run folder is named before anything else happens
    ck = check_run_checkpoint(rf)
    total = config.schedule.total_steps
    done = finished(rf)
    if args.steps is not None and args.steps != total:  # the recorded total again: no change
        at = int(ck["step"])
        if args.steps <= at:
            raise InputError(f"{args.steps} steps: the run is at step {at} already; give more",
                             field="--steps")
        config.schedule.stop.steps = args.steps
        raw = rf.read_config()
        raw["schedule"] = config.as_dict()["schedule"]
        rf.write_config({k: v for k, v in raw.items() if k != "version"})
        return rf, config
    if done is not None:
        step, reason = done
        print(f"{rf.path}: finished at step {step} (stop: {reason}); nothing to resume, the "
              f"run folder is unchanged. To train it further: "
              f"{resume_command(rf.path)} --steps N (N > {step})")
        return None, config
    return rf, config


def _open_recorded(rec, seed, run_dir):
    """``(ownership, connection)`` of the board the run was recorded on: at its recorded port, else
    where it moved (a ``learnboard emulate`` that announced a new pty, or any port whose
    firmware answers with the recorded identity). Never the built-in emulated board."""
    import os

    from learnboard.cli.connection import open_board
    from learnboard.host.ownership import Ownership, PortBusy
    from learnboard.host.resume import board_mismatch, resume_command
    from learnboard.host.serial_ports import current_port, list_ports

    from learnboard.board_id import describe
    from learnboard.errors import LearnboardError

    def attempt(port):
        own = Ownership(port, "learnboard train", run_dir)
        own.acquire()  # PortBusy: a port another program holds is not probed
        try:
            conn = open_board(port, seed=seed)
        except LearnboardError as exc:  # its first clause: what the port did (no flash advice)
            own.release()
            return None, str(exc).split(";")[0].split("?")[0]
        why = board_mismatch(rec, conn.hello, conn.label)
        if why is None:
            return own, conn
        conn.close()
        own.release()
        return None, why

    why = f"{rec.port} is gone"
    if os.path.exists(rec.port) or "://" in rec.port:
        own, why = attempt(rec.port)  # held by another program: that is the answer
        if own is not None:
            return own, why
    moved = current_port(rec.port)
    candidates = [moved] if moved != rec.port else []
    candidates += [p.device for p in list_ports(probe=True) if p.device not in (rec.port, moved)
                   and p.hello is not None and board_mismatch(rec, p.hello, p.device) is None]
    for port in candidates:
        try:
            own, conn = attempt(port)
        except PortBusy:
            continue
        if own is not None:
            import sys

            print(f"learnboard: the run's board moved from {rec.port} to {port}; resuming there",
                  file=sys.stderr, flush=True)
            return own, conn
    raise LearnboardError(
        f"not resuming {run_dir}: the run was recorded on {rec.port} (board {rec.board}, id "
        f"{describe(rec.uid)}); {why.rstrip('.')}; and no port answers as that board. The run "
        f"and its checkpoints are unchanged. Connect the board and run `{resume_command(run_dir)}` "
        f"again, or give its new port: `{resume_command(run_dir, 'PORT')}` (with --other-board to "
        "continue on another board)")


def _check_resume_board(rec, conn, args, run_dir) -> str | None:
    """Refuse to continue a run on another board than it was recorded on (unless
    --other-board): one run folder must not mix two boards' data silently. Returns the
    reason when --other-board let another board continue it (the resume event records it)."""
    from learnboard.host.resume import board_mismatch

    from learnboard.errors import LearnboardError

    reason = board_mismatch(rec, conn.hello, conn.label)
    if reason is None and not rec.in_process and getattr(conn, "emulated", False):
        reason = (f"the run was recorded on {rec.port}, not on the built-in emulated board "
                  f"({conn.label})")
    if reason is None:
        return None
    if args.other_board:
        import sys

        print(f"learnboard: continuing on another board: {reason} (the run log's resume "
              "event records it)", file=sys.stderr, flush=True)
        return reason
    raise LearnboardError(f"not resuming {run_dir}: {reason}. The run and its checkpoints are "
                          "unchanged. Connect the recorded board, or pass --other-board to "
                          "continue this run on this board")


def _default_task(board) -> str:
    """The board profile's ``[learning] task``, else the paper's regression (it learns on
    every shipped board)."""
    return getattr(getattr(board, "learning", None), "task", None) or "regression"


def _one(port, args, config, resume_dir, stop_event, live_ok, index):
    from contextlib import ExitStack

    from learnboard.cli.connection import open_board
    from learnboard.host.ownership import own_port

    board = args.board
    seed = config.seed if args.seed is None else args.seed
    rec = None
    if resume_dir is not None:
        from learnboard.host.resume import recorded_board

        rec = recorded_board(resume_dir)
        if board is None and port is None:
            board = rec.board
    with ExitStack() as held:
        if rec is not None and port is None and not rec.in_process:
            # never the built-in emulated board for a run recorded on a port
            own, conn = _open_recorded(rec, seed, resume_dir.path)
            held.callback(own.release)
        else:
            own = held.enter_context(own_port(port, "learnboard train",
                                              None if resume_dir is None else resume_dir.path))
            if port is not None and not port.startswith("emu:") and resume_dir is None:
                import sys

                from learnboard.host.calibration import fetch_if_missing

                # another lab PC: the board's own calibration (stored by `learnboard calibrate`)
                fetch_if_missing(port, log=lambda msg: print(msg, file=sys.stderr, flush=True))
            conn = open_board(port, board=board, seed=seed)
        with conn:
            return _session(conn, args, config, resume_dir, rec, stop_event, live_ok, index, own)


def _session(conn, args, config, resume_dir, rec, stop_event, live_ok, index, own):
    """A session on the open board ``conn``, whose port this process holds (``own``; None
    for an in-process board)."""
    import threading

    from learnboard.host.live import Live, Quiet
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.session import run_session

    other_board = None if rec is None else _check_resume_board(rec, conn, args, resume_dir.path)
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
    try:
        return run_session(conn, config, rf, live=live, resume=resume_dir is not None,
                           stop_event=stop_event, park_event=park_event, other_board=other_board)
    except BaseException as exc:
        said = str(exc)  # a storage error says what to do already
        if "--resume" not in said and "everything written before is intact" not in said:
            _say_resume(rf)
        _name_the_port(exc, conn)
        raise


def _name_the_port(exc: BaseException, conn) -> None:
    """A link that failed mid-session (a pulled cable, a board that stopped answering) is
    reported with its port and what to check, not as a bare protocol timeout."""
    from learnboard.host.link import BoardError

    from learnboard.errors import LinkError

    if not isinstance(exc, LinkError) or isinstance(exc, BoardError) or conn.emulated:
        return
    said = str(exc).rstrip()
    if conn.label in said:
        return
    raise LinkError(f"{conn.label}: {said} Check that the board is connected and powered (`learnboard "
                    "ports` lists the boards present).") from exc


def _say_resume(rf) -> None:
    """After a session that stopped early: the exact command that continues it."""
    import sys

    from learnboard.host.resume import resume_command

    if rf.latest_checkpoint() is not None:
        print(f"resume with: {resume_command(rf.path)}", file=sys.stderr, flush=True)


def _steady_words(d: dict) -> str:
    """", steady" / ", not steady, 3 bursts" (the verdict on the telemetry history)."""
    if d.get("steady_state") is None:
        return ""
    words = ", steady" if d["steady_state"] else ", not steady"
    if d.get("bursts"):
        words += f", {d['bursts']} burst{'s' if d['bursts'] > 1 else ''}"
    return words + (", C/C0 below the floating-point floor" if d.get("below_floor") else "")


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

    from learnboard.host.power import power_line

    from learnboard.errors import InputError, LearnboardError

    ports = args.port or [None]
    resume_dir = None
    if args.resume:
        if len(ports) > 1:
            raise InputError("--resume continues one run: give at most one --port", field="--resume")
        resume_dir, config = _resume_setup(args)
        if resume_dir is None:
            return 0
        from learnboard.host.runlog import check_resumable

        # damage inside the log is refused before a board is opened or its port taken (the
        # session checks again): the user hears it at once, and no board is held for nothing
        check_resumable(resume_dir.log_path)
    else:
        if args.other_board:
            raise InputError("only with --resume (continue a run on another board)",
                             field="--other-board")
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
        if s.stop_reason == "interrupted":
            from learnboard.host.resume import resume_command

            print(f"resume with: {resume_command(s.run_dir)}", file=sys.stderr)
        if not args.no_plot:
            _plot(s.run_dir)
        if args.json:
            print(json.dumps(s.as_dict()))
        else:
            d = s.as_dict()
            tail = d.get("tail_relative_error")
            tail = "" if tail is None else f"tail mean {tail:.3g}"
            judged = f"{tail}, " if tail else ""
            reached = (f" ({tail})" if tail else "") if d["reached"] is None else (
                f" ({judged}within tolerance {d['tolerance']:.3g})" if d["reached"] else
                f" ({judged}tolerance {d['tolerance']:.3g} not reached)")
            test = f", test {d['test_error']:.3g}" if d["test_error"] is not None else ""
            acc = f", accuracy {d['accuracy']:.1%}" if d["accuracy"] is not None else ""
            print(f"{d['port']}: {d['steps']} steps ({d['stop_reason']}), C/C0 {d['relative_error']:.3g}"
                  f"{reached}{test}{acc}, {power_line(d)}, lambda {d['lambda']:.3g}"
                  f"{_steady_words(d)} -> {d['run_dir']}")
    return 1 if failed else 0
