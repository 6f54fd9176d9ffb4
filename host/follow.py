"""Watching a training session from outside it: which run holds a port, and the run
folder's telemetry log read as it grows.

A serial port has one owner. While ``learnboard train`` holds a board, a second program
cannot talk to it without stealing its replies, so ``learnboard monitor`` follows the
session's own log instead — the same records, flushed at least every second. Sessions
announce the port they hold in a small file per port (:func:`hold_port`), removed when
they end; an entry whose process is gone is stale and ignored.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from learnboard.emulated_ports import alive as _alive
from learnboard.emulated_ports import runtime_dir
from learnboard.errors import InputError

from .records import Damage, LogReader, damage_warning
from .schemas import PortEntry, read_json, try_convert


def registry_dir() -> Path:
    """Folder of the port files: ``$XDG_RUNTIME_DIR/learnboard/ports`` or in a per-user
    temp folder."""
    return runtime_dir() / "ports"


def _entry(port: str) -> Path:
    return registry_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", port).strip("._") + ".json")


@contextmanager
def hold_port(port: str | None, run_dir: str | Path) -> Iterator[None]:
    """Announce that this process trains on ``port`` into ``run_dir`` (no-op without a
    port: an in-process emulated board belongs to its session alone)."""
    if not port or port.startswith("emu:"):
        yield
        return
    path = _entry(port)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"port": port, "pid": os.getpid(), "run_dir": str(Path(run_dir).resolve()),
                                    "since": time.time()}))
    except OSError:  # monitoring is a convenience: a session never fails for it
        yield
        return
    try:
        yield
    finally:
        try:
            if json.loads(path.read_text()).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError):
            pass


def run_holding(port: str) -> Path | None:
    """The run folder of the live session that holds ``port``, or None."""
    try:
        entry = try_convert(read_json(_entry(port)), PortEntry)
    except InputError:
        return None
    if entry is None:
        return None
    run_dir = Path(entry.run_dir)
    return run_dir if _alive(entry.pid) and run_dir.is_dir() else None


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
               interval: float = 0.25, from_start: bool = False) -> dict | None:
    """Call ``on_record`` for each record the run logs until its ``summary`` record (which
    is returned) or for ``seconds``. Without ``from_start`` the records already in the
    log are skipped except the newest telemetry, so the view starts where the run is."""
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
        time.sleep(interval)
    return None


def _tell_damage(follower: LogFollower) -> None:
    line = follower.new_damage()
    if line:
        print(line, file=sys.stderr, flush=True)
