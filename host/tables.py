"""Tidy tables from a run folder's telemetry log (``learnboard export RUN_DIR --csv``).

A table is an ordered ``dict`` of column name -> numpy array, one row per observation:

- ``telemetry``: one row per ``tlm`` record (``i``, ``t``, ``step``, ``seq``, ``err``,
  ``rel_err``, ``pwr``, ``lam``, ... every scalar field the records carry), plus
  ``superseded`` (1 when a later record covers the same step after a restore: use the rows
  with 0 for one value per step);
- ``events``: one row per ``event`` record (``name``, ``step``, scalar fields, and the
  rest as JSON in ``data``);
- ``checkpoints``: ``checkpoint`` and ``restore`` records (``kind`` says which);
- ``summary``: ``key``/``value`` rows of ``summary.json`` (or of the log's summary record);
- ``edges`` / ``nodes``: long tables (``i``, ``step``, ``edge``/``node``, value, ``unit``) of
  the per-edge states ``k`` and node voltages ``v`` that telemetry records carry, when any
  do; ``unit`` is what the run's ``start`` event says (``V``; ``taps | V`` for edges), or
  ``code`` for logs recorded by earlier hosts, which logged the board's codes.

Reading goes through :func:`learnboard.host.runlog.read_log`, so a record cut by a crash
at the end of the log is ignored, and damaged records inside it are skipped with one
warning line on stderr (count and byte offsets).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from learnboard.errors import InputError

Table = dict[str, np.ndarray]

TLM_FIRST = ("i", "t", "step", "seq", "err", "rel_err", "pwr", "lam", "n", "dt", "dtmax", "flt",
             "bad", "board_t", "supersedes")
EVENT_FIRST = ("i", "t", "name", "step")
CKPT_FIRST = ("i", "t", "kind", "step", "file", "supersedes_from", "reason")
VECTOR_FIELDS = {"k": ("edges", "edge"), "v": ("nodes", "node")}


def open_run(run_dir: str | Path):
    """The :class:`RunFolder` at ``run_dir``; a clear error when it is not a run folder."""
    from .runfolder import RunFolder

    path = Path(run_dir)
    if not path.is_dir():
        raise InputError("no such run folder; give a folder made by `learnboard train` "
                         "(runs/<date>-<name>/)", source=str(path))
    missing = [n for n in ("config.json", "telemetry.msgpack") if not (path / n).is_file()]
    if missing:
        raise InputError(f"not a run folder: {' and '.join(missing)} missing; give a folder made by "
                         "`learnboard train` (runs/<date>-<name>/)", source=str(path))
    return RunFolder(path)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _column(values: list) -> np.ndarray:
    """A typed column: float (NaN for missing), int, bool->int, or str ("" for missing)."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (bool, np.bool_)) for v in present):
        return np.array([int(bool(v)) if v is not None else 0 for v in values], dtype=np.int64)
    if present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        if len(present) == len(values) and all(isinstance(v, int) for v in present):
            return np.array(values, dtype=np.int64)
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    return np.array(["" if v is None else (v if isinstance(v, str) else json.dumps(v))
                     for v in values], dtype=object)


def records_table(records: list[dict], first: tuple[str, ...], skip: tuple[str, ...] = ()) -> Table:
    """Columns of the scalar fields of ``records`` (``first`` in order, then the rest sorted)."""
    keys: set[str] = set()
    for r in records:
        keys.update(k for k, v in r.items() if _is_scalar(v))
    keys -= set(skip)
    order = [k for k in first if k in keys] + sorted(keys - set(first))
    return {k: _column([r.get(k) for r in records]) for k in order}


def _superseded(steps: np.ndarray) -> np.ndarray:
    """1 for every record but the last one (highest index) of its step."""
    if steps.size == 0:
        return np.zeros(0, dtype=np.int64)
    rev = steps[::-1]
    _, last_rev = np.unique(rev, return_index=True)
    keep = np.zeros(steps.size, dtype=bool)
    keep[steps.size - 1 - last_rev] = True
    return (~keep).astype(np.int64)


def _long(records: list[dict], field: str, label: str) -> Table | None:
    rows = [r for r in records if isinstance(r.get(field), list) and r[field]]
    if not rows:
        return None
    lengths = np.array([len(r[field]) for r in rows])
    values = np.concatenate([np.asarray(r[field], dtype=float) for r in rows])
    return {"i": np.repeat([r["i"] for r in rows], lengths).astype(np.int64),
            "step": np.repeat([r.get("step", -1) for r in rows], lengths).astype(np.int64),
            label: np.concatenate([np.arange(n) for n in lengths]).astype(np.int64),
            field: values}


def run_tables(run_dir: str | Path) -> dict[str, Table]:
    """Every tidy table of the run folder at ``run_dir`` (see the module docstring)."""
    from .runlog import read_log

    rf = open_run(run_dir)
    records = read_log(rf.log_path)
    by_kind: dict[str, list[dict]] = {}
    for r in records:
        by_kind.setdefault(str(r.get("kind", "")), []).append(r)
    tlm = by_kind.get("tlm", [])
    tables: dict[str, Table] = {}
    t = records_table(tlm, TLM_FIRST, skip=("kind",))
    if tlm:
        t["superseded"] = _superseded(t["step"].astype(np.int64))
    tables["telemetry"] = t
    events = by_kind.get("event", [])
    ev = records_table(events, EVENT_FIRST, skip=("kind",))
    extra = [{k: v for k, v in r.items() if not _is_scalar(v)} for r in events]
    if any(extra):
        ev["data"] = np.array([json.dumps(x, sort_keys=True) if x else "" for x in extra], dtype=object)
    tables["events"] = ev
    tables["checkpoints"] = records_table(by_kind.get("checkpoint", []) + by_kind.get("restore", []),
                                          CKPT_FIRST)
    if tables["checkpoints"]:
        order = np.argsort(tables["checkpoints"]["i"], kind="stable")
        tables["checkpoints"] = {k: v[order] for k, v in tables["checkpoints"].items()}
    summary = rf.read_summary() if rf.summary_path.is_file() else None
    if summary is None and by_kind.get("summary"):
        summary = {k: v for k, v in by_kind["summary"][-1].items() if k not in ("kind", "i", "t")}
    if summary is not None:
        keys = list(summary)
        tables["summary"] = {"key": np.array(keys, dtype=object),
                             "value": np.array([_text(summary[k]) for k in keys], dtype=object)}
    start = next((e for e in events if e.get("name") == "start"), {})
    units = start.get("tlm_units") if isinstance(start.get("tlm_units"), dict) else {}
    for field, (name, label) in VECTOR_FIELDS.items():
        long = _long(tlm, field, label)
        if long is not None:
            # a log without tlm_units was recorded by a protocol-1 host: codes, not volts
            long["unit"] = np.full(len(long[field]), str(units.get(field, "code")), dtype=object)
            tables[name] = long
    return tables


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (int, str)):
        return str(v)
    return json.dumps(v)


def _strings(col: np.ndarray) -> np.ndarray:
    """Text of a column: floats in shortest round-trip form, NaN as empty."""
    if col.dtype.kind == "f":
        s = col.astype(str).astype(object)  # numpy's shortest round-trip repr
        s[np.isnan(col)] = ""
        return s
    if col.dtype.kind in "iub":
        return col.astype(np.int64).astype(str).astype(object)
    return col.astype(object)


def write_table(table: Table, path: str | Path) -> Path:
    """Write one table as CSV with a header row."""
    path = Path(path)
    cols = list(table)
    try:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(cols)
            if cols:
                w.writerows(zip(*(_strings(table[c]) for c in cols), strict=True))
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}; choose another folder with --out",
                         source=str(path)) from None
    return path


def export_csv(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Write every table of the run as ``<out_dir>/<table>.csv`` (default: ``RUN_DIR/export``)."""
    tables = run_tables(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "export"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror}", source=str(out),
                         field="--out") from None
    return [write_table(t, out / f"{name}.csv") for name, t in tables.items()]


def read_table(path: str | Path) -> Table:
    """Read a CSV written by :func:`write_table` back (numeric columns as float, others str)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return {}
    cols = list(zip(*rows[1:], strict=True)) if len(rows) > 1 else [() for _ in rows[0]]
    out: Table = {}
    for name, vals in zip(rows[0], cols, strict=True):
        arr = np.array(vals, dtype=object)
        try:
            num = np.where(arr == "", "nan", arr).astype(float)
        except ValueError:
            out[name] = arr
        else:
            out[name] = num
    return out


def current_telemetry(tables: dict[str, Table]) -> Table:
    """Telemetry rows that stand for their step, sorted by step."""
    t = tables["telemetry"]
    if not t or "step" not in t:
        return {}
    keep = t["superseded"] == 0
    order = np.argsort(t["step"][keep], kind="stable")
    return {k: v[keep][order] for k, v in t.items()}
