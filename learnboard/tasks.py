"""Training data: examples of (input values, target values) for a learning run.

Inputs and targets are voltages (or drops) imposed on source terminals and asked of
target terminals. Data come from a CSV file (columns ``x0, x1, ...`` are inputs,
``y0, y1, ...`` targets, one row per example) or from the generated linear regression
task of the authors' published notebook (Stern et al., APL Machine Learning 2, 016114 (2024)).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from learnboard.errors import InputError

NOTEBOOK_COEFFS = np.array([[0.2, 0.3], [0.1, 0.5]])


@dataclass(frozen=True)
class Dataset:
    """Examples: ``inputs`` (n_examples x n_sources), ``targets`` (n_examples x n_targets)."""

    inputs: np.ndarray
    targets: np.ndarray
    name: str = "data"

    def __post_init__(self) -> None:
        x = np.atleast_2d(np.asarray(self.inputs, dtype=float))
        y = np.atleast_2d(np.asarray(self.targets, dtype=float))
        if x.shape[0] != y.shape[0]:
            raise InputError(f"{x.shape[0]} input rows but {y.shape[0]} target rows", source=self.name)
        if x.shape[0] == 0:
            raise InputError("the data hold no examples", source=self.name)
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise InputError("inputs and targets must be finite numbers", source=self.name)
        object.__setattr__(self, "inputs", x)
        object.__setattr__(self, "targets", y)

    @property
    def n_examples(self) -> int:
        return self.inputs.shape[0]

    @property
    def n_inputs(self) -> int:
        return self.inputs.shape[1]

    @property
    def n_targets(self) -> int:
        return self.targets.shape[1]


def read_csv(path: str | Path) -> Dataset:
    """Read a CSV with a header; ``x<i>`` columns are inputs, ``y<i>`` targets (others ignored)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise InputError(f"cannot read data file: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text (UTF-8) CSV file: byte {exc.start} is {exc.object[exc.start]:#04x}",
                         source=str(path)) from None
    except csv.Error as exc:
        raise InputError(f"not a CSV file: {exc}", source=str(path)) from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise InputError("the file is empty; it needs a header row like 'x0,x1,y0'", source=str(path))
    header = [h.strip().lower() for h in rows[0]]

    def columns(prefix: str) -> list[int]:
        found = {int(m.group(1)): c for c, h in enumerate(header)
                 if (m := re.fullmatch(prefix + r"(\d+)", h))}
        if not found:
            raise InputError(f"no '{prefix}0' column in the header {','.join(header)!r}; name inputs "
                             "x0, x1, ... and targets y0, y1, ...", source=str(path))
        if sorted(found) != list(range(len(found))):
            raise InputError(f"'{prefix}' columns must be numbered 0..{len(found) - 1} without gaps",
                             source=str(path))
        return [found[i] for i in range(len(found))]

    xc, yc = columns("x"), columns("y")
    try:
        values = np.array([[float(r[c]) for c in xc + yc] for r in rows[1:]], dtype=float)
    except (ValueError, IndexError):
        names = [header[c] for c in xc + yc]
        bad, col = next((i, _bad_column(r, xc + yc)) for i, r in enumerate(rows[1:], start=2)
                        if _bad_column(r, xc + yc) is not None)
        raise InputError(f"row {bad}, column {names[col]}: a missing or non-numeric value "
                         f"({_cell(rows[bad - 1], (xc + yc)[col])})", source=str(path)) from None
    if values.size == 0:
        raise InputError("the file has a header but no example rows", source=str(path))
    return Dataset(values[:, : len(xc)], values[:, len(xc):], name=str(path))


def _bad_column(row: list[str], cols: list[int]) -> int | None:
    """Position in ``cols`` of the first cell of ``row`` that is not a number (None: all are)."""
    for k, c in enumerate(cols):
        try:
            float(row[c])
        except (ValueError, IndexError):
            return k
    return None


def _cell(row: list[str], c: int) -> str:
    return f"{row[c].strip()!r}" if c < len(row) and row[c].strip() else "empty"


def write_csv(data: Dataset, path: str | Path) -> None:
    """Write ``data`` in the format :func:`read_csv` reads."""
    header = [f"x{i}" for i in range(data.n_inputs)] + [f"y{i}" for i in range(data.n_targets)]
    with Path(path).open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in np.hstack([data.inputs, data.targets]):
            w.writerow([repr(float(v)) for v in row])


def parse_coeffs(text: str) -> np.ndarray:
    """Parse a matrix written ``"a,b;c,d"`` (rows separated by ';')."""
    try:
        rows = [[float(v) for v in row.split(",")] for row in text.split(";") if row.strip()]
    except ValueError:
        raise InputError(f"{text!r} is not a matrix like '0.2,0.3;0.1,0.5'", field="--coeffs") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise InputError(f"{text!r}: every row needs the same number of values", field="--coeffs")
    return np.array(rows)


def regression_task(coeffs: np.ndarray, n_examples: int, seed: int = 0,
                    rng: np.random.RandomState | None = None) -> Dataset:
    """Linear regression ``y = A x`` with inputs uniform in [0, 1).

    Inputs are drawn as the published notebook does, ``rng.rand(n_inputs, n_examples)``
    with numpy's legacy generator, so the same seed gives the same data.
    """
    a = np.atleast_2d(np.asarray(coeffs, dtype=float))
    if n_examples < 1:
        raise InputError("the training set needs at least one example", field="--train-size")
    rng = np.random.RandomState(seed) if rng is None else rng
    x = rng.rand(a.shape[1], n_examples)
    return Dataset(x.T, (a @ x).T, name=f"regression{a.shape[0]}x{a.shape[1]}")


def notebook_task(n_edges: int, seed: int = 0, n_examples: int = 20,
                  coeffs: np.ndarray = NOTEBOOK_COEFFS) -> tuple[np.ndarray, np.ndarray, Dataset]:
    """Source edges, target edges and data drawn exactly as the published notebook.

    ``RandomState(seed).choice(range(E), size=ns+nt, replace=False)`` picks the edges
    (sources first), then the same generator draws the inputs.
    """
    a = np.atleast_2d(np.asarray(coeffs, dtype=float))
    ns, nt = a.shape[1], a.shape[0]
    if ns + nt > n_edges:
        raise InputError(f"the task needs {ns + nt} distinct edges but the network has {n_edges}")
    rng = np.random.RandomState(seed)
    chosen = rng.choice(range(n_edges), size=ns + nt, replace=False)
    data = regression_task(a, n_examples, rng=rng)
    return chosen[:ns].astype(np.int64), chosen[ns:].astype(np.int64), data


# == Tasks for boards ======================================================================
# A Task is training and held-out test data in volts, fitted to one board's ports and
# safe voltage range, with the relative-error tolerance that board's resolution allows.
# Formula and choices: docs/tasks.md.

TOLERANCE_MARGIN = 4.0  # resolution steps of headroom in the tolerance (docs/tasks.md)
TOLERANCE_RANGE = (1e-4, 0.5)
INPUT_MARGIN = 0.05  # inputs use [lo + 5 %, hi - 5 %] of the drive range: no end codes
XOR_LEVELS = (0.4, 0.6)  # low / high output level of xor, fractions of the output range
XOR_DIFF_LEVELS = (0.0, -0.087)  # xor on one differential output: false / true (V)
IRIS_FEATURES = ("sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm")
IRIS_CLASSES = ("setosa", "versicolor", "virginica")
IRIS_FEATURE_ORDER = (2, 3, 0, 1)  # petal first: a 2-input board gets the informative pair


@dataclass(frozen=True)
class Ports:
    """What a task needs to know about a board: port counts and voltage ranges (V)."""

    n_in: int
    n_out: int
    in_range: tuple[float, float]
    out_range: tuple[float, float]
    board_name: str = "unscaled"


def _drive_full_scale(board, line) -> float | None:
    """Volts at full code of the voltage output ``line`` (None: unknown)."""
    if line is None:
        return None
    if line.device and line.device in board.dacs:
        d = board.dacs[line.device]
        return d.vref * d.gain * (2 ** d.bits - 1) / 2 ** d.bits
    if not line.device and board.pwm is not None:
        p = board.pwm
        return p.vref * p.gain * (2 ** p.bits - 1) / 2 ** p.bits
    return None


def _drive_lsb(board, line) -> float:
    """Volts per code of the voltage output ``line`` (0 when it is not a known converter)."""
    if line is None:
        return 0.0
    if line.device and line.device in board.dacs:
        d = board.dacs[line.device]
        return d.vref * d.gain / 2 ** d.bits
    if not line.device and board.pwm is not None:
        return board.pwm.vref * board.pwm.gain / 2 ** board.pwm.bits
    return 0.0


def _port_range(board, port, vmax: float) -> tuple[float, float]:
    hi = vmax
    for line in (*port.drive, *port.drive_b):
        fs = _drive_full_scale(board, line)
        if fs is not None:
            hi = min(hi, fs)
    if port.b is None or port.b == board.ground:
        return 0.0, hi
    c = port.common if port.common is not None else hi / 2
    half = 2 * min(c, hi - c)  # V_a = c + x/2 and V_b = c - x/2 both stay in [0, hi]
    return -half, half


def board_ports(board=None) -> Ports:
    """Port counts and ranges of ``board`` (a Board, profile name or path; None: unscaled)."""
    if board is None:
        return Ports(2, 2, (0.0, 1.0), (0.0, 1.0))
    board = _as_board(board)
    vmax = board.limits.max_node_volts
    ins = [p for p in board.inputs if p.fixed is None]
    if not ins or not board.outputs:
        raise InputError("the board has no example inputs or no outputs", source=board.source)
    lo_i, hi_i = zip(*(_port_range(board, p, vmax) for p in ins), strict=True)
    lo_o, hi_o = zip(*(_port_range(board, p, vmax) for p in board.outputs), strict=True)
    return Ports(len(ins), len(board.outputs), (max(lo_i), min(hi_i)), (max(lo_o), min(hi_o)),
                 board.name)


def _as_board(board):
    if isinstance(board, (str, Path)):
        from learnboard.boards import load_board

        return load_board(board)
    return board


def resolution_volts(board) -> dict[str, float]:
    """The board's voltage resolution at an output (V), by source (docs/tasks.md).

    ``read``: ADC volts per code at a node (vref / 2**bits / front-end gain, the coarsest
    node mux); ``drive``: the coarsest input/clamp converter step; ``edge``: the output
    change one edge step can make at most, ``max_node_volts * s / 2`` with ``s`` the
    relative conductance step (digipot: one tap; transistor: one gate read-back code over
    the gate overdrive).
    """
    board = _as_board(board)
    adc = board.adc
    node_gains = [m.gain for m in board.muxes.values() if any(n >= 0 for n in m.nodes)] or [1.0]
    read = adc.vref / 2 ** adc.bits / min(node_gains)
    drive = max([_drive_lsb(board, ln) for p in (*board.inputs, *board.outputs)
                 for ln in (*p.drive, *p.drive_b)] or [0.0])
    steps = []
    for e in board.edges:
        part = board.parts.get(e.part) if e.part else None
        if e.kind == "digipot":
            lo, hi = board.limits.tap_range or (0, part.n_taps - 1)
            if part.taper == "log":
                steps.append((part.r_max / part.r_min) ** (1 / (part.n_taps - 1)) - 1)
            else:  # largest relative step: at the lowest resistance in use
                r_lo = part.r_min + (part.r_max - part.r_min) * lo / (part.n_taps - 1)
                steps.append((part.r_max - part.r_min) / (part.n_taps - 1) / max(r_lo, part.r_wiper, 1e-9))
        elif e.kind == "transistor":
            gate_gains = [m.gain for m in board.muxes.values() if any(g >= 0 for g in m.gates)] or [1.0]
            q_gate = adc.vref / 2 ** adc.bits / min(gate_gains)
            g_hi = (board.limits.gate_range or (part.vt, part.vg_max))[1]
            steps.append(q_gate / max(g_hi - part.vt, 1e-3))
    edge = board.limits.max_node_volts * max(steps or [0.0]) / 2
    return {"read": read, "drive": drive, "edge": edge}


def tolerance_for(board, y_train: np.ndarray, margin: float = TOLERANCE_MARGIN) -> float:
    """Relative-error tolerance C/C0 the board's resolution allows for targets ``y_train``.

    ``tau = clip(margin**2 * n_out * dV**2 / S, 1e-4, 0.5)`` with ``dV**2`` the sum of the
    squared resolutions of :func:`resolution_volts` and ``S`` the targets' spread, mean over
    examples of ``sum_outputs (y - mean y)**2`` (the error of the best constant output).
    """
    y = np.atleast_2d(np.asarray(y_train, dtype=float))
    res = resolution_volts(board)
    dv2 = sum(v * v for v in res.values())
    spread = float(np.mean(np.sum((y - y.mean(axis=0)) ** 2, axis=1)))
    if spread <= 0:
        return TOLERANCE_RANGE[1]
    return float(np.clip(margin ** 2 * y.shape[1] * dv2 / spread, *TOLERANCE_RANGE))


@dataclass(frozen=True)
class Task:
    """Training and held-out test examples in volts, fitted to a board's ports.

    ``kind`` is ``"regression"`` or ``"classification"``; classification tasks carry
    ``classes`` (names) and ``codes`` (n_classes x n_outputs target volts per class), and a
    prediction's class is the nearest code (:meth:`classify`).
    """

    name: str
    kind: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    ports: Ports
    description: str = ""
    classes: tuple[str, ...] = ()
    codes: np.ndarray | None = None
    board: object = field(default=None, compare=False, repr=False)

    @property
    def train(self) -> Dataset:
        return Dataset(self.x_train, self.y_train, name=f"{self.name}:train")

    @property
    def test(self) -> Dataset:
        return Dataset(self.x_test, self.y_test, name=f"{self.name}:test")

    def tolerance(self, board=None) -> float:
        """The default relative-error tolerance (C/C0) on ``board`` (default: the task's)."""
        board = board if board is not None else self.board
        if board is None:
            raise InputError(f"task {self.name!r} was loaded without a board; pass one to tolerance()")
        return tolerance_for(board, self.y_train)

    def classify(self, y: np.ndarray) -> np.ndarray:
        """Class index of each row of outputs ``y``: the nearest class code."""
        if self.codes is None:
            raise InputError(f"task {self.name!r} is a regression task; it has no classes")
        y = np.atleast_2d(np.asarray(y, dtype=float))
        d = ((y[:, None, :] - self.codes[None, :, :]) ** 2).sum(axis=2)
        return np.argmin(d, axis=1)

    def accuracy(self, y_pred: np.ndarray, y_true: np.ndarray) -> float:
        """Fraction of rows whose nearest class code matches the target's."""
        return float(np.mean(self.classify(y_pred) == self.classify(y_true)))


def _scale(u: np.ndarray, rng_v: tuple[float, float], margin: float = INPUT_MARGIN) -> np.ndarray:
    lo, hi = rng_v
    span = hi - lo
    return lo + span * (margin + (1 - 2 * margin) * u)


def _regression(ports: Ports, seed: int, n_train: int = 20, n_test: int = 10):
    a = np.resize(NOTEBOOK_COEFFS, (ports.n_out, ports.n_in)) if ports.n_in <= 2 else None
    if a is None or ports.n_out > 2:  # more ports than the paper: same magnitudes, rows < 1
        a = np.resize(NOTEBOOK_COEFFS.ravel(), ports.n_out * ports.n_in).reshape(ports.n_out, ports.n_in)
    a = a / max(1.0, float(a.sum(axis=1).max()))  # keep every target inside the output range
    data = regression_task(a, n_train + n_test, seed=seed)
    u = data.inputs
    x = _scale(u, ports.in_range)
    lo_o, hi_o = ports.out_range
    # y = A x in volts (targets reachable by a passive network: a mix of the inputs)
    y = np.clip(x @ a.T, lo_o, hi_o)
    return x, y, a


def _split(x, y, n_train):
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def _task_regression(ports, seed, board):
    x, y, a = _regression(ports, seed)
    desc = ("linear regression y = A x (A = the paper's [[0.2, 0.3], [0.1, 0.5]] cut or tiled "
            f"to {ports.n_out}x{ports.n_in}), inputs uniform over the drive range")
    return Task("regression", "regression", *_split(x, y, 20), ports, desc, board=board)


def _task_nonlinear(ports, seed, board):
    rng = np.random.RandomState(seed + 1000)
    u = rng.rand(30, ports.n_in)
    lo_o, hi_o = ports.out_range
    # a product and a square: no linear network fits it (the nonlinear regression of the
    # Gen-2 lab board, Dillavou et al., PNAS 121, e2319718121 (2024))
    prod = u[:, 0] * (u[:, 1] if ports.n_in > 1 else u[:, 0])
    t = 0.1 + 0.45 * prod + 0.15 * u[:, 0] ** 2
    y = lo_o + (hi_o - lo_o) * np.repeat(t[:, None], ports.n_out, axis=1) * np.linspace(1, 0.8, ports.n_out)
    x = _scale(u, ports.in_range)
    return Task("nonlinear", "regression", *_split(x, y, 20), ports,
                "nonlinear regression t = 0.1 + 0.45 u1 u2 + 0.15 u1^2 of the inputs' fractions u "
                "of the drive range, as a fraction of the output range", board=board)


def _task_xor(ports, seed, board):
    if ports.n_in < 2:
        raise InputError(f"xor needs 2 example inputs; board {ports.board_name} has {ports.n_in}")
    rng = np.random.RandomState(seed + 2000)
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    labels = np.array([0, 1, 1, 0])

    def draw(reps):
        u = np.repeat(corners, reps, axis=0)
        u = np.clip(np.abs(u - rng.uniform(0, 0.08, size=u.shape)), 0, 1)  # near the corners
        full = np.full((len(u), ports.n_in), 0.5)
        full[:, :2] = u
        return _scale(full, ports.in_range), np.repeat(labels, reps)

    lo_o, hi_o = ports.out_range
    lo, hi = lo_o + XOR_LEVELS[0] * (hi_o - lo_o), lo_o + XOR_LEVELS[1] * (hi_o - lo_o)
    out = _as_board(board).outputs if board is not None else ()
    if len(out) == 1 and out[0].b is not None and out[0].b != _as_board(board).ground:
        # one differential output O = V_a - V_b, the lab's levels (a public SPICE
        # reproduction of Dillavou et al. 2024, Fig. 3A): 0 V for false, -0.087 V for true.
        # A difference of two nodes is not bound by the monotonicity of each (known limits).
        codes = np.array([[XOR_DIFF_LEVELS[0]], [XOR_DIFF_LEVELS[1]]])
        what = (f"differential output {XOR_DIFF_LEVELS[1] * 1e3:g} mV for true, "
                f"{XOR_DIFF_LEVELS[0] * 1e3:g} mV for false")
    elif ports.n_out >= 2:
        # one-hot, like iris: output 0 high for "true", output 1 high for "false" (further
        # outputs mid-range); the class is the larger of the two. Each output of a network of
        # gate-referenced transistors rises with every input (docs/tasks.md, known limits),
        # so no single output can be XOR, but the difference of two outputs can.
        codes = np.full((2, ports.n_out), (lo + hi) / 2)
        codes[:, :2] = [[lo, hi], [hi, lo]]
        what = "output 0 high and output 1 low for true, the reverse for false"
    else:
        # one output: levels for true / false. It cannot be learned: the output rises with
        # both inputs, so it cannot sit higher with one input high than with both.
        codes = np.array([[lo], [hi]])
        what = (f"output {XOR_LEVELS[1]:.0%} of the output range for true, {XOR_LEVELS[0]:.0%} "
                "for false (a single output cannot represent XOR on a transistor board: "
                "docs/tasks.md, known limits)")
    xtr, ltr = draw(3)
    xte, lte = draw(2)
    return Task("xor", "classification", xtr, codes[ltr], xte, codes[lte], ports,
                "XOR of two inputs near low/high (within 8 % of the ends of the drive range); "
                + what, classes=("false", "true"), codes=codes, board=board)


def iris_data() -> tuple[np.ndarray, np.ndarray]:
    """The 150-row Iris data set shipped with the package: (features in cm, class index)."""
    from importlib.resources import files

    text = files("learnboard.data").joinpath("iris.csv").read_text()
    rows = [r.split(",") for r in text.strip().splitlines()[1:]]
    feats = np.array([[float(v) for v in r[:4]] for r in rows])
    labels = np.array([IRIS_CLASSES.index(r[4].strip()) for r in rows])
    return feats, labels


def iris_codes(n_out: int, out_range: tuple[float, float]) -> np.ndarray:
    """Target volts per Iris class: one output per class (high on the class's output)
    with 3 or more outputs, else levels 20/50/80 % (1 output) or opposite ramps (2)."""
    lo, hi = out_range
    if n_out >= 3:
        c = np.full((3, n_out), 0.2)
        c[np.arange(3), np.arange(3)] = 0.8
    elif n_out == 2:
        c = np.array([[0.8, 0.2], [0.5, 0.5], [0.2, 0.8]])
    else:
        c = np.array([[0.2], [0.5], [0.8]])
    return lo + (hi - lo) * c


def _task_iris(ports, seed, board, per_class_train: int = 15):
    feats, labels = iris_data()
    order = list(IRIS_FEATURE_ORDER[: min(4, ports.n_in)])
    f = feats[:, order]
    u = (f - f.min(axis=0)) / np.ptp(f, axis=0)
    full = np.full((len(u), ports.n_in), 0.5)  # inputs beyond the 4 features sit mid-range
    full[:, : len(order)] = u
    x = _scale(full, ports.in_range)
    codes = iris_codes(ports.n_out, ports.out_range)
    rng = np.random.RandomState(seed)
    train = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[:per_class_train]
                            for c in range(3)])
    test = np.setdiff1d(np.arange(len(labels)), train)
    feat_names = ", ".join(IRIS_FEATURES[i] for i in order)
    return Task("iris", "classification", x[train], codes[labels[train]], x[test], codes[labels[test]],
                ports, f"Iris (150 flowers, 3 classes): inputs {feat_names} min-max scaled to the drive "
                f"range; {per_class_train} training flowers per class, the other "
                f"{len(test)} held out", classes=IRIS_CLASSES, codes=codes, board=board)


def _task_csv(path: Path, ports, seed, board, test_fraction: float = 0.25):
    data = read_csv(path)
    if ports.board_name != "unscaled":
        if data.n_inputs != ports.n_in or data.n_targets != ports.n_out:
            raise InputError(f"{data.n_inputs} inputs and {data.n_targets} targets, but board "
                             f"{ports.board_name} has {ports.n_in} example inputs and {ports.n_out} "
                             "outputs", source=str(path))
        for vals, (lo, hi), pre in ((data.inputs, ports.in_range, "x"), (data.targets, ports.out_range, "y")):
            bad = np.argwhere((vals < lo - 1e-12) | (vals > hi + 1e-12))
            if len(bad):
                r, c = bad[0]
                raise InputError(f"row {r + 2}, column {pre}{c}: {vals[r, c]:g} V is outside board "
                                 f"{ports.board_name}'s safe range [{lo:g}, {hi:g}] V",
                                 source=str(path))
    split = _read_split(path, data.n_examples)
    if split is None:
        if data.n_examples < 2:
            raise InputError("a task file needs at least 2 rows (training and test examples)",
                             source=str(path))
        perm = np.random.RandomState(seed).permutation(data.n_examples)
        n_test = max(1, int(round(test_fraction * data.n_examples)))
        is_test = np.zeros(data.n_examples, bool)
        is_test[perm[:n_test]] = True
    else:
        is_test = split
    return Task(path.stem, "regression", data.inputs[~is_test], data.targets[~is_test],
                data.inputs[is_test], data.targets[is_test], ports,
                f"user task from {path}", board=board)


def _read_split(path: Path, n: int) -> np.ndarray | None:
    """The optional ``split`` column (``train``/``test``): a test mask, or None."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    header = [h.strip().lower() for h in rows[0]]
    if "split" not in header:
        return None
    c = header.index("split")
    vals = [r[c].strip().lower() if c < len(r) else "" for r in rows[1:]]
    for i, v in enumerate(vals):
        if v not in ("train", "test"):
            raise InputError(f"row {i + 2}, column split: {v!r} must be 'train' or 'test'",
                             source=str(path))
    mask = np.array([v == "test" for v in vals])
    if mask.all() or not mask.any():
        raise InputError("the split column needs both 'train' and 'test' rows", source=str(path),
                         field="split")
    return mask


TASKS: dict[str, str] = {
    "regression": "the paper's linear regression y = A x (2 inputs, 2 outputs; cut to the board)",
    "nonlinear": "a nonlinear regression (product and square of the inputs) for transistor boards",
    "xor": "XOR of two inputs, for transistor boards (nearest of two output levels)",
    "iris": "Iris classification, 150 flowers, 3 classes (nearest class code)",
}
_BUILDERS = {"regression": _task_regression, "nonlinear": _task_nonlinear, "xor": _task_xor,
             "iris": _task_iris}


def load_task(name_or_csv: str | Path, board=None, seed: int = 0) -> Task:
    """A task by name (:data:`TASKS`) or from a CSV file, fitted to ``board``'s ports.

    ``board``: a Board, a profile name or a TOML path; None gives unscaled data (2 inputs,
    2 outputs, volts in [0, 1]). Inputs stay inside the board's safe drive range, targets
    inside the output range. ``seed`` draws the generated data and the train/test split.
    """
    board_obj = _as_board(board) if board is not None else None
    ports = board_ports(board_obj)
    key = str(name_or_csv)
    if key in _BUILDERS:
        if key == "iris" and board_obj is None:
            ports = Ports(4, 3, ports.in_range, ports.out_range)
        return _BUILDERS[key](ports, seed, board_obj)
    path = Path(key)
    if path.suffix.lower() == ".csv" or path.exists():
        return _task_csv(path, ports, seed, board_obj)
    raise InputError(f"unknown task {key!r}; choose one of {', '.join(TASKS)} or give a CSV file "
                     "with columns x0, x1, ..., y0, ...", field="--task")
