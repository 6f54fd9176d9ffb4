"""``learnboard export``: log -> CSV -> the same numbers, a cut last record, restores,
and clear errors for a folder that is not a run folder."""

from __future__ import annotations

import numpy as np
import pytest
from learnboard.cli import main
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import RunLog, read_log
from learnboard.host.tables import export_csv, read_table, run_tables

from learnboard.errors import InputError


def make_run(tmp_path, *, steps=60, every=10, restore_at=30, redo_to=50, cut=True, board=None):
    """A small run folder as a session writes it: start/initial events, telemetry, a
    checkpoint every 20 steps, a restore that redoes steps, a summary; optionally a last
    record cut by a crash."""
    rf = RunFolder.create(tmp_path, "fixture")
    rf.write_config({"task": "regression", "board": "gen2-clln", "tolerance": 0.05})
    if board is not None:
        rf.write_board(board)
    rng = np.random.default_rng(0)
    log = RunLog(rf.log_path)
    log.append({"kind": "event", "name": "start", "step": 0, "port": "emulated",
                "hello": {"fw": "0.1.0", "caps": ["train"]}})
    log.append({"kind": "event", "name": "initial", "step": 0, "c0": 0.0123, "pwr": 7.1e-4,
                "true_pwr": 6.6e-4})
    n_edges = 32
    k = np.full(n_edges, 2.9)

    def tlm(step, seq, **extra):
        err = float(0.0123 * np.exp(-step / 40) * (1 + 0.01 * rng.standard_normal()))
        log.append({"kind": "tlm", "step": step, "seq": seq, "err": err, "rel_err": err / 0.0123,
                    "pwr": float(7e-4 * np.exp(-step / 200)), "lam": 0.0 if step < 30 else 1e-3 * step,
                    "n": 200, "dt": 34000, "dtmax": 35000, "flt": 0, "bad": 0,
                    "board_t": 1000 * step, **extra})

    seq = 0
    for step in range(every, steps + 1, every):
        tlm(step, seq)
        seq += 1
        if step % 20 == 0:
            k = np.clip(k + rng.normal(0, 0.3, n_edges), 0.75, 5.2)
            rf.write_checkpoint(step, {"k": k.tolist()})
            log.append({"kind": "checkpoint", "step": step, "file": rf.checkpoint_path(step).name})
            log.sync()
    log.append({"kind": "restore", "step": restore_at, "supersedes_from": 7, "reason": "board reset",
                "file": rf.checkpoint_path(20).name})
    for step in range(restore_at + every, redo_to + 1, every):
        tlm(step, seq, supersedes=True)
        seq += 1
    log.append({"kind": "event", "name": "done", "step": steps, "data": {"step": 50}})
    log.close()
    rf.write_summary({"run_dir": str(rf.path), "relative_error": 0.0107, "test_error": 0.0128,
                      "accuracy": None, "power": 2.7e-4, "true_power": 1.8e-4, "steps": steps,
                      "tolerance": 0.05, "reached": True, "initial_true_power": 6.6e-4,
                      "lambda": 0.06})
    if cut:
        with open(rf.log_path, "ab") as fh:  # a crash cut the last record in half
            fh.write(b"\x8a\xa4kind\xa3tlm\xa4step\xcd\x01")
    return rf


def test_export_round_trips_the_log_numbers(tmp_path):
    rf = make_run(tmp_path)
    records = read_log(rf.log_path)
    paths = export_csv(rf.path, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["checkpoints.csv", "events.csv", "summary.csv",
                                             "telemetry.csv"]
    tlm = [r for r in records if r["kind"] == "tlm"]
    t = read_table(tmp_path / "out" / "telemetry.csv")
    assert len(t["i"]) == len(tlm)  # the cut record is not a row
    for col in ("i", "t", "step", "seq", "err", "rel_err", "pwr", "lam", "board_t"):
        # bit for bit: the CSV holds each float's shortest exact text
        assert np.array_equal(t[col], np.array([r[col] for r in tlm], dtype=float)), col
    # steps 40 and 50 were redone after the restore: the first records of them are superseded
    sup = dict(zip(zip(t["step"], t["i"], strict=True), t["superseded"], strict=True))
    first40 = min(i for s, i in sup if s == 40)
    last40 = max(i for s, i in sup if s == 40)
    assert sup[(40, first40)] == 1 and sup[(40, last40)] == 0
    assert [v for (s, _), v in sup.items() if s == 60] == [0]
    assert t["superseded"].sum() == 2
    assert np.array_equal(t["supersedes"], [1.0 if r.get("supersedes") else 0.0 for r in tlm])
    ev = read_table(tmp_path / "out" / "events.csv")
    assert ev["name"].tolist() == ["start", "initial", "done"]
    assert ev["c0"][1] == 0.0123 and np.isnan(ev["c0"][0])
    assert '"fw": "0.1.0"' in ev["data"][0]
    ck = read_table(tmp_path / "out" / "checkpoints.csv")
    assert ck["kind"].tolist() == ["checkpoint"] * 3 + ["restore"]
    assert ck["step"].tolist() == [20, 40, 60, 30] and ck["supersedes_from"][3] == 7
    sm = read_table(tmp_path / "out" / "summary.csv")
    summary = dict(zip(sm["key"], sm["value"], strict=True))
    assert float(summary["relative_error"]) == 0.0107 and summary["accuracy"] == ""


def test_edge_and_node_vectors_become_long_tables(tmp_path):
    rf = RunFolder.create(tmp_path, "vec")
    rf.write_config({})
    log = RunLog(rf.log_path)
    log.append({"kind": "tlm", "step": 10, "err": 1.0, "pwr": 1.0, "lam": 0.0, "k": [1.0, 2.0, 3.0],
                "v": [0.1, 0.2]})
    log.append({"kind": "tlm", "step": 20, "err": 0.5, "pwr": 1.0, "lam": 0.0, "k": [1.5, 2.5, 3.5],
                "v": [0.3, 0.4]})
    log.close()
    tables = run_tables(rf.path)
    assert tables["edges"]["edge"].tolist() == [0, 1, 2, 0, 1, 2]
    assert tables["edges"]["k"].tolist() == [1.0, 2.0, 3.0, 1.5, 2.5, 3.5]
    assert tables["edges"]["step"].tolist() == [10] * 3 + [20] * 3
    assert tables["nodes"]["v"].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert "k" not in tables["telemetry"]


def test_export_cli_writes_into_the_run_folder(tmp_path, capsys):
    rf = make_run(tmp_path)
    assert main(["export", str(rf.path), "--csv"]) == 0
    out = capsys.readouterr().out
    assert "telemetry.csv" in out and (rf.path / "export" / "telemetry.csv").stat().st_size > 100


@pytest.mark.parametrize("setup", ["missing", "empty", "no-log"])
def test_export_refuses_what_is_not_a_run_folder(tmp_path, capsys, setup):
    d = tmp_path / "x"
    if setup != "missing":
        d.mkdir()
    if setup == "no-log":
        (d / "config.json").write_text("{}")
    with pytest.raises(InputError, match="run folder"):
        run_tables(d)
    assert main(["export", str(d), "--csv"]) == 2
    err = capsys.readouterr().err
    assert str(d) in err and "learnboard train" in err and "Traceback" not in err


@pytest.mark.parametrize("units, expected", [({"v": "V", "k": "taps | V"}, ("V", "taps | V")),
                                             (None, ("code", "code"))])
def test_node_and_edge_tables_say_their_unit(tmp_path, units, expected):
    """Runs record telemetry in volts and say so in their start event; a run recorded by
    an earlier host (codes, no ``tlm_units``) is exported as codes, not mistaken for volts."""
    rf = RunFolder.create(tmp_path, "units")
    rf.write_config({"task": "regression", "board": "gen2-clln"})
    log = RunLog(rf.log_path)
    start = {"kind": "event", "name": "start", "step": 0, "hello": {"proto": 2}}
    if units is not None:
        start["tlm_units"] = units
    log.append(start)
    log.append({"kind": "tlm", "step": 10, "seq": 0, "err": 0.1, "pwr": 1e-4, "lam": 0.0,
                "v": [0.1, 0.2] if units else [124, 248], "k": [3, 1.25] if units else [3, 1551]})
    log.close()
    tables = run_tables(rf.path)
    assert (set(tables["nodes"]["unit"]), set(tables["edges"]["unit"])) == (
        {expected[0]}, {expected[1]})
