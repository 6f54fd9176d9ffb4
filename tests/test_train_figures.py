"""``learnboard train`` leaves the run's figures in its folder (as ``learnboard plot``)."""

from __future__ import annotations

import json

from learnboard.cli import main


def test_a_training_run_ends_with_its_figures(tmp_path, capsys):
    assert main(["train", "--steps", "40", "--every", "5", "--runs", str(tmp_path), "--json"]) == 0
    run_dir = tmp_path / next(p.name for p in tmp_path.iterdir())
    summary = json.loads(capsys.readouterr().out)
    assert summary["run_dir"].endswith(run_dir.name) and summary["steps"] == 40
    figures = sorted(p.name for p in (run_dir / "figures").iterdir())
    assert figures == ["error.png", "lambda.png", "network.png", "power.png", "tradeoff.png"]
    assert all((run_dir / "figures" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)


def test_no_plot_leaves_the_figures_folder_empty(tmp_path):
    assert main(["train", "--steps", "20", "--runs", str(tmp_path), "--json", "--no-plot"]) == 0
    run_dir = next(tmp_path.iterdir())
    assert not any((run_dir / "figures").iterdir())
