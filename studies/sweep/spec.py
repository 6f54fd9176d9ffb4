"""Sweep specifications: a TOML grid of learning runs, expanded into one dict per run.

A spec (see docs/sweep.md)::

    name = "lambda-scan"
    steps = 100000                     # default for every run (int or list)

    [learning]                         # LearningConfig fields shared by all runs
    alpha = 0.5
    eta = 1e-3

    [task]
    kind = "notebook"                  # "notebook": RandomState(seed) draw; "trials": notebook trials
    coeffs = [[0.2, 0.3], [0.1, 0.5]]
    train_size = 20
    noise = 0.0                        # std of Gaussian noise on the training targets (or a list)

    [grid]
    lam = {log = [1e-10, 1e-3], num = 8, zero = true}   # or a list
    tolerance = [1e-3, 1e-4]           # extra runs driven by the tolerance controller
    k0 = [1.0]
    init = ["uniform"]
    seeds = [0]                        # or an int n: seeds 0..n-1
    replicas = 10                      # optional: 10 runs per grid point from perturbed k0 ...
    perturb = 1e-12                    # ... k0 * (1 + perturb * u), u in [-1, 1) per edge

    [[networks]]
    file = "$LEARNBOARD_REFERENCE/data_N00064_Lp0.0100_r1.txt"   # or relative to the spec file
    [[networks]]
    generate = "disordered:N=64,seed=1"
    [[networks]]
    emulate = "gen2-clln"              # a host training session on the emulated board
    [[networks]]
    board = "gen2-clln"
    steps = 200                        # any grid/learning key may be overridden per network
    lam = [0, 0.1]

Each run is a plain JSON-able dict; :func:`run_id` names it by content, so a restarted
sweep recognises the runs it has already finished.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
from pathlib import Path
from typing import Any

from learnboard.errors import InputError

TOP_KEYS = {"name", "steps", "record_every", "learning", "task", "grid", "networks"}
LEARNING_KEYS = {"alpha", "eta", "k_min", "k_max", "batch", "order", "update_prob"}
TASK_KEYS = {"kind", "coeffs", "train_size", "noise"}
TASK_KINDS = ("notebook", "trials")
GRID_KEYS = {"lam", "tolerance", "k0", "init", "seeds", "steps", "noise", "replicas", "perturb"}
NETWORK_SOURCES = ("file", "generate", "board", "emulate", "bias")
NETWORK_KEYS = set(NETWORK_SOURCES) | {"label", "imperfect", "learning", "task", "mismatch",
                                       "debias"} | GRID_KEYS
DEBIAS = ("none", "null-offset", "write-back")  # the learning-bias study's remedies
NOTEBOOK_COEFFS = [[0.2, 0.3], [0.1, 0.5]]
MAX_VALUES = 10_000
"""Most values one grid axis (a log range, a seed count) may expand to."""
MAX_RUNS = 100_000
"""Most runs one spec may expand to (checked before the grid is built)."""


def _fail(source: str, field: str, message: str) -> InputError:
    return InputError(message, source=source, field=field)


def load_spec(spec: str | Path | dict, *, base: Path | None = None) -> tuple[dict, Path]:
    """Read a spec file (TOML) or take a dict; returns (spec dict, folder for relative paths)."""
    if isinstance(spec, dict):
        return spec, Path(base or ".")
    path = Path(spec)
    try:
        import tomllib  # type: ignore[import-not-found]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the sweep spec: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text (UTF-8) file: byte {exc.start} is {exc.object[exc.start]:#04x}",
                         source=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=str(path)) from None
    return data, path.resolve().parent


def _number_list(value: Any, source: str, field: str, *, integer: bool = False,
                 positive: bool = False, allow_zero: bool = True) -> list:
    """A list of numbers from a scalar, a list or ``{log = [lo, hi], num = n, zero = bool}``."""
    if isinstance(value, dict):
        unknown = set(value) - {"log", "num", "zero"}
        if unknown or "log" not in value:
            raise _fail(source, field, "a range is written {log = [low, high], num = N, zero = "
                        f"false}}; got keys {', '.join(sorted(value))}")
        lo_hi, num = value["log"], value.get("num", 8)
        if (not isinstance(lo_hi, list) or len(lo_hi) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf
                           for v in lo_hi)):
            raise _fail(source, f"{field}.log", f"needs two finite positive numbers [low, high], got {lo_hi!r}")
        if not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= MAX_VALUES:
            raise _fail(source, f"{field}.num", f"needs a whole number in 1..{MAX_VALUES}, got {num!r}")
        lo, hi = (math.log10(v) for v in lo_hi)
        vals = [10 ** (lo + (hi - lo) * i / (num - 1)) if num > 1 else 10**lo for i in range(num)]
        vals = [float(f"{v:.6g}") for v in vals]
        return ([0.0] if value.get("zero", False) else []) + vals
    items = value if isinstance(value, list) else [value]
    if not items:
        raise _fail(source, field, "the list is empty; give at least one value")
    out = []
    for v in items:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _fail(source, field, f"{v!r} is not a number")
        if not math.isfinite(v):
            raise _fail(source, field, f"{v!r} must be finite")
        if integer and (not isinstance(v, int) and not float(v).is_integer()):
            raise _fail(source, field, f"{v!r} must be a whole number")
        if v < 0 or (positive and v == 0) or (not allow_zero and v == 0):
            raise _fail(source, field, f"{v!r} must be {'positive' if positive else '>= 0'}")
        out.append(int(v) if integer else float(v))
    return out


def _coeffs(value: Any, source: str, field: str) -> list[list[float]]:
    if isinstance(value, str):
        from learnboard.tasks import parse_coeffs

        try:
            value = parse_coeffs(value).tolist()
        except InputError as exc:
            raise _fail(source, field, str(exc)) from None
    if isinstance(value, list) and any(isinstance(v, float) and not math.isfinite(v)
                                       for r in value if isinstance(r, list) for v in r):
        raise _fail(source, field, f"needs finite numbers, got {value!r}")
    if (isinstance(value, list) and value and all(isinstance(r, list) and r for r in value)
            and len({len(r) for r in value}) == 1
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for r in value for v in r)):
        return [[float(v) for v in r] for r in value]
    raise _fail(source, field, f"needs a matrix like [[0.2, 0.3], [0.1, 0.5]] or '0.2,0.3;0.1,0.5', "
                f"got {value!r}")


def _table(data: dict, key: str, allowed: set[str], source: str) -> dict:
    t = data.get(key, {})
    if not isinstance(t, dict):
        raise _fail(source, key, f"must be a table ([{key}]), got {type(t).__name__}")
    unknown = set(t) - allowed
    if unknown:
        raise _fail(source, f"{key}.{sorted(unknown)[0]}",
                    f"unknown key; allowed: {', '.join(sorted(allowed))}")
    return t


def _learning(t: dict, source: str, field: str) -> dict:
    out = {}
    unknown = set(t) - LEARNING_KEYS
    if unknown:
        raise _fail(source, f"{field}.{sorted(unknown)[0]}",
                    f"unknown key; allowed: {', '.join(sorted(LEARNING_KEYS))}")
    for k, v in t.items():
        if k in ("batch", "order"):
            if not isinstance(v, str):
                raise _fail(source, f"{field}.{k}", f"must be a string, got {v!r}")
            out[k] = v
        else:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _fail(source, f"{field}.{k}", f"must be a number, got {v!r}")
            out[k] = float(v)
    if out:  # let LearningConfig judge the values, naming this spec field
        from learnboard.engine.config import LearningConfig

        try:
            LearningConfig(**out)
        except InputError as exc:
            raise _fail(source, field, str(exc)) from None
    return out


def expand(spec: str | Path | dict, *, base: Path | None = None) -> list[dict]:
    """All runs of a spec, in grid order (networks, seeds, init/k0, lambda then tolerances, steps)."""
    data, folder = load_spec(spec, base=base)
    source = str(spec) if not isinstance(spec, dict) else "<spec>"
    unknown = set(data) - TOP_KEYS
    if unknown:
        raise _fail(source, sorted(unknown)[0], f"unknown key; allowed: {', '.join(sorted(TOP_KEYS))}")
    learning = _learning(_table(data, "learning", LEARNING_KEYS, source), source, "learning")
    task = dict(_table(data, "task", TASK_KEYS, source))
    grid = dict(_table(data, "grid", GRID_KEYS, source))
    if "steps" in data:
        grid.setdefault("steps", data["steps"])
    record_every = data.get("record_every", 0)
    if not isinstance(record_every, int) or record_every < 0:
        raise _fail(source, "record_every", f"must be a whole number >= 0, got {record_every!r}")
    networks = data.get("networks")
    if not isinstance(networks, list) or not networks:
        raise _fail(source, "networks", "give at least one [[networks]] entry with file = ..., "
                    "generate = ... or board = ...")
    runs: list[dict] = []
    for n, entry in enumerate(networks):
        where = f"networks[{n}]"
        if not isinstance(entry, dict):
            raise _fail(source, where, "must be a table with file, generate or board")
        bad = set(entry) - NETWORK_KEYS
        if bad:
            raise _fail(source, f"{where}.{sorted(bad)[0]}",
                        f"unknown key; allowed: {', '.join(sorted(NETWORK_KEYS))}")
        kinds = [k for k in NETWORK_SOURCES if k in entry]
        if len(kinds) != 1:
            raise _fail(source, where, "give exactly one of file, generate, board, emulate, bias")
        kind = kinds[0]
        value = entry[kind]
        if not isinstance(value, str) or not value:
            raise _fail(source, f"{where}.{kind}", f"must be a non-empty string, got {value!r}")
        if kind == "file":
            p = Path(_expand(value, source, f"{where}.file"))
            value = str(p if p.is_absolute() else (folder / p).resolve())
            if not Path(value).is_file():
                raise _fail(source, f"{where}.file", f"no such network file: {value}")
        elif kind == "generate":
            from learnboard.generate import from_spec

            try:
                from_spec(value)
            except InputError as exc:
                raise _fail(source, f"{where}.generate", str(exc)) from None
        else:  # a board profile: simulated with its device models, or emulated (firmware)
            from learnboard.boards import load_board

            try:
                load_board(value)
            except InputError as exc:
                raise _fail(source, f"{where}.{kind}", str(exc)) from None
        label = entry.get("label") or (Path(value).stem if kind == "file" else value)
        net = {"kind": kind, "value": value, "label": str(label),
               "imperfect": bool(entry.get("imperfect", False))}
        if kind == "bias":  # the learning-bias study on the board twin (studies/paper/bias.py)
            m = entry.get("mismatch", 1.0)
            if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m < 1e3:
                raise _fail(source, f"{where}.mismatch", f"must be a number >= 0 (the twin "
                            f"mismatch, x the emulated board's), got {m!r}")
            d = entry.get("debias", "none")
            if d not in DEBIAS:
                raise _fail(source, f"{where}.debias", f"{d!r} is not a remedy; use "
                            f"{', '.join(DEBIAS)}")
            if grid.get("tolerance") or entry.get("tolerance"):
                raise _fail(source, f"{where}.tolerance", "a bias network runs at fixed lambda; "
                            "drop tolerance")
            net.update(mismatch=float(m), debias=d)
            if not entry.get("label"):
                net["label"] = f"{value} mismatch {m:g} {d}"
        elif "mismatch" in entry or "debias" in entry:
            key = "mismatch" if "mismatch" in entry else "debias"
            raise _fail(source, f"{where}.{key}", "only for a bias network (bias = \"gen2-clln\")")
        for sub in ("learning", "task"):
            if not isinstance(entry.get(sub, {}), dict):
                raise _fail(source, f"{where}.{sub}", f"must be a table, got {entry[sub]!r}")
        learn = {**learning, **_learning(entry.get("learning", {}), source, f"{where}.learning")}
        runs += _expand_one(net, learn, {**task, **entry.get("task", {})},
                            {**grid, **{k: entry[k] for k in GRID_KEYS if k in entry}},
                            record_every, source, where)
    return runs


def _expand_one(net: dict, learning: dict, task: dict, grid: dict, record_every: int,
                source: str, where: str) -> list[dict]:
    kind = task.get("kind", "notebook")
    if kind not in TASK_KINDS:
        raise _fail(source, "task.kind", f"{kind!r} is not a task kind; use {', '.join(TASK_KINDS)}")
    coeffs = _coeffs(task.get("coeffs", NOTEBOOK_COEFFS), source, "task.coeffs")
    train_size = task.get("train_size", 20)
    if not isinstance(train_size, int) or isinstance(train_size, bool) or train_size < 1:
        raise _fail(source, "task.train_size", f"must be a whole number >= 1, got {train_size!r}")
    noises = _number_list(grid.get("noise", task.get("noise", 0.0)), source, "task.noise")
    lam_value = grid.get("lam", [] if grid.get("tolerance") else [0.0])
    lams = _number_list(lam_value, source, "grid.lam") if lam_value != [] else []
    tau_value = grid.get("tolerance", [])
    taus = _number_list(tau_value, source, "grid.tolerance", positive=True) if tau_value != [] else []
    if not lams and not taus:
        raise _fail(source, "grid.lam", "give lambda values (lam) or tolerances (tolerance)")
    k0s = _number_list(grid.get("k0", 1.0), source, "grid.k0", positive=True)
    inits = grid.get("init", ["uniform"])
    inits = inits if isinstance(inits, list) else [inits]
    if not inits:
        raise _fail(source, "grid.init", "the list is empty; give at least one init mode")
    from learnboard.engine.config import INITS

    for i in inits:
        if i not in INITS:
            raise _fail(source, "grid.init", f"{i!r} is not an init mode; use {', '.join(INITS)}")
    seeds = grid.get("seeds", [0])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if not 1 <= seeds <= MAX_VALUES:
            raise _fail(source, "grid.seeds", f"a count of seeds must lie in 1..{MAX_VALUES}, got {seeds}")
        seeds = list(range(seeds))
    seeds = _number_list(seeds, source, "grid.seeds", integer=True)
    steps = _number_list(grid.get("steps", 1000), source, "steps", integer=True)
    replicas, perturb = _replicas(grid, net, source, where)
    # "low" ignores k0: one run per low init, not one per k0
    starts = [(i, k) for i in inits for k in (k0s if i != "low" else [None])]
    schedules = [("lam", v) for v in lams] + [("tolerance", v) for v in taus]
    total = len(seeds) * len(noises) * len(starts) * len(schedules) * len(steps) * (replicas or 1)
    if total > MAX_RUNS:
        raise _fail(source, where, f"the grid expands to {total} runs; at most {MAX_RUNS} per "
                    "network (split the sweep)")
    runs = []
    for seed, noise, (init, k0), (mode, value), n_steps in itertools.product(
            seeds, noises, starts, schedules, steps):
        run = {
            "network": net,
            "task": {"kind": kind, "coeffs": coeffs, "train_size": train_size,
                     "noise": noise, "seed": seed},
            "learning": learning,
            "init": init, "k0": k0,
            "lam": value if mode == "lam" else 0.0,
            "tolerance": value if mode == "tolerance" else None,
            "steps": n_steps, "record_every": record_every,
        }
        if replicas is None:  # no replica keys: the ids of plain runs stay as they were
            run["id"] = run_id(run)
            runs.append(run)
            continue
        for i in range(replicas):
            rep = {**run, "replica": i, "perturb": perturb}
            rep["id"] = run_id(rep)
            runs.append(rep)
    return runs


def _replicas(grid: dict, net: dict, source: str, where: str) -> tuple[int | None, float]:
    """``grid.replicas`` (None when absent) and ``grid.perturb`` (relative, >= 0)."""
    if "replicas" not in grid:
        if "perturb" in grid:
            raise _fail(source, "grid.perturb", "perturb needs replicas = N (how many runs per "
                        "grid point)")
        return None, 0.0
    n = grid["replicas"]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_VALUES:
        raise _fail(source, "grid.replicas", f"must be a whole number in 1..{MAX_VALUES}, got {n!r}")
    if net["kind"] != "file" and net["kind"] != "generate":
        raise _fail(source, f"{where}.replicas", "replicas perturb the starting conductances of "
                    "a linear network (file or generate), not a board's")
    eps = _number_list(grid.get("perturb", 0.0), source, "grid.perturb")
    if len(eps) != 1:
        raise _fail(source, "grid.perturb", f"needs one number, got {grid['perturb']!r}")
    if eps[0] == 0 and n > 1:
        raise _fail(source, "grid.perturb", "with perturb 0 the replicas would be one run N "
                    "times; give perturb = 1e-12 (relative) for example")
    return n, eps[0]


def run_id(run: dict) -> str:
    """A readable, content-derived name: equal runs get equal ids across restarts."""
    body = {k: v for k, v in run.items() if k != "id"}
    digest = hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()[:10]
    net = "".join(c if c.isalnum() or c in "-_." else "-" for c in run["network"]["label"])[:40]
    sched = f"tau{run['tolerance']:g}" if run["tolerance"] is not None else f"lam{run['lam']:g}"
    rep = f"_r{run['replica']}" if "replica" in run else ""
    return f"{net}_s{run['task']['seed']}_{sched}{rep}_{digest}"


_VARIABLE = re.compile(r"\$(\w+|\{\w+\})")


def _expand(value: str, source: str | None, field: str) -> str:
    """``value`` with ``~`` and ``$NAME`` / ``${NAME}`` expanded; an unset variable is an error."""
    unset = [m.strip("{}") for m in _VARIABLE.findall(value) if m.strip("{}") not in os.environ]
    if unset:
        from learnboard.reference import ENV, SOURCE

        hint = (f"; it names the folder of the authors' reference networks, {SOURCE}"
                if ENV in unset else "")
        raise _fail(source, field, f"environment variable {', '.join(unset)} is not set "
                                   f"(in {value!r}){hint}")
    return os.path.expanduser(os.path.expandvars(value))
