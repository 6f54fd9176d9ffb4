"""The power a board reports against the emulator's true power: the firmware's
device-model estimate of each network (free and clamped), the session's summary keys, and
what a board without a truth probe (hardware) reports. In-process boards, few steps; one
`learnboard emulate` board for its truth socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from learnboard.cli.connection import open_board
from learnboard.host.calibration import model_args
from learnboard.host.connect import open_board as open_port
from learnboard.host.power import NOT_ON_HARDWARE, POWER_KEYS, PowerMeans, power_line
from learnboard.host.runfolder import RunFolder
from learnboard.host.schedule import schedule_from_flags
from learnboard.host.session import TrainConfig, initial_edges, run_session
from learnboard.host.truth import SocketTruth

from learnboard.tasks import load_task
from tests.test_calibrate_storage import emulated_board

PROFILES = ("gen2-clln", "gen1-digipot")
WITHIN = 0.15  # the board's figure against the total true power


def _powers(conn, task, model=None) -> np.ndarray:
    """Mean (board total, board free, board clamped, true free, true clamped) over the
    training examples, each infer driving the clamped network toward its target."""
    for args in model_args(model, conn.board):
        conn.link.call("set_model", **args)
    rows = []
    for x, y in zip(task.x_train, task.y_train, strict=True):
        r = conn.link.call("infer", x=[float(v) for v in x], y=[float(v) for v in y])
        rows.append((r["pwr"], r["pwr_f"], r["pwr_c"], conn.true_state(0).power,
                     conn.true_state(1).power))
    return np.mean(rows, axis=0)


@pytest.mark.parametrize("name", PROFILES)
@pytest.mark.parametrize("init", ["uniform", "low"])
def test_the_estimate_is_within_15_percent_of_the_true_power(name, init):
    """Mid-range edges (where lambda 0 starts) and the lowest-conductance end (gates just
    above threshold, pots at their top tap: the subthreshold tail and the gate read-back's
    bias weigh most there, as in a low-power run), every network counted."""
    with open_board(f"emu:{name}") as conn:
        task = load_task("regression", board=conn.board, seed=0)
        k = initial_edges(conn.board, init, conn.link.call("read_edges")["k"])
        conn.link.call("write_edges", k=k, clamp=True)
        total, free, clamped, t_free, t_clamped = _powers(conn, task)
    assert total == pytest.approx(free + clamped, rel=1e-5)
    assert total == pytest.approx(t_free + t_clamped, rel=WITHIN)
    assert free == pytest.approx(t_free, rel=WITHIN)
    assert clamped == pytest.approx(t_clamped, rel=WITHIN)


def test_a_calibration_replaces_the_nominal_parts_for_the_network_it_measured():
    """set_model's per-edge parameters move the free network's estimate only; nominal
    ones put it back exactly."""
    with open_board("emu:gen2-clln") as conn:
        task = load_task("regression", board=conn.board, seed=0)
        before = _powers(conn, task)
        n = conn.board.n_edges
        cal = {"edges": {"kind": "transistor", "vt": [0.55] * n, "beta": [9e-4] * n},
               "twin": {"measured_nets": [0]}}
        calibrated = _powers(conn, task, cal)
        again = _powers(conn, task)
    assert calibrated[1] > 1.05 * before[1]  # lower thresholds, higher gain: more power
    assert calibrated[2] == pytest.approx(before[2], rel=1e-3)  # network 1 stays nominal
    assert again[1] == pytest.approx(before[1], rel=1e-3)


@pytest.mark.parametrize(("name", "lam", "lower"), [("gen2-clln", 0.0, 1.0), ("gen2-clln", 0.5, 5.0),
                                                    ("gen1-digipot", 0.2, 5.0)])
def test_the_session_reports_free_clamped_and_total_power_and_their_truth(tmp_path, name, lam, lower):
    """A plain session and low-lambda ones (power at least 5x under its start in 40
    steps): the summary's board figures within 15 % of the true ones, every network."""
    cfg = TrainConfig(schedule=schedule_from_flags(steps=40, lam=lam), checkpoint_every=40)
    with open_board(f"emu:{name}") as conn:
        s = run_session(conn, cfg, RunFolder.create(tmp_path, "p")).as_dict()
    for key in POWER_KEYS:
        assert key in s and f"initial_{key}" in s
    assert s["power_source"] == s["initial_power_source"] == "estimate"
    assert s["true_power"] * lower < s["initial_true_power"]
    for pre in ("", "initial_"):
        free, clamped = s[f"{pre}power_free"], s[f"{pre}power_clamped"]
        assert free > 0 and clamped > 0  # a twin board: both networks draw
        assert s[f"{pre}power"] == pytest.approx(free + clamped, rel=1e-6)  # float32 on the wire
        assert s[f"{pre}true_power"] == pytest.approx(
            s[f"{pre}true_power_free"] + s[f"{pre}true_power_clamped"], rel=1e-9)
        assert s[f"{pre}power"] == pytest.approx(s[f"{pre}true_power"], rel=WITHIN)
        assert free == pytest.approx(s[f"{pre}true_power_free"], rel=WITHIN)
        assert clamped == pytest.approx(s[f"{pre}true_power_clamped"], rel=WITHIN)
    assert "estimate: free" in power_line(s) and ", true " in power_line(s)


class _Reply(dict):
    pass


def test_without_a_truth_probe_the_true_figures_are_null_and_said_so():
    """Hardware: no true power; a single-network board: no clamped part; a board whose
    current monitor measures the total on every reply: that is the power."""
    means = PowerMeans(twin=False)
    for p in (1e-4, 3e-4):
        means.add(_Reply(pwr=p, pwr_f=p, pwr_c=None))
    d = means.result()
    assert d == {"power": pytest.approx(2e-4), "power_source": "estimate",
                 "power_free": pytest.approx(2e-4), "power_clamped": None, "true_power": None,
                 "true_power_free": None, "true_power_clamped": None}
    assert power_line(d).endswith(NOT_ON_HARDWARE)
    reply = _Reply(pwr=1e-4, pwr_f=4e-5, pwr_c=6e-5, pwr_m=1.2e-4)
    sensed = PowerMeans(twin=True, sensed_total=True)
    sensed.add(reply)
    d = sensed.result()
    assert (d["power"], d["power_source"], d["power_clamped"]) == (1.2e-4, "measured", 6e-5)
    share = PowerMeans(twin=True)  # a monitor of one input driver: its share is no total
    share.add(reply)
    assert (share.result()["power"], share.result()["power_source"]) == (1e-4, "estimate")


def test_a_learnboard_emulate_board_serves_its_true_power_to_the_host(tmp_path, monkeypatch):
    """`learnboard emulate` announces a truth socket beside its port: the host's
    connection to the pty finds it (checked against the board's uid), and `learnboard
    train --port PTY` records the true power. One VM: the probe is the host's."""
    (tmp_path / "run").mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))  # this process and its children
    monkeypatch.setenv("LEARNBOARD_DATA", str(tmp_path / "data"))
    with emulated_board(tmp_path / "flash", env=dict(os.environ)) as port:
        with open_port(port) as conn:
            assert isinstance(conn.truth, SocketTruth)
            task = load_task("regression", board=conn.board, seed=0)
            total, free, clamped, t_free, t_clamped = _powers(conn, task)
            assert conn.true_state(1).node_voltages.shape == (conn.board.n_nodes,)
        assert total == pytest.approx(t_free + t_clamped, rel=WITHIN)
        run = subprocess.run([sys.executable, "-m", "learnboard", "train", "--port", port, "--steps", "10",
                              "--no-plot", "--quiet", "--json", "--runs", str(tmp_path / "runs")],
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout.splitlines()[-1])
    assert s["true_power"] is not None and s["true_power_clamped"] is not None
    assert s["power"] == pytest.approx(s["true_power"], rel=WITHIN)


def test_the_dashboard_splits_telemetry_power_into_free_and_clamped():
    """Telemetry carries the total (pwr) and the clamped part (pwr_c): the live view shows
    both parts under the board power."""
    from learnboard.host.live import Live

    live = Live()
    live.last = {"step": 10, "pwr": 3e-4, "pwr_c": 1e-4}
    rows = dict(live.power_rows()[:1])
    assert "300 µW" in rows["board power"]
    assert ("", "free 200 µW + clamped 100 µW") in live.power_rows()
