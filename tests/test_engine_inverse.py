"""The inverse problem: exact gradient, and verdicts on tasks whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from learnboard.engine.config import LearningConfig
from learnboard.engine.inverse import loss_and_gradient, solve_inverse, verdict
from learnboard.engine.linear import LinearEngine, Terminals
from learnboard.generate import from_spec
from learnboard.tasks import Dataset


def _engine(targets_from, terminals: Terminals, n_examples: int = 6, seed: int = 0):
    net = from_spec("lattice:4x4")
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.2, 1.0, (n_examples, terminals.n_sources))
    probe = LinearEngine(net, terminals, Dataset(x, np.zeros((n_examples, terminals.n_targets))))
    return net, LinearEngine(net, terminals, Dataset(x, targets_from(probe, x)), LearningConfig())


EDGES = Terminals(source_edges=(0, 7), target_edges=(12, 20))


def test_adjoint_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    _, eng = _engine(lambda probe, x: x @ np.array([[0.3, -0.1], [0.2, 0.4]]), EDGES)
    k = 10 ** rng.uniform(-1, 1, eng.network.n_edges)
    loss, grad = loss_and_gradient(eng, k)
    assert loss == pytest.approx(eng.evaluate(k).error, rel=1e-12)  # the engine's own error
    h = 1e-6
    fd = np.array([(loss_and_gradient(eng, k + h * k[e] * np.eye(len(k))[e])[0]
                    - loss_and_gradient(eng, k - h * k[e] * np.eye(len(k))[e])[0]) / (2 * h * k[e])
                   for e in range(len(k))])
    assert np.allclose(grad, fd, rtol=1e-5, atol=1e-9 * np.abs(fd).max())
    assert np.abs(grad).max() > 0


def test_targets_made_by_a_conductance_set_are_representable():
    rng = np.random.default_rng(2)
    k_star = 10 ** rng.uniform(-1, 1, 24)
    _, eng = _engine(lambda probe, x: probe.evaluate(k_star).outputs, EDGES)
    assert eng.evaluate(np.ones(24)).error > 1e-4  # uniform conductances miss the task
    res = solve_inverse(eng, random_starts=2, seed=0, maxiter=500)
    assert res.relative_error < 1e-12
    assert eng.evaluate(res.conductances).error < 1e-12 * res.c0  # the returned state does it
    v = verdict(res, 1e-5, plateau=0.02, plateau_clipped=0.1)
    assert v.representable and v.text.startswith("representable, the local rule stalls")
    assert "10 % of edges clipped at k_min" in v.text


def test_gain_above_one_is_not_representable():
    """A node-to-ground output cannot exceed the only driven node's voltage (maximum
    principle): a target of twice the input is out of reach for any conductances."""
    terms = Terminals(source_nodes=(5,), target_nodes=(10,))
    _, eng = _engine(lambda probe, x: 2 * x, terms)
    res = solve_inverse(eng, random_starts=2, seed=0, maxiter=500)
    uniform_gain = eng.evaluate(np.ones(24)).outputs[0, 0] / eng.data.inputs[0, 0]
    # the best is a gain of 1 (output shorted to the input): C/C0 = 1 / (2 - g_uniform)^2
    assert res.relative_error == pytest.approx(1 / (2 - uniform_gain) ** 2, rel=1e-3)
    v = verdict(res, 1e-5, plateau=0.3)
    assert not v.representable
    assert v.text.startswith("not representable (evidence: best of 3 starts reaches C/C0")


def test_trained_state_is_the_first_start_and_bounds_hold():
    _, eng = _engine(lambda probe, x: x @ np.array([[0.3, 0.1], [0.2, 0.4]]), EDGES)
    trained = np.full(24, 2.0)
    res = solve_inverse(eng, trained=trained, random_starts=1, seed=3, maxiter=50)
    assert [s.name for s in res.starts] == ["trained", "uniform", "random 0"]
    assert res.conductances.min() >= eng.config.k_min
    assert res.conductances.max() <= eng.config.k_max * (1 + 1e-9)
    assert 0.0 <= res.frac_at_min <= 1.0


def test_sim_inverse_option_reports_the_verdict(capsys):
    import json

    from learnboard.cli import main

    rc = main(["sim", "--generate", "lattice:4x4", "--source-nodes", "5", "--target-nodes", "10",
               "--coeffs", "2", "--train-size", "4", "--steps", "200", "--inverse", "1",
               "--inverse-maxiter", "200", "--inverse-more", "2", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    inv = info["inverse"]
    # trained, uniform, 1 random, then 2 more: none can get below the threshold
    assert inv["n_starts"] == 5 and inv["threshold"] == 1e-5
    assert inv["representable"] is False  # gain 2 from one driven node: out of reach
    assert inv["verdict"].startswith("not representable (evidence: best of 5 starts")
    assert inv["relative_error"] <= info["relative_error"] * (1 + 1e-9)


def test_more_starts_only_while_above_the_threshold():
    rng = np.random.default_rng(2)
    k_star = 10 ** rng.uniform(-1, 1, 24)
    _, eng = _engine(lambda probe, x: probe.evaluate(k_star).outputs, EDGES)
    # the uniform start already represents it: no further start is drawn
    res = solve_inverse(eng, random_starts=0, maxiter=500, threshold=1e-5, more_starts=5)
    assert [s.name for s in res.starts] == ["uniform"] and res.relative_error < 1e-5
    _, eng = _engine(lambda probe, x: 2 * x, Terminals(source_nodes=(5,), target_nodes=(10,)))
    res = solve_inverse(eng, random_starts=0, maxiter=100, threshold=1e-5, more_starts=2)
    assert [s.name for s in res.starts] == ["uniform", "random 0", "random 1"]


def test_sim_inverse_on_a_board_names_the_option(capsys):
    from learnboard.cli import main

    rc = main(["sim", "--board", "gen2-clln", "--steps", "1", "--inverse"])
    assert rc != 0
    assert "--inverse" in capsys.readouterr().err
