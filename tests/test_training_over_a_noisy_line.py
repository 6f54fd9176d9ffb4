"""A training session over a noisy line, on the emulated board in the real MicroPython VM
(both VMs): 200 random bytes per second (0x00 and control characters included) inserted
into each direction of the board's serial line, from its boot on. The session completes,
every telemetry record the host received is in the run log, and the records missing from
the log are exactly those lost on the line."""

from __future__ import annotations

import pytest
from learnboard.cli.connection import open_board
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log
from learnboard.host.schedule import schedule_from_flags
from learnboard.host.session import TrainConfig, run_session

from .test_emulate_with_mpremote_and_pyserial import flashed_board, hello_when_up

pytestmark = pytest.mark.vm

STEPS = 150
RATE = 200.0


def test_training_completes_with_200_random_bytes_per_second_both_ways(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # this board's port notes only
    with flashed_board(tmp_path, "gen2-clln", seed=5, insert_rate=RATE) as vb:
        hello_when_up(vb.port)
        cfg = TrainConfig(schedule=schedule_from_flags(steps=STEPS), telemetry_every=1,
                          checkpoint_every=50, name="noisy")
        with open_board(vb.port, board="gen2-clln") as conn:
            rf = RunFolder.create(tmp_path / "runs", "noisy")
            b0 = conn.link.call("stats")["requests"]  # this request included
            h0 = conn.link.stats.requests
            summary = run_session(conn, cfg, rf)
            host = conn.link.stats
            board = conn.link.call("stats")
            status = conn.link.call("status")
        faults = vb.counters()
    assert summary.steps == STEPS and summary.stop_reason == "steps"
    assert faults.to_board.inserted > 0 and faults.to_host.inserted > 0
    assert faults.to_board.inserted_control > 0  # 0x00, Ctrl-C and friends among them
    log = read_log(rf.log_path)
    steps = [int(r["step"]) for r in log if r.get("kind") == "tlm"]
    assert len(steps) == len(set(steps))  # nothing logged twice
    # every record the host decoded is in the log; the rest are the gaps
    assert len(steps) == host.rx_telemetry and host.telemetry_dropped == 0
    lost_on_line = STEPS - host.rx_telemetry  # one telemetry frame per step, on the board
    assert STEPS - len(set(steps) & set(range(1, STEPS + 1))) == lost_on_line
    # and each loss is reported: gap events in the log covering exactly the missing steps,
    # and their count in the summary
    gaps = [r["data"] for r in log if r.get("kind") == "event" and r.get("name") == "telemetry_gap"]
    said = {s for g in gaps for s in range(g["after"] + 1, g["before"])} - set(steps)
    assert said == set(range(1, STEPS + 1)) - set(steps)
    assert sum(g["lost"] for g in gaps) == summary.telemetry_lost == lost_on_line
    # no request ran twice: the board ran at most what the host sent, repeats from its cache
    assert board["requests"] - 1 - b0 == host.requests - h0  # this stats request not counted
    assert board["retries"] <= host.retries
    assert status["state"] == "idle"
    assert board["bad"] > 0 and host.bad_cobs + host.bad_crc + host.short > 0  # noise was there
