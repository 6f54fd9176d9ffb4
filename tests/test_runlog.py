"""The telemetry log: consecutive indices, timed flushes, a cut last record, resume,
and a failed write that leaves what was written intact."""

from __future__ import annotations

import errno
import os
import time

import msgpack
import numpy as np
import pytest
from learnboard.host import runlog
from learnboard.host.runlog import RunLog, read_log, scan_log

from learnboard.errors import LearnboardError


def test_records_get_consecutive_indices_and_host_time(tmp_path):
    path = tmp_path / "t.msgpack"
    t0 = time.time()
    with RunLog(path) as log:
        for s in range(5):
            assert log.append({"kind": "tlm", "step": s, "err": np.float32(0.5), "k": np.arange(3)}) == s
    recs = read_log(path)
    assert [r["i"] for r in recs] == [0, 1, 2, 3, 4]
    assert [r["step"] for r in recs] == [0, 1, 2, 3, 4]
    assert all(t0 - 1 <= r["t"] <= time.time() + 1 for r in recs)
    assert recs[0]["k"] == [0, 1, 2] and recs[0]["err"] == pytest.approx(0.5)


def test_buffered_records_reach_the_file_within_a_second_without_more_appends(tmp_path):
    path = tmp_path / "t.msgpack"
    log = RunLog(path, flush_interval=0.2)
    log.append({"kind": "tlm", "step": 1})
    deadline = time.monotonic() + 5
    while not read_log(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["step"] for r in read_log(path)] == [1]  # no close, no flush call
    log.close()


def test_a_record_cut_by_a_crash_is_ignored_and_resume_continues_the_index(tmp_path):
    path = tmp_path / "t.msgpack"
    with RunLog(path) as log:
        for s in range(3):
            log.append({"kind": "tlm", "step": s})
    whole = path.read_bytes()
    cut = msgpack.packb({"kind": "tlm", "step": 3, "i": 3, "t": 1.0})[:-4]
    path.write_bytes(whole + cut)
    records, end = scan_log(path)
    assert [r["i"] for r in records] == [0, 1, 2] and end == len(whole)
    with RunLog(path, resume=True) as log:
        assert log.append({"kind": "tlm", "step": 3}) == 3
    assert [r["i"] for r in read_log(path)] == [0, 1, 2, 3]


def test_an_existing_log_is_not_overwritten_without_resume(tmp_path):
    path = tmp_path / "t.msgpack"
    with RunLog(path) as log:
        log.append({"kind": "event"})
    with pytest.raises(LearnboardError, match="--resume"):
        RunLog(path)
    assert len(read_log(path)) == 1


def test_disk_full_is_a_clear_error_and_keeps_the_written_records(tmp_path, monkeypatch):
    path = tmp_path / "t.msgpack"
    log = RunLog(path)
    log.append({"kind": "tlm", "step": 0})
    log.sync()
    real_write = os.write

    def half_then_full(fd, data):
        if fd == log._fd:
            real_write(fd, data[: len(data) // 2])  # part of the batch lands, then ENOSPC
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(runlog.os, "write", half_then_full)
    log.append({"kind": "tlm", "step": 1, "pad": "x" * 100})
    with pytest.raises(LearnboardError, match="disk is full.*intact"):
        log.flush()
    with pytest.raises(LearnboardError, match="disk is full"):
        log.append({"kind": "tlm", "step": 2})
    monkeypatch.undo()
    log.close()
    assert [r["step"] for r in read_log(path)] == [0]
    assert path.stat().st_size == scan_log(path)[1]  # no half record left behind


def test_read_only_folder_says_choose_another(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(LearnboardError, match="not writable"):
            RunLog(ro / "t.msgpack")
    finally:
        ro.chmod(0o700)
