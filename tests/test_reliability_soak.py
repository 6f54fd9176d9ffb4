"""Reliability campaign, soak (short version; benchmarks/reliability.py soak runs the
long one): training on the emulated board in fast mode keeps memory flat on both the
firmware's and the host's side."""

from __future__ import annotations

from learnboard.studies.reliability.soak import run_soak


def test_memory_stays_flat_while_training():
    r = run_soak(320, chunk=80, every=20)
    assert [s for s, _ in r.samples] == [80, 160, 240, 320]
    assert r.telemetry >= 16  # the host consumed the telemetry as it came
    for group in ("firmware", "host"):
        assert r.growth(group) <= 1024, (group, [g[group] for _, g in r.samples])
