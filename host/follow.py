"""Watching a training session from outside it: which run holds a port, and the run
folder's telemetry log read as it grows.

A serial port has one owner. While ``learnboard train`` holds a board, a second program
cannot talk to it without stealing its replies, so ``learnboard monitor`` follows the
session's own log instead — the same records, flushed at least every second. Sessions
hold their port (:func:`hold_port`, :mod:`.ownership`): a lock that ends with the
process, and an entry naming the run folder, which :func:`run_holding` reads.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from learnboard.errors import InputError, LearnboardError
from learnboard.private_dir import private_dir

from .ownership import holder, own_port
from .records import Damage, LogReader, damage_warning


def registry_dir() -> Path:
    """Folder of the port files: ``ports`` in the private run-time folder
    (:mod:`learnboard.private_dir`), made and checked here."""
    return private_dir("ports")


@contextmanager
def hold_port(port: str | None, run_dir: str | Path) -> Iterator[None]:
    """Hold ``port`` for a training session into ``run_dir`` (:func:`~.ownership.own_port`;
    :class:`~.ownership.PortBusy` when another process holds it; no-op without a port:
    an in-process emulated board belongs to its session alone)."""
    with own_port(port, "learnboard train", run_dir):
        yield


def run_holding(port: str) -> Path | None:
    """The run folder of the live session that holds ``port``, or None."""
    entry = holder(port)
    if entry is None or not entry.run_dir:
        return None
    run_dir = Path(entry.run_dir)
    return run_dir if run_dir.is_dir() else None


class LogFollower:
    """New good records of a telemetry log since the last :meth:`poll`. A record still
    being written (cut at the end of the file) waits for the next poll; damaged records
    are passed over (:attr:`damaged` lists them, :meth:`new_damage` the ones not yet told)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._offset = 0
        self._reader = LogReader()
        self._told = 0

    @property
    def damaged(self) -> list[Damage]:
        return self._reader.damaged

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        self._reader.feed(data)
        return self._reader.read()

    def new_damage(self) -> str | None:
        """One warning line for the damage found since the last call, or None."""
        new = self._reader.damaged[self._told:]
        self._told = len(self._reader.damaged)
        return damage_warning(self.path, new)


def follow_run(run_dir: str | Path, *, on_record: Callable[[dict], None], seconds: float | None = None,
               interval: float = 0.25, from_start: bool = False,
               alive: Callable[[], bool] | None = None) -> dict | None:
    """Call ``on_record`` for each record the run logs until its ``summary`` record (which
    is returned) or for ``seconds``. Without ``from_start`` the records already in the
    log are skipped except the newest telemetry, so the view starts where the run is.
    ``alive``: whether the session still runs; once it is not and its last records are
    read without a summary, :class:`SessionGone` is raised (a killed session, or one that
    lost its board, writes none)."""
    run_dir = Path(run_dir)
    log = run_dir / "telemetry.msgpack"
    if not run_dir.is_dir() or not (run_dir / "config.json").exists():
        raise InputError(f"{run_dir}: not a run folder (no config.json); give a folder written by "
                         "`learnboard train`", field="RUN_DIR")
    follower = LogFollower(log)
    backlog = follower.poll()
    _tell_damage(follower)
    # a stopped session that was resumed has a summary mid-log: only a last one means done
    summary = backlog[-1] if backlog and backlog[-1].get("kind") == "summary" else None
    if not from_start:
        last_tlm = [r for r in backlog if r.get("kind") == "tlm"][-1:]
        backlog = [r for r in backlog if r.get("kind") == "event" and r.get("name") == "start"] + last_tlm
    for rec in backlog:
        on_record(rec)
    if summary is not None:
        if not from_start:
            on_record(summary)
        return summary
    deadline = None if seconds is None else time.monotonic() + seconds
    while deadline is None or time.monotonic() < deadline:
        new = follower.poll()
        _tell_damage(follower)
        for rec in new:
            on_record(rec)
            if rec.get("kind") == "summary":
                return rec
        if alive is not None and not new and not alive():
            for rec in follower.poll():  # what it wrote before it went
                on_record(rec)
                if rec.get("kind") == "summary":
                    return rec
            from .resume import resume_command

            raise SessionGone(f"the session writing {run_dir} ended without a summary (stopped, killed, or it "
                              f"lost its board); continue it with `{resume_command(run_dir)}`")
        time.sleep(interval)
    return None


class SessionGone(LearnboardError):
    """The followed session ended without writing its summary."""


def _tell_damage(follower: LogFollower) -> None:
    line = follower.new_damage()
    if line:
        print(line, file=sys.stderr, flush=True)
