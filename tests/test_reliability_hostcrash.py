"""`learnboard train` killed with SIGKILL several times at seeded random moments, resumed
each time (short version of `benchmarks/reliability.py hostcrash`; tests/test_train_cli.py
has the single-kill walk-through)."""

from __future__ import annotations

import pytest
from learnboard.studies.reliability.hostcrash import check_history, run_hostcrash

from tests.test_session import small_task


@pytest.mark.slow
def test_repeated_sigkill_and_resume_keep_one_whole_log(tmp_path):
    kills = 2
    rep = run_hostcrash(tmp_path, seed=2, steps=300, kills=kills, task=small_task(tmp_path),
                        checkpoint_every=50, every=10, delay=(0.2, 1.5))
    assert len(rep.kills) == kills
    assert rep.completed and rep.summary_steps == 300
    assert rep.indices_ok  # consecutive from 0 across every crash
    assert rep.prefix_ok  # what was on disk at each kill is unchanged at the end
    assert rep.duplicates == 0
    # one restore per --resume that got past its start-up before the next kill
    assert 1 <= rep.restores <= kills
    assert rep.missing_steps == []  # steps lost with a kill were trained and logged again
    for k in rep.kills:
        assert k.checkpoint_step is not None
        if k.lost_window is not None:  # the newest record on disk: at most ~1 s before the kill
            print(f"kill {k.life}: {k.lost_window:.3f} s of telemetry lost at most")
            assert k.lost_window <= 1.0 + 0.5  # flush interval 0.5 s, promise 1 s, + slack


def test_the_history_check_finds_a_duplicate_and_a_missing_step():
    recs = [{"i": 0, "kind": "tlm", "step": 10}, {"i": 1, "kind": "tlm", "step": 20},
            {"i": 2, "kind": "restore", "step": 10},
            {"i": 3, "kind": "tlm", "step": 20, "supersedes": True},  # a legitimate redo
            {"i": 4, "kind": "tlm", "step": 20, "supersedes": True}]  # the same step twice
    h = check_history(recs, 40, 10)
    assert h["indices_ok"] and h["duplicates"] == 1 and h["missing_steps"] == [30, 40]
    h = check_history(recs[:4] + [{"i": 5, "kind": "tlm", "step": 30}], 30, 10)
    assert not h["indices_ok"] and h["duplicates"] == 0
