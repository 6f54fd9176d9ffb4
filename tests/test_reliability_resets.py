"""Board resets during training (short version of `benchmarks/reliability.py brownout`):
each reset is detected, the last checkpoint restored, the redone steps are marked, and the
session ends as good as an uninterrupted one; also resets in the windows between chunks
(checkpoint read-back, restore, final evaluation) and the in-process board's watchdog
after a reset."""

from __future__ import annotations

import pytest
from learnboard.cli.connection import LinkedInProcessBoard, open_board
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log
from learnboard.host.session import UPLOAD_CHUNK, load_session_task, run_session
from learnboard.studies.reliability.resets import _config, check_log, run_brownout, run_session_once

STEPS = 200
CK = 50


@pytest.mark.slow
def test_resets_at_random_steps_are_detected_restored_and_cost_no_accuracy(tmp_path):
    rep = run_brownout(3, tmp_path, steps=STEPS, n_resets=2, checkpoint_every=CK)
    assert [s.kind for s in rep.shots] in (["hard", "power-on"], ["power-on", "hard"])
    assert rep.detected == rep.board_reset_events == 2  # each reset seen once
    assert rep.restores_ok and rep.supersedes_ok and rep.indices_ok and rep.completed
    assert rep.redone_steps > 0
    plain, _, _ = run_session_once(3, tmp_path, steps=STEPS, checkpoint_every=CK)
    # the same board and task without resets: the rule's own run-to-run spread on this
    # board is C/C0 ~0.005-0.02 at this length (benchmarks: 5 seeds), so a factor 3 either
    # way; the true power depends on where the edges settle: within a factor 2
    print(f"C/C0 {rep.relative_error:.4g} vs {plain.relative_error:.4g} uninterrupted; "
          f"true power {rep.true_power:.4g} vs {plain.true_power:.4g} W")
    assert rep.relative_error < 3 * plain.relative_error + 0.01
    assert 0.5 < rep.true_power / plain.true_power < 2


def test_resets_between_chunks_and_while_restoring_are_caught(tmp_path):
    """Brown-outs where no chunk sees them: before a checkpoint's read-back (its edges
    would be a fresh board's), during the restore that follows, and during the final
    evaluation. The link's requests are wrapped to reset the board just before the n-th
    request of a kind (fault injection; the board and session are the real ones)."""
    with open_board("emu:gen2-clln", seed=4) as conn:
        task = load_session_task("regression", conn.board)
        n_eval = len(task.x_train) + len(task.x_test)  # infers for C0 at the start
        n_up = -(-len(task.x_train) // UPLOAD_CHUNK)  # uploads per preparation
        plan = {("read_edges", 3): "power-on",  # the checkpoint at step 50
                ("upload_examples", n_up + 1): "hard",  # the restore after it
                ("infer", n_eval + 2): "power-on"}  # the final evaluation
        real, seen = conn.link.request, {}

        def request(command, args=None, **kw):
            seen[command] = seen.get(command, 0) + 1
            kind = plan.get((command, seen[command]))
            if kind:
                conn.emulator.reset(kind)
            return real(command, args, **kw)

        conn.link.request = request
        rf = RunFolder.create(tmp_path, "windows")
        s = run_session(conn, _config(100, "regression", CK, 10), rf)
        boots = conn.emulator.boots
    assert boots == 4 and s.resets == 3 and s.steps == 100
    recs = read_log(rf.log_path)
    reasons = [r["reason"] for r in recs if r.get("name") == "board_reset"]
    assert reasons[0] == "the board rebooted before a checkpoint"
    assert "the board rebooted while being prepared" in reasons
    assert "the board rebooted during the final evaluation" in reasons
    # no checkpoint holds a rebooted board's edges: the one at 50 was written after a retrain
    cks = [r for r in recs if r["kind"] == "checkpoint"]
    first50 = next(r for r in cks if r["step"] == CK)
    restore = next(r for r in recs if r["kind"] == "restore")
    assert restore["step"] == 0 and restore["i"] < first50["i"]
    log = check_log(rf, [], CK)
    assert log["indices_ok"] and log["supersedes_ok"]
    summaries = [r for r in recs if r["kind"] == "summary"]
    assert len(summaries) == 1 and summaries[0]["i"] > max(r["i"] for r in recs if r.get("name") == "board_reset")


def test_the_watchdog_of_a_run_ended_by_a_reset_does_not_fire_later():
    """Found by the campaign: every firmware run's watchdog stayed on the virtual clock,
    so 5 s after a reset the old one fired in the new run (a fault event mid-step, or a
    second reset)."""
    with LinkedInProcessBoard("gen2-clln", seed=0) as emu:
        emu.link.hello()
        emu.reset("power-on")
        for _ in range(4):  # 8 s of virtual time, the live firmware feeding its own dog
            with emu.lock:
                emu.world.clock.advance_us(2e6)
            emu.link.call("status")
        assert emu.boots == 2 and emu.resets == ["power-on"] and emu.error is None
