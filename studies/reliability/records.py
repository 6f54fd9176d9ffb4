"""Mid-file corruption of a run's telemetry log: one byte changed at random offsets of a
real run folder, each time on a fresh copy, and what every command makes of it.

Checked per offset, through the command line as a user meets it:

- the damaged record is the one holding the byte; every other record reads back as written;
- inside the log: ``export`` exits 0 with every other telemetry row and one warning line
  naming the offset; ``train --resume`` exits 2 naming the offset and leaves the log byte for
  byte; ``repair`` writes a copy with every other record byte-identical and one gap marker;
- in the last record (a damaged tail, as a crash leaves): ``export`` drops it silently.

``lost`` counts good records that did not survive into the repaired copy (0 when all is
well); ``mixed`` is not measured here (see the resume campaigns).
"""

from __future__ import annotations

import contextlib
import csv
import io
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from learnboard.host.records import scan_bytes
from learnboard.host.runlog import read_log


@dataclass
class CorruptionShot:
    offset: int
    record: int  # index of the record holding the byte
    tail: bool  # it was the last record
    export_ok: bool = False  # exit 0, every other row, a warning naming the offset (none for a tail)
    resume_refused: bool = False  # exit 2, the offset named, the log unchanged (tail: not tried)
    repaired: bool = False  # the copy: every other record byte for byte + one gap marker (tail: no gap)
    lost: int = 0  # good records missing from the repaired copy


@dataclass
class CorruptionReport:
    records: int
    shots: list[CorruptionShot] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.export_ok and (s.tail or s.resume_refused) and s.repaired and s.lost == 0
                   for s in self.shots)


def crashed_run(runs: str | Path, records: int = 300, steps: int = 290) -> Path:
    """A real ``learnboard train`` session on the emulated board (telemetry every step,
    checkpoint every 100), cut as a host crash would leave it after ``records`` records: no
    summary, no checkpoint the log does not name, the log ending on a whole record."""
    from learnboard.host.runfolder import RunFolder

    code, _, err = _main(["train", "--steps", str(steps), "--every", "1", "--checkpoint-every", "100",
                          "--runs", str(runs), "--name", "lab", "--quiet", "--no-plot", "--json"])
    if code != 0:
        raise RuntimeError(f"the session failed: {err}")
    rf = RunFolder.open(max(Path(runs).glob("*-lab")))
    scan = scan_bytes(rf.log_path.read_bytes(), spans=True)
    if len(scan.records) < records:
        raise RuntimeError(f"the session logged {len(scan.records)} records, fewer than {records}")
    with open(rf.log_path, "r+b") as f:
        f.truncate(scan.spans[records - 1][1])
    rf.summary_path.unlink()
    named = {r["file"] for r in scan.records[:records] if r["kind"] == "checkpoint"}
    for ck in rf.checkpoints():
        if ck.name not in named:
            ck.unlink()
    return rf.path


def _main(args: list[str]) -> tuple[int, str, str]:
    from learnboard.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    return code, out.getvalue(), err.getvalue()


def _rows(path: Path) -> int:
    with open(path, newline="") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def run_corruption(run_dir: str | Path, work: str | Path, *, offsets: int = 20, seed: int = 0,
                   resume: bool = True) -> CorruptionReport:
    """Damage one byte of ``run_dir``'s log at ``offsets`` random offsets (seeded), each on a
    copy in ``work``; ``resume``: also check that ``train --resume`` refuses (before it opens
    the run's board)."""
    run_dir, work = Path(run_dir), Path(work)
    data = (run_dir / "telemetry.msgpack").read_bytes()
    clean = scan_bytes(data, spans=True)
    assert not clean.damaged and clean.tail is None, "start from an undamaged log"
    n = len(clean.records)
    n_tlm = sum(r.get("kind") == "tlm" for r in clean.records)
    rng = random.Random(seed)
    report = CorruptionReport(records=n)
    for k in range(offsets):
        off = rng.randrange(len(data))
        j = next(i for i, (s, e) in enumerate(clean.spans) if s <= off < e)
        shot = CorruptionShot(off, j, j == n - 1)
        run = work / f"{k:02d}-{run_dir.name}"
        shutil.copytree(run_dir, run)
        bad = bytearray(data)
        bad[off] = (bad[off] + rng.randrange(1, 256)) % 256
        (run / "telemetry.msgpack").write_bytes(bytes(bad))
        start = clean.spans[j][0]
        lost_tlm = clean.records[j].get("kind") == "tlm"

        code, _, err = _main(["export", str(run), "--csv"])
        rows = _rows(run / "export" / "telemetry.csv") if code == 0 else -1
        named = f"at byte {start} " in err
        shot.export_ok = code == 0 and rows == n_tlm - lost_tlm and (named != shot.tail)

        if resume and not shot.tail:
            code, _, err = _main(["train", "--resume", str(run), "--quiet", "--no-plot"])
            shot.resume_refused = (code == 2 and f"damaged at byte {start} " in err
                                   and (run / "telemetry.msgpack").read_bytes() == bytes(bad))

        copy = work / f"{k:02d}-repaired"
        code, _, _ = _main(["repair", str(run), "--out", str(copy)])
        if code == 0 and copy.is_dir():
            got = scan_bytes((copy / "telemetry.msgpack").read_bytes(), spans=True)
            raw = (copy / "telemetry.msgpack").read_bytes()
            kept = {raw[s:e] for s, e in got.spans}
            want = [data[s:e] for i, (s, e) in enumerate(clean.spans) if i != j]
            shot.lost = sum(1 for w in want if w not in kept)
            gaps = [r for r in read_log(copy / "telemetry.msgpack", warn=False) if r.get("name") == "gap"]
            shot.repaired = (not got.damaged and got.tail is None and shot.lost == 0
                             and len(gaps) == (0 if shot.tail else 1))
        report.shots.append(shot)
    return report
