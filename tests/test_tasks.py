"""Tasks that ship: shapes, voltages inside the board's limits, disjoint train/test
splits, the resolution-derived tolerance against a hand computation, Iris, CSV errors."""

from __future__ import annotations

import numpy as np
import pytest

from learnboard.boards import load_board
from learnboard.errors import InputError
from learnboard.tasks import (
    NOTEBOOK_COEFFS,
    TASKS,
    TOLERANCE_MARGIN,
    iris_data,
    load_task,
    resolution_volts,
)

BOARDS = ("gen2-clln", "gen1-digipot")


@pytest.fixture(scope="module", params=BOARDS)
def board(request):
    return load_board(request.param)


def _rows(a):
    return {tuple(r) for r in np.round(a, 12)}


@pytest.mark.parametrize("name", list(TASKS))
def test_tasks_fit_the_board_ports_and_limits(board, name):
    t = load_task(name, board=board)
    n_in = len([p for p in board.inputs if p.fixed is None])
    n_out = len(board.outputs)
    assert t.x_train.shape[1] == t.x_test.shape[1] == n_in
    assert t.y_train.shape[1] == t.y_test.shape[1] == n_out
    assert len(t.x_train) == len(t.y_train) >= 4 and len(t.x_test) == len(t.y_test) >= 4
    vmax = board.limits.max_node_volts
    for v in (t.x_train, t.x_test, t.y_train, t.y_test):
        assert v.min() >= 0.0 and v.max() <= vmax
    # inputs never ask the drive converter for more than its full-scale code
    dac = next(iter(board.dacs.values()), None)
    full = (dac.vref * dac.gain * (2 ** dac.bits - 1) / 2 ** dac.bits if dac is not None else
            board.pwm.vref * board.pwm.gain * (2 ** board.pwm.bits - 1) / 2 ** board.pwm.bits)
    assert t.x_train.max() <= full and t.x_test.max() <= full
    # held-out examples are not training examples (Iris has flowers measured alike: below)
    assert name == "iris" or not _rows(np.hstack([t.x_train, t.y_train])) & _rows(np.hstack([t.x_test, t.y_test]))
    assert t.kind in ("regression", "classification")
    assert 1e-4 <= t.tolerance() <= 0.5


def test_regression_is_the_papers_linear_map_and_seeded():
    t = load_task("regression", board=None)  # unscaled: 2 inputs, 2 outputs, volts in [0, 1]
    assert t.x_train.shape == (20, 2) and t.y_train.shape == (20, 2)
    np.testing.assert_allclose(t.y_train, t.x_train @ NOTEBOOK_COEFFS.T)
    np.testing.assert_allclose(t.y_test, t.x_test @ NOTEBOOK_COEFFS.T)
    assert np.array_equal(load_task("regression", seed=3).x_train, load_task("regression", seed=3).x_train)
    assert not np.array_equal(load_task("regression", seed=3).x_train, t.x_train)
    g2 = load_task("regression", board="gen2-clln")  # one output: the first row of A
    np.testing.assert_allclose(g2.y_train[:, 0], g2.x_train @ NOTEBOOK_COEFFS[0])


def test_tolerance_formula_against_a_hand_computation():
    t = load_task("regression", board="gen2-clln")
    # gen2-clln: 12-bit ADC, 3.3 V, x7 node front end; 8-bit input DAC 2.5 V x 0.18;
    # gates read through x0.6 up to 5.2 V with vt 0.62 V; nodes 0..0.45 V
    read = 3.3 / 4096 / 7
    drive = 2.5 * 0.18 / 256
    edge = 0.45 * (3.3 / 4096 / 0.6) / (5.2 - 0.62) / 2
    res = resolution_volts("gen2-clln")
    assert res["read"] == pytest.approx(read) and res["drive"] == pytest.approx(drive)
    assert res["edge"] == pytest.approx(edge)
    y = t.y_train[:, 0]
    spread = np.mean((y - y.mean()) ** 2)
    expected = TOLERANCE_MARGIN ** 2 * (read ** 2 + drive ** 2 + edge ** 2) / spread
    assert t.tolerance() == pytest.approx(expected)
    # gen1-digipot: X9C log taper, 100 taps 40 ohm .. 32 kohm: ~7 % per tap
    res1 = resolution_volts("gen1-digipot")
    assert res1["edge"] == pytest.approx(0.5 * ((32000 / 40) ** (1 / 99) - 1) / 2)
    assert res1["drive"] == pytest.approx(3.3 * 0.15 / 4096)
    assert res1["read"] == pytest.approx(3.3 / 4096 / 6)
    # a coarser converter can only loosen the tolerance
    assert load_task("regression", board="gen1-digipot").tolerance() > 0


def test_iris_is_the_150_flower_data_set_with_three_classes():
    feats, labels = iris_data()
    assert feats.shape == (150, 4) and np.bincount(labels).tolist() == [50, 50, 50]
    # Fisher's means (cm): setosa petal length 1.462, virginica sepal length 6.588
    assert feats[labels == 0, 2].mean() == pytest.approx(1.462, abs=1e-3)
    assert feats[labels == 2, 0].mean() == pytest.approx(6.588, abs=1e-3)
    assert feats[labels == 0, 1].mean() == pytest.approx(3.428, abs=1e-3)  # UCI rows 35, 38 fixed
    t = load_task("iris", board=None)  # unscaled: all 4 features, one output per class
    assert t.kind == "classification" and t.classes == ("setosa", "versicolor", "virginica")
    assert len(t.x_train) + len(t.x_test) == 150 and len(t.x_train) <= 64  # the board's example memory
    assert np.bincount(t.classify(t.y_train)).tolist() == [15, 15, 15]
    assert np.bincount(t.classify(t.y_test)).tolist() == [35, 35, 35]
    # train and test together are each flower exactly once (scaled min-max per feature)
    both = np.vstack([t.x_train, t.x_test])
    f = feats[:, [2, 3, 0, 1]]
    scaled = 0.05 + 0.9 * (f - f.min(axis=0)) / np.ptp(f, axis=0)
    assert np.allclose(np.sort(both, axis=0), np.sort(scaled, axis=0))
    assert np.allclose(both[np.lexsort(both.T)], scaled[np.lexsort(scaled.T)])
    # one output per class: argmax of the targets is the class
    assert np.array_equal(np.argmax(t.y_train, axis=1), t.classify(t.y_train))
    assert t.accuracy(t.y_test, t.y_test) == 1.0
    wrong = t.codes[(t.classify(t.y_test) + 1) % 3]
    assert t.accuracy(wrong, t.y_test) == 0.0


def test_iris_on_a_one_output_board_uses_levels():
    t = load_task("iris", board="gen2-clln")
    assert t.y_train.shape[1] == 1 and len(np.unique(t.y_train)) == 3
    # petal length and width come first: they separate the classes in order
    cls = t.classify(t.y_train)
    assert np.all(np.diff([t.x_train[cls == c, 0].mean() for c in range(3)]) > 0)
    # a prediction half-way between two levels belongs to the nearer one
    lv = np.sort(t.codes[:, 0])
    assert t.classify(np.array([[lv[0] + 0.4 * (lv[1] - lv[0])]]))[0] == 0


def test_xor_labels():
    t = load_task("xor", board="gen2-clln")
    hi = t.x_train > t.x_train.mean()
    truth = hi[:, 0] ^ hi[:, 1]
    assert np.array_equal(t.classify(t.y_train) == 1, truth)
    assert t.codes.shape == (2, 1) and t.codes[1, 0] > t.codes[0, 0]  # one output: true is higher
    assert "cannot represent XOR" in t.description


def test_xor_is_one_hot_on_two_outputs():
    # unscaled data have two outputs: output 0 high for true, output 1 high for false, so
    # the class is the larger output (no single monotone output can be XOR: test_xor_limit)
    t = load_task("xor", board=None, seed=3)
    hi = t.x_train > 0.5
    truth = hi[:, 0] ^ hi[:, 1]
    assert np.array_equal(t.y_train[:, 0] > t.y_train[:, 1], truth)
    assert np.array_equal(t.classify(t.y_train) == 1, truth)
    swapped = t.y_test[:, ::-1]  # the other output high: the other class
    assert t.accuracy(swapped, t.y_test) == 0.0 and t.accuracy(t.y_test, t.y_test) == 1.0


def test_csv_task_with_split_column_and_random_split(tmp_path):
    p = tmp_path / "mine.csv"
    rows = ["x0,x1,y0,split"] + [f"{0.01 * i},{0.02 * i},{0.015 * i},{'test' if i % 4 == 0 else 'train'}"
                                 for i in range(1, 17)]
    p.write_text("\n".join(rows) + "\n")
    t = load_task(p, board="gen2-clln")
    assert t.name == "mine" and len(t.x_test) == 4 and len(t.x_train) == 12
    np.testing.assert_allclose(t.x_test[:, 0], [0.04, 0.08, 0.12, 0.16])
    q = tmp_path / "plain.csv"
    q.write_text("\n".join(r.rsplit(",", 1)[0] for r in rows) + "\n")
    u = load_task(q, board="gen2-clln", seed=1)
    assert len(u.x_test) == 4 and not _rows(u.x_train) & _rows(u.x_test)


@pytest.mark.parametrize("text, message", [
    ("x0,x1,y0\n0.1,0.2,0.1\n0.1,abc,0.2\n", "row 3, column x1"),
    ("x0,x1,y0\n0.1,0.2,0.1\n0.1,0.2\n", "row 3, column y0"),
    ("x0,x1,y0\n0.1,0.2,0.1\n0.1,0.9,0.2\n", "row 3, column x1: 0.9 V is outside"),
    ("x0,x1,y0\n0.1,0.2,-0.1\n0.1,0.2,0.2\n", "row 2, column y0"),
    ("x0,y0\n0.1,0.1\n0.2,0.2\n", "1 inputs and 1 targets, but board gen2-clln has 2"),
    ("x0,x1,y0,split\n0.1,0.2,0.1,train\n0.1,0.2,0.2,later\n", "row 3, column split"),
])
def test_bad_csv_names_file_row_and_column(tmp_path, text, message):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_task(p, board="gen2-clln")
    assert str(p) in str(err.value)


def test_unknown_task_names_the_choices():
    with pytest.raises(InputError, match="unknown task 'xnor'.*regression, nonlinear, xor, iris"):
        load_task("xnor")
