"""``learnboard train`` end to end: a host killed with SIGKILL mid-session loses at most
the last second of telemetry, and ``--resume`` continues with consecutive record indices
and no duplicates; bad schedule files are clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from learnboard.cli import main
from learnboard.host.records import seal_json
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log

from learnboard.boards import load_board


def _cmd(*args):
    return [sys.executable, "-m", "learnboard", "train", *args]


KILL_AT = 60
"""The kill lands once the log on disk shows this step (past the checkpoint at 40)."""


def _train_until_killed(tmp_path, steps: int):
    """``(run_dir, killed)``: a session started with ``steps`` steps and SIGKILL-ed once its
    log on disk shows step :data:`KILL_AT`; ``killed`` False when it ended first (the
    emulated board was faster than the log's flushes), so the caller tries a longer run."""
    from tests.test_session import small_task

    runs = tmp_path / f"runs-{steps}"
    proc = subprocess.Popen(_cmd("--steps", str(steps), "--runs", str(runs), "--name", "kill", "--task",
                                 small_task(tmp_path), "--checkpoint-every", "40", "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        deadline = time.monotonic() + 180  # a bound on a hung session, not a measurement
        run_dir = None
        while time.monotonic() < deadline and proc.poll() is None:
            dirs = list(runs.glob("*-kill")) if runs.exists() else []
            if dirs:
                run_dir = dirs[0]
                tlm = [r.get("step", 0) for r in read_log(run_dir / "telemetry.msgpack") if r["kind"] == "tlm"]
                if tlm and max(tlm) >= KILL_AT:
                    break
            time.sleep(0.02)
        assert run_dir is not None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)  # an exited process not yet waited for is a zombie: no error
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return run_dir, proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_then_resume_keeps_the_log_whole(tmp_path):
    # the kill must land mid-run: a run that ended before it is started again four times
    # longer, so the test does not depend on how fast the emulated board trains
    steps = 600
    run_dir, killed = _train_until_killed(tmp_path, steps)
    while not killed and steps < 40_000:
        steps *= 4
        run_dir, killed = _train_until_killed(tmp_path, steps)
    assert killed, f"every session up to {steps} steps ended before its log showed step {KILL_AT}"
    before = read_log(run_dir / "telemetry.msgpack")
    assert [r["i"] for r in before] == list(range(len(before)))
    # what the log promised before the kill is on disk: every record up to the last
    # checkpoint (fsync-ed there) and the telemetry the test saw (flushed within a second,
    # tests/test_runlog.py), so nothing older than the last flush was lost
    ck_step = RunFolder.open(run_dir).latest_checkpoint()["step"]
    assert ck_step >= 40
    tlm_before = [r["step"] for r in before if r["kind"] == "tlm"]
    assert max(tlm_before) >= KILL_AT and ck_step in tlm_before

    out = subprocess.run(_cmd("--resume", str(run_dir), "--json"), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["steps"] == steps and summary["run_dir"] == str(run_dir)
    for key in ("relative_error", "power", "lambda"):
        assert isinstance(summary[key], float)
    recs = read_log(run_dir / "telemetry.msgpack")
    idx = [r["i"] for r in recs]
    assert idx == list(range(len(recs)))  # consecutive across the crash, no duplicates
    assert recs[: len(before)] == before  # nothing written before the kill was changed
    restore = [r for r in recs if r["kind"] == "restore"]
    assert len(restore) == 1 and restore[0]["supersedes_from"] == ck_step
    redone = [r for r in recs[restore[0]["i"]:] if r["kind"] == "tlm"]
    assert redone[0]["step"] == ck_step + 10
    lost_steps = {r["step"] for r in before if r["kind"] == "tlm" and r["step"] > ck_step}
    assert all(r.get("supersedes") for r in redone if r["step"] in lost_steps)


def test_a_bad_schedule_file_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "s.toml"
    bad.write_text('[[phase]]\nkind = "ramp"\nsteps = 10\n')
    assert main(["train", "--schedule", str(bad), "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: phase[0].lam_to" in err and "Traceback" not in err
    assert not any(tmp_path.glob("*-*"))  # nothing started


def test_a_schedule_of_0_1_0_that_sets_eta_is_refused_saying_what_to_write(tmp_path, capsys):
    """0.1.0 read eta as the learning rate: the file is refused, never reinterpreted."""
    old = tmp_path / "old.toml"
    old.write_text('[[phase]]\nkind = "constant"\nsteps = 10\neta = 1.0\n')
    assert main(["train", "--schedule", str(old), "--runs", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{old}: phase[0].eta" in err and "Add `version = 2`" in err, err
    assert "alpha is the learning rate and eta the nudge" in err
    assert len(err.strip().splitlines()) == 1 and not any(tmp_path.glob("*-*"))
    old.write_text('version = 2\n' + old.read_text())  # as the message says
    assert main(["train", "--schedule", str(old), "--runs", str(tmp_path), "--quiet",
                 "--no-plot"]) == 0


def test_lambda_and_tolerance_together_are_refused(tmp_path, capsys):
    assert main(["train", "--lambda", "0.1", "--tolerance", "0.05", "--runs", str(tmp_path)]) == 2
    assert "--lambda" in capsys.readouterr().err


def test_several_ports_train_in_parallel_one_run_folder_each(tmp_path, capsys):
    from tests.test_session import small_task

    rc = main(["train", "--port", "emu:gen2-clln", "--port", "emu:gen2-clln", "--steps", "10",
               "--task", small_task(tmp_path), "--runs", str(tmp_path), "--name", "pair", "--json"])
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(lines) == 2 and {d["steps"] for d in lines} == {10}
    dirs = [d["run_dir"] for d in lines]
    # <date>-<time>-<name>: the two sessions may start in different seconds
    assert sorted(d.rsplit("/", 1)[-1].split("-", 2)[-1] for d in dirs) == ["pair-0", "pair-1"]
    for d in dirs:
        recs = read_log(f"{d}/telemetry.msgpack")
        assert [r["i"] for r in recs] == list(range(len(recs)))
        assert RunFolder.open(d).read_config()["schedule"]["stop"]["steps"] == 10


def test_resume_sets_a_checkpointed_state_outside_the_range_to_the_nearest_safe_one(tmp_path, capsys):
    """A checkpoint may hold a gate the board no longer writes (it leaked below the
    range before the checkpoint, or the firmware's margins grew since): --resume puts it
    at the nearest safe value, says so, logs it, and the run goes on (it once failed
    with "board refused 'write_edges': LIMIT: edge 1: 0.7469... outside the safe range")."""
    from tests.test_session import small_task

    args = ["--steps", "20", "--checkpoint-every", "10", "--task", small_task(tmp_path),
            "--runs", str(tmp_path), "--name", "leak", "--json"]
    assert main(["train", *args]) == 0
    run_dir = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"]
    rf = RunFolder.open(run_dir)
    cks = rf.checkpoints()  # steps 0, 10, 20
    for path in cks[2:]:  # as if the host died after the step-10 checkpoint
        path.unlink()
    ck = json.loads(cks[1].read_text())
    assert ck["step"] == 10
    ck["k"][1], ck["k"][2] = 0.7469419836997986, 5.3
    cks[1].write_text(json.dumps(seal_json(ck)))  # as a host would have written it

    assert main(["train", "--resume", run_dir, "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out.strip().splitlines()[-1])["steps"] == 20
    assert "warning:" in out.err and "e01 0.7469 ->" in out.err and "e02 5.3 ->" in out.err
    ev = [r for r in read_log(f"{run_dir}/telemetry.msgpack") if r.get("name") == "edges_clamped"]
    assert len(ev) == 1 and ev[0]["edges"] == [1, 2] and ev[0]["step"] == 10
    lo, hi = 0.75, 5.2  # gen2-clln's gate range
    assert lo < ev[0]["set"][0] < lo + 0.05 and hi - 0.1 < ev[0]["set"][1] < hi


def test_resume_names_the_checkpointed_edge_the_board_refused(tmp_path, capsys):
    """A checkpointed state the board cannot take at all (a fractional digipot tap; clamp
    does not help) ends the resume with an error naming the checkpoint file, its
    ``k[e]`` and the edge: the edge the board's refusal carries, not one read from its
    message."""
    task = tmp_path / "two.csv"
    rows = [(0.05, 0.3), (0.3, 0.1), (0.2, 0.2), (0.35, 0.35)]
    task.write_text("x0,x1,y0,y1\n" + "".join(f"{a},{b},{0.2 * a + 0.3 * b},{0.3 * a + 0.1 * b}\n"
                                              for a, b in rows))
    port = ["--port", "emu:gen1-digipot"]
    args = [*port, "--steps", "10", "--checkpoint-every", "10", "--task", str(task),
            "--runs", str(tmp_path), "--name", "frac", "--json", "--no-plot"]
    assert main(["train", *args]) == 0
    run_dir = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"]
    rf = RunFolder.open(run_dir)
    path = rf.checkpoints()[-1]
    ck = json.loads(path.read_text())
    ck["k"][3] = ck["k"][3] + 0.5
    path.write_text(json.dumps(seal_json(ck)))  # as a host would have written it

    # the run finished its 10 steps: --steps asks for more, so the resume restores
    assert main(["train", *port, "--resume", run_dir, "--steps", "20", "--json", "--no-plot"]) == 2
    err = capsys.readouterr().err
    edge = load_board("gen1-digipot").edges[3].name
    assert f"{path}: k[3]: edge 3 ({edge}) = {ck['k'][3]!r} was refused by the board (BAD_ARGS" in err
    assert "delete this checkpoint" in err
