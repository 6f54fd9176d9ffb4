"""The report's task screening: a filter labelled as one, and a representability verdict for
every task the filter drops."""

from __future__ import annotations

import json

from learnboard.studies.paper import screening
from learnboard.studies.paper.plan import Plan
from learnboard.studies.paper.report import sample_size
from learnboard.studies.sweep import expand, run_sweep


def _rows():
    return [{"id": "a", "status": "ok", "network": "n1", "seed": 0, "relative_error": 1e-9,
             "frac_at_min": 0.05},
            {"id": "b", "status": "ok", "network": "n1", "seed": 1, "relative_error": 0.3,
             "frac_at_min": 0.11},
            {"id": "c", "status": "error", "network": "n2", "seed": 0, "relative_error": None,
             "error_message": "boom"}]


def test_screening_is_labelled_as_a_filter_never_a_failure(tmp_path):
    rows = screening.screening_rows([], _rows(), 1e-5, tmp_path, check="none")
    assert [r["decision"] for r in rows] == ["used", "filtered out: plateau above τ = 1e-05",
                                             "run failed: boom"]
    assert [r["frac_at_min"] for r in rows[:2]] == [0.05, 0.11]  # the plateau's clipping kept
    text = "\n".join(screening.markdown(rows, 1e-5, 2))
    assert "FAIL" not in text and "pass |" not in text
    assert "a **filter**" in text and "1 of 3 tasks passed it" in text


def test_sample_size_says_one_run_when_one_task_passed():
    lam_rows = [{"network": "r1", "lam": 0.0, "runs": 1}, {"network": "all", "lam": 0.0, "runs": 1}]
    long, short = sample_size(lam_rows, [{"used": True}, {"used": False}, {"used": False}])
    assert "**one run** on r1" in long and "1 of 3 screened tasks passed the filter" in long
    assert "median" not in short
    lam_rows = [{"network": n, "lam": 0.0, "runs": r} for n, r in (("r1", 2), ("r2", 2), ("all", 4))]
    long, _ = sample_size(lam_rows, [{"used": True}] * 4)
    assert long.startswith("Each λ: the median over 4 runs on 2 network(s) (r1, r2;")


def test_filtered_task_gets_an_inverse_verdict_and_is_cached(tmp_path):
    plan = Plan(networks=[{"generate": "disordered:N=20,seed=1", "label": "g20"}],
                candidate_seeds=2, steps=300)
    runs = expand(plan.screen_spec())
    res = run_sweep(runs, tmp_path / "sweep", workers=1, progress=False)
    # a threshold no 300-step run reaches: every task is filtered out and checked
    rows = screening.screening_rows(runs, res.rows, 1e-40, tmp_path, random_starts=1,
                                    more_starts=0, maxiter=200, workers=1)
    assert all(r["decision"].startswith("filtered out") for r in rows)
    for r in rows:
        assert r["verdict"].startswith("not representable (evidence: best of 3 starts")
        assert r["inverse_starts"] == 3 and 0 <= r["inverse_frac_at_min"] <= 1
        # the trained start begins at the rule's end state: the search never does worse
        assert r["inverse_relative_error"] <= r["rule_relative_error"] * (1 + 1e-9)
        assert abs(r["rule_relative_error"] - r["relative_error_lam0"]) <= 1e-9 * r["relative_error_lam0"]
    cache = json.loads((tmp_path / screening.FILE).read_text())
    assert len(cache) == 2
    again = screening.screening_rows(runs, res.rows, 1e-40, tmp_path, random_starts=1,
                                     more_starts=0, maxiter=200, workers=1)
    assert again == rows  # from the cache: a redraw repeats no search


def test_markdown_counts_each_verdict():
    rows = [{"used": False, "representable": True, "verdict": "representable, ...",
             "inverse_starts": 10},
            {"used": False, "representable": False, "verdict": "not representable (...)",
             "inverse_starts": 34},
            {"used": False, "representable": None, "verdict": "check failed: singular"},
            {"used": True}]
    text = "\n".join(screening.markdown(rows, 1e-5, 2))
    assert "1 of 3 reach C/C0 < τ" in text and "1 of 3 stay above τ: *not representable*" in text
    assert "1 check(s) failed" in text and "FAIL" not in text
