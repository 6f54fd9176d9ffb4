"""``learnboard sim`` end to end through the CLI dispatcher."""

import csv
import json

import pytest

from learnboard import cli


@pytest.fixture
def main(monkeypatch):
    # only the sim command: other commands are developed separately
    monkeypatch.setattr(cli, "COMMANDS", {"sim": cli.COMMANDS["sim"]})
    return cli.main


def test_reference_run_json(main, capsys, reference_networks, tmp_path):
    net = reference_networks / "data_N00064_Lp0.0100_r1.txt"
    assert main(["sim", "--network", str(net), "--lam", "1e-6", "--steps", "2000", "--json",
                 "--save", str(tmp_path / "out")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert f"{info['relative_error']:.5e}" == "1.49658e-02"
    assert info["power"] == pytest.approx(0.476, abs=6e-4)
    assert info["power_watts"] == pytest.approx(2 * info["power"])
    assert info["initial_power"] > info["power"]
    assert info["steps"] == 2000 and info["steps_per_second"] > 0
    assert info["source_edges"] == [45, 118] and info["target_edges"] == [16, 56]
    rows = list(csv.DictReader((tmp_path / "out" / "conductances.csv").open()))
    assert len(rows) == 143 and float(rows[0]["k_initial"]) == 1.0
    hist = list(csv.DictReader((tmp_path / "out" / "history.csv").open()))
    assert hist[0]["step"] == "0" and hist[-1]["step"] == "2000"
    assert float(hist[-1]["relative_error"]) == pytest.approx(info["relative_error"])


def test_default_run_prints_summary(main, capsys):
    assert main(["sim", "--steps", "200"]) == 0
    out = capsys.readouterr().out
    assert "relative error C/C0" in out and "power" in out


def test_own_terminals_and_csv_data(main, capsys, tmp_path):
    data = tmp_path / "train.csv"
    data.write_text("x0,x1,y0\n0.1,0.5,0.2\n0.7,0.2,0.3\n0.4,0.9,0.5\n")
    assert main(["sim", "--generate", "lattice:6x6,periodic", "--source-nodes", "3,20",
                 "--targets", "40", "--data", str(data),
                 "--steps", "500", "--batch", "online", "--order", "shuffle", "--eta", "0.1",
                 "--json", "--save", str(tmp_path / "o")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_nodes"] == 36 and info["n_examples"] == 3
    assert info["relative_error"] < 0.5
    assert (tmp_path / "o" / "network.txt").exists()


def test_tolerance_reports_tail(main, capsys):
    assert main(["sim", "--steps", "3000", "--tolerance", "0.5", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["tolerance"]["s0"] is not None and info["lam_final"] > 0


@pytest.mark.parametrize("argv, msg", [
    (["--sources", "1,2", "--targets", "3", "--coeffs", "1,2;3,4"], "--coeffs is 2x2"),
    (["--data", "nofile.csv"], "name the terminals"),
    (["--sources", "1,2", "--targets", "3", "--data", "nofile.csv"], "cannot read data file"),
    (["--generate", "lattice:3"], "16x16"),
    (["--eta", "2"], "eta must be in"),
])
def test_errors_are_plain_messages(main, capsys, argv, msg):
    assert main(["sim", *argv]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err


def test_help_documents_every_option(main, capsys):
    with pytest.raises(SystemExit):
        main(["sim", "--help"])
    out = capsys.readouterr().out
    for opt in ["--network", "--board", "--generate", "--sources", "--targets", "--source-nodes",
                "--target-nodes", "--ground", "--data", "--task", "--coeffs", "--train-size",
                "--seed", "--alpha", "--eta", "--lam", "--k0", "--init", "--k-min", "--k-max",
                "--steps", "--batch", "--tolerance", "--json", "--save", "examples:"]:
        assert opt in out


def test_board_profile_run(main, capsys):
    assert main(["sim", "--board", "gen2-clln", "--steps", "5", "--train-size", "4", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["board"] == "gen2-clln" and info["power"] is None
    assert info["power_watts"] > 0 and info["newton_iterations_mean"] <= 4
