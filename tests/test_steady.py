"""The steady-state verdict, the floating-point floor and replica distributions: what a
user reads off ``sim --json``, sweep rows, train summaries and the paper's λ checks."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.studies.paper import report
from learnboard.studies.sweep import expand, read_csv, run_sweep

from learnboard.engine.replicas import distribution, modes, perturbed
from learnboard.engine.steady import FLOOR, below_floor, floor_flags, verdict

STEPS = np.arange(0, 2001, 10)


def _history(rel, power=None) -> dict:
    rel = np.asarray(rel, dtype=float)
    return {"step": STEPS[: rel.size], "relative_error": rel,
            "power": np.full(rel.size, 0.5) if power is None else np.asarray(power, float)}


def test_a_converged_exponential_decay_is_steady():
    v = verdict(_history(0.01 + np.exp(-STEPS / 100.0), 0.2 + 0.3 * np.exp(-STEPS / 80.0)))
    assert v["steady_state"] is True
    assert v["drift_relative_error"] < 0.01 and v["bursts"] == 0 and v["rise"] == 1.0


def test_a_decay_to_zero_that_reached_the_floor_is_steady():
    rel = np.exp(-STEPS / 20.0)  # reaches 1e-15 by step 700; then rounding noise
    rel[rel < 1e-16] = 1e-16 * np.cos(STEPS[rel < 1e-16])  # noise, some of it negative
    v = verdict(_history(rel))
    assert v["steady_state"] is True


def test_a_run_still_decaying_or_creeping_up_is_not_steady():
    assert verdict(_history(np.exp(-STEPS / 3000.0)))["steady_state"] is False
    creep = verdict(_history(1e-3 * (1 + STEPS / 500.0)))
    assert creep["steady_state"] is False and creep["drift_relative_error"] > 0.05
    # the power drifting is enough
    assert verdict(_history(np.full(STEPS.size, 1e-3), 1 - STEPS / 4000.0))["steady_state"] is False


def test_a_limit_cycle_is_not_steady_even_with_no_drift():
    v = verdict(_history(1e-3 * (1 + 0.5 * np.sin(2 * np.pi * STEPS / 50.0))))
    assert v["steady_state"] is False
    assert v["drift_relative_error"] < 0.05 < v["fluctuation_relative_error"]


def test_a_burst_is_flagged_with_the_rise_over_the_running_minimum():
    rel = np.full(STEPS.size, 4.4e-7)
    rel[100:] = 1.1e-5  # rose 25x above its minimum and stayed there
    v = verdict(_history(rel))
    assert v["bursts"] == 1 and math.isclose(v["rise"], 1.1e-5 / 4.4e-7)
    assert v["steady_state"] is True  # it settled, above its best: steady, with a burst
    spikes = np.full(STEPS.size, 1e-4)
    spikes[[50, 120, 180]] = 5e-3
    assert verdict(_history(spikes))["bursts"] == 3


def test_a_short_history_is_not_judged_steady():
    v = verdict(_history([1.0, 0.5, 0.4]))
    assert v["steady_state"] is False and v["drift_relative_error"] is None
    assert verdict({"relative_error": []})["steady_state"] is False


def test_values_below_the_floating_point_floor_are_kept_and_marked():
    flags = floor_flags([1e-3, -8.6e-17, 1.2e-29, 2 * FLOOR, math.nan])
    assert flags.tolist() == [False, True, True, False, False]
    assert below_floor(-8.6e-17) and not below_floor(5.5e-14) and not below_floor(None)


def test_modes_split_a_bimodal_set_and_keep_one_spread_set_whole():
    found = modes([7.07e-3] * 4 + [8.99e-3] * 6)
    assert [(round(m["centre"], 5), m["count"]) for m in found] == [(0.00707, 4), (0.00899, 6)]
    assert len(modes([1.0 + 1e-9 * i for i in range(8)])) == 1  # identical runs: one mode
    assert len(modes(np.logspace(-3, -1, 10))) == 1  # evenly spread: no gap stands out
    d = distribution([{"relative_error": x, "power": 2 * x, "steady_state": i % 2 == 0,
                       "network": "n"} for i, x in enumerate([1.0, 2.0, 3.0, 4.0, 5.0])])
    assert d["median"] == {"relative_error": 3.0, "power": 6.0}
    assert d["iqr"]["relative_error"] == [2.0, 4.0] and d["range"]["power"] == [2.0, 10.0]
    assert d["steady_runs"] == 3 and "steady_state" not in d["median"]


def test_perturbed_starts_are_seeded_per_replica():
    k0 = np.ones(50)
    a, b = perturbed(k0, 1e-12, 0, 1), perturbed(k0, 1e-12, 0, 2)
    assert np.array_equal(a, perturbed(k0, 1e-12, 0, 1)) and not np.array_equal(a, b)
    assert np.max(np.abs(a - 1)) <= 1e-12 and np.array_equal(perturbed(k0, 0.0, 0, 3), k0)


SIM = ["sim", "--generate", "disordered:N=24,seed=3", "--steps", "300", "--lam", "1e-3"]


def test_sim_json_has_the_verdict_and_history_marks_the_floor(capsys, tmp_path):
    assert main([*SIM, "--json", "--save", str(tmp_path)]) == 0
    single = json.loads(capsys.readouterr().out)
    assert isinstance(single["steady_state"], bool) and single["below_floor"] is False
    for key in ("drift_relative_error", "drift_power", "fluctuation_relative_error", "bursts",
                "rise"):
        assert key in single
    with (tmp_path / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert {r["below_floor"] for r in rows} == {"0"}
    assert json.loads((tmp_path / "summary.json").read_text())["steady_state"] == single["steady_state"]


def test_sim_replicas_report_runs_median_iqr_and_modes(capsys, tmp_path):
    assert main([*SIM, "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert main([*SIM, "--replicas", "3", "--perturb", "1e-3", "--json",
                 "--save", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["replicas"]) == 3
    # every replica has the keys of a single run (plus which replica it is)
    for i, r in enumerate(out["replicas"]):
        assert set(single) <= set(r) and (r["replica"], r["perturb"]) == (i, 1e-3)
    errs = sorted(r["relative_error"] for r in out["replicas"])
    assert len(set(errs)) == 3  # the perturbed starts made different runs
    assert out["median"]["relative_error"] == errs[1]
    for key in ("relative_error", "error", "power"):
        lo, hi = out["iqr"][key]
        assert lo <= out["median"][key] <= hi
        assert sum(m["count"] for m in out["modes"][key]) == 3
    assert (tmp_path / "replicas.json").is_file() and (tmp_path / "replica002" / "history.csv").is_file()
    # a table for people, too
    assert main([*SIM, "--replicas", "2", "--perturb", "1e-3"]) == 0
    assert "modes of relative_error" in capsys.readouterr().out


def test_replicas_that_could_only_repeat_one_run_are_refused(capsys):
    assert main([*SIM, "--replicas", "3"]) != 0
    assert "--perturb" in capsys.readouterr().err


def test_sweep_rows_carry_the_verdict(tmp_path):
    spec = {"steps": 300, "grid": {"lam": [0.0, 1e-3]},
            "networks": [{"generate": "disordered:N=24,seed=3", "label": "g24"}]}
    run_sweep(expand(spec), tmp_path, workers=1, progress=False)
    rows = read_csv(tmp_path / "results.csv")
    assert all(isinstance(r["steady_state"], bool) and isinstance(r["bursts"], int)
               and r["below_floor"] is False for r in rows)


def _lam_rows(errs: dict, power: dict) -> list[dict]:
    return [{"network": "all", "lam": lam, "rel_error_median": errs[lam], "power_median": power[lam]}
            for lam in errs]


def test_the_lambda_checks_use_every_lambda_of_the_scan():
    lams = [0.0, 1e-9, 1e-8, 1e-7, 1e-6, 1e-5, 1e-3]
    errs = dict(zip(lams, [1e-29, 5e-12, 5e-10, 3e-6, 2e-6, 7e-3, 0.5], strict=True))
    power = dict(zip(lams, [0.65, 0.64, 0.58, 0.24, 0.08, 0.02, 1e-4], strict=True))
    found = []
    report._lambda_checks(lambda *a: found.append(a), _lam_rows(errs, power))
    by = {claim.split(" (")[0]: (measured, ok) for claim, measured, _, ok in found}
    # 1e-7 -> 1e-6 lies between the old sample points (1e-9, 1e-7, 1e-5, 1e-3): caught now
    assert by["error grows with λ"][1] is False
    assert "falls from λ 1e-07 to 1e-06" in by["error grows with λ"][0]
    assert by["power falls with λ"][1] is True
    assert "7 λ" in found[0][0]
    # two neighbours both below the floor are noise, not a fall
    errs.update({0.0: 3e-17, 1e-9: -8.6e-17, 1e-6: 4e-6})
    found.clear()
    report._lambda_checks(lambda *a: found.append(a), _lam_rows(errs, power))
    assert found[0][3] is True


def test_the_lambda_checks_judge_each_network_not_only_the_median():
    lams = [0.0, 1e-7, 1e-6, 1e-5]
    good = dict(zip(lams, [1e-29, 3e-7, 7e-6, 7e-3], strict=True))
    bad = dict(zip(lams, [1e-29, 3e-6, 2e-6, 9e-3], strict=True))  # falls from 1e-7 to 1e-6
    power = dict(zip(lams, [0.65, 0.24, 0.08, 0.02], strict=True))
    rows = [{**r, "network": net} for net, errs in (("a", good), ("b", bad), ("c", good))
            for r in _lam_rows(errs, power)]
    rows += _lam_rows(good, power)  # the median over all runs grows: it hides network b
    found = []
    report._lambda_checks(lambda *a: found.append(a), rows, ["a", "b", "c"])
    by = {claim.split(" (")[0]: (measured, ok) for claim, measured, _, ok in found}
    assert by["error grows with λ"][1] is True
    measured, ok = by["error grows with λ on each network"]
    assert ok is False and measured.startswith("2 of 3 networks")
    assert "b: falls from λ 1e-07 to 1e-06" in measured
    assert by["power falls with λ on each network"] == ("3 of 3 networks", True)


@pytest.mark.parametrize("steps", [30])
def test_a_training_session_summary_has_the_verdict(tmp_path, steps):
    from learnboard.cli.connection import open_board
    from learnboard.host.runfolder import RunFolder
    from learnboard.host.schedule import schedule_from_flags
    from learnboard.host.session import TrainConfig, run_session

    cfg = TrainConfig(task="regression", schedule=schedule_from_flags(steps=steps))
    with open_board(board="gen2-clln", seed=0) as conn:
        rf = RunFolder.create(tmp_path, "steady")
        s = run_session(conn, cfg, rf)
    stored = rf.read_summary()
    assert isinstance(s.steady_state, bool) and stored["steady_state"] == s.steady_state
    assert stored["below_floor"] is False and isinstance(stored["bursts"], int)


def test_a_sweep_with_replicas_summarises_each_grid_point(tmp_path):
    spec = {"steps": 200, "grid": {"lam": [1e-3], "replicas": 3, "perturb": 1e-3},
            "networks": [{"generate": "disordered:N=24,seed=3", "label": "g24"}]}
    runs = expand(spec)
    assert [r["replica"] for r in runs] == [0, 1, 2] and len({r["id"] for r in runs}) == 3
    run_sweep(runs, tmp_path, workers=1, progress=False)
    rows = read_csv(tmp_path / "results.csv")
    assert sorted(r["replica"] for r in rows) == [0, 1, 2]
    (point,) = json.loads((tmp_path / "replicas.json").read_text())["points"]
    assert point["point"]["lam"] == 1e-3 and len(point["replicas"]) == 3
    errs = sorted(r["relative_error"] for r in rows)
    assert len(set(errs)) == 3 and point["median"]["relative_error"] == errs[1]
    assert point["iqr"]["power"][0] <= point["median"]["power"] <= point["iqr"]["power"][1]
    assert sum(m["count"] for m in point["modes"]["relative_error"]) == 3
    # a plain spec keeps its run ids (no replica keys), so earlier sweeps resume
    plain = {k: v for k, v in spec["grid"].items() if k not in ("replicas", "perturb")}
    assert "replica" not in expand({**spec, "grid": plain})[0]


def test_sweep_replicas_need_a_perturbation_and_a_linear_network():
    from learnboard.errors import InputError

    with pytest.raises(InputError, match="perturb"):
        expand({"grid": {"lam": [0.0], "replicas": 3},
                "networks": [{"generate": "disordered:N=24,seed=3"}]})
    with pytest.raises(InputError, match="linear network"):
        expand({"grid": {"lam": [0.0], "replicas": 2, "perturb": 1e-9},
                "networks": [{"board": "gen2-clln"}]})


def test_a_run_that_learns_to_the_floor_keeps_its_numbers_and_marks_them(capsys, tmp_path):
    # seed 5 draws a task this 24-node network represents exactly: lambda 0 drives C/C0 to 0
    assert main(["sim", "--generate", "disordered:N=24,seed=3", "--seed", "5", "--steps",
                 "60000", "--json", "--save", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert 0 < abs(d["relative_error"]) < FLOOR  # the number computed, not rounded to 0
    assert d["below_floor"] is True and d["steady_state"] is True
    with (tmp_path / "history.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    marked = [r for r in rows if r["below_floor"] == "1"]
    assert marked and all(abs(float(r["relative_error"])) < FLOOR for r in marked)
    assert all(abs(float(r["relative_error"])) >= FLOOR for r in rows if r["below_floor"] == "0")


def test_board_sim_has_the_verdict_and_refuses_replicas(capsys, tmp_path):
    assert main(["sim", "--board", "gen2-clln", "--steps", "40", "--json",
                 "--save", str(tmp_path)]) == 0
    d = json.loads(capsys.readouterr().out)
    assert isinstance(d["steady_state"], bool) and d["below_floor"] is False
    assert d["drift_power"] is not None  # judged on the physical power
    assert "below_floor" in (tmp_path / "history.csv").read_text().splitlines()[0]
    assert main(["sim", "--board", "gen2-clln", "--replicas", "2", "--perturb", "1e-3"]) != 0
    assert "--replicas" in capsys.readouterr().err


def test_the_reference_rows_near_k_min_are_judged_by_the_measured_spread():
    from learnboard.studies.paper.compare import compare

    def point(values, power):
        return distribution([{"relative_error": c, "power": p} for c, p in zip(values, power,
                                                                               strict=True)])

    spread = {1e-5: point([7.07e-3] * 4 + [8.99e-3] * 6, [0.0222] * 4 + [0.0230] * 6),
              1e-4: point(list(np.logspace(-2.2, -0.5, 10)), list(np.linspace(0.011, 0.014, 10))),
              1e-3: point([0.9] * 10, [1.3e-4] * 10)}
    rows = {r["quantity"]: r for r in compare([], "r1", spread)}
    c5 = rows["k0 1, lambda 1e-05 (near k_min): C/C0"]
    assert c5["pass"] is True and c5["measured"] == spread[1e-5]["median"]["relative_error"]
    assert "10 replicas" in c5["tolerance"] and "fences" in c5["tolerance"]
    assert rows["k0 1, lambda 0.0001 (near k_min): C/C0"]["pass"] is True  # a wide spread
    # a narrow distribution far from the reference (0.53) is an outlier, whatever the factor
    assert rows["k0 1, lambda 0.001 (near k_min): C/C0"]["pass"] is False
    assert rows["k0 1, lambda 0.001 (near k_min): P"]["pass"] is True  # 1.3e-4 on the dot
    # without replicas the rows keep their fixed factors
    plain = {r["quantity"]: r for r in compare([], "r1")}
    assert plain["k0 1, lambda 0.001 (near k_min): C/C0"]["tolerance"] == "not run"


def test_the_comparison_says_which_rows_have_no_small_alpha_limit():
    from learnboard.studies.paper.compare import compare

    alpha = {1e-6: ("converged", "converged at α = 0.5"),
             1e-5: ("moving", "still moving at α = 0.0625 (budget)")}
    rows = {r["quantity"]: r for r in compare([], "r1", alpha=alpha)}
    assert rows["k0 1, lambda 1e-06: C/C0"]["small_alpha"] == "converged at α = 0.5"
    assert "no small-α limit" not in rows["k0 1, lambda 1e-06: P"]["tolerance"]
    moving = rows["k0 1, lambda 1e-05 (near k_min): P"]
    assert moving["small_alpha"].startswith("still moving")
    assert "at α 0.5 only (no small-α limit)" in moving["tolerance"]
    # other rows (other steps, k0, the controller) are not the check's: no verdict
    assert rows["20000 steps, lambda 1e-6: C/C0"]["small_alpha"] == "–"
    assert rows["k0 0.1, lambda 0: P"]["small_alpha"] == "–"
    assert rows["tolerance 0.001: tail P"]["small_alpha"] == "–"
