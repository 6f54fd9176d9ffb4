"""``learnboard calibrate``: measure a board's ADC and edge devices through the protocol."""

from __future__ import annotations

import argparse
import contextlib

HELP = "measure a board's ADC gain/offset and per-edge device parameters, and store them"
DESCRIPTION = """\
Measure, through the board's protocol only, what the physics needs from this very
board: ADC gain and offset of the node channel against the input drivers at known codes;
per digipot edge its end-to-end scale and wiper resistance; per transistor edge its
threshold and gain (fitted to the level-1 model at many gate settings). Every estimate
comes with its standard uncertainty. The board's edges are restored and it is parked at
the end.

Where it is stored: on this host in the user's data directory under the board id and
description hash ($LEARNBOARD_DATA/calibrations/, default ~/.local/share/learnboard/),
in --out FILE if given (e.g. a run folder's calibration.json), and - on a serial board -
on the board itself as /calibration.json next to board.json (the firmware is stopped
for a moment, the file copied in the raw REPL, the board reset and checked by hello;
the firmware never reads the file). On another lab PC, `learnboard calibrate --pull
--port P` fetches the board's copy into that host's data directory without measuring.
The in-process emulated board (no --port, emu:NAME) has no filesystem: host copy only.
See docs/calibration.md."""
EPILOG = """\
examples:
  learnboard calibrate                                   (the emulated gen2-clln board)
  learnboard calibrate --port emu:gen1-digipot --out cal.json
  learnboard calibrate --port /dev/ttyACM0 --board gen2-clln --json
  learnboard calibrate --port /dev/ttyACM0 --pull        (another PC: fetch the board's copy)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", metavar="P", default=None,
                        help="serial port of the board, or emu:PROFILE (default: the emulated "
                             "default board)")
    parser.add_argument("--board", metavar="FILE|NAME", default=None,
                        help="the description the board runs (default: the one its hello names)")
    parser.add_argument("--out", metavar="FILE", default=None,
                        help="also write the calibration to FILE (e.g. a run folder's calibration.json)")
    parser.add_argument("--json", action="store_true", help="print the calibration as one JSON object")
    parser.add_argument("--configs", type=int, default=None, metavar="N",
                        help="edge configurations measured (default 48 on digipot, 96 on transistor "
                             "boards; errors shrink as 1/sqrt(N))")
    parser.add_argument("--repeats", type=int, default=2, metavar="N",
                        help="measurements averaged per reading (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random configurations")
    parser.add_argument("--pull", action="store_true",
                        help="measure nothing: fetch the calibration the board keeps (/calibration.json) "
                             "into this host's data directory (and --out)")
    parser.add_argument("--host-only", action="store_true",
                        help="do not copy the calibration onto the board (serial boards)")


def _summary(cal: dict, stored: list[str]) -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"calibration of {cal['board']} ({cal['port']})", show_header=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    for ch, c in cal["adc"]["channels"].items():
        t.add_row(f"ADC channel {ch}", f"gain {c['gain']:.5f} ± {c['gain_sd']:.5f}, offset "
                  f"{c['offset_v'] * 1e3:+.3f} ± {c['offset_sd'] * 1e3:.3f} mV (node volts)")
    e = cal["edges"]
    if e["kind"] == "digipot":
        s, rw = np.array(e["r_scale"]), np.array(e["r_wiper"])
        t.add_row("end-to-end scale", f"{s.min():.3f} … {s.max():.3f} (median ± "
                  f"{np.median(e['r_scale_sd']):.3f})")
        t.add_row("wiper", f"{rw.min():.0f} … {rw.max():.0f} Ω (median ± "
                  f"{np.median(e['r_wiper_sd']):.0f} Ω)")
    elif e["kind"] == "transistor":
        vt, beta = np.array(e["vt"]), np.array(e["beta"])
        t.add_row("threshold", f"{vt.min():.3f} … {vt.max():.3f} V (median ± "
                  f"{np.median(e['vt_sd']) * 1e3:.1f} mV)")
        t.add_row("gain beta", f"{beta.min():.3g} … {beta.max():.3g} A/V² (median ± "
                  f"{np.median(np.array(e['beta_sd']) / beta) * 100:.1f} %)")
    if e.get("unmeasurable"):
        t.add_row("not measurable", f"edges {e['unmeasurable']} (between driven nodes): ratings")
    for m in cal["missing"]:
        t.add_row("missing", m)
    t.add_row("stored", "\n".join(stored))
    Console().print(t)


@contextlib.contextmanager
def _progress(quiet: bool):
    """A transient progress bar on stderr (a terminal only): ADC, then edge configurations."""
    import sys

    if quiet or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("calibrating: {task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, int] = {}

        def update(stage: str, done: int, total: int) -> None:
            name = {"adc": "ADC gain and offset", "edges": "edge configurations"}.get(stage, stage)
            if stage not in tasks:
                tasks[stage] = bar.add_task(name, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield update


def _say(json_out: bool):
    import sys

    return lambda msg: print(msg, file=sys.stderr if json_out else sys.stdout, flush=True)


def run(args: argparse.Namespace) -> int:
    import json

    from learnboard.host.ownership import own_port

    with own_port(args.port, "learnboard calibrate"):
        cal, stored = _measure_or_pull(args)
    if args.json:
        print(json.dumps({**cal, "stored": stored}))
    else:
        _summary(cal, stored)
    return 0


def _measure_or_pull(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The calibration (measured, or pulled with --pull) and where it was stored."""
    from learnboard.cli.connection import EMULATED_PREFIX, open_board
    from learnboard.host.calibration import (
        FILE_NAME,
        calibrate,
        pull_from_board,
        save_calibration,
        seal,
        store_on_board,
    )
    from learnboard.host.flashing import needs_flash

    from learnboard.errors import InputError, Interrupted

    in_process = args.port is None or args.port.startswith(EMULATED_PREFIX)
    if args.pull:
        if in_process:
            raise InputError("the in-process emulated board has no filesystem, so it keeps no calibration; "
                             "measure it with `learnboard calibrate` (stored on this host), or give the port "
                             "of a board", field="--pull")
        from learnboard.boards import load_board

        cal, _hello = pull_from_board(args.port, load_board(args.board) if args.board else None,
                                      log=None if args.json else _say(False))
        stored = [str(save_calibration(cal))] + ([args.out] if args.out else [])
        if args.out:
            save_calibration(cal, args.out)
        stored[0] += f" (from {args.port}:/{FILE_NAME})"
    else:
        if args.configs is not None and args.configs < 4:
            raise InputError("--configs needs at least 4 configurations", field="--configs")
        with open_board(args.port, board=args.board) as conn:
            if conn.board is None:
                raise InputError(f"{conn.label}: the board's description is not known here; pass "
                                 "--board FILE", field="--board")
            try:
                with _progress(args.json) as progress:
                    cal = seal(calibrate(conn.link, conn.board, configs=args.configs, repeats=args.repeats,
                                         seed=args.seed, label=conn.label, progress=progress))
            except KeyboardInterrupt:
                # calibrate() puts the edges back and parks the board on the way out
                raise Interrupted(f"calibrate of {conn.label} interrupted while measuring: nothing was stored; "
                                  "the board's edges are back as they were and it is parked") from None
        stored = [str(save_calibration(cal))]
        if args.out:
            save_calibration(cal, args.out)
            stored.append(args.out)
        if not in_process and not args.host_only:
            say = _say(args.json)
            try:  # a Ctrl-C right after the announcement counts as during the copy
                say(f"copying the calibration onto the board ({args.port}:/{FILE_NAME}) ...")
                report = store_on_board(args.port, cal, log=lambda msg: say("  " + msg))
            except (KeyboardInterrupt, Interrupted):
                raise Interrupted(f"calibrate of {args.port} interrupted while copying the calibration onto "
                                  f"the board (kept on this host: {stored[0]}): {needs_flash(args.port)}") from None
            what = "unchanged" if not report.written else f"{report.bytes_written} B"
            stored.append(f"{args.port}:/{FILE_NAME} ({what}; board answers again)")
        elif in_process:
            stored.append("(not on the board: the in-process emulated board has no filesystem)")
    return cal, stored
