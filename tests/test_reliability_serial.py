"""Reliability campaign, serial faults (short version; the full grid of rates is in
benchmarks/reliability.py): training over a line that drops, corrupts or duplicates
bytes completes, every lost frame is counted as a gap, and no command runs twice."""

from __future__ import annotations

import pytest
from learnboard.studies.reliability.serial import run_insert_campaign, run_serial_campaign


@pytest.mark.parametrize(("kind", "rate"), [("drop", 1e-2), ("corrupt", 1e-3), ("dup", 1e-2), ("drop", 0.0)])
def test_training_over_a_faulty_line(kind, rate):
    r = run_serial_campaign(kind, rate, steps=30, seed=3)
    assert r.completed
    assert r.unaccounted == 0  # every frame the board sent arrived or shows as a gap
    assert r.telemetry_gaps <= r.host_seq_gaps
    assert r.board_requests == r.host_requests  # each request ran exactly once
    assert r.board_cache_hits <= r.host_retries  # repeats were answered from the cache
    if rate == 0:
        assert (r.telemetry_gaps, r.host_bad_frames, r.board_bad_frames, r.host_retries) == (0, 0, 0, 0)
    else:
        assert r.injected_to_host > 0 and r.host_bad_frames > 0
        assert (r.board_bad_frames > 0) == (r.injected_to_board > 0)


@pytest.mark.parametrize("rate", [200.0, 2000.0])
def test_a_session_over_a_line_with_inserted_bytes(rate):
    """Short version of the inserted-bytes campaign (60 board seconds per rate in
    benchmarks/reliability.py insert): a whole session with its log."""
    r = run_insert_campaign(rate, duration_s=5.0, seed=1)
    assert r.completed, r.error
    assert r.inserted_to_board > 0 and r.inserted_to_host > 0 and r.control_to_board > 0
    assert r.telemetry_lost_on_line == r.telemetry_gaps  # every lost record shows as a gap
    assert r.log_lost == 0  # every record the host received is in the log
    assert r.unaccounted == 0
    assert r.board_requests == r.host_requests  # each request ran exactly once
    assert r.board_cache_hits <= r.host_retries
