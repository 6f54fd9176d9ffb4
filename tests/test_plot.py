"""``learnboard plot``: the expected PNG files, non-empty and readable, from a run folder
(with a cut last record and a restore), and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.host.plots import current_telemetry, edge_values, plot_run
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import RunLog
from learnboard.host.tables import run_tables

from learnboard.boards import load_board
from learnboard.errors import InputError
from tests.test_export import make_run

FIGURES = ["error.png", "lambda.png", "network.png", "power.png", "tradeoff.png"]


def _png_ok(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert img.shape[0] > 300 and img.shape[1] > 500
    assert float(np.std(img[..., :3])) > 0.01  # something is drawn, not a blank canvas


def test_plot_writes_every_figure(tmp_path):
    rf = make_run(tmp_path, board=load_board("gen2-clln"))
    paths = plot_run(rf.path)
    assert sorted(p.name for p in paths) == FIGURES
    assert all(p.parent == rf.figures_dir for p in paths)
    for p in paths:
        _png_ok(p)


def test_plot_draws_each_step_once_after_a_restore(tmp_path):
    rf = make_run(tmp_path)
    t = current_telemetry(run_tables(rf.path))
    assert t["step"].tolist() == [10, 20, 30, 40, 50, 60]
    assert t["supersedes"].tolist()[3:5] == [1.0, 1.0]  # steps 40, 50: the redone records


def test_digipot_edges_are_drawn_by_conductance():
    board = load_board("gen1-digipot")
    taps = np.zeros(board.n_edges)
    g, unit = edge_values(board, taps)
    p = next(iter(board.parts.values()))
    learn = [i for i, e in enumerate(board.edges) if e.kind == "digipot"]
    assert unit == "conductance (S)"
    assert g[learn[0]] == pytest.approx(1 / (p.r_min + p.r_wiper))
    g_top, _ = edge_values(board, np.full(board.n_edges, p.n_taps - 1))
    assert g_top[learn[0]] == pytest.approx(1 / (p.r_max + p.r_wiper))
    v, unit2 = edge_values(load_board("gen2-clln"), np.full(32, 3.0))
    assert unit2 == "gate voltage (V)" and np.all(v == 3.0)


def test_plot_cli(tmp_path, capsys):
    rf = make_run(tmp_path, board=load_board("gen2-clln"))
    assert main(["plot", str(rf.path), "--out", str(tmp_path / "figs")]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == FIGURES


def test_plot_refuses_a_folder_that_is_not_a_run_folder(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match="not a run folder"):
        plot_run(tmp_path / "notes")
    assert main(["plot", str(tmp_path / "notes")]) == 2
    err = capsys.readouterr().err
    assert "not a run folder" in err and "learnboard train" in err and "Traceback" not in err
    assert not (tmp_path / "notes" / "figures").exists()


def test_plot_refuses_a_run_without_telemetry(tmp_path):
    rf = RunFolder.create(tmp_path, "empty")
    rf.write_config({})
    RunLog(rf.log_path).close()
    with pytest.raises(InputError, match="no telemetry records"):
        plot_run(rf.path)


# -- readability: tick labels, lambda ticks, the λ 0 reference --------------------------------

def write_run(runs, name, *, board="gen2-clln", task="regression", lam=0.0, tolerance=None,
              steps=300, err_scale=1.0, pwr_end=2e-4, summary=True, **extra):
    """A finished run folder as a session writes it (RunFolder, RunLog): λ 0 throughout, or
    the tolerance controller when ``tolerance`` is given (λ from 2e-3 once under it)."""
    phase = ({"kind": "tolerance", "tau": "task", "start": 2e-3, "every": 20, "up": 1.2}
             if tolerance else {"kind": "constant", "lam": lam})
    rf = RunFolder.create(runs, name)
    rf.write_config({"task": task, "board": board, "tolerance": tolerance or 0.038,
                     "schedule": {"phases": [phase], "stop": {"steps": steps}}})
    log = RunLog(rf.log_path)
    lam_now, last = 0.0, {}
    for step in range(10, steps + 1, 10):
        rel = err_scale * (0.7 * np.exp(-step / 15) + 0.006 + (0.02 * step / steps if tolerance else 0))
        pwr = 7.6e-4 * (pwr_end / 7.6e-4) ** (step / steps)
        if tolerance and rel < tolerance:
            lam_now = 2e-3 if lam_now == 0 else lam_now * 1.2 if step % 20 == 0 else lam_now
        last = {"kind": "tlm", "step": step, "err": rel * 0.0114, "rel_err": rel, "pwr": pwr,
                "lam": lam_now if tolerance else lam, "n": 200, "dt": 74000, "dtmax": 75000,
                "flt": 0, "bad": 0, **extra}
        log.append(last)
    log.close()
    if summary:
        rf.write_summary({"run_dir": str(rf.path), "relative_error": last["rel_err"],
                          "test_error": 1.1 * last["rel_err"], "accuracy": None, "power": pwr_end,
                          "true_power": 0.6 * pwr_end, "steps": steps, "tolerance": tolerance or 0.038,
                          "reached": True, "tail_relative_error": last["rel_err"],
                          "initial_true_power": 6.7e-4, "initial_power": 7.3e-4, "board": board,
                          "lambda": last["lam"]})
    return rf


def _labels_overlap(fig):
    """Pairs of tick labels (per axis of every panel) whose boxes overlap once drawn."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    bad = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]
            boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in labels]
            for i, (ta, a) in enumerate(boxes):
                for tb, b in boxes[i + 1:]:
                    if a.overlaps(b):
                        bad.append((ta, tb))
    return bad


@pytest.fixture()
def drawn(monkeypatch):
    """Every figure ``plot_run`` draws, by file name, checked before it is closed."""
    import learnboard.host.plots as plots

    seen = {}
    save = plots._save

    def keep(fig, path):
        seen[path.name] = {"overlaps": _labels_overlap(fig),
                           "ticks": {i: (ax.get_yticks().tolist(), ax.get_ylim(),
                                         [t.get_text() for t in ax.get_yticklabels()])
                                     for i, ax in enumerate(fig.axes)},
                           "legend": [t.get_text() for ax in fig.axes if ax.get_legend()
                                      for t in ax.get_legend().get_texts()]}
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return seen


def test_tick_labels_do_not_collide_and_lambda_has_ticks_in_its_range(tmp_path, drawn):
    """A controller run whose error spans under two decades and power under one decade (the
    ranges where matplotlib labels minor ticks on top of each other), λ from 0 to 0.018."""
    rf = write_run(tmp_path, "ctrl", tolerance=0.038)
    plot_run(rf.path)
    for name in ("error.png", "power.png", "lambda.png", "tradeoff.png"):
        assert drawn[name]["overlaps"] == [], (name, drawn[name]["overlaps"])
    ticks, (lo, hi), labels = drawn["lambda.png"]["ticks"][0]
    lam = [v for v in current_telemetry(run_tables(rf.path))["lam"] if v > 0]
    inside = [t for t in ticks if min(lam) <= t <= max(lam)]
    assert len(inside) >= 2, (ticks, labels)  # readable values where λ actually is
    assert "0" in labels and all(lo <= t <= hi for t in ticks)
    assert all("10^" not in s and "\\times" not in s for s in labels)


def test_power_figure_shows_the_lambda0_reference_of_the_same_board(tmp_path, drawn):
    runs = tmp_path / "runs"
    ref = write_run(runs, "ref0", pwr_end=3.1e-4)
    write_run(runs, "other-board", board="gen1-digipot")  # not this board: never the reference
    rf = write_run(runs, "ctrl", tolerance=0.038)
    plot_run(rf.path)
    legend = drawn["power.png"]["legend"]
    assert f"λ 0 reference, board-reported ({ref.path.name})" in legend
    assert "board-reported power (device-model estimate)" in legend
    plot_run(ref.path)  # a λ 0 run is its own reference: nothing beside it
    assert not any("reference" in s for s in drawn["power.png"]["legend"])


def test_power_figure_names_a_measured_power_and_hardware(tmp_path, drawn):
    rf = write_run(tmp_path, "lab")
    s = rf.read_summary()
    rf.write_summary({**s, "power_source": "measured", "true_power": None, "initial_true_power": None})
    plot_run(rf.path)
    legend = drawn["power.png"]["legend"]
    assert "board-reported power (measured by its current sensor)" in legend
    assert "true power: not available on hardware" in legend
