"""``learnboard solve``: the numbers users and scripts get, and clear errors."""

import json

import numpy as np
import pytest
from learnboard.cli import main

from learnboard.network import Network, read_network, write_network
from learnboard.physics import Circuit, Fix, FixDrop, solve


def run_json(capsys, *argv) -> dict:
    assert main(["solve", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def run_error(capsys, *argv) -> str:
    assert main(["solve", *argv]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err


@pytest.fixture
def small_network(tmp_path):
    # a ring of 5 nodes plus a chord; node 0 will be ground via --ground
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 0], [1, 3]])
    net = Network(5, edges, ground=4, positions=np.zeros((5, 2)), size=1.0)
    path = tmp_path / "ring.txt"
    write_network(net, path)
    return path


def test_reference_command_from_the_issue(capsys, reference_networks):
    path = reference_networks / "data_N00064_Lp0.0100_r1.txt"
    out = run_json(capsys, "--network", str(path), "--fix-drop", "0,35=1")
    ref = solve(Circuit.linear(read_network(path), 1.0), [FixDrop(0, 35, 1.0)])
    assert np.allclose(out["node_voltages"], ref.node_voltages, rtol=1e-12, atol=1e-15)
    assert np.allclose(out["edge_currents"], ref.edge_currents, rtol=1e-12, atol=1e-15)
    assert out["power"] == pytest.approx(ref.power, rel=1e-12)
    assert out["co_content"] == pytest.approx(0.5 * out["power"])
    assert out["ground"] == 63 and out["node_voltages"][63] == 0.0
    assert out["units"]["power"].startswith("W")
    # one 1 V source: it delivers exactly the dissipated power
    assert out["constraints"][0]["current"] == pytest.approx(out["power"])


def test_conductances_ground_and_both_constraint_kinds(capsys, tmp_path, small_network):
    k = np.array([1.0, 2.0, 0.5, 4.0, 1.5, 3.0])
    kfile = tmp_path / "k.txt"
    kfile.write_text("# conductances in S\n1, 2\n0.5 4  # two more\n1.5\n3\n")
    out = run_json(
        capsys,
        "--network",
        str(small_network),
        "--ground",
        "0",
        "--conductances",
        str(kfile),
        "--fix",
        "2=0.7",
        "--fix-drop",
        "3,1=-0.2",
    )
    net = read_network(small_network, ground=0)
    ref = solve(Circuit.linear(net, k), [Fix(2, 0.7), FixDrop(3, 1, -0.2)])
    assert np.allclose(out["node_voltages"], ref.node_voltages, rtol=1e-12, atol=1e-15)
    assert out["node_voltages"][0] == 0.0
    v = np.array(out["node_voltages"])
    assert v[3] - v[1] == pytest.approx(-0.2)
    # --edge-state means conductances for a resistor network
    npy = tmp_path / "k.npy"
    np.save(npy, k)
    again = run_json(
        capsys,
        "--network",
        str(small_network),
        "--ground",
        "0",
        "--edge-state",
        str(npy),
        "--fix",
        "2=0.7",
        "--fix-drop",
        "3,1=-0.2",
    )
    assert again["node_voltages"] == out["node_voltages"]


def test_human_summary_names_power_and_co_content(capsys, small_network):
    assert main(["solve", "--network", str(small_network), "--fix", "1=1"]) == 0
    text = capsys.readouterr().out
    assert "power" in text and "W" in text and "co-content" in text


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--fix", "1=abc"], "not a voltage"),
        (["--fix", "1:0.5"], "NODE=VOLTS"),
        (["--fix-drop", "1=0.5"], "I,J=VOLTS"),
        (["--fix", "9=0.5"], "outside 0..4"),
        (["--fix", "1=0.5", "--fix", "1=0.5"], "constrained twice"),
        ([], "no constraints"),
        (["--fix", "1=1", "--ground", "7"], "ground node 7"),
    ],
)
def test_bad_options_are_clear_errors(capsys, small_network, extra, message):
    assert message in run_error(capsys, "--network", str(small_network), *extra)


@pytest.mark.parametrize(
    "content, message",
    [
        ("1 2 3", "one value per edge (6), found 3"),
        ("1 2 3 4 5 x", "line 1: 'x' is not a number"),
        ("1 2 3 4 5 -1", "must be positive"),
        ("1 2 3 4 5 nan", "value 5"),
    ],
)
def test_bad_conductance_files_are_clear_errors(capsys, tmp_path, small_network, content, message):
    kfile = tmp_path / "k.txt"
    kfile.write_text(content)
    err = run_error(
        capsys, "--network", str(small_network), "--conductances", str(kfile), "--fix", "1=1"
    )
    assert message in err and "k.txt" in err


def test_missing_network_file(capsys, tmp_path):
    err = run_error(capsys, "--network", str(tmp_path / "none.txt"), "--fix", "1=1")
    assert "cannot read network file" in err


def test_board_with_node_names(capsys, tmp_path):
    gates = np.linspace(1.5, 5.0, 32)
    gfile = tmp_path / "gates.txt"
    gfile.write_text("\n".join(f"{g}" for g in gates))
    out = run_json(
        capsys,
        "--board",
        "gen2-clln",
        "--edge-state",
        str(gfile),
        "--fix",
        "n11=0.45",
        "--fix",
        "n22=0.1",
    )
    assert out["nodes"][5] == "n11" and out["node_voltages"][5] == pytest.approx(0.45)
    assert out["co_content"] is None and out["power"] > 0
    assert out["power"] == pytest.approx(
        sum(c["volts"] * c["current"] for c in out["constraints"]), rel=1e-9
    )
    err = run_error(capsys, "--board", "gen2-clln", "--fix", "n99=0.1")
    assert "n99" in err and "node names" in err
    err = run_error(capsys, "--board", "gen2-clln", "--ground", "3", "--fix", "n11=0.1")
    assert "--ground" in err


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["solve", "--help"])
    assert "--fix-drop 0,35=1 --json" in capsys.readouterr().out
