"""``learnboard repair``: a repaired copy of a run folder whose log or checkpoints are damaged."""

from __future__ import annotations

import argparse

HELP = "write a repaired copy of a run folder whose telemetry log or checkpoints are damaged"
DESCRIPTION = """\
Check a run folder's telemetry log (every record carries a checksum) and checkpoints, and
when something is damaged write a repaired copy — the run folder itself is never changed.
The copy (RUN_DIR-repaired, or --out) holds every good record byte for byte, a `gap`
event where damaged records were skipped (what, where, how many), no record cut by a
crash at the end, and only the good checkpoints. `learnboard train --resume` continues
the copy. A run with nothing damaged is left alone (exit 0). Details: docs/runs.md#checksums."""
EPILOG = """\
examples:
  learnboard repair runs/20261128-171502-regression
      writes runs/20261128-171502-regression-repaired/
  learnboard train --resume runs/20261128-171502-regression-repaired
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `learnboard train`")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="where the repaired copy goes (default: RUN_DIR-repaired; must not exist)")


def run(args: argparse.Namespace) -> int:
    from learnboard.host.records import where
    from learnboard.host.repair import repair_run

    rep = repair_run(args.run_dir, args.out)
    log = rep.run / "telemetry.msgpack"
    for d in rep.damaged:
        n = "an unknown number of records" if d.records is None else \
            f"{d.records} record{'' if d.records == 1 else 's'}"
        print(f"{log}: skipped {n} at {where([d])} ({d.length} bytes, {d.reason})")
    if rep.tail is not None:
        print(f"{log}: left out {rep.tail.length} bytes cut at the end ({rep.tail.reason})")
    for path, why in rep.checkpoints:
        print(f"{path}: damaged ({why}); left out")
    if rep.out is None:
        print(f"{rep.run}: nothing to repair: every record and checkpoint checks out")
        return 0
    gaps = f" + {rep.gaps} gap marker{'' if rep.gaps == 1 else 's'}" if rep.gaps else ""
    print(f"wrote {rep.out} ({rep.records} records{gaps}); the run itself is unchanged")
    print(f"continue it with: learnboard train --resume {rep.out}")
    return 0
