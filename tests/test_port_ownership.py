"""One process owns a port at a time, `learnboard stop` needs to be told which board,
and the private run-time folder is private: checks that need no board.

(A second `train`/`info` on a busy emulated board and `stop --port` ending a running
session: ``test_port_ownership_e2e.py``.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys

import pytest
from learnboard.cli import main
from learnboard.host.follow import hold_port, run_holding
from learnboard.host.ownership import PortBusy, _files, holder, own_port

from learnboard.emulated_ports import announce_emulated, emulated_dir
from learnboard.private_dir import UnsafeFolder, private_dir, runtime_dir

PORT = "/dev/ttyFAKE3"  # never opened: the lock is taken before the port is


@pytest.fixture(autouse=True)
def private_runtime(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **(env or {})})


def test_stop_without_a_port_is_an_error_that_says_what_to_give(capsys):
    assert main(["stop"]) == 2
    err = capsys.readouterr().err
    assert "learnboard stop: error: --port: say which board to park: --port P" in err and "--all" in err
    assert main(["stop", "--port", "emu:gen2-clln"]) == 2  # no process but its own reaches that board


def test_a_second_command_on_a_held_port_is_refused_in_one_line_naming_the_holder(tmp_path):
    run = tmp_path / "runs" / "20261206-first"
    run.mkdir(parents=True)
    with hold_port(PORT, run):
        for cmd in (["info"], ["train", "--steps", "10"], ["calibrate"], ["flash"], ["repl"], ["monitor"]):
            done = _cli(*cmd, "--port", PORT, env={"XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]})
            line = (f"learnboard {cmd[0]}: error: {PORT} is in use by `learnboard train` (pid {os.getpid()}, "
                    f"run {run.resolve()}); watch it with `learnboard monitor --port {PORT}`, or park the "
                    f"board with `learnboard stop --port {PORT}`")
            if cmd[0] == "monitor":  # it follows the session's run folder instead
                assert "is held by `learnboard train`: following" in done.stderr, done.stderr
                continue
            assert (done.returncode, done.stderr) == (2, line + "\n"), cmd
        # the probe of `learnboard ports` passes it over, saying who holds it
        done = _cli("ports", "--port", PORT, "--json", env={"XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]})
        probe = {p["device"]: p["probe"] for p in json.loads(done.stdout)}
        assert probe[PORT] == f"busy: learnboard train (pid {os.getpid()}, run {run.name})"
        # and a second holder in this very process (`train --port P --port P`) too
        with pytest.raises(PortBusy, match="is in use by `learnboard train`"), own_port(PORT, "learnboard info"):
            pass
    assert holder(PORT) is None


def test_stop_all_finds_the_ports_held_even_those_the_os_does_not_list():
    from learnboard.host.ownership import held_ports

    with own_port("socket://127.0.0.1:9", "learnboard info"):
        assert [e.port for e in held_ports()] == ["socket://127.0.0.1:9"]
        # it holds a port nothing answers on: asked, unanswered, parked directly, which fails in one line
        done = _cli("stop", "--all", env={"XDG_RUNTIME_DIR": os.environ["XDG_RUNTIME_DIR"]})
    assert done.returncode == 1 and "Traceback" not in done.stderr + done.stdout
    assert "socket://127.0.0.1:9: `learnboard info` (pid" in done.stdout
    assert held_ports() == []


def test_the_lock_dies_with_its_holder_however_it_ends(tmp_path):
    code = ("import sys; from learnboard.host.ownership import own_port\n"
            f"with own_port({PORT!r}, 'learnboard info'):\n    print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "held\n"
        held = holder(PORT)
        assert (held.pid, held.command, held.run_dir) == (proc.pid, "learnboard info", "")
        proc.send_signal(signal.SIGKILL)  # no clean-up runs: its entry stays behind
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert _files(PORT)[1].exists() and holder(PORT) is None and run_holding(PORT) is None
    with own_port(PORT, "learnboard info"):  # the port is free to take
        assert holder(PORT).pid == os.getpid()


def test_the_runtime_folder_and_its_files_are_private(private_runtime, tmp_path, monkeypatch):
    with own_port(PORT, "learnboard train", tmp_path):
        lock, entry, _ = _files(PORT)
        for folder in (private_runtime / "learnboard", private_runtime / "learnboard" / "ports"):
            assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700
        assert stat.S_IMODE(os.lstat(entry).st_mode) == 0o600 and stat.S_IMODE(os.lstat(lock).st_mode) == 0o600
    # without XDG_RUNTIME_DIR: learnboard-<uid> in the system temp folder, private too
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir(mode=0o1777)
    assert runtime_dir() == tmp_path / "tmp" / f"learnboard-{os.getuid()}"
    with own_port(PORT, "learnboard info"):
        assert stat.S_IMODE(os.lstat(runtime_dir()).st_mode) == 0o700


def test_a_symlink_planted_in_the_registry_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    lock, entry, stop = _files(PORT)
    entry.symlink_to(victim)
    with own_port(PORT, "learnboard train", tmp_path):
        assert not entry.is_symlink() and json.loads(entry.read_text())["pid"] == os.getpid()
    assert victim.read_text() == "precious"
    # the emulator's announcement: replaced, not written through
    planted = emulated_dir() / f"{os.getpid()}.json"
    planted.symlink_to(victim)
    assert announce_emulated("/dev/pts/99", "gen2-clln") == planted
    assert not planted.is_symlink() and victim.read_text() == "precious"
    # a lock file that is a symlink: refused in one line, the target untouched
    lock.unlink()
    lock.symlink_to(victim)
    done = _cli("info", "--port", PORT)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "lock file (is a symlink, which learnboard never follows)" in done.stderr
    assert victim.read_text() == "precious"


def test_a_registry_folder_open_to_others_or_owned_by_another_user_is_refused(private_runtime):
    folder = private_dir()
    folder.chmod(0o777)
    with pytest.raises(UnsafeFolder, match=r"has mode 0777, so other users may write into it \(want 0700\)"):
        own_port(PORT, "learnboard info").__enter__()
    done = _cli("train", "--port", PORT)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1 and "has mode 0777" in done.stderr
    done = _cli("ports", "--no-probe")  # the emulated boards' announcements live there too
    assert done.returncode == 2 and "has mode 0777" in done.stderr
    # one that others may only read (as earlier versions made it): narrowed, then used
    folder.chmod(0o755)
    with own_port(PORT, "learnboard info"):
        assert stat.S_IMODE(os.lstat(folder).st_mode) == 0o700
    assert folder.stat().st_mode & 0o777 == 0o700
    if os.getuid() != 0:
        pytest.skip("giving the folder to another user needs root (chown)")
    os.chown(folder, 54321, -1)  # another user made it first (e.g. in the shared temp folder)
    with pytest.raises(UnsafeFolder, match=r"owned by uid 54321, not by you \(uid 0\)"):
        own_port(PORT, "learnboard info").__enter__()
    os.chown(folder, 0, -1)
    shutil.rmtree(folder)
    folder.symlink_to(private_runtime)  # a symlink in its place
    with pytest.raises(UnsafeFolder, match="is a symlink or not a folder"):
        own_port(PORT, "learnboard info").__enter__()
