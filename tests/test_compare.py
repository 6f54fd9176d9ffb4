"""``learnboard compare``: finished runs side by side (error, power with its source, true
power, steps and energy to reach the tolerance, ratios against the first run), as text,
JSON and a figure; clear refusals of folders that are not finished runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.host.comparison import describe_schedule, lambda0_reference, run_facts
from learnboard.host.runlog import read_log

from tests.test_plot import _labels_overlap, write_run


def _compare_json(capsys, *argv) -> dict:
    assert main(["compare", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_compare_shows_the_ratios_against_the_first_run(tmp_path, capsys):
    base = write_run(tmp_path, "lambda0", pwr_end=3.0e-4)
    ctrl = write_run(tmp_path, "controller", tolerance=0.038, pwr_end=1.0e-4)
    got = _compare_json(capsys, base.path, ctrl.path)
    assert got["tolerance"] == 0.038 and got["tolerance_from"] == base.path.name
    a, b = got["runs"]
    assert (a["schedule"], b["schedule"]) == ("λ 0", "tolerance controller (task's τ)")
    assert b["lower_than_base"]["power"] == pytest.approx(3.0)
    assert b["lower_than_base"]["true_power"] == pytest.approx(3.0)
    assert a["power_source"] == b["power_source"] == "estimate"  # no power_source key: an estimate
    assert b["reached"] is True and b["lambda"] > 0
    # the energy by hand: power x step time x steps covered, up to the first frame under τ
    tlm = [r for r in read_log(base.path / "telemetry.msgpack") if r["kind"] == "tlm"]
    first = next(i for i, r in enumerate(tlm) if r["rel_err"] <= 0.038)
    assert a["steps_to_reach"] == tlm[first]["step"]
    assert a["energy_to_reach"] == pytest.approx(sum(r["pwr"] * r["dt"] * 1e-6 * 10 for r in tlm[: first + 1]))

    assert main(["compare", str(base.path), str(ctrl.path)]) == 0
    text = capsys.readouterr().out
    assert "board power 3.00x lower" in text and "true power 3.00x lower" in text
    assert "300 µW (estimate)" in text and "100 µW (estimate)" in text
    assert "energy to reach τ" in text and " mJ" in text and "τ = 0.038" in text
    assert "free + clamped" not in text  # no run recorded the parts


def test_compare_names_measured_power_and_hardware_and_a_given_tolerance(tmp_path, capsys):
    lab = write_run(tmp_path, "lab")
    lab.write_summary({**lab.read_summary(), "power_source": "measured", "true_power": None,
                       "power_free": 2.0e-4, "power_clamped": 1.5e-4})
    emu = write_run(tmp_path, "emu", err_scale=2.0)
    got = _compare_json(capsys, lab.path, emu.path, "--tolerance", "0.01")
    a, b = got["runs"]
    assert a["power_source"] == "measured" and a["true_power"] is None
    assert got["tolerance_from"] == "--tolerance"
    assert a["steps_to_reach"] is not None and b["steps_to_reach"] is None  # 2x the error: never
    assert b["reached"] is False and b["lower_than_base"]["energy_to_reach"] is None
    main(["compare", str(lab.path), str(emu.path), "--tolerance", "0.01"])
    text = capsys.readouterr().out
    assert "(measured)" in text and "n/a (hardware)" in text and "not reached" in text
    assert "200 µW + 150 µW" in text  # the parts, where a run recorded them
    assert a["power_free"] == 2.0e-4 and b["power_free"] is None


def test_compare_without_step_times_counts_steps_and_says_so(tmp_path, capsys):
    a = write_run(tmp_path, "a", dt=0)
    b = write_run(tmp_path, "b", dt=0)
    got = _compare_json(capsys, a.path, b.path)
    assert got["step_times"] is False and got["runs"][0]["energy_to_reach"] is None
    assert got["runs"][0]["steps_to_reach"] == 50
    main(["compare", str(a.path), str(b.path)])
    assert "no step times" in capsys.readouterr().out


def test_compare_plot_draws_one_colour_per_run(tmp_path, capsys, monkeypatch):
    import learnboard.host.plots as plots

    seen = {}
    save = plots._save

    def keep(fig, path, option="--out"):
        seen["overlaps"] = _labels_overlap(fig)
        seen["colours"] = [line.get_color() for line in fig.axes[0].get_lines()
                           if not line.get_label().startswith(("_", "tolerance", "first"))]
        return save(fig, path, option)

    monkeypatch.setattr(plots, "_save", keep)
    runs = [write_run(tmp_path, n, tolerance=t, pwr_end=p)
            for n, t, p in (("a", None, 3e-4), ("b", 0.038, 1e-4), ("c", 0.038, 2e-4))]
    out = tmp_path / "cmp.png"
    assert main(["compare", *(str(r.path) for r in runs), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(set(seen["colours"])) == 3 and seen["overlaps"] == []
    assert main(["compare", *(str(r.path) for r in runs), "--plot", str(tmp_path / "no" / "c.png")]) == 2
    err = capsys.readouterr().err
    assert "c.png" in err and "--plot" in err


def test_compare_refuses_what_is_not_a_finished_run(tmp_path, capsys):
    good = write_run(tmp_path, "good")
    (tmp_path / "notes").mkdir()
    assert main(["compare", str(good.path), str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert "notes" in err and "not a run folder" in err and "Traceback" not in err
    running = write_run(tmp_path, "running", summary=False)
    assert main(["compare", str(good.path), str(running.path)]) == 2
    err = capsys.readouterr().err
    assert str(running.summary_path) in err and "missing" in err
    (good.summary_path).write_text('{"steps": 300, "power": ')
    assert main(["compare", str(good.path), str(running.path)]) == 2
    err = capsys.readouterr().err
    assert str(good.summary_path) in err and "damaged" in err
    assert main(["compare", str(running.path)]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["compare", str(running.path), str(running.path), "--tolerance", "1.5"]) == 2
    assert "--tolerance" in capsys.readouterr().err


def test_schedule_names_and_the_lambda0_reference(tmp_path):
    assert describe_schedule({}) == "λ 0"
    assert describe_schedule({"schedule": {"phases": [{"kind": "constant", "lam": 0.005}]}}) == "constant λ 0.005"
    assert describe_schedule({"schedule": {"phases": [{"kind": "ramp", "lam": 0, "lam_to": 0.1}]}}) == "ramp λ 0 → 0.1"
    older = write_run(tmp_path, "old0", steps=200)
    same = write_run(tmp_path, "same0")
    write_run(tmp_path, "task0", task="iris")
    ctrl = write_run(tmp_path, "ctrl", tolerance=0.038)
    assert lambda0_reference(ctrl.path).name == same.path.name  # the same step budget first
    assert lambda0_reference(older.path) is None  # a λ 0 run needs no reference
    assert run_facts(ctrl.path).steps == 300


def test_two_real_runs_compare(tmp_path, capsys):
    """Two short sessions on the in-process emulated board: λ 0 and a constant λ."""
    runs = tmp_path / "runs"
    for name, extra in (("lambda0", []), ("lam", ["--lambda", "0.02"])):
        assert main(["train", "--steps", "60", "--runs", str(runs), "--name", name, "--json",
                     "--no-plot", *extra]) == 0
    summaries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    paths = [s["run_dir"] for s in summaries]
    got = _compare_json(capsys, *paths)
    a, b = got["runs"]
    assert b["lower_than_base"]["power"] == pytest.approx(summaries[0]["power"] / summaries[1]["power"])
    assert b["lower_than_base"]["true_power"] == pytest.approx(
        summaries[0]["true_power"] / summaries[1]["true_power"])
    assert a["tolerance"] == summaries[0]["tolerance"] and got["step_times"] is True
    assert a["steps_to_reach"] is not None and a["energy_to_reach"] > 0
    assert np.isfinite(a["energy_to_reach"]) and b["schedule"] == "constant λ 0.02"
    assert b["lambda"] == pytest.approx(0.02, rel=1e-6)  # as the board holds it (float32)
