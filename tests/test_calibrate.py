"""learnboard calibrate against the emulator's injected device spreads (ground truth from
the World's own parameter draw), the calibrated twin, and bad calibration files.

Stated accuracy (docs/calibration.md): ADC gain and offset within 4 standard
uncertainties (+1e-3 / 0.3 mV for the converter's non-linearity); digipot end-to-end scale
relative to the network's geometric mean with rms error <= half the spread and <= 2.5 %;
transistor threshold rms error <= 5 mV and gain (relative) rms error <= 1.5 %, every edge
within 5 standard uncertainties of the truth.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.cli.connection import LinkedInProcessBoard, open_board
from learnboard.emulator.twin import TwinWorld, set_adc_errors
from learnboard.emulator.world import World
from learnboard.host.calibration import (
    calibrate,
    find_calibration,
    load_calibration,
    measure_adc,
    validate_calibration,
)

from learnboard.boards.board_circuit import edge_parameters
from learnboard.errors import InputError
from learnboard.physics import Fix, solve


def _rel(a: np.ndarray, idx: list[int]) -> np.ndarray:
    """Values relative to their geometric mean over the measured edges."""
    return a[idx] / np.exp(np.mean(np.log(a[idx])))


def _measured(edges: dict) -> list[int]:
    return [i for i in range(edges["n"]) if i not in edges["unmeasurable"]]


@pytest.fixture(scope="module")
def gen1_cal(tmp_path_factory):
    """gen1-digipot (seed 0) calibrated through the CLI, as a user would."""
    tmp = tmp_path_factory.mktemp("cal")
    mp = pytest.MonkeyPatch()
    mp.setenv("LEARNBOARD_DATA", str(tmp / "data"))
    out = tmp / "calibration.json"
    assert main(["calibrate", "--port", "emu:gen1-digipot", "--out", str(out), "--json"]) == 0
    yield load_calibration(out), tmp
    mp.undo()


@pytest.fixture(scope="module")
def gen2():
    with open_board("emu:gen2-clln", seed=4) as conn:
        cal = validate_calibration(calibrate(conn.link, conn.board, seed=1), conn.board)
        yield conn, cal


def test_gen1_digipot_spreads_recovered(gen1_cal):
    cal, tmp = gen1_cal
    from learnboard.boards import load_board
    board = load_board("gen1-digipot")
    truth = edge_parameters(board, 0, 0)["r_scale"]  # the World's draw for seed 0, net 0
    e = cal["edges"]
    m = _measured(e)
    est, tr = _rel(np.array(e["r_scale"]), m), _rel(truth, m)
    sd = np.array(e["r_scale_sd"])[m]
    rms = np.sqrt(np.mean((est - tr) ** 2))
    assert rms <= min(0.025, 0.5 * np.std(tr)), (rms, np.std(tr))
    assert np.all(np.abs(est - tr) <= 5 * sd + 1e-3)
    assert np.corrcoef(est, tr)[0, 1] > 0.8
    # stored in the data directory under board id, description hash and the board's unique id
    stored = find_calibration(cal["board"], cal["desc_hash"], cal["uid"])
    assert stored is not None and json.loads(stored.read_text())["sha256"] == cal["sha256"]


def test_gen2_transistor_spreads_recovered(gen2):
    conn, cal = gen2
    truth = edge_parameters(conn.board, 0, conn.world.seed)
    e = cal["edges"]
    m = _measured(e)
    vt, vt_sd = np.array(e["vt"])[m], np.array(e["vt_sd"])[m]
    err = vt - truth["vt"][m]
    assert np.sqrt(np.mean(err ** 2)) <= 5e-3
    assert np.all(np.abs(err) <= 5 * vt_sd)
    assert np.corrcoef(vt, truth["vt"][m])[0, 1] > 0.8  # the 10 mV spread is resolved
    beta = np.array(e["beta"])
    est, tr = _rel(beta, m), _rel(truth["beta"], m)
    assert np.sqrt(np.mean((est / tr - 1) ** 2)) <= 0.015
    assert np.all(np.abs(est / tr - 1) <= 5 * (np.array(e["beta_sd"]) / beta)[m])
    # the ADC of an ideal converter read as code * vref / (2^12 - 1): gain 4096/4095
    ch = cal["adc"]["channels"]["0"]
    assert abs(ch["gain"] - 4096 / 4095) <= 4 * ch["gain_sd"] + 1e-3
    assert abs(ch["offset_v"]) <= 4 * ch["offset_sd"] + 3e-4


def test_injected_adc_gain_and_offset_recovered():
    def world(board):
        w = World(board, seed=2)
        set_adc_errors(w, 0.02, 6.0)
        return w

    with LinkedInProcessBoard("gen2-clln", world_factory=world) as b:
        ch = measure_adc(b.link, b.board)["channels"]["0"]
    gain = 1.02 * 4096 / 4095
    offset = 6.0 * 3.3 / 4095 / 7.0  # LSB -> node volts through the x7 front end
    assert abs(ch["gain"] - gain) <= 4 * ch["gain_sd"] + 1e-3
    assert abs(ch["offset_v"] - offset) <= 4 * ch["offset_sd"] + 3e-4


def _twin_vs_nominal(conn, cal, states, rng) -> tuple[float, float]:
    """Median worst node error (V) of the twin and of the nominal description in
    predicting the emulated board's true node voltages."""
    b = conn.board
    nom = copy.deepcopy(cal)
    e = nom["edges"]
    part = b.parts[b.edges[0].part]
    if e["kind"] == "digipot":
        e["r_scale"], e["r_wiper"] = [1.0] * e["n"], [part.r_wiper] * e["n"]
    else:
        e["vt"], e["beta"] = [part.vt] * e["n"], [part.beta] * e["n"]
    nom["adc"]["channels"]["0"].update(gain=1.0, offset_v=0.0)
    twin, nominal = TwinWorld(b, cal), TwinWorld(b, nom)
    errs = {"twin": [], "nominal": []}
    for k in states:
        conn.link.call("write_edges", start=0, k=k)
        conn.link.call("infer", x=rng.uniform(0.1, 0.4, 2).tolist())
        truth = conn.true_state(0)
        fw = np.asarray(conn.link.call("read_edges")["k"], dtype=float)
        state = fw if e["kind"] == "digipot" else truth.edge_state
        fixes = [Fix(n, v) for n, v in sorted(conn.world.driven(0).items())]
        for name, w in (("twin", twin), ("nominal", nominal)):
            sol = solve(w.circuit(0, state), fixes)
            errs[name].append(np.max(np.abs(sol.node_voltages - truth.node_voltages)))
    return float(np.median(errs["twin"])), float(np.median(errs["nominal"]))


def test_twin_predicts_gen2_better_than_nominal(gen2):
    conn, cal = gen2
    rng = np.random.default_rng(7)
    states = [rng.uniform(1.0, 5.1, conn.board.n_edges).tolist() for _ in range(6)]
    twin, nominal = _twin_vs_nominal(conn, cal, states, rng)
    assert twin < 0.3 * nominal, (twin, nominal)


def test_twin_predicts_gen1_better_than_nominal(gen1_cal):
    cal, _ = gen1_cal
    rng = np.random.default_rng(8)
    with open_board("emu:gen1-digipot", seed=0) as conn:
        states = [rng.integers(40, 100, conn.board.n_edges).tolist() for _ in range(6)]
        twin, nominal = _twin_vs_nominal(conn, cal, states, rng)
        shift = conn.true_state(0).edge_state - np.asarray(conn.link.call("read_edges")["k"])
    assert twin < 0.3 * nominal, (twin, nominal)
    # the firmware homes the X9C wipers at boot: its count is the physical tap, and the
    # calibration's offset estimate does not raise the "not homed" warning
    off = cal["edges"]["tap_offset"]
    assert np.all(shift == 0)
    assert abs(off["taps"]) <= 4.0, off


def test_twin_board_runs_the_firmware(gen1_cal):
    """An in-process board on the twin world answers like a board (the ADC too)."""
    cal, _ = gen1_cal
    from learnboard.emulator.twin import twin_factory
    with LinkedInProcessBoard("gen1-digipot", world_factory=twin_factory(cal)) as b:
        ch = measure_adc(b.link, b.board)["channels"]["0"]
        assert abs(ch["gain"] - cal["adc"]["channels"]["0"]["gain"]) <= 4 * ch["gain_sd"] + 1e-3


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.pop("adc"), "adc"),
    (lambda c: c["edges"].update(r_scale=[1.0] * 3), "edges.r_scale"),
    (lambda c: c["edges"].update(r_wiper="forty"), "edges.r_wiper"),
    (lambda c: c["adc"]["channels"]["0"].update(gain=7.0), "adc.channels.0.gain"),
    (lambda c: c.update(format=99), "format"),
    (lambda c: c.update(board="gen2-clln"), "board"),
    (lambda c: c["edges"].update(kind="memristor"), "edges.kind"),
])
def test_bad_calibration_names_the_field(gen1_cal, tmp_path, edit, field):
    cal = copy.deepcopy(gen1_cal[0])
    edit(cal)
    p = tmp_path / "bad.json"
    p.write_text(json.dumps(cal))
    from learnboard.boards import load_board
    with pytest.raises(InputError) as exc:
        load_calibration(p, load_board("gen1-digipot"))
    assert exc.value.field == field
    assert str(p) in str(exc.value) or exc.value.source == str(p)


def test_unreadable_calibration_file(tmp_path):
    p = tmp_path / "cal.json"
    p.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_calibration(p)
    with pytest.raises(InputError, match="learnboard calibrate"):
        load_calibration(tmp_path / "missing.json")


def test_emulate_with_a_calibration_becomes_that_boards_twin(gen1_cal, tmp_path):
    """`learnboard emulate --calibration FILE` on another seed (other parts) calibrates
    back to the parts in FILE, not to its own."""
    import os
    import subprocess
    import sys

    cal, tmp = gen1_cal
    src = tmp / "calibration.json"
    env = dict(os.environ, LEARNBOARD_DATA=str(tmp_path / "data"))
    emu = subprocess.Popen([sys.executable, "-m", "learnboard.cli", "emulate", "--vm", "cpython",
                            "--board", "gen1-digipot", "--seed", "5", "--calibration", str(src)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        port = emu.stdout.readline().strip()
        assert port.startswith("/dev/"), emu.stderr.read()
        out = tmp_path / "again.json"
        assert main(["calibrate", "--port", port, "--board", "gen1-digipot", "--host-only",
                     "--out", str(out), "--json"]) == 0
    finally:
        emu.terminate()
        emu.wait(10)
    again = load_calibration(out)
    from learnboard.boards import load_board
    idx = [i for i in _measured(cal["edges"]) if i in _measured(again["edges"])]
    file_parts = _rel(np.asarray(cal["edges"]["r_scale"]), idx)
    own_parts = _rel(edge_parameters(load_board("gen1-digipot"), 0, 5)["r_scale"], idx)  # seed 5's draw
    err_twin = np.sqrt(np.mean((_rel(np.asarray(again["edges"]["r_scale"]), idx) - file_parts) ** 2))
    assert err_twin <= 0.025, err_twin
    assert err_twin < 0.5 * np.sqrt(np.mean((own_parts - file_parts) ** 2))
