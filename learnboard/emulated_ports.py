"""Where emulated boards announce their pseudo-terminals, in small files per board.

pyserial does not list pseudo-terminals, so each emulated board on a pty (``learnboard
emulate``) records its port, board name and earlier ports in a file that is removed when
it stops; a file whose process is gone is ignored. The emulator writes these files and
the host reads them (``learnboard ports``; following a board whose port moved after a
reset; ``learnboard.host.schemas.EmulatorEntry`` checks each), so the writer and the
folder live here, below both.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from learnboard.private_dir import private_dir, runtime_dir, write_private

__all__ = ["alive", "announce_emulated", "emulated_dir", "runtime_dir", "truth_socket_path"]


def emulated_dir() -> Path:
    """Folder of the announcement files (in the private run-time folder, made and checked here)."""
    return private_dir("emulated")


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def truth_socket_path(key: str = "") -> Path:
    """Where this process serves its board's truth probe (a Unix socket beside the
    announcements, in the private run-time folder)."""
    return emulated_dir() / f"{os.getpid()}{'-' + key if key else ''}.truth"


def announce_emulated(port: str, board: str, previous: list[str] | tuple[str, ...] = (),
                      key: str = "", truth: str | Path | None = None) -> Path | None:
    """Record that this process serves a virtual board on ``port`` (best effort; None when
    the file cannot be written). ``previous``: the paths it had before (a hard reset drops
    the port, as USB does), so a host can follow the board; ``key`` tells apart several
    boards of one process. ``at`` records when: a pty number another board left before
    this one took it is not that board's way back. ``truth``: the Unix socket serving the
    board's true physics (:func:`truth_socket_path`), when it has one. A run-time folder that is not private
    (:class:`~learnboard.private_dir.UnsafeFolder`) is an error, not a file written there."""
    path = emulated_dir() / f"{os.getpid()}{'-' + key if key else ''}.json"
    try:
        write_private(path, json.dumps({"port": port, "board": board, "pid": os.getpid(),
                                        "previous": list(previous)[-64:],
                                        "moved_at": time.time() if previous else 0.0,
                                        "at": time.time(),
                                        **({"truth": str(truth)} if truth else {})}).encode())
    except OSError:
        return None
    return path
