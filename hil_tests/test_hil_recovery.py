"""Recovery: a board reset during training is detected and the session resumes from its
checkpoint; flashing a board that is busy training works."""

from __future__ import annotations

import threading
import time

import pytest
from learnboard.host.connect import Connection
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log
from learnboard.host.schedule import Phase, Schedule, Stop
from learnboard.host.session import TrainConfig, run_session


def test_reset_during_training_resumes_from_checkpoint(link, board, tmp_path, request):
    task, _steps, alpha = (request.config.getoption(o) for o in ("--hil-task", "--hil-steps", "--hil-alpha"))
    # long enough that the reset, once the log shows a step past the first checkpoint,
    # lands mid-run on a fast emulated board too (the log lags the board by at most 1 s)
    steps = 400
    conn = Connection(link, link.hello(), board, "board under test")
    config = TrainConfig(task=task, alpha=alpha, telemetry_every=5, checkpoint_every=20, name="reset",
                         schedule=Schedule(phases=[Phase(kind="constant", lam=0.0)], init="uniform",
                                           chunk=10, stop=Stop(steps=steps)))
    rf = RunFolder.create(tmp_path, "reset")
    result = {}

    def run():
        try:
            result["summary"] = run_session(conn, config, rf)
        except BaseException as exc:  # reported by the assertion below
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and rf.latest_checkpoint() is None and worker.is_alive():
        time.sleep(0.05)
    checkpoint = rf.latest_checkpoint()
    assert checkpoint is not None, f"no checkpoint was written: {result}"
    # a few steps past the checkpoint: the log shows telemetry after it (flushed within 1 s)
    while time.monotonic() < deadline and worker.is_alive() and not any(
            r.get("kind") == "tlm" and r["step"] > checkpoint["step"] for r in read_log(rf.log_path)):
        time.sleep(0.02)
    assert worker.is_alive(), f"the session ended before the reset: {result}"
    link.call("reset")  # the board reboots mid-training, as a brown-out or watchdog would do
    worker.join(timeout=300)
    assert not worker.is_alive(), "the session did not finish after the reset"
    assert "error" not in result, f"the session failed after the reset: {result.get('error')!r}"
    summary = result["summary"]
    assert summary.resets >= 1 and summary.steps == steps
    records = read_log(rf.log_path)
    restores = [r for r in records if r.get("kind") == "restore"]
    assert restores, "no restore record in the log"
    assert [r["i"] for r in records] == list(range(len(records)))
    assert link.call("status")["state"] in ("idle", "parked")


def test_flashing_a_training_board(link, board, hil_target, request):
    if not hil_target.serial:
        pytest.skip("flashing needs a serial port; the in-process board has none")
    from conftest import flash_port, open_link

    from learnboard.boards import compile_board

    n_in = sum(1 for p in board.inputs if p.fixed is None)
    v = board.limits.max_node_volts / 3
    link.call("upload_examples", start=0, clear=True, x=[[v] * n_in], y=[[v] * len(board.outputs)])
    link.call("train", steps=0)
    assert link.call("status")["state"] == "training"
    link.close()  # the port is the flasher's now; the board keeps training
    seconds, output = flash_port(hil_target.port, hil_target.board_arg)
    assert "stopped firmware" in output, output
    with open_link(hil_target.port) as fresh:
        hello = fresh.hello()
        assert hello["desc_hash"] == compile_board(board).sha256
        assert fresh.call("status")["state"] == "idle"


def test_repl_hands_the_board_over_with_no_watchdog(link, hil_target):
    """`learnboard repl` resets the board into its maintenance boot: mpremote then runs
    code longer than the watchdog's 5 s without a reset; `learnboard flash` starts the
    firmware again, with no watchdog fault for the resets it asked for."""
    if not hil_target.serial:
        pytest.skip("the REPL needs a serial port; the in-process board has none")
    import subprocess
    import sys
    from pathlib import Path

    from conftest import flash_port, open_link

    link.close()
    done = subprocess.run([sys.executable, "-m", "learnboard", "repl", "--port", hil_target.port],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    port = done.stdout.split()[-1]
    mpremote = Path(sys.executable).with_name("mpremote")
    out = subprocess.run([str(mpremote), "connect", port, "exec",
                          "import time; time.sleep(6); print('alive')"],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["alive"], out.stderr
    flash_port(port, hil_target.board_arg)
    with open_link(hil_target.port) as fresh:
        assert fresh.call("status")["flt"] & 8 == 0  # F_WATCHDOG: no watchdog reset
