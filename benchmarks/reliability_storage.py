"""Storage-fault campaign, long version: a full disk (ENOSPC) and a read-only file system
(EROFS) at EVERY write a short `learnboard train` session makes, one run per fault.

    python benchmarks/reliability_storage.py            # both errnos, every write point
    python benchmarks/reliability_storage.py --quick    # the first occurrence of each kind

A clean session (emulated gen1-digipot, 20 steps, checkpoint every 10, figures) is recorded
first: every mkdir / open-for-writing / os.open / write / fsync / replace under the runs
folder. Then each recorded call, in turn, fails. Checked per run (as in
tests/test_reliability_storage.py; the fault injector is
learnboard.studies.reliability.storage): exit status 2 (0 with a
warning for figures), one line naming a path under the runs folder and what to do, the log
readable with consecutive indices and no cut tail, every JSON file whole, no temp files;
for a full disk whose message says --resume, the resumed run finishes all 20 steps with the
records written before unchanged.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learnboard.cli import main  # noqa: E402
from learnboard.studies.reliability.storage import DiskFault  # noqa: E402

from tests.test_reliability_storage import TRAIN, _run_dir, assert_intact  # noqa: E402

HINTS = re.compile(r"free some space|--runs|--resume|retry with|--out")


def _train(runs: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([*TRAIN, "--runs", str(runs), *extra])
    return code, err.getvalue().strip()


def _category(rel: str) -> str:
    return re.sub(r"^\d{8}-\d{6}-regression", "RUN", rel)


def record() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        fault = DiskFault(Path(tmp) / "runs", op=None).install(mp)
        code, msg = _train(Path(tmp) / "runs")
        assert code == 0, msg
        return [(op, _category(rel)) for op, rel in fault.seen]


def one(op: str, cat: str, nth: int, err: int) -> dict:
    pattern = "^" + re.escape(cat).replace("RUN", r"\d{8}-\d{6}-regression") + "$"
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        figures = cat.startswith("RUN/figures")
        with pytest.MonkeyPatch.context() as mp:
            fault = DiskFault(runs, op, pattern, nth, err).install(mp)
            code, msg = _train(runs, *(() if figures else ("--no-plot",)))
        row = {"fired": bool(fault.fired), "code": code, "msg": msg}
        if not fault.fired:
            return row
        lines = msg.splitlines()
        row["absorbed"] = code == 0 and not msg  # e.g. mkdir(exist_ok=True) of an existing folder
        row["clear"] = row["absorbed"] or (len(lines) == 1 and "Traceback" not in msg and str(runs) in msg
                        and bool(HINTS.search(msg)) and (code == 2 or (figures and code == 0)))
        run = _run_dir(runs)
        try:
            found = assert_intact(run)
            row["intact"] = True
        except AssertionError as exc:
            row["intact"], found = False, {}
            row["msg"] += f" | NOT INTACT: {exc}"
        if err == errno.ENOSPC and "--resume" in msg and run is not None:
            before = found.get("records", [])
            code2, msg2 = _train(runs, "--no-plot", "--resume", str(run))
            after = assert_intact(run).get("records", [])
            row["resumed"] = (code2 == 0 and after[: len(before)] == before
                              and after[-1]["kind"] == "summary" and after[-1]["steps"] == 20)
            if not row["resumed"]:
                row["msg"] += f" | RESUME: {code2} {msg2}"
        return row


def main_(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the first occurrence of each kind")
    args = ap.parse_args(argv)
    t0 = time.process_time()
    calls = record()
    seen: Counter = Counter()
    points = []
    for op, cat in calls:
        seen[(op, cat)] += 1
        if not args.quick or seen[(op, cat)] == 1:
            points.append((op, cat, seen[(op, cat)]))
    print(f"{len(calls)} write calls in a clean 20-step session; {len(points)} fault points x 2 errnos")
    print("| errno | call | path | occurrence | exit | clear one-line error | intact | resumed |")
    print("|---|---|---|---|---|---|---|---|")
    totals: Counter = Counter()
    bad = []
    for err in (errno.ENOSPC, errno.EROFS):
        for op, cat, nth in points:
            r = one(op, cat, nth, err)
            totals["runs"] += 1
            if not r["fired"]:
                totals["not reached"] += 1
                continue
            totals["fired"] += 1
            totals["clear"] += r["clear"]
            totals["absorbed (session fine)"] += r["absorbed"]
            totals["intact"] += r["intact"]
            if "resumed" in r:
                totals["resume tried"] += 1
                totals["resumed"] += r["resumed"]
            clear = "absorbed" if r["absorbed"] else r["clear"]
            print(f"| {errno.errorcode[err]} | {op} | {cat} | {nth} | {r['code']} | {clear} "
                  f"| {r['intact']} | {r.get('resumed', '-')} |")
            if not (r["clear"] and r["intact"] and r.get("resumed", True)):
                bad.append((errno.errorcode[err], op, cat, nth, r["msg"]))
    print()
    print(", ".join(f"{k}: {v}" for k, v in totals.items()),
          f"; CPU {time.process_time() - t0:.0f} s")
    for b in bad:
        print("PROBLEM:", *b)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main_())
