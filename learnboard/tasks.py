"""Training data: examples of (input values, target values) for a learning run.

Inputs and targets are voltages (or drops) imposed on source terminals and asked of
target terminals. Data come from a CSV file (columns ``x0, x1, ...`` are inputs,
``y0, y1, ...`` targets, one row per example) or from the generated linear regression
task of the published notebook (BRIEF §2).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
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
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh))
    except OSError as exc:
        raise InputError(f"cannot read data file: {exc.strerror}", source=str(path)) from None
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
        bad = next(i for i, r in enumerate(rows[1:], start=2)
                   if not _row_ok(r, xc + yc))
        raise InputError(f"row {bad} has a missing or non-numeric value", source=str(path)) from None
    if values.size == 0:
        raise InputError("the file has a header but no example rows", source=str(path))
    return Dataset(values[:, : len(xc)], values[:, len(xc):], name=str(path))


def _row_ok(row: list[str], cols: list[int]) -> bool:
    try:
        [float(row[c]) for c in cols]
    except (ValueError, IndexError):
        return False
    return True


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
