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
