"""``learnboard calibrate``: measure a board's ADC and edge devices through the protocol."""

from __future__ import annotations

import argparse

HELP = "measure a board's ADC gain/offset and per-edge device parameters, and store them"
DESCRIPTION = """\
Measure, through the board's protocol only, what the physics needs from this very
board: ADC gain and offset of the node channel against the input drivers at known codes;
per digipot edge its end-to-end scale and wiper resistance; per transistor edge its
threshold and gain (fitted to the level-1 model at many gate settings). Every estimate
comes with its standard uncertainty. The board's edges are restored and it is parked at
the end. The calibration is stored in the user's data directory under the board id and
description hash ($LEARNBOARD_DATA/calibrations/, default ~/.local/share/learnboard/),
and in --out FILE if given (e.g. a run folder's calibration.json). On-board storage is
not available (the firmware has no file-write command). See docs/calibration.md."""
EPILOG = """\
examples:
  learnboard calibrate                                   (the emulated gen2-clln board)
  learnboard calibrate --port emu:gen1-digipot --out cal.json
  learnboard calibrate --port /dev/ttyACM0 --board gen2-clln --json
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


def _summary(cal: dict, path, out) -> None:
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
    t.add_row("stored", str(path) + (f" and {out}" if out else ""))
    Console().print(t)


def run(args: argparse.Namespace) -> int:
    import json

    from learnboard.errors import InputError
    from learnboard.host.calibrate import calibrate, save_calibration, seal
    from learnboard.host.connect import open_board

    if args.configs is not None and args.configs < 4:
        raise InputError("--configs needs at least 4 configurations", field="--configs")
    with open_board(args.port, board=args.board) as conn:
        if conn.board is None:
            raise InputError(f"{conn.label}: the board's description is not known here; pass "
                             "--board FILE", field="--board")
        cal = seal(calibrate(conn.link, conn.board, configs=args.configs, repeats=args.repeats,
                             seed=args.seed, label=conn.label))
    path = save_calibration(cal)
    if args.out:
        save_calibration(cal, args.out)
    if args.json:
        print(json.dumps({**cal, "stored": [str(path)] + ([args.out] if args.out else [])}))
    else:
        _summary(cal, path, args.out)
    return 0
