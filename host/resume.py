"""What ``learnboard train --resume`` checks before a run continues: the board it was
recorded on (board name, description hash and unique id, not the port name), whether the
run already finished, and the command that resumes it.

A run folder's ``config.json`` records ``port`` (the port, or ``emulated NAME`` for the
in-process emulated board), ``board``, ``desc_hash`` and, from protocol 3 on, ``uid``
(hello's unique id; ``learnboard.board_id``).
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass

from learnboard.board_id import describe
from learnboard.errors import InputError

from .runfolder import RunFolder

IN_PROCESS_LABEL = "emulated "  # Connection.label of the in-process emulated board


@dataclass(frozen=True)
class RecordedBoard:
    """The board a run was recorded on."""

    port: str  # a serial port, or "emulated NAME"
    board: str
    desc_hash: str | None
    uid: str | None  # None: recorded before boards reported an id

    @property
    def in_process(self) -> bool:
        """Recorded on the built-in emulated board (no port)."""
        return self.port.startswith(IN_PROCESS_LABEL) or not self.port

    @property
    def identity(self) -> tuple[str, ...]:
        """For :func:`~.serial_ports.find_again`: (board, desc_hash[, uid])."""
        base = (self.board, str(self.desc_hash))
        return base + (self.uid,) if self.uid else base


def recorded_board(rf: RunFolder) -> RecordedBoard:
    """The board ``rf`` was recorded on, from its config.json."""
    cfg = rf.read_config()
    port, board = cfg.get("port"), cfg.get("board")
    if not isinstance(board, str) or not board:
        raise InputError(f"field 'board' is {board!r}: not a board name; the run folder is damaged",
                         source=str(rf.config_path), field="board")
    uid = cfg.get("uid")
    return RecordedBoard(port=port if isinstance(port, str) else "", board=board,
                         desc_hash=cfg.get("desc_hash"), uid=uid if isinstance(uid, str) else None)


def board_mismatch(rec: RecordedBoard, hello: dict, label: str) -> str | None:
    """Why the board that answered ``hello`` on ``label`` is not the one ``rec`` names
    (None when it is): the reason, for an error message."""
    got = (hello.get("board"), hello.get("desc_hash"), hello.get("uid"))
    if got[0] != rec.board:
        return f"{label} is board {got[0]!r}, the run was recorded on {rec.board!r} ({rec.port})"
    if rec.desc_hash and got[1] != rec.desc_hash:
        return (f"{label} runs description {str(got[1])[:8]}, the run was recorded with "
                f"{rec.desc_hash[:8]} ({rec.port})")
    if rec.uid and got[2] != rec.uid:
        return (f"{label} is the board with unique id {describe(got[2])}, the run was recorded on "
                f"{describe(rec.uid)} ({rec.port})")
    return None


FINISHED = ("steps", "time", "settled")  # the schedule's own stop conditions


def recorded_edges(rf: RunFolder) -> int | None:
    """The number of edges of the board description stored in the run (board.json);
    None when it cannot be read (the board's own check at connection time remains)."""
    try:
        data = json.loads(rf.compiled_board_path.read_bytes())
        return len(data["b"]["edges"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_run_checkpoint(rf: RunFolder) -> dict:
    """The newest readable checkpoint, checked against the run's own board description
    (before any board is involved: a damaged run folder is named as such)."""
    from .session import STALE_CHECKPOINT, resume_checkpoint

    ck = resume_checkpoint(rf)
    n = recorded_edges(rf)
    if n is not None and len(ck["k"]) != n:
        raise InputError(f"has {len(ck['k'])} edge states but the run's board description "
                         f"(board.json) has {n} edges; {STALE_CHECKPOINT}",
                         source=str(rf.checkpoints_dir / ck["file"]), field="k")
    return ck


def finished(rf: RunFolder) -> tuple[int, str] | None:
    """``(step, stop reason)`` when the run stopped on its own schedule (its summary says
    so and no checkpoint is older than that summary); None when there is more to do
    (interrupted, crashed, or rolled back to an earlier checkpoint)."""
    summary = rf.read_summary()
    ck = rf.latest_checkpoint()
    if not isinstance(summary, dict) or not isinstance(ck, dict):
        return None
    steps, reason = summary.get("steps"), summary.get("stop_reason")
    at = ck.get("step")
    if reason in FINISHED and isinstance(steps, int) and isinstance(at, int) and at >= steps:
        return steps, str(reason)
    return None


def resume_command(run_dir: str | os.PathLike, port: str | None = None) -> str:
    """The command that continues the run in ``run_dir`` (``port``: only when it must be
    given; a run reconnects to the port it recorded)."""
    cmd = f"learnboard train --resume {shlex.quote(str(run_dir))}"
    return cmd + (f" --port {shlex.quote(port)}" if port else "")
