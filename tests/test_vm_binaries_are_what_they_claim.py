"""The VMs the firmware is tested on are what they claim, and any VM binary can be named.

Tests marked ``vm`` run on the installed 64-bit VM and on a 32-bit build
(``LEARNBOARD_MICROPYTHON32``, made by ``scripts/build-micropython32``); see
docs/emulator.md, "A 32-bit VM".
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from learnboard.cli import main

from tests.mpvm import run_vm

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build-micropython32"

INT_WIDTH = """
import micropython, sys


def width(k):  # locals only: a new module global would allocate
    micropython.heap_lock()
    try:
        (1 << k) * 2  # 2^30 for k = 29: one past the largest small int of a 32-bit port
        where = 0
    except MemoryError:
        where = 1
    micropython.heap_unlock()
    return where


print(("small-int", "heap")[width(28)], ("small-int", "heap")[width(29)], sys.maxsize == (1 << 31) - 1)
"""


@pytest.mark.vm
def test_the_vm_has_the_ints_it_claims(request):
    """On the 32-bit VM, as on the RP2040, 2^30 is a heap int (MemoryError under
    heap_lock); on the 64-bit VM it is a small int. A 32-bit VM that passed for a 64-bit
    one would hide every overflow the 32-bit runs are there to find."""
    kind = request.node.callspec.params["micropython"]
    below, at, word32 = run_vm(INT_WIDTH).stdout.decode().split()
    assert below == "small-int"  # 2^29 fits both: the lock itself is not what fails
    assert (at, word32) == {"vm32": ("heap", "True"), "vm64": ("small-int", "False")}[kind]


def test_emulate_refuses_a_missing_vm_binary_by_its_option(tmp_path, capsys):
    missing = tmp_path / "no-such-micropython"
    assert main(["emulate", "--flash", str(tmp_path / "flash"), "--micropython", str(missing)]) == 2
    err = capsys.readouterr().err
    assert "--micropython" in err and str(missing) in err and "no executable MicroPython VM" in err


def test_emulate_refuses_a_missing_vm_binary_by_its_setting(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LEARNBOARD_MICROPYTHON", str(tmp_path / "gone"))
    assert main(["emulate", "--flash", str(tmp_path / "flash")]) == 2
    err = capsys.readouterr().err
    assert "LEARNBOARD_MICROPYTHON" in err and "gone" in err


def test_emulate_micropython_needs_the_vm_mode(tmp_path, capsys):
    assert main(["emulate", "--vm", "cpython", "--micropython", sys.executable]) == 2
    assert "--micropython" in capsys.readouterr().err


@pytest.mark.parametrize("src, says", [
    (None, "LEARNBOARD_MICROPYTHON_SRC"),
    ("/no/such/micropython.tar.gz", "does not exist"),
])
def test_build_script_names_the_missing_source(tmp_path, src, says):
    env = {k: v for k, v in os.environ.items() if k != "LEARNBOARD_MICROPYTHON_SRC"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    done = subprocess.run([str(SCRIPT), *([src] if src else [])], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode != 0 and done.stdout == ""
    assert says in done.stderr


def test_build_script_refuses_a_folder_without_micropython(tmp_path):
    done = subprocess.run([str(SCRIPT), str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}, timeout=60)
    assert done.returncode != 0 and "no ports/unix/Makefile" in done.stderr
