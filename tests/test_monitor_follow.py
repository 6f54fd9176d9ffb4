"""``learnboard monitor`` follows a session that holds its board: the run folder's log,
read as it grows, and the port a running ``learnboard train`` announces."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from learnboard.cli import main
from learnboard.host.follow import LogFollower, hold_port, registry_dir, run_holding
from learnboard.host.runlog import RunLog, pack


def test_the_follower_returns_each_record_once_and_waits_for_a_cut_one(tmp_path):
    path = tmp_path / "telemetry.msgpack"
    f = LogFollower(path)
    assert f.poll() == []  # no log yet
    with RunLog(path) as log:
        log.append({"kind": "tlm", "step": 10})
        log.flush()
        assert [r["step"] for r in f.poll()] == [10]
        log.append({"kind": "tlm", "step": 20})
        log.append({"kind": "tlm", "step": 30})
        log.flush()
        assert [r["step"] for r in f.poll()] == [20, 30]
        assert f.poll() == []
    whole = pack({"kind": "tlm", "step": 40, "i": 3})
    with open(path, "ab") as out:  # a record half written
        out.write(whole[:5])
        out.flush()
        assert f.poll() == []
        out.write(whole[5:])
    assert [r["step"] for r in f.poll()] == [40]


def test_a_port_entry_lives_as_long_as_its_session(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert run_holding("/dev/ttyACM7") is None
    with hold_port("/dev/ttyACM7", tmp_path):
        assert run_holding("/dev/ttyACM7") == tmp_path.resolve()
    assert run_holding("/dev/ttyACM7") is None
    # a session killed without cleaning up: its entry is stale (nobody holds the port's lock)
    (registry_dir() / "dev_ttyACM7.json").write_text(json.dumps({"pid": os.getpid(), "run_dir": str(tmp_path)}))
    assert run_holding("/dev/ttyACM7") is None
    with hold_port("emu:gen2-clln", tmp_path):  # in-process boards belong to their session
        assert not registry_dir().joinpath("emu_gen2-clln.json").exists()


@pytest.mark.slow
def test_monitor_follows_a_running_session_to_its_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    runs = tmp_path / "runs"
    train = subprocess.Popen([sys.executable, "-m", "learnboard", "train", "--steps", "150", "--every", "10",
                              "--runs", str(runs), "--name", "watched", "--quiet", "--no-plot", "--json"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        import time

        deadline = time.monotonic() + 120
        while not list(runs.glob("*-watched/config.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        run_dir = next(runs.glob("*-watched"))
        # the monitor reaches it through the port the session holds (a stand-in port name:
        # in-process boards have none, so the entry is made here for the training's pid)
        with hold_port("/dev/ttyACM9", run_dir):
            assert main(["monitor", "--port", "/dev/ttyACM9", "--json", "--seconds", "120"]) == 0
        out, _ = train.communicate(timeout=120)
    finally:
        train.kill()
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "tlm"]
    assert len(steps) >= 3 and steps == sorted(steps) and len(set(steps)) == len(steps)
    assert records[-1]["kind"] == "summary" and records[-1]["steps"] == 150
    assert records[-1]["relative_error"] == json.loads(out)["relative_error"]


def test_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path, capsys):
    assert main(["monitor", str(tmp_path), "--seconds", "1"]) == 2
    assert "not a run folder (no config.json)" in capsys.readouterr().err
