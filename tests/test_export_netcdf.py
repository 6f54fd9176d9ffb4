"""``learnboard export RUN --format netcdf``: a trained run opens in xarray with the CSV
export's numbers, the run's metadata as attributes, per-edge and per-node variables on
their own dimensions, codes from older runs labelled as codes, and a one-line error
without xarray."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import RunLog
from learnboard.host.tables import export_csv, read_table

xr = pytest.importorskip("xarray")


def _open(path):
    with xr.open_dataset(path, engine="scipy") as ds:
        return ds.load()


def test_trained_run_exports_the_csv_numbers_with_its_metadata(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", "--steps", "40", "--every", "10", "--seed", "5", "--runs", str(runs),
                 "--no-plot", "--quiet", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)["run_dir"]
    assert main(["export", run, "--format", "netcdf"]) == 0
    path = capsys.readouterr().out.strip()
    assert path.endswith(".nc")
    ds = _open(path)
    csv = read_table(next(p for p in export_csv(run, tmp_path / "csv") if p.name == "telemetry.csv"))
    keep = csv["superseded"] == 0
    assert ds["step"].values.tolist() == [10, 20, 30, 40] == csv["step"][keep].tolist()
    for name in ("err", "rel_err", "pwr", "lam", "dt", "board_t", "i"):
        assert ds[name].dims == ("step",)
        assert ds[name].values.astype(float).tolist() == csv[name][keep].tolist(), name
    config = json.loads((RunFolder(run).config_path).read_text())
    assert ds.attrs["seed"] == 5 and ds.attrs["board"] == "gen2-clln"
    assert ds.attrs["description_hash"] == config["desc_hash"]
    assert ds.attrs["board_id"] == config["uid"] and len(ds.attrs["board_id"]) == 16  # 8 bytes in hex
    assert ds.attrs["firmware_version"] and ds.attrs["learnboard_version"]
    assert json.loads(ds.attrs["schedule"]) == config["schedule"]


def _coded_run(tmp_path, *, units):
    """A run as an earlier host recorded it (codes, no ``tlm_units``) or as today's does,
    with a restore that redoes step 20 and a stored calibration."""
    rf = RunFolder.create(tmp_path, "coded")
    rf.write_config({"task": "regression", "board": "gen2-clln", "seed": 2})
    rf.write_calibration({"board": "gen2-clln", "gain": [1.0, 1.01]})
    log = RunLog(rf.log_path)
    start = {"kind": "event", "name": "start", "step": 0, "port": "/dev/ttyACM0",
             "hello": {"proto": 2, "fw": "0.1.0", "board": "gen2-clln", "desc_hash": "ab" * 32}}
    if units:
        start["tlm_units"] = {"v": "V", "k": "taps | V"}
    log.append(start)
    for step, k, v, extra in ((10, [3, 1551, 7], [124, 248], {}), (20, [4, 1500, 8], [130, 250], {}),
                              (20, [5, 1400, 9], [131, 251], {"supersedes": True}),
                              (30, [6, 1300, 10], [132, 252], {})):
        log.append({"kind": "tlm", "step": step, "err": 0.1 / step, "pwr": 1e-4, "lam": 0.0,
                    "k": k, "v": v, **extra})
    log.close()
    return rf


@pytest.mark.parametrize("units", [False, True])
def test_edges_and_nodes_get_their_dimensions_and_units(tmp_path, units, capsys):
    rf = _coded_run(tmp_path, units=units)
    assert main(["export", str(rf.path), "--format", "netcdf", "--out", str(tmp_path / "o")]) == 0
    ds = _open(capsys.readouterr().out.strip())
    assert ds["k"].dims == ("step", "edge") and ds["v"].dims == ("step", "node")
    assert ds.sizes == {"step": 3, "edge": 3, "node": 2}
    # the record a restore superseded is left out, as the CSV's superseded column says
    assert ds["k"].values.tolist() == [[3, 1551, 7], [5, 1400, 9], [6, 1300, 10]]
    assert ds["v"].sel(step=30).values.tolist() == [132, 252]
    assert (ds["k"].attrs["units"], ds["v"].attrs["units"]) == (
        ("taps | V", "V") if units else ("code", "code"))
    cal = rf.calibration_path.read_bytes()
    assert ds.attrs["calibration_file"] == "calibration.json"
    assert ds.attrs["calibration_sha256"] == hashlib.sha256(cal).hexdigest()
    assert ds.attrs["port"] == "/dev/ttyACM0" and ds.attrs["description_hash"] == "ab" * 32


def test_without_xarray_the_command_says_what_to_install(tmp_path, capsys, monkeypatch):
    rf = _coded_run(tmp_path, units=True)
    monkeypatch.setitem(sys.modules, "xarray", None)  # import xarray now fails
    assert main(["export", str(rf.path), "--format", "netcdf"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'learnboard[lab]'" in err and "\n" not in err and "Traceback" not in err
    assert not (rf.path / "export").exists()


def test_csv_and_netcdf_together_is_an_error(tmp_path, capsys):
    rf = _coded_run(tmp_path, units=True)
    assert main(["export", str(rf.path), "--csv", "--format", "netcdf"]) == 2
    assert "--format" in capsys.readouterr().err


def test_integers_beyond_32_bits_keep_their_value(tmp_path):
    from learnboard.host.netcdf import run_dataset

    rf = RunFolder.create(tmp_path, "big")
    rf.write_config({})
    log = RunLog(rf.log_path)
    log.append({"kind": "tlm", "step": 10, "err": 0.1, "pwr": 1.0, "lam": 0.0, "board_t": 2**40 + 1})
    log.close()
    assert np.asarray(run_dataset(rf.path)["board_t"].values).tolist() == [float(2**40 + 1)]
