"""XOR on gen2-clln-xor: the lab's encoding (a differential output, two bias nodes, a
lattice with no grounded node), its symmetric clamp on the emulated board, and the local
rule learning XOR on the board's simulated physics (docs/boards/gen2-clln-xor.md)."""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.cli.connection import LinkedInProcessBoard

from learnboard.boards import compile_board, load_board, parse_board, profile_path
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.config import LearningConfig, annealed_alpha
from learnboard.errors import InputError
from learnboard.tasks import Dataset, load_task

BOARD = "gen2-clln-xor"


def test_the_profile_is_the_labs_xor_wiring():
    b = load_board(BOARD)
    (out,) = b.outputs
    assert (b.nodes[out.a], b.nodes[out.b]) == ("n22", "n00")
    assert not np.any(b.edge_array() == b.ground)  # no lattice node is ground
    bias = {b.nodes[p.a]: p.fixed for p in b.inputs if p.fixed is not None}
    assert bias == {"n11": 0.11, "n13": 0.33}
    assert compile_board(b).sha256 != compile_board(load_board("gen2-clln")).sha256
    task = load_task("xor", board=b, seed=0)
    assert task.codes.ravel().tolist() == [0.0, -0.087]  # false, true (V)
    assert set(task.y_test.ravel()) == {0.0, -0.087}


def test_a_floating_lattice_needs_a_bias_source():
    text = profile_path(BOARD).read_text().replace("fixed = 0.11", "").replace("fixed = 0.33", "")
    with pytest.raises(InputError, match=r"floats: ground 'gnd' has no edge.*fixed bias"):
        parse_board(text, source="no-bias.toml")


def test_the_emulated_board_clamps_the_pair_symmetrically():
    """infer with a target drives the clamped network as a step does: each output node
    moves by half the nudge, in opposite directions (within the clamp DAC's steps)."""
    b = load_board(BOARD)
    out = b.outputs[0]
    target = -0.2
    with LinkedInProcessBoard(BOARD, seed=0) as board:
        link = board.link
        link.call("set_params", eta=0.5)
        # a negative target is a difference, accepted; one beyond the node range is not
        assert link.call("upload_examples", x=[[0.4, 0.05]], y=[[target]], clear=True) == {"count": 1}
        res = link.call("infer", x=[0.4, 0.05], y=[target])
        free, clamped = board.true_state(0).node_voltages, board.true_state(1).node_voltages
    o_free = free[out.a] - free[out.b]
    assert res["y"][0] == pytest.approx(o_free, abs=0.002)  # the firmware reads V_a - V_b
    up, down = clamped[out.a] - free[out.a], clamped[out.b] - free[out.b]
    half = 0.25 * (target - o_free)  # (eta / 2)(L - O_F)
    lsb = 0.45 / 256  # the clamp DAC's step
    assert abs(half) > 20 * lsb
    assert up == pytest.approx(half, abs=3 * lsb)
    assert down == pytest.approx(-half, abs=3 * lsb)
    assert clamped[out.a] - clamped[out.b] == pytest.approx(o_free + 0.5 * (target - o_free),
                                                            abs=4 * lsb)


def test_out_of_range_difference_targets_are_refused():
    with LinkedInProcessBoard(BOARD, seed=0) as board, pytest.raises(Exception, match="outside"):
        board.link.call("upload_examples", x=[[0.4, 0.05]], y=[[-0.5]], clear=True)


def test_the_simulated_board_learns_xor_to_full_held_out_accuracy():
    """The encoding is learnable by the local rule: nominal parts (model "ideal"), gates
    from the low end, learning rate annealed 5 -> 0.5 over 5000 steps, seed 0."""
    b = load_board(BOARD)
    task = load_task("xor", board=b, seed=0)
    steps = 5000
    eng = BoardEngine(b, Dataset(task.x_train, task.y_train, name="xor"),
                      LearningConfig(alpha=5.0, eta=0.5, lam=0.0), model="ideal", seed=0,
                      alpha_at=lambda s: annealed_alpha(s - s % 50, steps, 5.0, 0.5))
    res = eng.train(eng.initial_state("low"), steps, record_every=steps)
    assert task.accuracy(eng.outputs_at(res.state, task.x_test), task.y_test) == 1.0
    assert res.relative_error < 0.5  # below the best function of one input (C/C0 0.5)


def _twin_session(b, seed: int, steps: int, null_offset_every: int):
    """The board twin of `learnboard train --port emu:gen2-clln-xor --seed S --steps N`
    with the profile's session defaults; (held-out accuracy, training accuracy)."""
    from learnboard.engine.board_model import board_session_defaults, board_task

    alpha_at, eta = board_session_defaults(b, steps)
    eng = BoardEngine(b, board_task(b, seed=seed), LearningConfig(alpha=alpha_at(0), eta=eta, lam=0.0),
                      model="board", seed=seed, alpha_at=alpha_at, null_offset_every=null_offset_every)
    res = eng.train(eng.initial_state(b.learning.init), steps, record_every=steps)
    task = load_task("xor", board=b, seed=seed)
    return (task.accuracy(eng.outputs_at(res.state, task.x_test), task.y_test),
            task.accuracy(eng.outputs_at(res.state, task.x_train), task.y_train))


def test_the_profiles_defaults_are_what_xor_learns_from():
    """gen2-clln-xor's [learning]: low gates, a constant learning rate 5, the null offset
    every step (gen2-clln keeps uniform gates, the anneal and no null offset)."""
    ln, plain = load_board(BOARD).learning, load_board("gen2-clln").learning
    assert (ln.init, ln.alpha, ln.anneal, ln.null_offset_every, ln.eta) == ("low", 5.0, False, 1, 0.5)
    assert (plain.init, plain.anneal, plain.null_offset_every) == ("uniform", True, 0)


def test_the_null_offset_is_what_makes_the_emulated_board_of_seed_0_learn_xor():
    """The twin of the emulated board of seed 0, 1000 steps (learnboard train's default)
    from the profile's defaults: 100 % held out and in training; the same session without
    the null offset stalls at the best function of one input (the twins' learning bias at
    the start is 1.3x the nudge's signal; benchmarks/xor_seeds.py has seeds 0-9)."""
    b = load_board(BOARD)
    assert _twin_session(b, 0, 1000, b.learning.null_offset_every) == (1.0, 1.0)
    held_out, _ = _twin_session(b, 0, 1000, 0)
    assert held_out <= 0.75


# The profile's session defaults ([learning]: low gates, constant learning rate 5, the
# null offset every step) on the firmware in the 32-bit VM. 300 steps (the twin's
# seeds 2-9 reach 100 % held out by then; 1000, learnboard train's default, for the
# multi-seed claim: benchmarks/xor_seeds.py) keep it near half a minute.
VM_SEED, VM_STEPS = 2, 300


@pytest.mark.vm("vm32")
def test_the_firmware_learns_xor_from_the_profiles_defaults(tmp_path, capsys, monkeypatch):
    """`learnboard emulate --board gen2-clln-xor --seed 2` + `learnboard train --port P
    --seed 2 --steps 300` with no learning flags: the session takes the profile's init,
    learning rate and null offset, and the board ends at 100 % held-out accuracy."""
    import json
    from pathlib import Path

    from learnboard.cli import main

    from tests.test_emulate_with_mpremote_and_pyserial import flashed_board, hello_when_up

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "rt"))
    (tmp_path / "rt").mkdir(mode=0o700)
    with flashed_board(tmp_path, BOARD, seed=VM_SEED) as vb:
        hello_when_up(vb.port)
        code = main(["train", "--port", vb.port, "--seed", str(VM_SEED), "--steps", str(VM_STEPS),
                     "--runs", str(tmp_path / "runs"), "--json", "--quiet", "--no-plot"])
        out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["schedule"]["init"] == "low"
    assert config["schedule"]["null_offset_every"] == 1
    assert config["alpha"] is None  # not given: the profile's constant 5, sent to the board
    assert summary["accuracy"] == 1.0, summary
    assert summary["relative_error"] < 0.5, summary  # below the best function of one input
