"""A repaired copy of a damaged run folder (``learnboard repair RUN``); the run itself is
never changed.

The copy holds every file of the run but the damaged ones. Its telemetry log holds every
good record byte for byte (checksums included), in place of each damaged stretch a
``gap`` event saying what was skipped, and no cut tail; its ``checkpoints/`` holds the good
checkpoints only. A session continues the copy with ``learnboard train --resume COPY``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from learnboard.errors import InputError, LearnboardError

from .records import Damage
from .runfolder import RunFolder, write_bytes_atomic
from .runlog import inspect_log, pack


@dataclass
class Repair:
    """What :func:`repair_run` found and wrote."""

    run: Path
    out: Path | None = None  # the repaired copy; None: nothing to repair
    damaged: list[Damage] = field(default_factory=list)  # inside the log, each now a gap event
    tail: Damage | None = None  # a cut tail, left out of the copy
    checkpoints: list[tuple[Path, str]] = field(default_factory=list)  # damaged ones, left out
    records: int = 0  # good records copied
    gaps: int = 0  # gap events written


def gap_event(d: Damage, source: Path) -> dict:
    """The record that stands in a repaired log where ``d`` was skipped; it takes the index
    of the first record lost there."""
    rec = {"kind": "event", "name": "gap", "reason": d.reason, "offset": d.offset, "bytes": d.length,
           "skipped": d.records, "source": str(source)}
    if d.first_i is not None:
        rec["i"] = d.first_i
    rec["t"] = time.time()
    return rec


def default_out(run: Path) -> Path:
    """``RUN-repaired`` (``-repaired-2``, ... when taken)."""
    out, n = run.with_name(run.name + "-repaired"), 1
    while out.exists():
        n += 1
        out = run.with_name(f"{run.name}-repaired-{n}")
    return out


def repair_run(run_dir: str | Path, out: str | Path | None = None) -> Repair:
    """Write a repaired copy of the run folder at ``run_dir`` into ``out`` (default
    :func:`default_out`; it must not exist yet) when its log or a checkpoint is damaged."""
    rf = RunFolder(run_dir)
    if not rf.path.is_dir() or not rf.config_path.is_file():
        raise InputError("not a run folder (no config.json); give a folder made by `learnboard train`",
                         source=str(rf.path))
    try:
        data = rf.log_path.read_bytes()
    except FileNotFoundError:
        data = b""
    except OSError as exc:
        raise LearnboardError(f"{rf.log_path}: cannot read the telemetry log: {exc.strerror}") from None
    from .records import scan_bytes

    scan = scan_bytes(data, spans=True)
    rep = Repair(run=rf.path, damaged=scan.damaged, tail=scan.tail, checkpoints=rf.damaged_checkpoints(),
                 records=len(scan.records))
    if not (scan.damaged or scan.tail or rep.checkpoints):
        return rep
    dest = Path(out) if out is not None else default_out(rf.path)
    if dest.exists():
        raise InputError("is already there; a repair never writes over anything: give another --out",
                         source=str(dest), field="--out")
    bad = {p.name for p, _ in rep.checkpoints}
    try:
        dest.mkdir(parents=True)
        for item in sorted(rf.path.iterdir()):
            if item.name == rf.log_path.name:
                continue
            if item.name == rf.checkpoints_dir.name and item.is_dir():
                (dest / item.name).mkdir()
                for ck in rf.checkpoints():
                    if ck.name not in bad:
                        shutil.copy2(ck, dest / item.name / ck.name)
            elif item.is_dir():
                shutil.copytree(item, dest / item.name, symlinks=True)
            else:
                shutil.copy2(item, dest / item.name, follow_symlinks=False)
    except OSError as exc:
        raise LearnboardError(f"{dest}: cannot write the repaired copy ({exc.strerror}); "
                              "free some space or give another --out") from None
    write_bytes_atomic(dest / rf.log_path.name, _repaired_log(data, scan.spans, scan.damaged, rf.log_path))
    rep.gaps = len(scan.damaged)
    rep.out = dest
    check = inspect_log(dest / rf.log_path.name)
    if check.damaged or check.tail or len(check.records) != rep.records + rep.gaps:
        raise LearnboardError(f"{dest / rf.log_path.name}: the repaired log does not read back whole; "
                              "keep the original run and report this")
    return rep


def _repaired_log(data: bytes, spans: list[tuple[int, int]], damaged: list[Damage], source: Path) -> bytes:
    """The good records' bytes in file order, a gap event where each damaged stretch was."""
    out = bytearray()
    gaps = iter(sorted(damaged, key=lambda d: d.offset))
    gap = next(gaps, None)
    for start, end in spans:
        while gap is not None and gap.offset < end and gap.offset <= start:
            out += pack(gap_event(gap, source))
            gap = next(gaps, None)
        out += data[start:end]
    return bytes(out)
