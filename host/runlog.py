"""The append-only telemetry log of a run: one msgpack map per record.

Every record gets ``"i"`` (consecutive record index from 0), ``"t"`` (host unix time,
seconds) and, as its last entry, ``"crc"``: a checksum of the rest (the rule is in
:mod:`learnboard.host.records` and docs/runs.md). Records are buffered in memory and written
with one ``os.write`` when due — at least once a second, by :meth:`RunLog.append` and by a
small flusher thread when appends pause — and ``fsync``-ed at checkpoints
(:meth:`RunLog.sync`). A host killed mid-run therefore loses at most the last second of
telemetry, and at worst leaves one record cut at the end of the file, which
:func:`read_log` ignores and ``RunLog(path, resume=True)`` truncates before continuing the
index.

Damage inside the log (a changed byte, a checksum that does not match) is never truncated:
readers skip the damaged records and go on at the next good one (:func:`read_log` says so
in one line on stderr), and ``RunLog(path, resume=True)`` refuses, naming the byte offset
(``learnboard repair`` writes a repaired copy to resume instead).

A failed write (disk full, read-only file system) truncates the file back to its last
complete record, so nothing already written is damaged, and raises
:class:`~learnboard.errors.LearnboardError` naming the file; the log refuses further
appends after that.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from learnboard.errors import LearnboardError

from .records import CRC, LogScan, damage_warning, resume_refusal, scan_bytes, seal
from .records import is_record as is_record  # part of this module's API (the follower uses it)

FLUSH_INTERVAL_S = 0.5
"""Buffered records reach the file at least this often (the promise is one second)."""


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (tuple, set)):
        return list(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot log a {type(obj).__name__}")


def pack(record: dict, packer: msgpack.Packer | None = None) -> bytes:
    """The bytes of one record with its checksum (numpy scalars and arrays become plain
    values; a ``crc`` the record brings is replaced). ``packer``: one to reuse (faster; not
    shared between threads)."""
    if CRC in record:
        record = {k: v for k, v in record.items() if k != CRC}
    body = (packer or _packer()).pack(record)
    return seal(body, len(record))


def _packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True, default=_default, autoreset=True)


def inspect_log(path: str | Path, *, spans: bool = False) -> LogScan:
    """Everything reading the log at ``path`` finds: the good records, the damage inside it
    (with offsets) and a cut tail (see :class:`~.records.LogScan`); an empty scan when
    there is no log yet."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return LogScan()
    except OSError as exc:
        raise LearnboardError(f"{path}: cannot read the telemetry log: {exc.strerror}") from None
    return scan_bytes(data, spans=spans)


def scan_log(path: str | Path) -> tuple[list[dict], int]:
    """``(records, intact_bytes)``: every good record and where the last one ends (damaged
    records are skipped: :func:`inspect_log` says where)."""
    scan = inspect_log(path)
    return scan.records, scan.end


def read_log(path: str | Path, *, warn: bool = True) -> list[dict]:
    """Every good record of a log (``crc`` removed); a record cut by a crash at the end is
    ignored, and damaged records inside it are skipped with one line on stderr (``warn``)."""
    scan = inspect_log(path)
    line = damage_warning(path, scan.damaged) if warn else None
    if line:
        print(line, file=sys.stderr, flush=True)
    return scan.records


def check_resumable(path: str | Path) -> None:
    """Raise a LearnboardError naming the byte offset when the log at ``path`` has damage
    with good records after it (continuing it would cut them off)."""
    scan = inspect_log(path, spans=True)
    if scan.damaged:
        raise LearnboardError(resume_refusal(path, scan))


def _resume_hint(path: Path) -> str:
    """What to do once there is space again: resume when the run folder holding ``path`` has a
    checkpoint, else start again (a run without a checkpoint cannot be resumed)."""
    for run in (Path(path).parent, Path(path).parent.parent):
        if (run / "config.json").is_file():
            if any((run / "checkpoints").glob("step-*.json")):
                return f"continue with `learnboard train --resume {run}`"
            break
    return "start the session again (it has no checkpoint to resume from yet)"


def _disk_message(path: Path, exc: OSError, what: str = "the telemetry log") -> str:
    if exc.errno == errno.ENOSPC:
        hint = f"the disk is full; free some space and {_resume_hint(path)}"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "the run folder is not writable; choose another with --runs"
    else:
        hint = exc.strerror or str(exc)
    return f"{path}: cannot write {what} ({hint}); everything written before is intact"


class RunLog:
    """Append-only msgpack telemetry log; see the module docstring.

    Args:
        path: the log file.
        resume: continue an existing log after its last complete record (a cut record
            at the end is removed); without it an existing non-empty log is an error.
        flush_interval: seconds between writes of buffered records (at most 1).
    """

    def __init__(self, path: str | Path, resume: bool = False, *,
                 flush_interval: float = FLUSH_INTERVAL_S):
        self.path = Path(path)
        self.flush_interval = min(1.0, flush_interval)
        self.next_index = 0
        self.last: dict | None = None
        if resume:
            scan = inspect_log(self.path, spans=True)
            if scan.damaged:  # never truncate good records after damage
                raise LearnboardError(resume_refusal(self.path, scan))
            records, end = scan.records, scan.end
            if records:
                self.last = records[-1]
                self.next_index = int(records[-1].get("i", len(records) - 1)) + 1
        elif self.path.exists() and self.path.stat().st_size > 0:
            raise LearnboardError(f"{self.path}: a telemetry log is already there; "
                                  "continue it with `learnboard train --resume <run folder>`")
        else:
            end = 0
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)
        try:
            self._fd = os.open(self.path, flags, 0o644)
            os.ftruncate(self._fd, end)  # drop a record cut by a crash
            os.lseek(self._fd, end, os.SEEK_SET)
        except OSError as exc:
            raise LearnboardError(_disk_message(self.path, exc)) from None
        self._size = end
        self._buf = bytearray()
        self._packer = _packer()  # used under the lock only
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()
        self._failed: str | None = None
        self._closed = False
        self._wake = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="runlog-flush", daemon=True)
        self._flusher.start()

    # -- writing -------------------------------------------------------------------------

    def append(self, record: dict) -> int:
        """Add ``record`` (with ``"i"`` and ``"t"`` set) and return its index."""
        with self._lock:
            self._check()
            i = self.next_index
            rec = dict(record)
            rec["i"] = i
            rec["t"] = time.time()
            self._buf += pack(rec, self._packer)
            self.next_index = i + 1
            self.last = rec
            if time.monotonic() - self._last_flush >= self.flush_interval:
                self._write_locked()
        return i

    def flush(self) -> None:
        """Write buffered records to the file (the OS may still hold them in memory)."""
        with self._lock:
            self._check()
            self._write_locked()

    def sync(self) -> None:
        """Flush and fsync: what is logged so far survives a power cut (checkpoints)."""
        with self._lock:
            self._check()
            self._write_locked()
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self._failed = _disk_message(self.path, exc)
                raise LearnboardError(self._failed) from None

    def close(self) -> None:
        """Flush, fsync and close; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            try:
                if self._failed is None:
                    self._write_locked()
                    try:
                        os.fsync(self._fd)
                    except OSError as exc:
                        self._failed = _disk_message(self.path, exc)
                        raise LearnboardError(self._failed) from None
            finally:
                self._closed = True
                self._wake.set()
                os.close(self._fd)

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _check(self) -> None:
        if self._closed:
            raise LearnboardError(f"{self.path}: the telemetry log is closed")
        if self._failed is not None:
            raise LearnboardError(self._failed)

    def _write_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._buf:
            return
        data = bytes(self._buf)
        done = 0
        try:
            while done < len(data):
                done += os.write(self._fd, data[done:])
        except OSError as exc:
            # keep the file ending on a complete record: cut what part of the batch landed
            try:
                os.ftruncate(self._fd, self._size)
                os.lseek(self._fd, self._size, os.SEEK_SET)
            except OSError:
                pass  # the reader ignores a cut tail anyway
            self._failed = _disk_message(self.path, exc)
            raise LearnboardError(self._failed) from None
        self._size += len(data)
        self._buf.clear()

    def _flush_loop(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval / 2)
            with self._lock:
                if self._closed or self._failed is not None:
                    return
                if self._buf and time.monotonic() - self._last_flush >= self.flush_interval:
                    try:
                        self._write_locked()
                    except LearnboardError:
                        return  # the next append reports it
