"""learnboard paper: a tiny plan writes the report, figures and tables; numbers obey the physics."""

from __future__ import annotations

import math

import pytest
from learnboard.studies.paper import Plan, compare, run_paper
from learnboard.studies.paper.plan import default_plan
from learnboard.studies.sweep import expand, run_sweep

from learnboard.reference import ENV, FILES

FIGURES = ["fig1_error_power_vs_lambda.png", "fig2_initial_conditions.png", "fig3_tradeoff.png",
           "fig4_tolerance_controller.png", "fig5_board_gen2.png", "fig6_noisy_targets.png",
           "fig7_training_energy.png", "power_gradient.png", "power_gradient_board.png",
           "fig8_learning_bias.png", "fig9_small_alpha.png"]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    plan = Plan(networks=[{"generate": "disordered:N=24,seed=3", "label": "g24"},
                          {"generate": "disordered:N=20,seed=1", "label": "g20"}],
                seeds=1, candidate_seeds=2, screen_below=0.5, steps=1500,
                lams=[0.0, 1e-6, 1e-5, 1e-3], ic_networks=1, ic_lams=[0.0, 1e-4],
                taus=[1e-1], tol_networks=1, reference_rows=False, board_steps=4,
                board_lams=[0.0, 0.05], board_seeds=[0], board_train_size=2, emulated_steps=10, gradient_steps=10,
                bias_steps=40,
                noise=[0.05], noise_lams=[0.0, 1e-8])
    return run_paper(plan, out, workers=1, progress=False), out


def test_report_folder_has_report_figures_and_tables(tiny_report):
    rep, out = tiny_report
    text = rep.markdown.read_text()
    for fig in FIGURES:
        assert (out / fig).stat().st_size > 10_000, fig  # a drawn figure, not an empty canvas
        assert f"({fig})" in text
    for table in ("lambda_scan", "initial_conditions", "tolerance", "board", "noise", "findings",
                  "screened_tasks", "power_gradient_runs", "power_gradient_equal_error",
                  "power_gradient_board_runs", "power_gradient_board_equal_error",
                  "small_alpha"):
        assert (out / f"{table}.csv").is_file(), table
    assert (out / "sweep" / "results.csv").is_file()
    assert rep.failed == 0
    screened = text.split("## Tasks screened")[1].split("## Files")[0]
    assert "a **filter**" in screened and "FAIL" not in screened  # a filter, not a test
    # the header counts every run, the small-α check's and the in-process ones included
    import csv

    alpha_runs = sum(int(r["runs"]) + int(r["failed"])
                     for r in csv.DictReader((out / "small_alpha.csv").open()))
    assert rep.counts["small_alpha"] == alpha_runs > 0
    assert rep.counts["power_gradient"] > 0 and rep.counts["bias"] > 0
    assert rep.runs == sum(rep.counts.values())
    assert f"{rep.runs} runs: " in text.split("\n\n")[1]
    assert f"{alpha_runs} small-α check" in text.split("\n\n")[1]
    sections = {r["section"] for r in csv.DictReader((out / "timing.csv").open())}
    assert "small-α check" in sections and "## Time per section" in text


def test_report_numbers_follow_the_physics(tiny_report):
    rep, out = tiny_report
    import csv

    scan = [r for r in csv.DictReader((out / "lambda_scan.csv").open()) if r["network"] == "all"]
    err = {float(r["lam"]): float(r["rel_error_median"]) for r in scan}
    pw = {float(r["lam"]): float(r["power_median"]) for r in scan}
    # the trade-off: a large lambda costs error (short runs: small ones need not, yet) ...
    assert err[1e-3] > err[1e-5] and err[1e-3] > 10 * err[0.0]
    assert pw[1e-3] < pw[1e-5] < pw[1e-6] < pw[0.0]  # ... and buys power at every step up
    ic = {(r["init"], float(r["lam"])): r for r in csv.DictReader((out / "initial_conditions.csv").open())}
    # scale symmetry: a 10x lower start gives a much lower power (reference: ~9x at 1e5 steps)
    assert float(ic[("k0 0.1", 0.0)]["power_median"]) < 0.3 * float(ic[("k0 1", 0.0)]["power_median"])
    board = list(csv.DictReader((out / "board.csv").open()))
    assert {r["network"] for r in board} == {"gen2-clln nominal", "gen2-clln imperfect",
                                             "gen2-clln emulated"}  # firmware in the loop
    assert all(float(r["power_uW_median"]) > 0 for r in board)
    findings = {f["finding"].split(" (")[0]: f for f in rep.findings}
    # the λ checks judge every λ of the scan: here the short runs' error does not grow
    # from λ 0 to 1e-5 (not steady yet), and the finding says so rather than sampling past it
    grows = findings["error grows with λ"]
    lams = sorted(err)
    assert f"each of the {len(lams)} λ" in grows["finding"]
    assert grows["pass"] is all(err[b] > err[a] for a, b in zip(lams, lams[1:], strict=False))
    assert findings["power falls with λ"]["pass"] is True
    # and the scan's table says how many runs of each λ were steady
    assert all(int(r["judged_runs"]) == int(r["runs"]) for r in scan)
    # the strong-λ end as distributions: replicas per λ with median, IQR, range and modes
    strong = list(csv.DictReader((out / "strong_lambda.csv").open()))
    assert [float(r["lam"]) for r in strong] == [1e-5, 1e-4, 1e-3]
    for r in strong:
        assert int(r["runs"]) == 20 and r["rel_error_modes"]
        assert (float(r["rel_error_min"]) <= float(r["rel_error_q25"]) <= float(r["rel_error_median"])
                <= float(r["rel_error_q75"]) <= float(r["rel_error_max"]))
    assert "## Strong λ as distributions" in (out / "report.md").read_text()
    # the small-α check: per λ, α halved with the steps doubled (α × steps fixed) until the
    # distribution stopped moving or the budget ended, and one verdict per λ
    alpha = list(csv.DictReader((out / "small_alpha.csv").open()))
    for lam in (1e-6, 1e-5, 1e-4):
        lv = [r for r in alpha if float(r["lam"]) == lam]
        assert [float(r["alpha"]) for r in lv] == [0.5 / 2**i for i in range(len(lv))]
        assert {float(r["alpha"]) * int(r["steps"]) for r in lv} == {0.5 * 1500}
        assert lv[0]["moved"] == "" and len({r["verdict"] for r in lv}) == 1
        if lv[-1]["verdict"] == "converged":
            assert lv[-1]["moved"] == "False"
            assert all(r["moved"] == "True" for r in lv[1:-1])
        else:
            assert len(lv) == 4 and all(r["moved"] == "True" for r in lv[1:])
    assert "## Small-α limit of the strong-λ distributions" in (out / "report.md").read_text()


def test_reference_rows_on_r1_pass_within_tolerance(reference_networks, tmp_path):
    """The short reference rows, run on r1 and judged by the report's comparison table."""
    plan = default_plan(reference_networks, quick=True)
    spec = plan.specs({"r1": [0]})["reference_short"]
    res = run_sweep(expand(spec), tmp_path, workers=1, progress=False)
    table = {r["quantity"]: r for r in compare(res.rows, "r1")}
    for name in ("2000 steps, lambda 1e-6", "20000 steps, lambda 0", "20000 steps, lambda 1e-6"):
        for what in ("C/C0", "P"):
            row = table[f"{name}: {what}"]
            assert row["pass"] is True, row
    assert table["k0 1, lambda 1e-06: C/C0"]["pass"] is None  # not run: reported, not failed
    assert math.isclose(table["2000 steps, lambda 1e-6: C/C0"]["measured"], 1.49658e-2, rel_tol=5e-6)


def test_reference_folder_errors_name_the_option(tmp_path):
    from learnboard.errors import InputError

    with pytest.raises(InputError, match="--reference") as err:
        default_plan(tmp_path, environ={})
    assert FILES["r1"] in str(err.value)  # what the folder must hold
    assert "NachiStern/Power-efficient-learning" in str(err.value)  # and where it comes from


def _fake_reference(folder):
    folder.mkdir()
    for name in FILES.values():
        (folder / name).write_text("")  # planning checks the files are there, not their text
    return folder


def test_environment_setting_names_the_reference_folder(tmp_path, monkeypatch):
    """Without --reference, `learnboard paper` plans on the folder in $LEARNBOARD_REFERENCE."""
    folder = _fake_reference(tmp_path / "nets")
    monkeypatch.setenv(ENV, str(folder))
    plan = default_plan(None, quick=True)
    assert plan.source == "reference" and plan.reference_rows
    assert [n["label"] for n in plan.networks] == ["r1", "r2"]
    assert plan.first["file"] == str((folder / FILES["r1"]).resolve())
    assert "reference_short" in plan.specs({"r1": [0]})
    # the option wins over the setting; --generated ignores it; unset: generated networks
    other = _fake_reference(tmp_path / "other")
    assert default_plan(other, quick=True).first["file"] == str((other / FILES["r1"]).resolve())
    assert default_plan(None, quick=True, generated=True).source == "generated"
    monkeypatch.delenv(ENV)
    plan = default_plan(None, quick=True)
    assert plan.source == "generated" and not plan.reference_rows


def test_missing_reference_folder_names_the_setting(tmp_path, monkeypatch, capsys):
    """A setting pointing nowhere: the error names the variable, the files and their source."""
    from learnboard.cli import main

    from learnboard.errors import InputError

    missing = tmp_path / "no-such-folder"
    with pytest.raises(InputError, match=ENV) as err:
        default_plan(None, quick=True, environ={ENV: str(missing)})
    for part in (str(missing), "no such folder", FILES["r1"], "NachiStern/Power-efficient-learning"):
        assert part in str(err.value)
    # the command stops with that message before running anything
    monkeypatch.setenv(ENV, str(missing))
    assert main(["paper", "--quick", "--out", str(tmp_path / "out")]) == 2
    assert ENV in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_board_figure_has_no_colliding_labels_and_one_colour_per_condition(tmp_path, monkeypatch):
    """fig5: the conditions (nominal, imperfect, emulated) keep their colour in both panels,
    and no label lies on another (λ is a marker shape, not a text next to each point)."""
    import numpy as np
    from learnboard.studies.paper import figures as fg

    from tests.test_plot import _labels_overlap

    seen = {}
    save = fg._save

    def keep(fig, path):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        texts = [t for ax in fig.axes for t in ax.texts if t.get_text()]
        seen["text_overlaps"] = [(a.get_text(), b.get_text()) for i, a in enumerate(texts)
                                 for b in texts[i + 1:]
                                 if a.get_window_extent(r).overlaps(b.get_window_extent(r))]
        seen["tick_overlaps"] = _labels_overlap(fig)
        seen["lines"] = [[(ln.get_label(), ln.get_color()) for ln in ax.get_lines()] for ax in fig.axes]
        seen["legend"] = [[(t.get_text(), h.get_color()) for t, h in
                           zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True)]
                          for ax in fig.axes]
        return save(fig, path)

    monkeypatch.setattr(fg, "_save", keep)
    rows = [{"network": net, "init": "uniform", "lam": lam, "rel_error_median": e,
             "power_uW_median": p} for net, lam, e, p in (
        ("gen2-clln emulated", 0.0, 0.0113, 517), ("gen2-clln emulated", 0.05, 0.0206, 262),
        ("gen2-clln imperfect", 0.0, 0.0387, 626), ("gen2-clln imperfect", 0.05, 0.0241, 463),
        ("gen2-clln imperfect", 0.5, 1.283, 35.5), ("gen2-clln nominal", 0.0, 0.0482, 621),
        ("gen2-clln nominal", 0.05, 0.0159, 444), ("gen2-clln nominal", 0.5, 1.261, 35.0))]
    rows += [{"network": "gen2-clln nominal", "init": "low", "lam": 0.0, "rel_error_median": 0.12,
              "power_uW_median": 9.0}]
    step = np.arange(0, 101, 10.0)
    hist = {f"gen2-clln {c}, {s}": {"step": step, "power_watts": np.linspace(6e-4, 4e-4, step.size)}
            for c in ("nominal", "imperfect") for s in ("λ=0", "λ=0.05", "low gates")}
    hist["gen2-clln emulated, λ=0 (board-reported)"] = {"step": step, "power_watts": np.full(step.size, 5e-4)}
    fg.board(rows, hist, tmp_path / "fig5.png")
    assert seen["text_overlaps"] == [] and seen["tick_overlaps"] == []
    left_legend = dict(seen["legend"][0])
    for label, colour in seen["lines"][1]:  # every history line: its condition's colour on the left
        assert colour == left_legend[label.split(", ")[0]], label
