"""Why ``xor`` cannot be learned on one output of a transistor board (docs/tasks.md, known
limits): a network of gate-referenced NMOS edges is monotone — every node voltage rises (or
stays) when an input rises — so the single output of gen2-clln cannot sit higher with one
input high than with none and with both. The difference of two node voltages is not bound
by that, and does reach XOR for some gate voltages (the one-hot ``xor`` of boards with two
outputs)."""

import numpy as np
import pytest

from learnboard.boards import circuit_for_board, load_board
from learnboard.physics import Fix, solve
from learnboard.tasks import load_task

SOLVER_SLACK = 1e-7  # V: Newton's tolerance on ~0.45 V node voltages


@pytest.fixture(scope="module")
def gen2():
    board = load_board("gen2-clln")
    task = load_task("xor", board=board, seed=0)
    lab = task.classify(task.y_train)
    x = task.x_train
    # a rectangle of the task's inputs: per input the highest "low" and the lowest "high"
    hi = x > x.mean(axis=0)
    lo_v = np.where(hi, -np.inf, x).max(axis=0)
    hi_v = np.where(hi, x, np.inf).min(axis=0)
    corners = np.array([[(lo_v, hi_v)[a][0], (lo_v, hi_v)[b][1]] for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))])
    return board, corners, lab


def _node_volts(board, gates, corners):
    circuit = circuit_for_board(board, gates)
    ins = [p for p in board.inputs if p.fixed is None]
    fixed = [Fix(p.a, p.fixed) for p in board.inputs if p.fixed is not None]
    return np.array([solve(circuit, [Fix(p.a, float(v)) for p, v in zip(ins, x, strict=True)]
                           + fixed).node_voltages for x in corners])


def _gate_sets(n, seed=0):
    rng = np.random.default_rng(seed)
    for i in range(n):
        yield [rng.uniform(0.75, 5.2, 32),  # anywhere in the gate range
               np.where(rng.random(32) < 0.5, 0.75, 5.2),  # edges off / fully on
               rng.uniform(0.75, 1.2, 32)][i % 3]  # near threshold: the most nonlinear


def test_the_single_output_is_monotone_in_the_inputs_so_xor_has_no_margin(gen2):
    board, corners, _ = gen2
    out = board.outputs[0].a
    worst = -np.inf
    for gates in _gate_sets(45):
        v = _node_volts(board, gates, corners)[:, out]  # corners (0,0), (0,1), (1,0), (1,1)
        assert v[1] >= v[0] - SOLVER_SLACK and v[2] >= v[0] - SOLVER_SLACK
        assert v[3] >= v[1] - SOLVER_SLACK and v[3] >= v[2] - SOLVER_SLACK
        worst = max(worst, min(v[1], v[2]) - max(v[0], v[3]))  # > 0 would be XOR
    assert worst <= SOLVER_SLACK


# edges fully on (gate 5.2 V); the others off (0.75 V: barely conducting, and only while
# their source end is near ground) — a gate set found by a random search over on/off mixes
ON_EDGES = (0, 2, 4, 5, 7, 8, 11, 12, 13, 17, 18, 20, 21, 23, 24, 25, 26, 28)


def test_the_difference_of_two_nodes_can_be_xor(gen2):
    board, corners, _ = gen2
    gates = np.full(board.n_edges, 0.75)
    gates[list(ON_EDGES)] = 5.2
    v = _node_volts(board, gates, corners)
    single = v[:, board.outputs[0].a]
    d = single - v[:, board.nodes.index("n33")]
    assert min(d[1], d[2]) - max(d[0], d[3]) > 0.02  # volts: true corners 20 mV above false
    assert min(single[1], single[2]) < single[3]  # while n11 alone stays monotone
