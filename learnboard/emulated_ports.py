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
import tempfile
import time
from pathlib import Path


def runtime_dir() -> Path:
    """This user's folder for run-time files: ``$XDG_RUNTIME_DIR/learnboard`` or a per-user
    temp folder."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    return Path(base) / "learnboard" if base else Path(tempfile.gettempdir()) / f"learnboard-{os.getuid()}"


def emulated_dir() -> Path:
    """Folder of the announcement files."""
    return runtime_dir() / "emulated"


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def announce_emulated(port: str, board: str, previous: list[str] | tuple[str, ...] = (),
                      key: str = "") -> Path | None:
    """Record that this process serves a virtual board on ``port`` (best effort; None when
    the file cannot be written). ``previous``: the paths it had before (a hard reset drops
    the port, as USB does), so a host can follow the board; ``key`` tells apart several
    boards of one process. ``at`` records when: a pty number another board left before
    this one took it is not that board's way back."""
    path = emulated_dir() / f"{os.getpid()}{'-' + key if key else ''}.json"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "board": board, "pid": os.getpid(),
                                   "previous": list(previous)[-64:],
                                   "moved_at": time.time() if previous else 0.0,
                                   "at": time.time()}))
        tmp.replace(path)
    except OSError:
        return None
    return path
