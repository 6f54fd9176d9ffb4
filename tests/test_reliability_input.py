"""Reliability campaign, bad input: every file, option and request a user (or a broken
host) can give either works or gets one clear error naming what is wrong.

Files (hypothesis, mutated valid files as in tests/test_boards_errors.py): task CSVs,
schedule TOML, a run folder's config.json and checkpoints on --resume, calibration files,
sweep specs. Property: the loader returns, or raises InputError whose message names the
file (and the field or row where there is one) — never another exception.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from learnboard.host.messages import ErrorCode

from learnboard.boards import load_board
from learnboard.errors import InputError

EXAMPLES = int(os.environ.get("LEARNBOARD_FUZZ_EXAMPLES", "60"))  # a longer campaign: 2000
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

BAD_VALUES = st.one_of(
    st.sampled_from([0, -1, -5, 1, 2, 1.5, 10**6, 2**63 - 1, 1e308, -1e308, 1e-320,
                     math.nan, math.inf, -math.inf, "", "x", "task", "nan", True, False,
                     [], {}, [1, "a"], [[1]], {"a": 1}, {"lam": 0.5}]),
    st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
).map(copy.deepcopy)  # sampled lists and dicts must not be shared between examples
GARBAGE = st.binary(min_size=1, max_size=12) | st.sampled_from(
    [b"\x00", b"\xff\xfe", b"\xc3\x28", b"\n", b"[", b"]", b"{", b"=", b",", b'"', b"\r\n\r\n"])


# -- mutation of nested data --------------------------------------------------------------


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _containers(obj, prefix=()):
    if isinstance(obj, (dict, list)):
        yield prefix
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for k, v in items:
            yield from _containers(v, prefix + (k,))


def _get(obj, path):
    for k in path:
        obj = obj[k]
    return obj


@st.composite
def mutated(draw, valid: dict, extra_keys=("lam", "steps", "kind", "x", "tau", "every")):
    """``(data, description)``: ``valid`` with one to three keys dropped, replaced or added."""
    data = json.loads(json.dumps(valid))
    what = []
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["drop", "replace", "replace", "insert"]))
        paths = list(_paths(data))
        if op in ("drop", "replace") and paths:
            path = draw(st.sampled_from(paths))
            parent = _get(data, path[:-1])
            if op == "drop":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(BAD_VALUES)
            what.append((op, path))
        else:
            path = draw(st.sampled_from(list(_containers(data))))
            parent = _get(data, path)
            if isinstance(parent, dict):
                parent[draw(st.sampled_from(extra_keys) | st.text(min_size=1, max_size=4))] = draw(BAD_VALUES)
            else:
                parent.insert(draw(st.integers(0, len(parent))), draw(BAD_VALUES))
            what.append(("insert", path))
    return data, what


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def to_toml(data: dict) -> str:
    """TOML with every value inline (``phase = [{kind = "constant"}]``): enough for fuzzing."""
    return "".join(f"{json.dumps(str(k))} = {_toml_value(v)}\n" for k, v in data.items())


@st.composite
def garbled(draw, text: str) -> bytes:
    """``text`` with bytes inserted, deleted or overwritten (invalid UTF-8 included)."""
    b = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(b)))
        op = draw(st.sampled_from(["insert", "delete", "overwrite", "truncate"]))
        if op == "insert":
            b[i:i] = draw(GARBAGE)
        elif op == "delete":
            del b[i:i + draw(st.integers(1, 8))]
        elif op == "overwrite":
            g = draw(GARBAGE)
            b[i:i + len(g)] = g
        else:
            del b[i:]
    return bytes(b)


def expect_clean(fn, source: Path | str, *fields: str):
    """Run ``fn()``: it returns, or raises InputError naming ``source`` (and one of
    ``fields`` when given). Returns the result or the error."""
    try:
        return fn()
    except InputError as exc:
        msg = str(exc)
        assert str(source) in msg, f"message does not name the file: {msg}"
        assert "\n" not in msg.strip(), f"one line expected: {msg!r}"
        if fields:
            assert any(f in msg for f in fields), f"message names none of {fields}: {msg}"
        return exc


# -- task CSV files -----------------------------------------------------------------------

BOARD = load_board("gen2-clln")


def _valid_csv_rows() -> list[list[str]]:
    from learnboard.tasks import load_task

    t = load_task("regression", board=BOARD, seed=0)
    x, y = np.vstack([t.x_train[:6], t.x_test[:2]]), np.vstack([t.y_train[:6], t.y_test[:2]])
    head = [f"x{i}" for i in range(x.shape[1])] + [f"y{i}" for i in range(y.shape[1])]
    return [head] + [[f"{v:.4f}" for v in row] for row in np.hstack([x, y])]


CSV_ROWS = _valid_csv_rows()
CSV_CELLS = st.sampled_from(["", " ", "nan", "inf", "-inf", "1e400", "-1", "-0.5", "99", "abc",
                             "1;5", "0x10", "1_0", "\x00", "train", "test", "é", '"'])


@st.composite
def csv_mutations(draw):
    rows = [list(r) for r in CSV_ROWS]
    op = draw(st.sampled_from(["cell", "cell", "drop_row", "drop_col", "add_col", "short_row",
                               "split", "header", "bytes"]))
    if op == "cell":
        r = draw(st.integers(1, len(rows) - 1))
        c = draw(st.integers(0, len(rows[0]) - 1))
        rows[r][c] = draw(CSV_CELLS | st.text(max_size=5))
        return rows, (op, r, c)
    if op == "drop_row":
        del rows[draw(st.integers(0, len(rows) - 1))]
    elif op == "drop_col":
        c = draw(st.integers(0, len(rows[0]) - 1))
        for r in rows:
            del r[c]
    elif op == "add_col":
        name = draw(st.sampled_from(["x2", "y2", "x9", "x01", "X0", "", "y-1", "split", "x0"]))
        for i, r in enumerate(rows):
            r.append(name if i == 0 else draw(CSV_CELLS))
    elif op == "short_row":
        r = draw(st.integers(1, len(rows) - 1))
        rows[r] = rows[r][: draw(st.integers(0, len(rows[r]) - 1))]
    elif op == "split":
        rows[0].append("split")
        for r in rows[1:]:
            r.append(draw(st.sampled_from(["train", "test", "TEST", "", "x", " train "])))
    elif op == "header":
        rows[0] = draw(st.lists(st.sampled_from(["x0", "x1", "y0", "y1", "x2", "", "a"]),
                                min_size=0, max_size=5))
    else:
        text = "\n".join(",".join(r) for r in rows)
        return draw(garbled(text)), (op,)
    return rows, (op,)


@FUZZ
@given(csv_mutations())
def test_fuzzed_task_csv_loads_or_names_the_file_and_row(tmp_path_factory, case):
    from learnboard.tasks import load_task, read_csv

    content, what = case
    path = tmp_path_factory.mktemp("csv") / "task.csv"
    path.write_bytes(content if isinstance(content, bytes) else
                     ("\n".join(",".join(r) for r in content) + "\n").encode())
    for fn in (lambda: read_csv(path), lambda: load_task(path), lambda: load_task(path, board=BOARD)):
        out = expect_clean(fn, path)
        if not isinstance(out, InputError):
            x = getattr(out, "x_train", getattr(out, "inputs", None))
            assert np.all(np.isfinite(x))
    if what[0] == "cell":
        _, r, c = what
        try:
            float(content[r][c])
            numeric = math.isfinite(float(content[r][c]))
        except ValueError:
            numeric = False
        if not numeric:
            err = expect_clean(lambda: read_csv(path), path)
            assert isinstance(err, InputError)
            if "finite" not in str(err):
                assert f"row {r + 1}" in str(err) and CSV_ROWS[0][c] in str(err), str(err)


def test_a_csv_that_is_not_text_is_an_input_error(tmp_path):
    from learnboard.tasks import load_task

    path = tmp_path / "task.csv"
    path.write_bytes(b"x0,x1,y0,y1\n\xff\xfe\x00\x01,0.2,0.3,0.4\n")
    err = expect_clean(lambda: load_task(path, board=BOARD), path)
    assert isinstance(err, InputError)


# -- schedule files -----------------------------------------------------------------------

VALID_SCHEDULE = {
    "version": 2, "init": "low", "chunk": 50, "seed": 3,
    "stop": {"steps": 400, "time": 600, "settled": True, "settle_window": 300, "settle_rel": 0.02},
    "phase": [
        {"kind": "constant", "lam": 0.0, "steps": 100, "alpha": 1.0, "eta": 0.5},
        {"kind": "ramp", "lam": 0.0, "lam_to": 0.01, "steps": 100, "alpha": 1.0, "alpha_to": 0.5},
        {"kind": "tolerance", "tau": 0.05, "controller": "paper", "start": 1e-9, "every": 100, "up": 1.05, "down": 0.5},
    ],
}
SCHEDULE_FIELDS = ("version", "init", "chunk", "seed", "stop", "phase", "steps", "lam", "tau", "every", "kind")


def test_the_valid_schedule_loads(tmp_path):
    from learnboard.host.schedule import load_schedule

    path = tmp_path / "s.toml"
    path.write_text(to_toml(VALID_SCHEDULE))
    assert len(load_schedule(path).phases) == 3


def _check_schedule(sched):
    """A schedule that loaded is one the runner can use: finite numbers in range."""
    from learnboard.host.schedule import ScheduleRunner

    for p in sched.phases:
        assert 0 <= p.lam <= 1 and (p.lam_to is None or 0 <= p.lam_to <= 1)
        assert p.steps is None or (isinstance(p.steps, int) and p.steps >= 1)
        for v in (p.alpha, p.alpha_to, p.eta, p.eta_to, p.start, p.up, p.down):
            assert v is None or math.isfinite(v)
        assert all(v is None or 0 < v <= 1 for v in (p.eta, p.eta_to))  # the nudge
    assert isinstance(sched.chunk, int) and sched.chunk >= 1
    runner = ScheduleRunner(sched, 0.05)
    runner.params(0, None)
    runner.chunk(0)


@FUZZ
@given(mutated(VALID_SCHEDULE))
def test_fuzzed_schedule_loads_or_names_the_file_and_field(tmp_path_factory, case):
    from learnboard.host.schedule import load_schedule

    data, _ = case
    path = tmp_path_factory.mktemp("sched") / "schedule.toml"
    path.write_text(to_toml(data))
    out = expect_clean(lambda: load_schedule(path), path)
    if not isinstance(out, InputError):
        _check_schedule(out)


@FUZZ
@given(garbled(to_toml(VALID_SCHEDULE)))
def test_garbled_schedule_bytes_load_or_name_the_file(tmp_path_factory, content):
    from learnboard.host.schedule import load_schedule

    path = tmp_path_factory.mktemp("sched") / "schedule.toml"
    path.write_bytes(content)
    out = expect_clean(lambda: load_schedule(path), path)
    if not isinstance(out, InputError):
        _check_schedule(out)


# -- a run folder's config.json and checkpoints on --resume --------------------------------


def _valid_config() -> dict:
    from learnboard.host.schedule import load_schedule
    from learnboard.host.session import TrainConfig

    sched = load_schedule(dict(VALID_SCHEDULE))
    cfg = TrainConfig(task="regression", schedule=sched, alpha=0.5, eta=0.4, telemetry_every=10,
                      checkpoint_every=200, seed=1, name="r")
    return {**cfg.as_dict(), "board": "gen2-clln", "desc_hash": "ab" * 32, "port": "emulated",
            "tolerance": 0.05, "version": 2}


VALID_CONFIG = _valid_config()


def _run_folder(tmp_path_factory, config_bytes: bytes):
    from learnboard.host.runfolder import RunFolder

    rf = RunFolder.create(tmp_path_factory.mktemp("runs"), "fuzz")
    rf.config_path.write_bytes(config_bytes)
    return rf


def _check_config(cfg):
    assert isinstance(cfg.task, str) and isinstance(cfg.name, str)
    assert isinstance(cfg.seed, int) and not isinstance(cfg.seed, bool)
    for k in ("telemetry_every", "checkpoint_every"):
        v = getattr(cfg, k)
        assert isinstance(v, int) and not isinstance(v, bool) and v >= 1
    assert cfg.alpha is None or (math.isfinite(cfg.alpha) and cfg.alpha >= 0)
    assert cfg.eta is None or 0 < cfg.eta <= 1
    _check_schedule(cfg.schedule)


def test_the_valid_config_resumes(tmp_path_factory):
    from learnboard.host.session import resume_config

    rf = _run_folder(tmp_path_factory, json.dumps(VALID_CONFIG).encode())
    _check_config(resume_config(rf))


@FUZZ
@given(mutated(VALID_CONFIG, extra_keys=("eta", "alpha", "version", "task", "phases", "stop", "kind",
                                         "lam")))
def test_fuzzed_config_json_resumes_or_names_the_file_and_field(tmp_path_factory, case):
    from learnboard.host.session import resume_config

    data, _ = case
    rf = _run_folder(tmp_path_factory, json.dumps(data).encode())
    out = expect_clean(lambda: resume_config(rf), rf.config_path)
    if not isinstance(out, InputError):
        _check_config(out)


@FUZZ
@given(garbled(json.dumps(VALID_CONFIG)) | st.sampled_from([b"[]", b"null", b"3", b'"x"', b""]))
def test_garbled_config_json_resumes_or_names_the_file(tmp_path_factory, content):
    from learnboard.host.session import resume_config

    rf = _run_folder(tmp_path_factory, content)
    out = expect_clean(lambda: resume_config(rf), rf.config_path)
    if not isinstance(out, InputError):
        _check_config(out)


VALID_CHECKPOINT = {
    "step": 400, "k": [2.5] * BOARD.n_edges,
    "schedule": {"controllers": {"2": {"lam": 1e-9, "s0": 300}}, "reached_at": 300},
    "c0": 0.02, "lam": 1e-9, "elapsed": 12.5, "c0_test": 0.03, "p0": 1e-4, "tp0": 2e-4,
}


def _write_checkpoints(rf, newest: bytes) -> None:
    rf.write_checkpoint(200, {k: v for k, v in VALID_CHECKPOINT.items() if k != "step"})
    rf.checkpoint_path(400).write_bytes(newest)


@FUZZ
@given(mutated(VALID_CHECKPOINT, extra_keys=("k", "c0", "controllers", "s0", "step")))
def test_fuzzed_checkpoint_resumes_or_names_the_file_and_field(tmp_path_factory, case):
    """The newest checkpoint as the session's resume reads it: usable, or an error naming the
    file and field (and the older checkpoint stays loadable)."""
    from learnboard.host.schedule import ScheduleRunner
    from learnboard.host.session import resume_checkpoint

    data, _ = case
    rf = _run_folder(tmp_path_factory, json.dumps(VALID_CONFIG).encode())
    _write_checkpoints(rf, json.dumps(data).encode())
    out = expect_clean(lambda: resume_checkpoint(rf, BOARD), rf.checkpoints_dir)
    if isinstance(out, InputError):
        assert "step-" in str(out)
    else:
        assert isinstance(out["step"], int) and out["step"] >= 0
        assert len(out["k"]) == BOARD.n_edges and all(math.isfinite(v) for v in out["k"])
        assert math.isfinite(out["c0"])
        runner = ScheduleRunner(resume_config(rf).schedule, 0.05)
        runner.load_state(out.get("schedule") or {})
    assert rf.checkpoint_path(200).is_file()


def resume_config(rf):
    from learnboard.host.session import resume_config as rc

    return rc(rf)


# -- calibration files ----------------------------------------------------------------------


def _valid_calibration() -> dict:
    n = BOARD.n_edges
    return {"format": 1, "board": BOARD.name, "desc_hash": "cd" * 32,
            "adc": {"channels": {"0": {"gain": 1.01, "offset_v": 0.002}, "1": {"gain": 0.99, "offset_v": 0.0}}},
            "edges": {"n": n, "kind": "transistor", "vt": [0.7] * n, "beta": [1e-4] * n},
            "twin": {"measured_nets": [0], "nets": 1}, "missing": [], "sha256": None}


VALID_CALIBRATION = _valid_calibration()


def test_the_valid_calibration_loads(tmp_path):
    from learnboard.host.calibration import load_calibration

    path = tmp_path / "cal.json"
    path.write_text(json.dumps(VALID_CALIBRATION))
    assert load_calibration(path, BOARD)["edges"]["n"] == BOARD.n_edges


@FUZZ
@given(mutated(VALID_CALIBRATION, extra_keys=("gain", "n", "kind", "vt", "format")))
def test_fuzzed_calibration_loads_or_names_the_file_and_field(tmp_path_factory, case):
    from learnboard.host.calibration import load_calibration

    data, _ = case
    path = tmp_path_factory.mktemp("cal") / "calibration.json"
    path.write_text(json.dumps(data))
    for board in (BOARD, None):
        expect_clean(lambda b=board: load_calibration(path, b), path)


@FUZZ
@given(garbled(json.dumps(VALID_CALIBRATION)))
def test_garbled_calibration_loads_or_names_the_file(tmp_path_factory, content):
    from learnboard.host.calibration import load_calibration

    path = tmp_path_factory.mktemp("cal") / "calibration.json"
    path.write_bytes(content)
    expect_clean(lambda: load_calibration(path, BOARD), path)


# -- sweep specs ----------------------------------------------------------------------------

VALID_SPEC = {
    "name": "fuzz", "steps": 100, "record_every": 10,
    "learning": {"alpha": 0.5, "eta": 0.001},
    "task": {"kind": "notebook", "coeffs": [[0.2, 0.3], [0.1, 0.5]], "train_size": 20, "noise": 0.0},
    "grid": {"lam": {"log": [1e-10, 1e-3], "num": 3, "zero": True}, "tolerance": [1e-3],
             "k0": [1.0], "init": ["uniform"], "seeds": 2},
    "networks": [{"generate": "disordered:N=16,seed=1"},
                 {"board": "gen2-clln", "steps": 50, "lam": [0, 0.1], "learning": {"eta": 0.01}}],
}


def _check_runs(runs):
    assert 0 < len(runs) <= 100_000
    for r in runs:
        assert math.isfinite(r["lam"]) and r["lam"] >= 0
        assert r["tolerance"] is None or (math.isfinite(r["tolerance"]) and r["tolerance"] > 0)
        assert isinstance(r["steps"], int) and r["steps"] >= 0
        json.dumps(r, allow_nan=False)


def test_the_valid_spec_expands(tmp_path):
    from learnboard.studies.sweep.spec import expand

    path = tmp_path / "spec.toml"
    path.write_text(to_toml(VALID_SPEC))
    _check_runs(expand(path))


@FUZZ
@given(mutated(VALID_SPEC, extra_keys=("lam", "seeds", "num", "log", "task", "learning", "file")))
def test_fuzzed_sweep_spec_expands_or_names_the_file_and_field(tmp_path_factory, case):
    from learnboard.studies.sweep.spec import expand

    data, _ = case
    path = tmp_path_factory.mktemp("spec") / "spec.toml"
    path.write_text(to_toml(data))
    out = expect_clean(lambda: expand(path), path)
    if not isinstance(out, InputError):
        _check_runs(out)


@FUZZ
@given(garbled(to_toml(VALID_SPEC)))
def test_garbled_sweep_spec_expands_or_names_the_file(tmp_path_factory, content):
    from learnboard.studies.sweep.spec import expand

    path = tmp_path_factory.mktemp("spec") / "spec.toml"
    path.write_bytes(content)
    out = expect_clean(lambda: expand(path), path)
    if not isinstance(out, InputError):
        _check_runs(out)


@pytest.mark.parametrize("grid", [{"lam": {"log": [1e-3, 1e308], "num": 10**9}},
                                  {"lam": [0.1], "seeds": 10**12},
                                  {"lam": {"log": [1e-10, math.inf], "num": 4}},
                                  {"lam": [math.nan]}])
def test_absurd_sweep_grids_are_refused_before_they_are_built(tmp_path, grid):
    from learnboard.studies.sweep.spec import expand

    path = tmp_path / "spec.toml"
    path.write_text(to_toml({**VALID_SPEC, "grid": grid}))
    err = expect_clean(lambda: expand(path), path, "grid.lam", "grid.seeds")
    assert isinstance(err, InputError), grid
    assert re.search(r"grid\.(lam|seeds)", str(err))


# == out-of-range parameters through the real host link to the emulated board ===============
# The unchanged firmware in process (learnboard.emulator.inprocess_board); every refusal is an ERR
# reply naming the parameter or value, and nothing changes: parameters read back equal, the
# emulator's true edge states equal (digipot taps exactly; gate volts within their drift).

PARAMS = ("alpha", "eta", "lam", "oversample", "settle_us", "pulse_us", "mode", "p_update", "seed",
          "order", "tlm_every", "tlm_nodes", "tlm_edges", "host_timeout_ms", "batch")
# what msgpack carries: 64-bit ints, floats (sent as float32), str, lists, maps, nil, bool
WIRE_VALUES = st.one_of(
    st.sampled_from([0, -1, 1, 2, 3, 64, 65, 257, 8192, 10**6, 2**62, -2**63, 1e30, -1e-30,
                     math.nan, math.inf, -math.inf, 0.5, 1.0, 1.5, "", "x", "cl", "gen1", "desync",
                     "seq", "shuffle", None, True, False, [], [0.5], {"a": 1}]),
    st.integers(min_value=-2**63, max_value=2**64 - 1),
    st.floats(width=32),
    st.text(alphabet="abcxyz_", max_size=4),
).map(copy.deepcopy)
PARAM_NAMES = st.sampled_from(PARAMS) | st.sampled_from(["bogus", "Lam", "lambda", "x"])
REFUSED = (ErrorCode.BAD_ARGS, ErrorCode.OUT_OF_RANGE, ErrorCode.LIMIT)  # never INTERNAL, never a hang


@pytest.fixture(scope="module")
def gen2():
    from learnboard.cli.connection import open_board

    with open_board("emu:gen2-clln", timeout=2.0) as conn:
        yield conn


@pytest.fixture(scope="module")
def gen1():
    from learnboard.cli.connection import open_board

    with open_board("emu:gen1-digipot", timeout=2.0) as conn:
        yield conn


def _board_snapshot(conn):
    link = conn.link
    return (link.call("get_params"), link.call("status")["examples"],
            np.array(conn.true_state().edge_state, float))


def _unchanged(conn, before, gate_tol=0.0):
    params, n_ex, edges = _board_snapshot(conn)
    assert params == before[0]
    assert n_ex == before[1]
    np.testing.assert_allclose(edges, before[2], atol=gate_tol, rtol=0)


def _refused(call, *names, fields=None, edge=None):
    """``call()`` must be refused with BAD_ARGS/OUT_OF_RANGE/LIMIT, its message naming one
    of ``names`` and its detail's ``field`` one of ``fields`` (and ``edge``, if given);
    returns the BoardError, or None when the board accepted."""
    from learnboard.host.link import BoardError

    try:
        call()
    except BoardError as exc:
        assert exc.code in REFUSED, str(exc)
        if names:
            assert any(str(n) in exc.message for n in names), str(exc)
        if fields is not None:
            assert exc.field in fields, str(exc)
        if edge is not None:
            assert exc.edge == edge, str(exc)
        return exc
    return None


@settings(max_examples=EXAMPLES * 2, deadline=None)
@given(st.dictionaries(PARAM_NAMES, WIRE_VALUES, min_size=1, max_size=3))
def test_fuzzed_set_params_are_refused_by_name_and_change_nothing(gen2, args):
    link = gen2.link
    before = _board_snapshot(gen2)
    err = _refused(lambda: link.request("set_params", args), *args, fields=list(args))
    if err is None:  # every value was valid: put the old ones back
        link.request("set_params", before[0])
    else:
        _unchanged(gen2, before, gate_tol=0.02)


@pytest.mark.parametrize("args,name", [
    ({"lam": 2.0}, "lam"), ({"lam": -0.1}, "lam"), ({"eta": -1.0}, "eta"), ({"lam": math.nan}, "lam"),
    ({"eta": math.inf}, "eta"), ({"eta": 0.0}, "eta"), ({"alpha": -1.0}, "alpha"), ({"lam": "0.5"}, "lam"),
    ({"oversample": 1.5}, "oversample"), ({"seed": "x"}, "seed"), ({"fly": 1}, "fly"),
    ({"lam": 0.5, "eta": -1.0}, "eta"), ({"batch": 1000}, "batch")])
def test_out_of_range_parameters_are_refused_by_name(gen2, args, name):
    before = _board_snapshot(gen2)
    err = _refused(lambda: gen2.link.request("set_params", args), name, fields=[name])
    assert err is not None, f"{args} was accepted"
    assert err.field == name
    assert str(args[name])[:3] in err.message or name == "fly"
    _unchanged(gen2, before, gate_tol=0.02)
    assert gen2.link.call("get_params", names=["lam"])["lam"] == before[0]["lam"]


TAPS = st.one_of(st.integers(-5, 105), st.sampled_from([math.nan, math.inf, 50.5, "x", None, [1]]),
                 st.floats(width=32))


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.integers(-2, 30), st.lists(TAPS, min_size=0, max_size=30))
def test_fuzzed_edge_writes_are_refused_or_applied_exactly(gen1, start, ks):
    """gen1-digipot: taps are exact, so a refused write must leave every tap where it was."""
    link = gen1.link
    before = _board_snapshot(gen1)
    err = _refused(lambda: link.request("write_edges", {"start": start, "k": ks}),
                   fields=["start", "k"])
    taps = np.array(gen1.true_state().edge_state, float)
    if err is None:
        np.testing.assert_array_equal(taps[start:start + len(ks)], np.array(ks, float))
        link.request("write_edges", {"start": 0, "k": [int(v) for v in before[2]]})
    else:
        np.testing.assert_array_equal(taps, before[2])


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.lists(WIRE_VALUES | st.floats(0, 0.5, width=32), min_size=0, max_size=3),
                min_size=0, max_size=6),
       st.lists(st.lists(st.floats(-0.125, 0.625, width=32), min_size=1, max_size=2), min_size=0, max_size=6),
       st.integers(-1, 70), st.booleans())
def test_fuzzed_example_uploads_are_refused_without_touching_the_stored_ones(gen2, xs, ys, start, clear):
    link = gen2.link
    link.request("upload_examples", {"start": 0, "x": [[0.1, 0.2]] * 4, "y": [[0.1]] * 4, "clear": True})
    before = _board_snapshot(gen2)
    err = _refused(lambda: link.request("upload_examples", {"start": start, "x": xs, "y": ys, "clear": clear}),
                   fields=["start", "x", "y"])
    if err is not None:
        _unchanged(gen2, before, gate_tol=0.02)


def test_too_many_or_oversized_examples_are_refused(gen2):
    from learnboard.errors import LinkError

    link = gen2.link
    link.request("upload_examples", {"start": 0, "x": [[0.1, 0.2]] * 4, "y": [[0.1]] * 4, "clear": True})
    before = _board_snapshot(gen2)
    limit = gen2.hello["limits"]["max_examples"]
    for s in range(4, limit, 15):  # fill the board in chunks that fit a frame
        n = min(15, limit - s)
        link.request("upload_examples", {"start": s, "x": [[0.1, 0.2]] * n, "y": [[0.1]] * n})
    before = _board_snapshot(gen2)
    assert before[1] == limit
    err = _refused(lambda: link.request("upload_examples", {"start": limit - 2, "x": [[0.1, 0.2]] * 3,
                                                            "y": [[0.1]] * 3}), str(limit), fields=["x"])
    assert err is not None and err.code == ErrorCode.OUT_OF_RANGE
    with pytest.raises(LinkError, match=r"upload_examples.*limit is 1008; send it in chunks"):
        link.request("upload_examples", {"start": 0, "x": [[0.1, 0.2]] * 200, "y": [[0.1]] * 200})
    # a bad value with clear = true must not clear what is stored
    err = _refused(lambda: link.request("upload_examples", {"start": 0, "x": [[0.1, "a"]], "y": [[0.1]],
                                                            "clear": True}), "'a'", fields=["x"])
    assert err is not None
    err = _refused(lambda: link.request("upload_examples", {"start": 0, "x": [[0.1, 9.0]], "y": [[0.1]],
                                                            "clear": True}), "9", fields=["x"])
    assert err is not None and err.code == ErrorCode.LIMIT
    _unchanged(gen2, before, gate_tol=0.02)


@pytest.mark.parametrize("x", [[100.0, 0.0], [math.nan, 0.1], [math.inf, 0.1], ["a", 0.1], 5, [0.1],
                               [-0.1, 0.1], None])
def test_inputs_beyond_the_limits_are_refused(gen2, x):
    before = _board_snapshot(gen2)
    assert _refused(lambda: gen2.link.request("infer", {"x": x}), "input", "x needs", fields=["x"]) is not None
    _unchanged(gen2, before, gate_tol=0.02)
    np.testing.assert_allclose(gen2.true_state().node_voltages, 0.0, atol=1e-9)


@pytest.mark.parametrize("k", [[100.0], [math.nan], [math.inf], ["x"], [0.0], [-3.0]])
def test_gate_writes_beyond_the_limits_are_refused(gen2, k):
    before = _board_snapshot(gen2)
    assert _refused(lambda: gen2.link.request("write_edges", {"start": 3, "k": k}), "edge 3", fields=["k"],
                    edge=3) is not None
    _unchanged(gen2, before, gate_tol=0.02)


@pytest.mark.parametrize("steps", [-5, 1.5, "x", True, None, [10]])
def test_absurd_step_counts_are_refused(gen2, steps):
    link = gen2.link
    link.request("upload_examples", {"start": 0, "x": [[0.1, 0.2]], "y": [[0.1]], "clear": True})
    err = _refused(lambda: link.request("train", {"steps": steps}), "steps", fields=["steps"])
    assert err is not None and err.code == ErrorCode.BAD_ARGS
    assert link.call("status")["state"] == "idle"


def test_a_huge_step_count_means_until_stop(gen2):
    """2**62 steps is accepted like 0 ("until stop"): the board trains until told to stop."""
    link = gen2.link
    link.request("upload_examples", {"start": 0, "x": [[0.1, 0.2]], "y": [[0.1]], "clear": True})
    assert link.request("train", {"steps": 2**62, "every": 0})["target"] == 2**62
    try:
        assert link.call("status")["state"] == "training"
    finally:
        link.call("stop")
    assert link.call("status")["state"] == "idle"


# -- the CLI: one line naming the flag, exit status 2 ----------------------------------------


@pytest.mark.parametrize("argv,flag", [
    (["--lambda", "2"], "--lambda"), (["--lambda", "nan"], "--lambda"), (["--lambda", "-0.5"], "--lambda"),
    (["--steps", "-5"], "--steps"), (["--steps", "0"], "--steps"),
    (["--tolerance", "-1"], "--tolerance"), (["--tolerance", "abc"], "--tolerance"),
    (["--lambda", "0.1", "--tolerance", "0.1"], "--lambda"),
    (["--alpha", "-1"], "--alpha"), (["--alpha", "inf"], "--alpha"), (["--eta", "2"], "--eta"),
    (["--eta", "0"], "--eta"),
    (["--every", "0"], "--every"), (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--tolerance", "0.1", "--check-every", "0"], "--check-every"),
    (["--tolerance", "0.1", "--lambda-start", "0"], "--lambda-start"),
    (["--tolerance", "0.1", "--lambda-up", "nan"], "--lambda-up"),
    (["--tolerance", "1"], "--tolerance"), (["--tolerance", "1.5"], "--tolerance"),
    (["--tolerance", "0"], "--tolerance"), (["--tolerance", "task", "--lambda-up", "1"], "--lambda-up"),
    (["--lambda-start", "2e-3"], "--lambda-start"), (["--check-every", "20"], "--check-every"),
    (["--lambda-up", "1.2"], "--lambda-up"), (["--controller", "paper"], "--controller"),
    (["--lambda", "0.1", "--lambda-start", "2e-3"], "--lambda-start"),
    (["--port", "/dev/does-not-exist"], "/dev/does-not-exist"),
    (["--board", "nonexistent.toml"], "nonexistent.toml"),
    (["--task", "nonexistent-task"], "--task"),
    (["--schedule", "nonexistent.toml"], "nonexistent.toml"),
    (["--resume", "no/such/run"], "no/such/run"),
    (["--name", "../../etc"], "--name"), (["--name", "a/b"], "--name"), (["--name", "/etc"], "--name"),
    (["--name", ".."], "--name"), (["--name=-x"], "--name"),
])
def test_bad_train_flags_exit_2_with_one_line_naming_the_flag(tmp_path, capsys, argv, flag):
    from learnboard.cli import main

    runs = tmp_path / "runs"
    code = main(["train", "--runs", str(runs), "--quiet", "--no-plot", "--steps", "5", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert flag in err, err
    # nothing was created outside the runs folder, and no run folder for a refused session
    assert not runs.exists() or not any(runs.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["runs"])


# == unknown and oversized frames ==============================================================
# Host -> board: the firmware's parser drops what is not a good REQ frame, counts it by reason
# (stats, and `bad` / the RX_BAD flag in telemetry) and never answers it; a good frame with
# an unknown command gets ERR UNKNOWN_COMMAND. Board -> host: the host's decoder drops frames
# over MAX_ENCODED without buffering them, counts them, and the link stays usable.


def _raw(conn, data: bytes) -> None:
    """Bytes onto the line towards the board, past the host's encoder."""
    conn.emulator.byte_port.write(data)


def _bad_total(conn) -> int:
    return conn.link.call("stats")["bad"]


def test_an_unknown_command_gets_an_error_naming_it_and_the_link_stays_usable(gen2):
    from learnboard.host.link import BoardError

    with pytest.raises(BoardError, match="UNKNOWN_COMMAND: unknown command: fly") as exc:
        gen2.link.request("fly", {"to": "moon"})
    assert exc.value.code == ErrorCode.UNKNOWN_COMMAND and exc.value.field is None
    assert gen2.link.hello()["board"] == "gen2-clln"


@pytest.mark.parametrize("mtype", [0, 2, 3, 4, 5, 6, 99, 255])
def test_frames_of_unknown_types_are_counted_and_not_answered(gen2, mtype):
    from learnboard.host import codec

    before = gen2.link.call("stats")
    late = gen2.link.stats.late_replies
    _raw(gen2, codec.encode_frame(mtype, 7, [123, "hello", {}]))
    after = gen2.link.call("stats")
    assert after["bad_type"] == before["bad_type"] + 1 and after["bad"] == before["bad"] + 1
    assert after["requests"] == before["requests"] + 1  # only the stats request itself ran
    assert gen2.link.stats.late_replies == late  # nothing answered the dropped frame


def test_a_good_frame_whose_body_is_not_a_request_gets_bad_request(gen2):
    from learnboard.host import codec

    before = gen2.link.call("stats")
    late = gen2.link.stats.late_replies
    _raw(gen2, codec.encode_frame(codec.MessageType.REQ, 9, {"not": "a request"}))
    _raw(gen2, codec.encode_packed(codec.MessageType.REQ, 10, b"\xc1"))  # never-used msgpack byte
    after = gen2.link.call("stats")
    assert after["errors"] == before["errors"] + 1  # ERR BAD_REQUEST with id nil
    assert after["bad_body"] == before["bad_body"] + 1
    assert gen2.link.stats.late_replies == late + 1  # the host saw that reply and set it aside


GARBAGE_FRAMES = st.lists(
    st.binary(min_size=1, max_size=1500).map(lambda b: b.replace(b"\x00", b"\x01"))
    | st.integers(1025, 6000).map(lambda n: b"\x55" * n),
    min_size=1, max_size=8)


@settings(max_examples=max(20, EXAMPLES // 2), deadline=None)
@given(GARBAGE_FRAMES)
def test_garbage_frames_are_each_counted_once_and_the_link_stays_usable(gen2, pieces):
    from learnboard.host import codec

    before = gen2.link.call("stats")
    for piece in pieces:
        _raw(gen2, piece + b"\x00")
    after = gen2.link.call("stats")
    assert after["bad"] - before["bad"] == len(pieces)
    assert after["oversize"] - before["oversize"] == sum(len(p) > codec.MAX_ENCODED for p in pieces)
    assert after["rx_ok"] == before["rx_ok"] + 1
    assert gen2.link.hello()["proto"] == 5


def test_bad_frames_show_in_telemetry_while_training(gen2):
    link = gen2.link
    link.request("upload_examples", {"start": 0, "x": [[0.1, 0.2]], "y": [[0.1]], "clear": True})
    while link.next_telemetry(timeout=0) is not None:
        pass
    bad0 = _bad_total(gen2)
    link.request("train", {"steps": 0, "every": 2})
    try:
        assert link.next_telemetry(timeout=5) is not None
        _raw(gen2, b"\x02\xff\xff\x00" + b"\x77" * 2000 + b"\x00")  # short, then oversize
        seen = None
        for _ in range(50):
            t = link.next_telemetry(timeout=5)
            if t is not None and t["bad"] >= bad0 + 2:
                seen = t
                break
        assert seen is not None, "telemetry never showed the bad frames"
        assert seen["flt"] & 256  # RX_BAD: bad frames since the previous telemetry frame
    finally:
        link.call("stop")


# -- board -> host ----------------------------------------------------------------------------


def _fake_board():
    from learnboard.host.link import Link
    from learnboard.host.transport import memory_pair

    host_end, board_end = memory_pair()
    return Link(host_end, timeout=0.5, retries=0, first_id=100), board_end


def test_the_host_decoder_rejects_oversized_frames_with_a_clear_error():
    from learnboard.host import codec

    body = b"\xc4" + bytes([255]) + b"\x00" * 255
    fits = codec.encode_packed(codec.MessageType.TLM, 1, b"\xda" + (990).to_bytes(2, "big") + b"a" * 990)
    assert len(fits) - 1 <= codec.MAX_ENCODED
    codec.decode_frame(fits[:-1])
    with pytest.raises(codec.FrameError, match=r"frame of 1025 bytes exceeds 1024") as exc:
        codec.decode_frame(b"\x01" * 1025)
    assert exc.value.reason == "oversize"
    with pytest.raises(codec.FrameTooLarge, match="limit is 1008"):
        codec.encode_packed(codec.MessageType.TLM, 1, body * 5)


@pytest.mark.parametrize("junk", [5000, 1025, 1_000_000])
def test_oversized_board_frames_are_counted_without_buffering_and_the_link_goes_on(junk):
    from learnboard.host import codec

    link, board = _fake_board()
    try:
        board.write(b"\x42" * junk)  # no delimiter yet: the decoder must not keep it all
        deadline = 200
        while link._decoder._buf == bytearray() and not link._decoder._skip and deadline:
            deadline -= 1
            link.next_telemetry(timeout=0.01)
        link.next_telemetry(timeout=0.2)
        assert len(link._decoder._buf) <= codec.MAX_ENCODED
        board.write(b"\x00" + codec.encode_frame(codec.MessageType.TLM, 1, {"step": 7}))
        assert link.next_telemetry(timeout=2) == {"step": 7}
        assert link.stats.oversize == 1
    finally:
        link.close()


BOARD_BODIES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(width=32) | st.text(max_size=5)
    | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=4),
    max_leaves=8)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([2, 3, 4, 5]) | st.integers(0, 255), BOARD_BODIES),
                min_size=1, max_size=6))
def test_any_frames_from_a_board_leave_the_host_link_working(frames):
    """Whatever a (broken) board sends, the link's reader survives: telemetry handed on is a
    map, and the next good reply still completes a request."""
    import threading

    from learnboard.host import codec
    from learnboard.host.link import BoardError

    link, board = _fake_board()
    try:
        for i, (mtype, body) in enumerate(frames):
            board.write(codec.encode_frame(mtype, i, body))
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", link.request("status", {}, timeout=3)))
        t.start()
        time_left = 300
        while link.stats.tx_frames < 1 and time_left:
            time_left -= 1
            link.next_event(timeout=0.01)
        board.write(codec.encode_frame(codec.MessageType.OK, 99, [100, {"state": "idle"}]))
        t.join(5)
        assert result.get("r") == {"state": "idle"}
        while (tlm := link.next_telemetry(timeout=0)) is not None:
            assert isinstance(tlm, dict)
        while (ev := link.next_event(timeout=0)) is not None:
            assert isinstance(ev[0], str)
    except BoardError:
        raise
    finally:
        link.close()


# -- the same refusals in the real MicroPython VM -------------------------------------------


@pytest.mark.vm
def test_bad_requests_are_refused_by_name_in_the_micropython_vm(tmp_path):
    """The firmware under MicroPython (fake machine, 192K heap): the refusals above are
    ERR replies naming the value — no INTERNAL, and eta = inf does not hang the board."""
    from learnboard.host.link import BoardError

    from learnboard.boards import compile_board

    from ._fake_machine import pipe_link, start_firmware
    from .mpvm import require_vm

    proc = start_firmware(tmp_path, compile_board(BOARD), require_vm())
    # (command, args, text the message names, detail field, detail edge)
    cases = [("set_params", {"eta": math.inf}, "eta = inf", "eta", None),
             ("set_params", {"lam": 2.0}, "lam = 2", "lam", None),
             ("set_params", {"lam": "x"}, "lam = 'x'", "lam", None),
             ("set_params", {"oversample": 1.5}, "oversample", "oversample", None),
             ("set_params", {"seed": None}, "seed = None", "seed", None),
             ("set_params", {"fly": 1}, "fly", "fly", None),
             ("infer", {"x": ["a", 0.1]}, "'a'", "x", None),
             ("infer", {"x": [math.nan, 0.1]}, "nan", "x", None),
             ("infer", {}, "x is missing", "x", None),
             ("write_edges", {"start": 0, "k": [math.inf]}, "edge 0", "k", 0),
             ("write_edges", {"start": 0, "k": 5}, "array", "k", None),
             ("upload_examples", {"start": 0, "x": [[0.1, "a"]], "y": [[0.1]], "clear": True}, "'a'",
              "x", None),
             ("train", {"steps": -5}, "steps = -5", "steps", None),
             ("measure", {"nodes": ["a"]}, "'a'", "nodes", None)]
    try:
        link = pipe_link(proc, timeout=5.0, retries=0)
        assert link.hello()["impl"] == "micropython"
        link.call("upload_examples", x=[[0.1, 0.2]] * 3, y=[[0.1]] * 3, clear=True)
        params = link.call("get_params")
        for command, args, named, field, edge in cases:
            with pytest.raises(BoardError) as exc:
                link.request(command, args)
            assert exc.value.code in REFUSED and named in exc.value.message, str(exc.value)
            assert (exc.value.field, exc.value.edge) == (field, edge), str(exc.value)
        assert link.call("get_params") == params
        assert link.call("status")["examples"] == 3
        assert link.call("stats")["internal"] == 0
        assert link.call("repl") == {}
        link.close()
        assert proc.wait(20) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- --resume of a damaged run folder, through the CLI ----------------------------------------


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A real 20-step run folder (emulated gen1-digipot)."""
    from learnboard.cli import main

    runs = tmp_path_factory.mktemp("runs")
    assert main(["train", "--port", "emu:gen1-digipot", "--steps", "20", "--checkpoint-every", "10",
                 "--every", "5", "--quiet", "--no-plot", "--runs", str(runs)]) == 0
    return next(p for p in runs.iterdir() if p.is_dir())


@pytest.mark.parametrize("damage,named", [
    (("config.json", "telemetry_every", "x"), "telemetry_every"),
    (("config.json", "schedule", [1, 2]), "schedule"),
    (("config.json", "eta", -1.0), "eta"),
    (("config.json", "version", 99), "version"),
    (("config.json", "board", 7), "board"),
    (("checkpoint", "k", [1, 2]), "k"),
    (("checkpoint", "c0", "x"), "c0"),
    (("checkpoint", "schedule", {"controllers": {"0": {"lam": "x", "s0": 1}}}), "schedule.controllers.0.lam"),
    (("checkpoint", "step", -3), "step"),
], ids=lambda v: "-".join(map(str, v[:2])) if isinstance(v, tuple) else str(v))
def test_resuming_a_damaged_run_folder_names_the_file_and_field(finished_run, tmp_path, capsys, damage, named):
    import shutil

    from learnboard.cli import main

    run = tmp_path / finished_run.name
    shutil.copytree(finished_run, run)
    log_before = (run / "telemetry.msgpack").read_bytes()
    what, key, value = damage
    path = run / "config.json" if what == "config.json" else sorted((run / "checkpoints").glob("*.json"))[-1]
    data = json.loads(path.read_text())
    data[key] = value
    if what == "checkpoint":  # with its checksum, as a host would have written it: the schema finds it
        from learnboard.host.records import seal_json

        data = seal_json(data)
    path.write_text(json.dumps(data))
    code = main(["train", "--resume", str(run), "--quiet", "--no-plot"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert str(path) in err and named in err, err
    assert (run / "telemetry.msgpack").read_bytes() == log_before  # nothing appended or cut


# -- network files (learnboard sim --network, sweep networks[i].file) ---------------------------


def _network_text() -> str:
    lines = ["5 6 2.0", "0 0", "1 0", "0 1", "1 1", "0.5 0.5", "0 1", "1 2", "2 3", "3 4", "4 0", "1 3"]
    return "\n".join(lines) + "\n"


NETWORK_TOKENS = st.sampled_from(["", "-1", "0", "5", "99", "1e400", "nan", "inf", "x", "1.5",
                                  "99999999999999999999", "0 0 0", "\t", "#"])


@st.composite
def network_mutations(draw):
    lines = _network_text().splitlines()
    op = draw(st.sampled_from(["token", "token", "drop", "dup", "bytes"]))
    if op == "bytes":
        return draw(garbled(_network_text()))
    i = draw(st.integers(0, len(lines) - 1))
    if op == "token":
        parts = lines[i].split()
        j = draw(st.integers(0, max(0, len(parts) - 1)))
        parts[j:j + 1] = [draw(NETWORK_TOKENS)]
        lines[i] = " ".join(parts)
    elif op == "drop":
        del lines[i]
    else:
        lines.insert(i, lines[i])
    return ("\n".join(lines) + "\n").encode()


@FUZZ
@given(network_mutations())
def test_fuzzed_network_file_loads_or_names_the_file(tmp_path_factory, content):
    from learnboard.network import read_network

    path = tmp_path_factory.mktemp("net") / "net.txt"
    path.write_bytes(content)
    out = expect_clean(lambda: read_network(path), path)
    if not isinstance(out, InputError):
        assert out.n_nodes >= 1 and 0 <= out.ground < out.n_nodes


@pytest.mark.parametrize("text", [b"2 1\n0 0\n1 1\n0 99999999999999999999\n", b"\x80\x81 2\n",
                                  b"2 1\n0 0\n1 1\n0 0\n", b"-1 2\n0 0\n"])
def test_bad_network_files_are_input_errors(tmp_path, text):
    from learnboard.network import read_network

    path = tmp_path / "net.txt"
    path.write_bytes(text)
    assert isinstance(expect_clean(lambda: read_network(path), path), InputError)
