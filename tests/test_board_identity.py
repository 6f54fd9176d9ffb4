"""Board identity keeps runs and calibrations apart.

Resume: a run recorded on a serial port and resumed without ``--port`` once continued on
the built-in emulated board (C/C0 jumped from 0.0367 to 0.725, two boards' data in one
folder, no marker), a finished run's resume rewrote ``summary.json``, and ``--lambda`` on
resume was silently ignored. Now the resume reconnects to the recorded port, checks the
board by its identity (board name, description hash, unique id), refuses another board
with the reason unless ``--other-board``, leaves a finished run alone, and refuses the
options it cannot apply.

Calibration: ``learnboard calibrate`` without ``--port`` (the emulator) once overwrote the
stored calibration of the real board with the same description; calibrations are now
stored under the board's unique id, and one stored the old way is read with a warning
naming the file.
"""

from __future__ import annotations

import json

import pytest
from learnboard.cli import main
from learnboard.emulator.cpython_board import CPythonBoard
from learnboard.host import calibration as C
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log

from learnboard.board_id import emulated_uid, is_emulated
from learnboard.boards import compile_board, load_board
from tests.test_session import small_task

BOARD = "gen2-clln"
PTY_SEED = 3  # the emulated board on the pty: another world (and id) than the built-in one
REAL_UID = "e66038b7133f5a2f"  # an RP2040's flash id, as hello reports it


@pytest.fixture(autouse=True)
def _private_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "rt"))
    (tmp_path / "rt").mkdir(mode=0o700)
    monkeypatch.setenv("LEARNBOARD_DATA", str(tmp_path / "data"))


def _train(capsys, *args) -> tuple[int, str, str]:
    code = main(["train", *args, "--no-plot"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _recorded_on_pty(tmp_path, capsys, port: str, steps: int = 20) -> str:
    code, out, err = _train(capsys, "--port", port, "--steps", str(steps), "--checkpoint-every", "10",
                            "--task", small_task(tmp_path), "--runs", str(tmp_path / "runs"),
                            "--name", "pty", "--json")
    assert code == 0, err
    return json.loads(out.strip().splitlines()[-1])["run_dir"]


def _as_if_killed_at_step_10(run_dir: str) -> None:
    """The host died after the step-10 checkpoint: later checkpoints and the summary gone."""
    rf = RunFolder.open(run_dir)
    for path in rf.checkpoints()[2:]:
        path.unlink()
    rf.summary_path.unlink()


def _files(run_dir: str) -> dict[str, bytes]:
    rf = RunFolder.open(run_dir)
    return {p.name: p.read_bytes() for p in rf.path.iterdir() if p.is_file()}


def test_the_emulated_id_is_stable_per_board_and_seed_and_marked():
    a = emulated_uid(BOARD, 3)
    assert len(a) == 8 and a == emulated_uid(BOARD, 3)
    assert a != emulated_uid(BOARD, 4) and a != emulated_uid("gen1-digipot", 3)
    assert is_emulated(a.hex()) and not is_emulated(REAL_UID)


def test_resume_without_port_continues_on_the_recorded_port_not_the_built_in_board(tmp_path, capsys):
    with CPythonBoard(BOARD, seed=PTY_SEED) as pty:
        run_dir = _recorded_on_pty(tmp_path, capsys, pty.port)
        rf = RunFolder.open(run_dir)
        uid = emulated_uid(BOARD, PTY_SEED).hex()
        assert rf.read_config()["uid"] == uid and rf.read_config()["port"] == pty.port
        _as_if_killed_at_step_10(run_dir)

        code, out, err = _train(capsys, "--resume", run_dir, "--json")
        assert code == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["port"] == pty.port and summary["steps"] == 20
        (resume,) = [r for r in read_log(rf.log_path) if r.get("name") == "resume"]
        assert (resume["port"], resume["uid"]) == (pty.port, uid) and "other_board" not in resume


def test_resume_refuses_the_built_in_board_for_a_run_recorded_on_a_port(tmp_path, capsys):
    with CPythonBoard(BOARD, seed=PTY_SEED) as pty:
        run_dir = _recorded_on_pty(tmp_path, capsys, pty.port)
    _as_if_killed_at_step_10(run_dir)
    before = _files(run_dir)

    # the recorded port is gone: no fall-back to the built-in board
    code, _, err = _train(capsys, "--resume", run_dir)
    assert code == 2
    assert f"the run was recorded on {pty.port}" in err and "no port answers as that board" in err
    assert "learnboard flash" not in err
    assert "delete" not in err
    assert _files(run_dir) == before

    # the built-in board asked for explicitly: refused with the reason, run untouched
    code, _, err = _train(capsys, "--resume", run_dir, "--port", "emu:" + BOARD)
    assert code == 2
    assert "not resuming" in err and emulated_uid(BOARD, PTY_SEED).hex() in err
    assert "--other-board" in err and "delete" not in err
    assert _files(run_dir) == before

    # explicitly overridden: the run goes on and its log says which board continued it
    code, out, err = _train(capsys, "--resume", run_dir, "--port", "emu:" + BOARD, "--other-board",
                            "--json")
    assert code == 0, err
    assert "continuing on another board" in err
    (resume,) = [r for r in read_log(RunFolder.open(run_dir).log_path) if r.get("name") == "resume"]
    assert resume["uid"] == emulated_uid(BOARD, 0).hex()
    assert emulated_uid(BOARD, PTY_SEED).hex() in resume["other_board"]  # the log says why


def test_resuming_a_finished_run_changes_nothing_unless_steps_asks_for_more(tmp_path, capsys):
    code, out, err = _train(capsys, "--steps", "20", "--checkpoint-every", "10", "--task",
                            small_task(tmp_path), "--runs", str(tmp_path / "runs"), "--name", "r", "--json")
    assert code == 0, err
    run_dir = json.loads(out.strip().splitlines()[-1])["run_dir"]
    before = _files(run_dir)

    code, out, err = _train(capsys, "--resume", run_dir)
    assert code == 0, err
    assert "finished at step 20" in out and "--steps N" in out
    assert _files(run_dir) == before  # summary.json and the log untouched

    code, out, err = _train(capsys, "--resume", run_dir, "--steps", "30", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["steps"] == 30


@pytest.mark.parametrize("flag", [["--lambda", "0.01"], ["--task", "xor"], ["--seed", "4"]])
def test_options_a_resume_cannot_apply_are_errors_naming_them(tmp_path, capsys, flag):
    code, out, err = _train(capsys, "--steps", "10", "--checkpoint-every", "10", "--task",
                            small_task(tmp_path), "--runs", str(tmp_path / "runs"), "--name", "r", "--json")
    assert code == 0, err
    run_dir = json.loads(out.strip().splitlines()[-1])["run_dir"]
    code, _, err = _train(capsys, "--resume", run_dir, *flag)
    assert code == 2 and flag[0] in err and "cannot change a resumed run" in err


# -- calibrations ------------------------------------------------------------------------


def _real_board_calibration() -> dict:
    """A calibration as `learnboard calibrate --port /dev/ttyACM0` stores it for a real board."""
    desc_hash = compile_board(load_board(BOARD)).sha256
    return {"format": C.FORMAT, "board": BOARD, "uid": REAL_UID, "desc_hash": desc_hash,
            "port": "/dev/ttyACM0", "adc": {}, "edges": {}, "sha256": "real"}


def test_calibrating_the_emulator_leaves_the_real_boards_calibration_alone(tmp_path, capsys):
    real = C.save_calibration(_real_board_calibration())
    real_bytes = real.read_bytes()
    assert main(["calibrate", "--configs", "8", "--repeats", "1", "--json"]) == 0
    cal = json.loads(capsys.readouterr().out)
    assert real.read_bytes() == real_bytes  # was: overwritten by the emulator's
    emu_uid = emulated_uid(BOARD, 0).hex()
    assert cal["uid"] == emu_uid
    desc_hash = cal["desc_hash"]
    # the next hardware session finds the real board's own, the emulator its own
    assert C.find_calibration(BOARD, desc_hash, REAL_UID) == real
    emu = C.find_calibration(BOARD, desc_hash, emu_uid)
    assert emu is not None and emu != real and json.loads(emu.read_text())["uid"] == emu_uid


def test_a_calibration_stored_the_old_way_is_read_with_a_warning_naming_it(tmp_path):
    old = {k: v for k, v in _real_board_calibration().items() if k != "uid"}
    path = C.save_calibration(old)  # no uid: the old key, board and description only
    assert path.name == f"{BOARD}-{old['desc_hash'][:16]}.json"
    notes: list[str] = []
    assert C.find_calibration(BOARD, old["desc_hash"], REAL_UID, log=notes.append) == path
    assert len(notes) == 1 and str(path) in notes[0] and "WARNING" in notes[0]


def test_an_interrupted_session_prints_the_command_that_resumes_it(tmp_path):
    """Ctrl-C ends a session with its summary and the exact resume command."""
    import os
    import signal
    import subprocess
    import sys
    import time

    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "learnboard", "train", "--steps", "100000",
                             "--checkpoint-every", "10", "--task", small_task(tmp_path), "--runs",
                             str(runs), "--name", "int", "--quiet", "--no-plot"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 120  # a bound on a hung session, not a measurement
        while time.monotonic() < deadline and proc.poll() is None:
            # (a folder being created has no config.json yet: not a run folder until it has)
            dirs = [d for d in runs.glob("*-int") if (d / "config.json").is_file()] if runs.exists() else []
            if dirs and RunFolder.open(dirs[0]).latest_checkpoint() is not None and any(
                    r.get("kind") == "tlm" for r in read_log(dirs[0] / "telemetry.msgpack")):
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    (run_dir,) = runs.glob("*-int")
    assert f"resume with: learnboard train --resume {run_dir}" in err.decode()
