"""learnboard sweep: spec expansion, resumable runs, failures recorded, local and Dask paths."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.studies.sweep import (
    COLUMNS,
    expand,
    load_history,
    notebook_trial,
    read_csv,
    run_sweep,
)

from learnboard.errors import InputError

SMALL = {
    "steps": 400,
    "grid": {"lam": {"log": [1e-6, 1e-3], "num": 2, "zero": True}, "tolerance": [1e-2]},
    "networks": [{"generate": "disordered:N=24,seed=3", "label": "g24"}],
}


def test_spec_expands_the_grid_with_stable_ids():
    runs = expand({**SMALL, "grid": {**SMALL["grid"], "k0": [1.0, 0.1], "init": ["uniform", "low"],
                                     "seeds": 2}})
    # seeds 2 x (uniform k0 1, uniform k0 0.1, low) x (3 lambdas + 1 tolerance)
    assert len(runs) == 2 * 3 * 4
    lams = sorted({r["lam"] for r in runs if r["tolerance"] is None})
    assert lams == [0.0, 1e-6, 1e-3]
    assert len({r["id"] for r in runs}) == len(runs)
    assert [r["id"] for r in expand(SMALL)] == [r["id"] for r in expand(SMALL)]


def test_results_table_histories_and_physics(tmp_path):
    res = run_sweep(expand(SMALL), tmp_path, workers=1, progress=False)
    with (tmp_path / "results.csv").open() as fh:
        header = next(csv.reader(fh))
    assert tuple(header) == COLUMNS
    rows = read_csv(tmp_path / "results.csv")
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    by_lam = {r["lam"]: r for r in rows if r["tolerance"] is None}
    # the power term trades error for power: more lambda, more error and less power
    assert by_lam[1e-3]["relative_error"] > by_lam[0.0]["relative_error"]
    assert by_lam[1e-3]["power"] < by_lam[0.0]["power"]
    assert math.isclose(by_lam[0.0]["power_watts"], 2 * by_lam[0.0]["power"], rel_tol=1e-12)
    tol = next(r for r in rows if r["tolerance"] is not None)
    assert tol["tail_relative_error"] is not None and tol["tail_power"] > 0
    h = load_history(tmp_path, by_lam[0.0]["id"])
    assert h["step"][0] == 0 and h["step"][-1] == 400
    assert math.isclose(h["relative_error"][-1], by_lam[0.0]["relative_error"], rel_tol=1e-9)
    # energy = Σ over steps of the power: between the smallest and largest power times steps
    assert h["power"].min() * 400 <= by_lam[0.0]["energy"] <= h["power"].max() * 400
    assert res.ran == 4 and res.failed == 0


def test_restart_skips_finished_runs(tmp_path):
    runs = expand(SMALL)
    first = run_sweep(runs, tmp_path, workers=1, progress=False)
    again = run_sweep(runs, tmp_path, workers=1, progress=False)
    assert (again.ran, again.skipped) == (0, 4)
    assert [r["relative_error"] for r in again.rows] == [r["relative_error"] for r in first.rows]
    (tmp_path / "runs" / f"{runs[1]['id']}.json").unlink()  # as if killed before that run ended
    third = run_sweep(runs, tmp_path, workers=1, progress=False)
    assert (third.ran, third.skipped) == (1, 3)


def test_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = {"steps": 50, "grid": {"lam": [0.0]},
            "networks": [{"generate": "lattice:2x2"},  # one edge: the task needs four
                         {"generate": "disordered:N=24,seed=3"}]}
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(
        'steps = 50\n[grid]\nlam = [0.0]\n[[networks]]\ngenerate = "lattice:2x2"\n'
        '[[networks]]\ngenerate = "disordered:N=24,seed=3"\n')
    assert main(["sweep", str(spec_file), "--out", str(tmp_path / "out"), "--workers", "1",
                 "--quiet"]) == 1
    rows = read_csv(tmp_path / "out" / "results.csv")
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert "not independent" in rows[0]["error_message"]
    # a failed run is not "finished": a restart retries it
    res = run_sweep(expand(spec), tmp_path / "out", workers=1, progress=False)
    assert (res.ran, res.skipped, res.failed) == (1, 1, 1)


def test_local_process_pool_matches_in_process(tmp_path):
    a = run_sweep(expand(SMALL), tmp_path / "a", workers=1, progress=False)
    b = run_sweep(expand(SMALL), tmp_path / "b", workers=2, progress=False)
    assert [r["relative_error"] for r in a.rows] == [r["relative_error"] for r in b.rows]
    assert len({r["worker"] for r in b.rows}) >= 1


def test_dask_scheduler_path(tmp_path):
    distributed = pytest.importorskip("distributed")
    local = run_sweep(expand(SMALL), tmp_path / "local", workers=1, progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        # the same code path as --scheduler tcp://...: connect by address
        res = run_sweep(expand(SMALL), tmp_path / "dask", scheduler=cluster.scheduler_address,
                        progress=False)
    assert res.ran == 4 and res.failed == 0
    assert [r["relative_error"] for r in res.rows] == [r["relative_error"] for r in local.rows]


def test_notebook_trials_draw_like_the_notebook():
    src, tgt, data, a = notebook_trial(143, 0, [[0.2, 0.3], [0.1, 0.5]])
    assert list(src) == [45, 118] and list(tgt) == [16, 56]  # the published task
    np.testing.assert_allclose(a, [[0.2, 0.3], [0.1, 0.5]])
    src1, tgt1, data1, a1 = notebook_trial(143, 1, [[0.2, 0.3], [0.1, 0.5]])
    assert (list(src1), list(tgt1)) != ([45, 118], [16, 56])
    assert 0 < np.abs(a1 - a).max() < 0.5
    np.testing.assert_allclose(data1.targets, data1.inputs @ a1.T)


def test_network_files_name_environment_variables(tmp_path, monkeypatch):
    """`file = "$LEARNBOARD_REFERENCE/..."` reads the setting; unset, the error names it."""
    folder = tmp_path / "nets"
    folder.mkdir()
    (folder / "tri.txt").write_text("3 3 1\n0 0\n1 0\n0 1\n0 1\n1 2\n2 0\n")
    spec = tmp_path / "spec.toml"
    spec.write_text('steps = 5\n[[networks]]\nfile = "${LEARNBOARD_REFERENCE}/tri.txt"\n')
    monkeypatch.setenv("LEARNBOARD_REFERENCE", str(folder))
    runs = expand(spec)
    assert runs[0]["network"]["value"] == str((folder / "tri.txt").resolve())
    monkeypatch.delenv("LEARNBOARD_REFERENCE")
    with pytest.raises(InputError, match="networks\\[0\\].file") as err:
        expand(spec)
    assert "LEARNBOARD_REFERENCE is not set" in str(err.value)
    assert "NachiStern/Power-efficient-learning" in str(err.value)  # where the files come from


@pytest.mark.parametrize("text, field", [
    ('steps = 10\n[grid]\nlam = ["x"]\n[[networks]]\ngenerate = "lattice:3x3"\n', "grid.lam"),
    ('steps = 10\n[grid]\nlamda = [0]\n[[networks]]\ngenerate = "lattice:3x3"\n', "grid.lamda"),
    ('steps = 10\n[grid]\nlam = {log = [1e-9]}\n[[networks]]\ngenerate = "lattice:3x3"\n',
     "grid.lam.log"),
    ('steps = 10\n[grid]\ninit = ["hot"]\n[[networks]]\ngenerate = "lattice:3x3"\n', "grid.init"),
    ('steps = 10\n[[networks]]\nfile = "missing.txt"\n', "networks[0].file"),
    ('steps = 10\n[[networks]]\ngenerate = "ring:5"\n', "networks[0].generate"),
    ('steps = 10\n[[networks]]\nboard = "gen9"\n', "networks[0].board"),
    ('steps = 10\n[learning]\neta = 2.0\n[[networks]]\ngenerate = "lattice:3x3"\n', "learning"),
    ('steps = 10\n', "networks"),
    ('steps = 10\n[task]\nkind = "xor"\n[[networks]]\ngenerate = "lattice:3x3"\n', "task.kind"),
    ('steps = -1\n[[networks]]\ngenerate = "lattice:3x3"\n', "steps"),
    ('steps = 10\n[[networks]\n', "not valid TOML"),
])
def test_bad_specs_name_the_field(tmp_path, capsys, text, field):
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    with pytest.raises(InputError) as err:
        expand(spec)
    assert field in str(err.value) and str(spec) in str(err.value)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert field in capsys.readouterr().err
