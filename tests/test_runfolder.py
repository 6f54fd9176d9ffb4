"""Run folders: layout, atomic JSON, checkpoints (a damaged newest one is skipped)."""

from __future__ import annotations

import json
import os

import pytest
from learnboard.host.runfolder import RunFolder

from learnboard.boards import compile_board, load_board
from learnboard.errors import InputError, LearnboardError


def test_create_makes_the_documented_layout(tmp_path):
    rf = RunFolder.create(tmp_path / "runs", "xor")
    assert rf.path.parent == tmp_path / "runs" and rf.path.name.endswith("-xor")
    assert rf.checkpoints_dir.is_dir() and rf.figures_dir.is_dir()
    rf.write_config({"steps": 10})
    rf.write_board(load_board("gen2-clln"))
    assert rf.board_path.read_text().startswith("#") or "[board]" in rf.board_path.read_text()
    assert json.loads(rf.compiled_board_path.read_text())["h"] == compile_board(load_board("gen2-clln")).sha256
    again = RunFolder.create(tmp_path / "runs", "xor")
    assert again.path != rf.path  # same second, same name: a fresh folder
    assert RunFolder.open(rf.path).read_config() == {"steps": 10, "version": 2}


def test_bad_names_and_folders_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="--name"):
        RunFolder.create(tmp_path, "../escape")
    with pytest.raises(InputError, match="config.json"):
        RunFolder.open(tmp_path)


def test_latest_checkpoint_skips_a_damaged_file(tmp_path):
    rf = RunFolder.create(tmp_path, "r")
    assert rf.latest_checkpoint() is None
    rf.write_checkpoint(100, {"k": [1.0, 2.0]})
    rf.write_checkpoint(200, {"k": [3.0, 4.0]})
    rf.checkpoint_path(300).write_text('{"step": 300, "k": [')  # cut by a crash
    ck = rf.latest_checkpoint()
    assert ck["step"] == 200 and ck["k"] == [3.0, 4.0]


def test_read_only_runs_dir_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(LearnboardError, match="--runs"):
            RunFolder.create(ro, "x")
    finally:
        ro.chmod(0o700)


def test_an_unversioned_config_is_read_in_the_meaning_it_was_written_with(tmp_path):
    """learnboard 0.1.0 wrote alpha = nudge, eta = learning rate and no version."""
    rf = RunFolder.create(tmp_path, "old")
    old = {"task": "regression", "alpha": 0.3, "eta": 0.8,
           "schedule": {"phases": [{"kind": "constant", "lam": 0.0, "alpha": 0.5, "eta": 2.0,
                                    "eta_to": 1.0, "alpha_to": None}]}}
    rf.config_path.write_text(json.dumps(old))
    cfg = rf.read_config()
    assert (cfg["alpha"], cfg["eta"], cfg["version"]) == (0.8, 0.3, 2)
    phase = cfg["schedule"]["phases"][0]
    assert (phase["alpha"], phase["alpha_to"], phase["eta"], phase["eta_to"]) == (2.0, 1.0, 0.5, None)
    rf.write_config({"task": "regression", "alpha": 0.8, "eta": 0.3})  # written now: version 2
    assert json.loads(rf.config_path.read_text())["version"] == 2
    assert rf.read_config()["alpha"] == 0.8


def test_a_run_folder_from_a_newer_learnboard_is_refused_by_name(tmp_path):
    rf = RunFolder.create(tmp_path, "new")
    rf.config_path.write_text(json.dumps({"task": "regression", "version": 9}))
    with pytest.raises(InputError, match=r"config\.json.*version.*9"):
        rf.read_config()
