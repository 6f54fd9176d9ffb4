"""Reliability campaign, storage faults: the run folder's disk full (ENOSPC) or read-only
(EROFS) at every kind of write a training session makes — creating the run folder, config.json,
the board files, opening/appending/fsyncing the telemetry log, each checkpoint, summary.json,
the figures.

The faults are injected below the code under test, at the operating system calls
(``os.mkdir``, ``open``/``io.open`` for writing, ``os.open``, ``os.write``, ``os.fsync``,
``os.replace``) for paths under the runs folder, so they work without root privileges and
under root (CI), where a read-only ``chmod`` does not stop anything. A real session on the
in-process emulated board runs through ``learnboard train`` (``learnboard.cli.main``).

Each case: exit status 2 with one line naming the path and what to do (figures: a warning
with the retry command, the session itself succeeded); everything written before stays
readable — the log by the reader with consecutive indices and no cut tail, every checkpoint
and JSON file complete, no temporary files left; and, for a full disk, ``--resume`` after
the space is back finishes the run.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import pytest
from learnboard.cli import main
from learnboard.host.runlog import read_log, scan_log
from learnboard.studies.reliability.storage import DiskFault  # noqa: F401 (benchmarks/reliability_storage.py)

TRAIN = ["train", "--port", "emu:gen1-digipot", "--steps", "20", "--checkpoint-every", "10",
         "--every", "5", "--quiet"]


def _train(runs: Path, *extra: str, capsys) -> tuple[int, str]:
    code = main([*TRAIN, "--runs", str(runs), *extra])
    return code, capsys.readouterr().err.strip()


def _run_dir(runs: Path) -> Path | None:
    dirs = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    return dirs[-1] if dirs else None


def assert_intact(run: Path | None) -> dict:
    """Everything in the run folder is whole: returns what is there."""
    found = {}
    if run is None:
        return found
    assert not list(run.rglob("*.tmp")), "a temporary file was left behind"
    log = run / "telemetry.msgpack"
    if log.exists():
        records, end = scan_log(log)
        assert end == log.stat().st_size, "the log ends in a cut record"
        assert [r["i"] for r in records] == list(range(len(records))), "indices not consecutive"
        found["records"] = records
    for path in [run / "config.json", run / "summary.json", *sorted((run / "checkpoints").glob("*.json"))]:
        if path.exists():
            data = json.loads(path.read_text())  # complete JSON, never half a file
            assert isinstance(data, dict) and data
            found[path.name] = data
    if (run / "board.json").exists():
        json.loads((run / "board.json").read_text())
    return found


# (what, op, path pattern relative to the runs folder, occurrence, errno, the session fails?)
CASES = [
    ("runs folder read-only", "mkdir", r"^\.$", 1, errno.EROFS, True),
    ("run folder read-only", "mkdir", r"^[^/]+-regression$", 1, errno.EROFS, True),
    ("config.json read-only", "open", r"config\.json\.tmp$", 1, errno.EROFS, True),
    ("config.json disk full", "fsync", r"config\.json\.tmp$", 1, errno.ENOSPC, True),
    ("board.json disk full", "open", r"board\.json\.tmp$", 1, errno.ENOSPC, True),
    ("log read-only", "os.open", r"telemetry\.msgpack$", 1, errno.EROFS, True),
    ("log append disk full", "write", r"telemetry\.msgpack$", 1, errno.ENOSPC, True),
    ("log append disk full (later)", "write", r"telemetry\.msgpack$", 3, errno.ENOSPC, True),
    ("log fsync disk full", "fsync", r"telemetry\.msgpack$", 2, errno.ENOSPC, True),
    ("checkpoint read-only", "open", r"checkpoints/step-000000010\.json\.tmp$", 1, errno.EROFS, True),
    ("checkpoint disk full", "fsync", r"checkpoints/step-000000010\.json\.tmp$", 1, errno.ENOSPC, True),
    ("checkpoint rename read-only", "replace", r"checkpoints/step-000000020\.json$", 1, errno.EROFS, True),
    ("log close disk full", "fsync", r"telemetry\.msgpack$", 4, errno.ENOSPC, True),
    ("summary.json disk full", "fsync", r"summary\.json\.tmp$", 1, errno.ENOSPC, True),
    ("figure read-only", "open", r"figures/.*\.png$", 1, errno.EROFS, False),
    ("figure disk full", "open", r"figures/.*\.png$", 2, errno.ENOSPC, False),
]
HINTS = re.compile(r"free some space|--runs|--resume|not writable|retry with")


@pytest.mark.parametrize("what,op,pattern,nth,err,fails", CASES, ids=[c[0] for c in CASES])
def test_storage_fault_is_a_clear_error_and_keeps_what_was_written(tmp_path, monkeypatch, capsys,
                                                                   what, op, pattern, nth, err, fails):
    runs = tmp_path / "runs"
    fault = DiskFault(runs, op, pattern, nth, err).install(monkeypatch)
    extra = () if "figure" in what else ("--no-plot",)
    code, msg = _train(runs, *extra, capsys=capsys)
    monkeypatch.undo()
    assert fault.fired, f"the fault never fired; calls seen: {sorted(set(fault.seen))}"
    lines = msg.splitlines()
    assert "Traceback" not in msg
    if fails:
        assert code == 2, msg
        assert len(lines) == 1, msg
    else:  # the figures: the session is done, a warning says how to draw them again
        assert code == 0 and len(lines) == 1 and lines[0].startswith("warning: figures not drawn"), msg
    assert str(runs) in msg, f"the message names no path under the runs folder: {msg}"
    assert HINTS.search(msg), f"the message says nothing to do: {msg}"
    assert os.strerror(err) in msg or "not writable" in msg or "disk is full" in msg, msg
    found = assert_intact(_run_dir(runs))
    if op == "write" and nth > 1:  # earlier batches reached the file: they are all there
        assert found["records"] and found["records"][0]["name"] == "start"
    print(f"{what}: {msg}")


@pytest.mark.parametrize("op,pattern,nth", [("write", r"telemetry\.msgpack$", 3),
                                            ("fsync", r"checkpoints/step-000000020\.json\.tmp$", 1),
                                            ("fsync", r"summary\.json\.tmp$", 1)],
                         ids=["log", "checkpoint", "summary"])
def test_after_a_full_disk_resume_finishes_the_run(tmp_path, monkeypatch, capsys, op, pattern, nth):
    runs = tmp_path / "runs"
    fault = DiskFault(runs, op, pattern, nth, errno.ENOSPC).install(monkeypatch)
    code, msg = _train(runs, "--no-plot", capsys=capsys)
    monkeypatch.undo()
    assert fault.fired and code == 2 and "free some space" in msg, msg
    run = _run_dir(runs)
    before = assert_intact(run)["records"]
    code, msg = _train(runs, "--no-plot", "--resume", str(run), capsys=capsys)
    assert code == 0, msg
    records = assert_intact(run)["records"]
    assert records[: len(before)] == before  # nothing written before was changed
    assert records[-1]["kind"] == "summary" and records[-1]["steps"] == 20
    assert json.loads((run / "summary.json").read_text())["steps"] == 20


def test_a_runs_path_that_is_a_file_is_a_clear_error(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.write_text("not a folder")
    code, msg = _train(runs, "--no-plot", capsys=capsys)
    assert code == 2 and len(msg.splitlines()) == 1 and "--runs" in msg and str(runs) in msg, msg


@pytest.mark.parametrize("name", ["../../etc", "../escape", "/tmp/abs", "a/../../b", "..", ".hidden",
                                  "a\\b", "x\x00y"])
def test_run_names_cannot_leave_the_runs_folder(tmp_path, capsys, name):
    runs = tmp_path / "deep" / "runs"
    code, msg = _train(runs, "--no-plot", f"--name={name}", capsys=capsys)
    assert code == 2 and "--name" in msg, msg
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) in ([], [Path("deep")],
                                                                             [Path("deep"), Path("deep/runs")])


def test_read_log_of_a_log_cut_by_a_full_disk_mid_record(tmp_path, monkeypatch):
    """A short write (the disk filled in the middle of a batch) leaves no half record."""
    from learnboard.host.runlog import RunLog

    from learnboard.errors import LearnboardError

    path = tmp_path / "telemetry.msgpack"
    real_write = os.write
    calls = {"n": 0}

    def short_then_full(fd, data):
        calls["n"] += 1
        if calls["n"] == 1:  # half the batch lands, then the disk is full
            real_write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    log = RunLog(path)
    for i in range(5):
        log.append({"kind": "tlm", "step": i})
    log.flush()
    monkeypatch.setattr(os, "write", short_then_full)
    for i in range(5, 10):
        log.append({"kind": "tlm", "step": i})
    with pytest.raises(LearnboardError, match=r"telemetry\.msgpack.*disk is full.*intact"):
        log.flush()
    with pytest.raises(LearnboardError, match="disk is full"):
        log.append({"kind": "tlm", "step": 99})  # refused, not half-written
    monkeypatch.undo()
    log.close()
    records = read_log(path)
    assert [r["step"] for r in records] == list(range(5))
    assert scan_log(path)[1] == path.stat().st_size


@pytest.mark.parametrize("command,op,pattern,err,hint", [
    (["export", "--csv"], "open", r"\.csv$", errno.EROFS, "--out"),
    (["export", "--csv"], "open", r"\.csv$", errno.ENOSPC, "--out"),
    (["plot"], "open", r"\.png$", errno.ENOSPC, "free some space"),
    (["plot"], "mkdir", r"figures$", errno.EROFS, "--out"),
], ids=["export read-only", "export disk full", "plot disk full", "plot read-only"])
def test_export_and_plot_on_a_full_or_read_only_disk(tmp_path, monkeypatch, capsys, command, op, pattern,
                                                     err, hint):
    runs = tmp_path / "runs"
    code, msg = _train(runs, "--no-plot", capsys=capsys)
    assert code == 0, msg
    run = _run_dir(runs)
    before = assert_intact(run)
    if op == "mkdir":
        (run / "figures").rmdir()
    fault = DiskFault(runs, op, pattern, 1, err).install(monkeypatch)
    code = main([command[0], str(run), *command[1:]])
    msg = capsys.readouterr().err.strip()
    monkeypatch.undo()
    assert fault.fired and code == 2, msg
    assert len(msg.splitlines()) == 1 and str(run) in msg and hint in msg, msg
    assert assert_intact(run)["records"] == before["records"]
