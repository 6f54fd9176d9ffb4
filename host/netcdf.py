"""A run folder as one NetCDF file (``learnboard export RUN_DIR --format netcdf``).

The dataset holds the same numbers as the CSV tables (:mod:`.tables`), arranged for lab
tools (xarray, MATLAB, R, ncview): one value per step, the rows a restore superseded left
out.

- dimension ``step``: every scalar telemetry field (``err``, ``rel_err``, ``pwr``, ``lam``,
  ``true_pwr``, ``n``, ``dt``, ... whatever the records carry; ``i`` is the log index);
- ``(step, edge)``: ``k``, the edge states, when the records carry them;
- ``(step, node)``: ``v``, the node voltages, when the records carry them; both with a
  ``units`` attribute (``code`` for logs recorded by earlier hosts, which logged codes);
- global attributes: the run's metadata (:func:`run_attributes`).

The file is NetCDF3 (64-bit offset), written by xarray's ``scipy`` engine: scipy is a
learnboard dependency already, so the only extra package is xarray (``pip install
'learnboard[lab]'``), and every NetCDF reader opens NetCDF3. NetCDF3 has no 64-bit
integers: an integer column that does not fit 32 bits is stored as float64 (exact up to
2**53).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from learnboard.errors import InputError, LearnboardError

from .tables import open_run, run_tables

INSTALL_HINT = "NetCDF export needs xarray: pip install 'learnboard[lab]' (or pip install xarray)"
_I32 = np.iinfo(np.int32)


def _xarray():
    try:
        import xarray
    except ImportError:
        raise LearnboardError(INSTALL_HINT) from None
    return xarray


def _netcdf3(col: np.ndarray) -> np.ndarray:
    """``col`` in a type NetCDF3 stores: int32 when it fits, else float64; text as str."""
    if col.dtype.kind in "iub":
        c = col.astype(np.int64)
        if c.size == 0 or (c.min() >= _I32.min and c.max() <= _I32.max):
            return c.astype(np.int32)
        return c.astype(np.float64)
    if col.dtype.kind == "f":
        return col.astype(np.float64)
    return np.array([str(x) for x in col], dtype=str)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_attributes(run_dir: str | Path) -> dict[str, Any]:
    """The run's metadata as NetCDF attributes (text and numbers only; absent ones left out):
    ``learnboard_version``, ``run``, ``task``, ``board``, ``board_id``, ``port``,
    ``firmware_version``, ``description_hash``, ``protocol``, ``calibration_file``,
    ``calibration_sha256``, ``seed``, ``schedule`` (JSON text), ``tlm_units`` (JSON text)."""
    from learnboard import __version__

    from .runlog import read_log

    rf = open_run(run_dir)
    config = rf.read_config()
    start: dict = {}
    for r in read_log(rf.log_path, warn=False):  # the data's reading warns once
        if r.get("kind") == "event" and r.get("name") == "start":
            start = r  # the latest session's hello (a resumed run has several)
    hello = start.get("hello") if isinstance(start.get("hello"), dict) else {}
    attrs: dict[str, Any] = {
        "learnboard_version": __version__,
        "run": rf.path.name,
        "task": config.get("task"),
        "board": hello.get("board") or config.get("board"),
        "board_id": hello.get("uid") or config.get("uid"),  # the MCU's unique id (protocol 3)
        "port": start.get("port") or config.get("port"),
        "firmware_version": hello.get("fw"),
        "description_hash": hello.get("desc_hash") or config.get("desc_hash"),
        "protocol": hello.get("proto"),
        "seed": config.get("seed"),
        "tolerance": config.get("tolerance"),
    }
    if config.get("schedule") is not None:
        attrs["schedule"] = json.dumps(config["schedule"], sort_keys=True)
    if isinstance(start.get("tlm_units"), dict):
        attrs["tlm_units"] = json.dumps(start["tlm_units"], sort_keys=True)
    if rf.calibration_path.is_file():
        attrs["calibration_file"] = rf.calibration_path.name
        attrs["calibration_sha256"] = _sha256(rf.calibration_path)
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        if v is None or isinstance(v, (bool, dict, list)):
            continue  # NetCDF3 attributes are text or numbers
        out[k] = v
    return out


def run_dataset(run_dir: str | Path):
    """The run at ``run_dir`` as an ``xarray.Dataset`` (see the module docstring)."""
    xr = _xarray()
    tables = run_tables(run_dir)
    tlm = tables["telemetry"]
    if "step" in tlm and tlm["step"].size:
        keep = np.flatnonzero(tlm["superseded"] == 0)
        keep = keep[np.argsort(tlm["step"][keep], kind="stable")]
    else:
        keep = np.zeros(0, dtype=np.int64)
    steps = tlm["step"][keep].astype(np.int64) if keep.size else np.zeros(0, dtype=np.int64)
    data_vars: dict[str, Any] = {}
    for name, col in tlm.items():
        if name in ("step", "superseded"):
            continue
        data_vars[name] = (("step",), _netcdf3(col[keep]))
    kept_i = tlm["i"][keep].astype(np.int64) if keep.size else np.zeros(0, dtype=np.int64)
    row_of = {int(i): r for r, i in enumerate(kept_i)}
    for table, field, dim in (("edges", "k", "edge"), ("nodes", "v", "node")):
        long = tables.get(table)
        if long is None:
            continue
        width = int(long[dim].max()) + 1
        grid = np.full((steps.size, width), np.nan)
        for i, j, value in zip(long["i"], long[dim], long[field], strict=True):
            r = row_of.get(int(i))
            if r is not None:  # rows a restore superseded are left out, as for the scalars
                grid[r, int(j)] = value
        data_vars[field] = (("step", dim), grid, {"units": str(long["unit"][0])})
    ds = xr.Dataset(data_vars, coords={"step": _netcdf3(steps)}, attrs=run_attributes(run_dir))
    for dim in ("edge", "node"):
        if dim in ds.dims:
            ds = ds.assign_coords({dim: np.arange(ds.sizes[dim], dtype=np.int32)})
    return ds


def export_netcdf(run_dir: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the run as ``<out_dir>/<run folder name>.nc`` (default: ``RUN_DIR/export``)."""
    ds = run_dataset(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "export"
    path = out / f"{Path(run_dir).resolve().name}.nc"
    try:
        out.mkdir(parents=True, exist_ok=True)
        ds.to_netcdf(path, engine="scipy", format="NETCDF3_64BIT")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror}; choose another folder with --out",
                         source=str(path)) from None
    return path
