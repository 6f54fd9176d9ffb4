"""Two programs, one port; and the emergency stop — against `learnboard emulate` (the
firmware in the real MicroPython VM on a pty), with the real CLI in subprocesses.

A session that holds a board keeps it: a second `train`, `info` (or any other command
that talks to a board) is refused in one line naming the session and what to do, and
the first session ends with its summary and figures. `learnboard stop --port` ends a
running session at once, which says it was stopped by `learnboard stop`, with the
board parked; an owner that does not answer is passed over.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from learnboard.host.follow import LogFollower, run_holding
from learnboard.host.ownership import own_port

from tests.test_calibrate_storage import emulated_board

pytestmark = pytest.mark.vm
BOARD = "gen2-clln"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A private run-time folder (the registry) and data folder, for this module's commands."""
    root = tmp_path_factory.mktemp("ownership")
    env = {"XDG_RUNTIME_DIR": str(root / "run"), "LEARNBOARD_DATA": str(root / "data")}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield {**os.environ}


@pytest.fixture(scope="module")
def pty_board(micropython, env, tmp_path_factory):
    """`learnboard emulate` on a flash folder holding the firmware and gen2-clln's board.json."""
    with emulated_board(tmp_path_factory.mktemp("flash"), "--seed", "3", env=env) as port:
        yield port


def _cli(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _start_training(env, port, runs, name) -> tuple[subprocess.Popen, object]:
    """A long `learnboard train` on ``port``, returned once it holds the port and its first
    telemetry is in its log (the run folder)."""
    train = subprocess.Popen([sys.executable, "-m", "learnboard", "train", "--port", port, "--steps", "100000",
                              "--every", "10", "--checkpoint-every", "100", "--runs", str(runs), "--name", name,
                              "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while (run_dir := run_holding(port)) is None:
        assert train.poll() is None, train.communicate()
        assert time.monotonic() < deadline, "the session never held its port"
        time.sleep(0.05)
    follower = LogFollower(run_dir / "telemetry.msgpack")
    while not any(r.get("kind") == "tlm" for r in follower.poll()):
        assert train.poll() is None, train.communicate()
        assert time.monotonic() < deadline, "the session logged no telemetry"
        time.sleep(0.05)
    return train, run_dir


def test_a_second_train_or_info_is_refused_and_the_first_session_completes(pty_board, env, tmp_path):
    port = pty_board
    train, run_dir = _start_training(env, port, tmp_path / "runs", "first")
    try:
        busy = (f"{port} is in use by `learnboard train` (pid {train.pid}, run {run_dir}); watch it with "
                f"`learnboard monitor --port {port}`, or park the board with `learnboard stop --port {port}`")
        for cmd in (["train", "--steps", "50", "--runs", str(tmp_path / "runs"), "--name", "second"],
                    ["info"], ["calibrate", "--configs", "4"], ["flash"]):
            done = _cli(env, *cmd, "--port", port)
            assert (done.returncode, done.stderr) == (2, f"learnboard {cmd[0]}: error: {busy}\n"), done
        done = _cli(env, "ports", "--port", port, "--json")
        assert {p["device"]: p["probe"] for p in json.loads(done.stdout)}[port] == \
            f"busy: learnboard train (pid {train.pid}, run {run_dir.name})"
        assert len(list((tmp_path / "runs").iterdir())) == 1  # the refused train made no run folder
        # mpremote asks the OS for the device alone (pyserial's exclusive): refused too
        mp = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", "print(1)"],
                            capture_output=True, text=True, timeout=60, env=env)
        assert mp.returncode != 0 and "1\n" not in mp.stdout
    finally:
        train.send_signal(signal.SIGINT)  # Ctrl-C: stops after the current chunk, writes the summary
        out, err = train.communicate(timeout=300)
    assert train.returncode == 0, err
    assert "Traceback" not in err and f"-> {run_dir}" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["steps"] > 0 and summary["resets"] == 0
    assert sorted(p.suffix for p in (run_dir / "figures").iterdir())  # the figures were drawn
    assert run_holding(port) is None


def test_stop_ends_a_running_session_which_says_so_and_leaves_the_board_parked(pty_board, env, tmp_path):
    port = pty_board
    train, run_dir = _start_training(env, port, tmp_path / "runs", "stopped")
    try:
        done = _cli(env, "stop", "--port", port)
    finally:
        out, err = train.communicate(timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{port}: parked by `learnboard train` (pid {train.pid}, run {run_dir}), which held the port\n"
    last = err.splitlines()[-1]  # (before it, a note that this host has no calibration of the board)
    assert train.returncode == 2 and "Traceback" not in err, err
    assert last.startswith(f"learnboard train: error: {port}: stopped by `learnboard stop` at step ")
    assert last.endswith(f"learnboard train --resume {run_dir} --port {port}") and "parked itself" not in err
    records = LogFollower(run_dir / "telemetry.msgpack").poll()
    assert [r["by"] for r in records if r.get("name") == "stopped"] == ["learnboard stop"]
    info = _cli(env, "info", "--port", port, "--json")
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["status"]["state"] == "parked"


def test_stop_parks_the_board_itself_when_its_owner_does_not_answer(pty_board, env):
    port = pty_board
    with own_port(port, "learnboard info"):  # holds the port, answers no stop request
        done = _cli(env, "stop", "--port", port)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"{port}: `learnboard info` (pid {os.getpid()}) did not park the board within a second; parking it directly",
        f"{port}: parked"]


def test_stop_all_ends_every_session_it_finds(pty_board, env, tmp_path):
    port = pty_board
    train, run_dir = _start_training(env, port, tmp_path / "runs", "all")
    try:
        done = _cli(env, "stop", "--all")
    finally:
        out, err = train.communicate(timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{port}: parked by `learnboard train` (pid {train.pid}, run {run_dir}), which held the port" \
        in done.stdout.splitlines()
    assert train.returncode == 2 and "stopped by `learnboard stop`" in err.splitlines()[-1]


def test_a_program_that_has_the_device_for_itself_is_named_not_a_traceback(pty_board, env):
    import serial

    port = pty_board
    with serial.Serial(port, exclusive=True):  # as mpremote opens it
        done = _cli(env, "info", "--port", port)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "another program has it open for itself (mpremote, a serial terminal" in done.stderr
