"""The exact gradient of a transistor board's physical power with respect to its gates
(an adjoint solve of the Newton system) against central finite differences of the
solved power, and the rule that uses it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from learnboard.boards import circuit_for_board, load_board
from learnboard.engine import power_gradient as pg
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_task
from learnboard.engine.config import LearningConfig
from learnboard.errors import InputError
from learnboard.physics import Fix, solve
from learnboard.physics.sensitivity import power_gradient
from learnboard.physics.solver import Constraints
from learnboard.tasks import Dataset

ETA = 0.5


@pytest.fixture(scope="module")
def gen2():
    board = load_board("gen2-clln")
    data = board_task(board, 0)
    bias = np.array([float(p.fixed) for p in board.inputs if p.fixed is not None])
    x = np.hstack([data.inputs, np.broadcast_to(bias, (data.n_examples, bias.size))])[:4]
    return board, x, np.asarray(data.targets)[:4]


def _states(board):
    """Mid-range gates; gates spread over 0.75-2 V with a third at the 0.75 V floor (their
    source overdrive is below the 87 mV knee: the subthreshold tail); all low (0.75-0.9 V)."""
    rng = np.random.default_rng(3)
    n = board.n_edges
    spread = rng.uniform(0.75, 2.0, n)
    spread[rng.random(n) < 0.33] = 0.75
    return {"mid": np.full(n, 2.975), "spread, floor": spread, "low": rng.uniform(0.75, 0.9, n)}


def _fd(board, state, x, y, h=1e-5):
    out = np.zeros((2, board.n_edges))
    for e in range(board.n_edges):
        up, dn = state.copy(), state.copy()
        up[e] += h
        dn[e] -= h
        out[:, e] = (np.array(pg.solved_power(board, up, x, y, ETA))
                     - np.array(pg.solved_power(board, dn, x, y, ETA))) / (2 * h)
    return out


@pytest.mark.parametrize("which", ["mid", "spread, floor", "low"])
def test_gate_gradient_matches_central_finite_differences(gen2, which):
    board, x, y = gen2
    state = _states(board)[which]
    g = pg.gate_power_gradient(board, state, x, y, ETA)
    fd_free, fd_clamped = _fd(board, state, x, y)
    for exact, fd in ((g.free, fd_free), (g.clamped, fd_clamped), (g.total, fd_free + fd_clamped)):
        scale = np.max(np.abs(fd))
        assert scale > 0
        assert np.max(np.abs(exact - fd)) <= 1e-6 * scale
        big = np.abs(fd) > 1e-3 * scale  # element by element where the difference resolves it
        assert np.all(np.abs(exact - fd)[big] <= 1e-5 * np.abs(fd)[big])
    p_free, p_clamped = pg.solved_power(board, state, x, y, ETA)
    assert g.power_free == pytest.approx(p_free, rel=1e-9)
    assert g.power_clamped == pytest.approx(p_clamped, rel=1e-9)


def test_power_equals_what_the_sources_deliver_and_its_source_gradient(gen2):
    """P = Σ I ΔV over the edges is what the voltage sources deliver (Σ_k λ_k c_k), and
    the adjoint's dP/dc matches finite differences of a source's volts."""
    board, x, _ = gen2
    circuit = circuit_for_board(board, _states(board)["spread, floor"])
    free, _ = pg.ports(board)
    fixes = [Fix(a, float(v)) for (a, _b), v in zip(free, x[0], strict=True)]
    sol = solve(circuit, fixes, tol=1e-12)
    assert sol.power == pytest.approx(float(sol.constraint_currents @ x[0]), rel=1e-9)
    power, grad = power_gradient(circuit, Constraints(circuit, fixes), sol.node_voltages[None])
    assert power[0] == pytest.approx(sol.power, rel=1e-12)
    h = 1e-6
    for k in range(len(fixes)):
        up = [Fix(f.node, f.volts + (h if j == k else 0.0)) for j, f in enumerate(fixes)]
        dn = [Fix(f.node, f.volts - (h if j == k else 0.0)) for j, f in enumerate(fixes)]
        fd = (solve(circuit, up, tol=1e-12).power - solve(circuit, dn, tol=1e-12).power) / (2 * h)
        assert grad.values[0, k] == pytest.approx(fd, rel=1e-6)


def test_exact_term_at_lambda_zero_leaves_the_rule_unchanged_and_is_tracked():
    """The exact term replaces only λ's part of the gate change: at λ 0 the run is the
    local rule's; at λ > 0 it differs, and the history carries the agreement."""
    board = load_board("gen2-clln")
    data = board_task(board, 0)

    def run(lam, term):
        eng = BoardEngine(board, data, LearningConfig(alpha=2.0, eta=ETA, lam=lam), model="ideal",
                          power_term=term, track_gradient=True)
        return eng.train(eng.initial_state(), 20, record_every=5)

    local, exact = run(0.0, "local"), run(0.0, "exact")
    np.testing.assert_allclose(exact.state, local.state, rtol=0, atol=1e-12)
    h = run(0.1, "exact").history
    assert not np.allclose(h["power_watts"], local.history["power_watts"])
    for key in ("cos_free", "sign_free", "cos_total", "sign_total", "power_clamped_watts",
                "cos_free_above_floor", "at_floor"):
        assert h[key].shape == h["step"].shape
    assert np.all(np.abs(h["cos_free"]) <= 1 + 1e-12)
    # mid-range gates: the local term points where the exact gradient does
    assert local.history["cos_free"][0] > 0.99 and local.history["sign_free"][0] == 1.0


def test_agreement_every_few_steps_leaves_nan_between():
    board = load_board("gen2-clln")
    eng = BoardEngine(board, board_task(board, 0), LearningConfig(alpha=2.0, eta=ETA, lam=0.05),
                      model="ideal", track_gradient=True, track_every=4)
    h = eng.train(eng.initial_state(), 10).history
    evaluated = np.isfinite(h["cos_free"])
    assert h["step"][evaluated].tolist() == [0, 4, 8, 10]  # and always the last step
    assert np.isnan(h["at_floor"][~evaluated]).all()


def _board_power(board, eng, seed, g0, g1, base=None):
    """(P_free, P_clamped) mean over the engine's examples, solved afresh with
    :func:`learnboard.physics.solve`: the free state on network 0 at gates ``g0``, the
    clamped one on network 1 at ``g1``, clamped at the engine's last clamp values (held),
    or with ``base`` (free volts the clamp was computed at) moved along its envelope."""
    from learnboard.engine.board_engine import _fix

    free_ports, clamp_ports = eng.nets[0].ports
    cf = circuit_for_board(board, g0, 0, seed)
    cc = circuit_for_board(board, g1, 1, seed)
    slope = pg.clamp_slope(eng)
    pf = pc = 0.0
    vols = []
    for k, row in enumerate(eng.x_free):
        sf = solve(cf, [_fix(a, b, float(v)) for (a, b), v in zip(free_ports, row, strict=True)],
                   tol=1e-12)
        vols.append(sf.node_voltages)
        clamp = eng._clamp[k] + (0.0 if base is None else slope[k] @ (sf.node_voltages - base[k]))
        sc = solve(cc, [_fix(a, b, float(v)) for (a, b), v in
                        zip(clamp_ports, np.concatenate([row, clamp]), strict=True)], tol=1e-12)
        pf, pc = pf + sf.power, pc + sc.power
    n = len(eng.x_free)
    return pf / n, pc / n, np.array(vols)


@pytest.mark.parametrize("name, model, seed", [("gen2-clln", "board", 3),
                                               ("gen2-clln-xor", "board", 11),
                                               ("gen2-clln-xor", "ideal", None)])
def test_engine_gradient_matches_central_finite_differences(name, model, seed):
    """The emulated board of a seed (model "board"): after a few steps its twin's gates
    differ from network 0's and the clamp is the firmware's code. The exact gradient of
    P_free (network 0) and of P_total (network 0 + network 1, a gate moved on both, the
    clamp along its envelope) against central differences of freshly solved powers; also
    the nominal board with a differential output clamped node by node."""
    board = load_board(name)
    full = board_task(board, 0)
    data = Dataset(full.inputs[:4], full.targets[:4], name="4 examples")
    eng = BoardEngine(board, data, LearningConfig(alpha=2.0, eta=ETA, lam=0.05), model=model,
                      seed=seed, power_term="exact-total")
    res = eng.train(eng.initial_state(), 20)
    g0 = res.state
    g1 = g0 if eng._twin is None else eng._twin.copy()
    if model == "board":
        assert np.max(np.abs(g0 - g1)) > 1e-3  # the twins have drifted apart
    g = pg.engine_gradient(eng, g0)
    pf, pc, base = _board_power(board, eng, seed, g0, g1)
    assert g.power_free == pytest.approx(pf, rel=1e-9)
    assert g.power_clamped == pytest.approx(pc, rel=1e-9)
    h = 1e-5
    fd_free, fd_total = np.zeros(board.n_edges), np.zeros(board.n_edges)
    for e in np.flatnonzero(eng.is_gate):
        step = np.zeros(board.n_edges)
        step[e] = h
        up = _board_power(board, eng, seed, g0 + step, g1 + step, base)
        dn = _board_power(board, eng, seed, g0 - step, g1 - step, base)
        fd_free[e] = (up[0] - dn[0]) / (2 * h)
        fd_total[e] = (up[0] + up[1] - dn[0] - dn[1]) / (2 * h)
    for exact, fd in ((g.free, fd_free), (g.total, fd_total)):
        scale = np.max(np.abs(fd))
        assert scale > 0
        assert np.max(np.abs(exact - fd)) <= 1e-6 * scale
        big = np.abs(fd) > 1e-3 * scale
        assert np.all(np.abs(exact - fd)[big] <= 1e-5 * np.abs(fd)[big])
    assert not np.allclose(g.total, 2 * g.free, rtol=1e-3)  # the clamp's path counts


def test_exact_term_needs_gates():
    board = load_board("gen1-digipot")
    with pytest.raises(InputError, match="no transistor gates") as err:
        BoardEngine(board, board_task(board, 0), LearningConfig(), power_term="exact")
    assert err.value.field == "power_term"


def test_sim_power_term_option(capsys):
    from learnboard.cli import main

    rc = main(["sim", "--board", "gen2-clln", "--board-model", "ideal", "--lam", "0.05",
               "--power-term", "exact", "--steps", "5", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["power_term"] == "exact"
    assert info["power_total_watts"] == pytest.approx(info["power_free_watts"]
                                                      + info["power_clamped_watts"])
    assert -1 <= info["gradient_agreement"]["cos_free"] <= 1
    # the default model, the emulated board of the seed
    rc = main(["sim", "--board", "gen2-clln", "--lam", "0.05", "--power-term", "exact",
               "--steps", "5", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["model"], info["power_term"]) == ("board", "exact")
    assert 0.9 <= info["gradient_agreement"]["cos_free"] <= 1
    assert info["power_clamped_watts"] > 0
    rc = main(["sim", "--board", "gen1-digipot", "--power-term", "exact", "--steps", "1"])
    assert rc != 0
    assert "--power-term" in capsys.readouterr().err


def test_report_section_runs_and_renders(tmp_path):
    """The paper report's section on a tiny grid: rows, the equal-error comparison on the
    local runs' frontier, the figure and the markdown table."""
    from learnboard.studies.paper import figures as fg
    from learnboard.studies.paper import power_gradient as pgs
    from learnboard.studies.paper.report import md_table

    plan = pgs.GradientPlan(steps=10, lams=[0.05, 0.2], terms=["local", "exact"], seeds=[0],
                            points=5)
    study = pgs.run_study("gen2-clln", plan)
    assert [(r["lam"], r["term"]) for r in study.runs] == [
        (0.0, "local"), (0.05, "local"), (0.05, "exact"), (0.2, "local"), (0.2, "exact")]
    assert len(study.equal_error) == 2 and set(study.histories) == {
        "seed 0, λ 0", "seed 0, λ 0.05", "seed 0, λ 0.2"}
    path = fg.power_gradient(study.histories, study.runs, tmp_path / "power_gradient.png")
    assert path.stat().st_size > 10_000
    text = "\n".join(pgs.markdown(study, plan, "gen2-clln", md_table))
    assert "power_gradient.png" in text and "| 0.05 | exact |" in text
    # the same on the board twin: its own figure and tables
    plan.model = "board"
    study = pgs.run_study("gen2-clln", plan)
    assert np.isfinite([r["cos_free_median"] for r in study.runs]).all()
    text = "\n".join(pgs.markdown(study, plan, "gen2-clln", md_table))
    assert "power_gradient_board.png" in text and "model='board'" in text


def test_frontier_keeps_the_runs_no_other_beats():
    from learnboard.studies.paper.power_gradient import front

    pts = [(0.004, 350.0), (0.002, 96.0), (0.0043, 190.0), (0.19, 25.0), (0.3, 30.0)]
    assert front(pts) == [(0.002, 96.0), (0.19, 25.0)]
