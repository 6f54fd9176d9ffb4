"""Every file the host reads back is checked by one schema layer (learnboard.host.schemas):
a malformed file of each kind is one InputError naming the file, the field, the value at
fault and what to do; a valid file comes back whole (no key dropped or changed)."""

from __future__ import annotations

import json
import math

import pytest
from learnboard.host import schemas as S
from learnboard.host.calibration import load_calibration
from learnboard.host.follow import run_holding
from learnboard.host.runfolder import RunFolder, read_json
from learnboard.host.schedule import load_schedule
from learnboard.host.session import resume_checkpoint, resume_config

from learnboard.boards import load_board
from learnboard.errors import InputError

BOARD = load_board("gen2-clln")
N = BOARD.n_edges
CHECKPOINT = {"step": 40, "k": [2.5] * N, "c0": 0.02, "c0_test": math.nan, "p0": 1e-4, "tp0": 2e-4,
              "elapsed": 1.5, "lam": 1e-9,
              "schedule": {"controllers": {"0": {"lam": 1e-9, "s0": 30}}, "reached_at": 30}}
CONFIG = {"task": "regression", "alpha": 0.5, "eta": 0.4, "telemetry_every": 10, "checkpoint_every": 20,
          "seed": 1, "name": "r", "board": "gen2-clln", "version": 2,
          "schedule": {"phases": [{"kind": "tolerance", "steps": None, "lam": 0.0, "lam_to": None,
                                   "tau": 0.05, "start": 1e-9, "every": 100, "up": 1.05, "down": 0.5,
                                   "alpha": None, "alpha_to": None, "eta": None, "eta_to": None}],
                       "init": "uniform", "chunk": 50, "seed": 0,
                       "stop": {"steps": 100, "time": None, "settled": False, "settle_window": 300,
                                "settle_rel": 0.02}}}
CALIBRATION = {"format": 1, "board": BOARD.name, "desc_hash": "cd" * 32,
               "adc": {"channels": {"0": {"gain": 1.01, "offset_v": 0.002}}},
               "edges": {"n": N, "kind": "transistor", "vt": [0.7] * N, "beta": [1e-4] * N},
               "twin": {"measured_nets": [0], "nets": 1}, "missing": [], "sha256": None}


def _set(data: dict, path: str, value):
    """``data`` (a copy) with the value at ``a.b.0.c`` replaced (``value`` DROP: removed)."""
    data = json.loads(json.dumps(data))
    *parents, last = path.split(".")
    d = data
    for p in parents:
        d = d[int(p)] if isinstance(d, list) else d[p]
    last = int(last) if isinstance(d, list) else last
    if value is DROP:
        del d[last]
    else:
        d[last] = value
    return data


DROP = object()


def _refused(fn, *parts: str) -> str:
    with pytest.raises(InputError) as err:
        fn()
    msg = str(err.value)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, f"{part!r} not in: {msg}"
    return msg


# -- checkpoints: the newest is refused by file and field; the older one stays ------------

def _run(tmp_path, newest: dict | bytes) -> RunFolder:
    rf = RunFolder.create(tmp_path, "schema")
    rf.config_path.write_text(json.dumps(CONFIG))
    rf.write_checkpoint(20, {k: v for k, v in CHECKPOINT.items() if k != "step"})
    rf.checkpoint_path(40).write_text(json.dumps(newest) if isinstance(newest, dict) else newest.decode())
    return rf


def test_a_valid_checkpoint_resumes_whole(tmp_path):
    rf = _run(tmp_path, CHECKPOINT)
    ck = resume_checkpoint(rf, BOARD)
    assert ck["file"] == "step-000000040.json"
    assert {k: v for k, v in ck.items() if k != "file"}.keys() == CHECKPOINT.keys()
    assert ck["schedule"] == CHECKPOINT["schedule"] and math.isnan(ck["c0_test"])


@pytest.mark.parametrize("path, value, parts", [
    ("step", -3, ["step: -3 is not a whole number >= 0"]),
    ("step", True, ["step: True is not a whole number"]),
    ("c0", DROP, ["c0: is missing"]),
    ("k", "x", ["k: 'x' is not a list"]),
    ("k.3", "a", ["k[3]: 'a' is not a finite number"]),
    ("k.3", math.inf, ["k[3]: inf is not a finite number"]),
    ("c0", None, ["c0: None is not a finite number (the initial error)"]),
    ("elapsed", -1.0, ["elapsed: -1.0 is not a finite number >= 0 (seconds)"]),
    ("lam", 2, ["lam: 2 is not a number >= 0 and <= 1"]),
    ("schedule", [], ["schedule: [] is not an object"]),
    ("schedule.controllers.0.s0", -1, ["schedule.controllers.0.s0: -1 is not a whole number >= 0"]),
    ("schedule.controllers.0.s0", DROP, ["schedule.controllers.0.s0: is missing"]),
    ("schedule.controllers.0.lam", "x", ["schedule.controllers.0.lam: 'x' is not a finite number >= 0"]),
    ("schedule.controllers.x", {"lam": 0, "s0": None}, ["schedule.controllers: key 'x' is not a phase number"]),
    ("schedule.reached_at", 1.5, ["schedule.reached_at: 1.5 is not a whole number"]),
])
def test_a_malformed_checkpoint_names_file_field_and_value(tmp_path, path, value, parts):
    rf = _run(tmp_path, _set(CHECKPOINT, path, value))
    _refused(lambda: resume_checkpoint(rf, BOARD), f"{rf.checkpoint_path(40)}: ", *parts,
             "; delete this checkpoint to resume from the one before")
    assert rf.checkpoint_path(20).is_file()


def test_a_checkpoint_of_another_board_and_one_from_a_newer_learnboard(tmp_path):
    rf = _run(tmp_path, {**CHECKPOINT, "k": [1.0] * (N + 1)})
    # the board is the wrong one, not the checkpoint: no advice to delete a good checkpoint
    with pytest.raises(InputError) as err:
        resume_checkpoint(rf, BOARD)
    said = str(err.value)
    assert "step-000000040.json: k: " in said and "another board than the run's" in said
    assert f"has {N + 1} edge states but the board has {N} edges" in said and "delete" not in said
    rf = _run(tmp_path, {**CHECKPOINT, "version": 7})
    _refused(lambda: resume_checkpoint(rf, BOARD), "step-000000040.json: version: ", "version 7",
             "a newer learnboard")


@pytest.mark.parametrize("newest", [b'{"step": 40, "k": [', b"[]", json.dumps({"k": [1.0] * N}).encode()])
def test_a_checkpoint_that_is_not_one_is_skipped_for_the_one_before(tmp_path, newest):
    rf = _run(tmp_path, newest)
    assert resume_checkpoint(rf, BOARD)["file"] == "step-000000020.json"


# -- config.json -------------------------------------------------------------------------

def _config(tmp_path, data) -> RunFolder:
    rf = RunFolder.create(tmp_path, "cfg")
    rf.config_path.write_text(json.dumps(data))
    return rf


def test_a_valid_config_resumes_with_its_values(tmp_path):
    cfg = resume_config(_config(tmp_path, CONFIG))
    assert (cfg.alpha, cfg.eta, cfg.telemetry_every, cfg.checkpoint_every, cfg.seed, cfg.name) == (
        0.5, 0.4, 10, 20, 1, "r")
    assert cfg.schedule.phases[0].kind == "tolerance" and cfg.schedule.phases[0].tau == 0.05
    assert cfg.schedule.stop.steps == 100


@pytest.mark.parametrize("path, value, parts", [
    ("alpha", "x", ["alpha: 'x' is not a finite number >= 0 (the learning rate)"]),
    ("alpha", math.inf, ["alpha: inf is not a finite number >= 0 (the learning rate)"]),
    ("eta", 0, ["eta: 0 is not a number > 0 and <= 1 (the nudge)"]),
    ("telemetry_every", 0, ["telemetry_every: 0 is not a whole number >= 1"]),
    ("seed", False, ["seed: False is not a whole number"]),
    ("task", 3, ["task: 3 is not a string"]),
    ("schedule", "x", ["schedule: 'x' is not an object"]),
    ("schedule.stop", [], ["schedule.stop: [] is not an object"]),
    ("schedule.phases", {}, ["schedule.phases: {} is not a list"]),
    ("schedule.phases.0.colour", 1, ["phase[0].colour: unknown key; allowed: alpha, "]),
    ("schedule.phases.0.every", 0, ["phase[0].every: 0 is not a whole number >= 1"]),
    ("schedule.init", "high", ["init: 'high' is not 'low' or 'random' or 'uniform'"]),
])
def test_a_malformed_config_names_file_field_and_value(tmp_path, path, value, parts):
    rf = _config(tmp_path, _set(CONFIG, path, value))
    _refused(lambda: resume_config(rf), f"{rf.config_path}: ", *parts)


def test_a_config_that_is_not_an_object_or_not_json(tmp_path):
    rf = _config(tmp_path, [1])
    _refused(lambda: resume_config(rf), f"{rf.config_path}: ", "JSON object", "damaged")
    rf.config_path.write_text("{")
    _refused(lambda: resume_config(rf), f"{rf.config_path}: not JSON (line 1")


# -- calibrations ---------------------------------------------------------------------------

def _cal(tmp_path, data) -> str:
    p = tmp_path / "calibration.json"
    p.write_text(json.dumps(data))
    return str(p)


def test_a_valid_calibration_loads_whole(tmp_path):
    assert load_calibration(_cal(tmp_path, CALIBRATION), BOARD) == CALIBRATION


@pytest.mark.parametrize("path, value, field, parts", [
    ("format", DROP, "format", ["format: is missing"]),
    ("format", 2, "format", ["format: is 2; this learnboard reads format 1"]),
    ("board", 5, "board", ["board: 5 is not a string"]),
    ("adc", None, "adc", ["adc: None is not an object"]),
    ("adc.channels.0.gain", 3.0, "adc.channels.0.gain", ["3.0 is not a number > 0.5 and < 2 (a plausible ADC gain)"]),
    ("adc.channels.0.offset_v", DROP, "adc.channels.0.offset_v", ["is missing"]),
    ("edges.kind", "memristor", "edges.kind", ["'memristor' is not one of digipot, transistor, none"]),
    ("edges.kind", DROP, "edges.kind", ["is missing"]),
    ("edges.vt", [0.7], "edges.vt", [f"needs {N} finite numbers (one per edge)"]),
    ("edges.beta.2", -1e-4, "edges.beta[2]", ["-0.0001 is not a finite number > 0"]),
])
def test_a_malformed_calibration_names_file_field_and_value(tmp_path, path, value, field, parts):
    p = _cal(tmp_path, _set(CALIBRATION, path, value))
    with pytest.raises(InputError) as err:
        load_calibration(p, BOARD)
    assert err.value.source == p and err.value.field == field
    for part in parts:
        assert part in str(err.value)
    if field != "edges.n":
        assert str(err.value).endswith("re-run `learnboard calibrate`")


def test_a_calibration_of_another_board_names_the_field(tmp_path):
    more = {**CALIBRATION, "edges": {"n": N + 1, "kind": "none"}}
    _refused(lambda: load_calibration(_cal(tmp_path, more), BOARD), "edges.n: ",
             f"is {N + 1} but the board has {N} edges")
    _refused(lambda: load_calibration(_cal(tmp_path, {**CALIBRATION, "board": "x"}), BOARD),
             "board: ", "field 'board' is 'x' but the board is 'gen2-clln'")


@pytest.mark.parametrize("content, part", [
    (b"{", "not JSON (line 1"),
    (b"\xff\xfe{}", "not a text (UTF-8) file: byte 0 is 0xff"),
    (b"[" * 100000, "not JSON"),
])
def test_a_calibration_that_is_not_json_text(tmp_path, content, part):
    p = tmp_path / "cal.json"
    p.write_bytes(content)
    _refused(lambda: load_calibration(p), f"{p}: ", part)
    _refused(lambda: load_calibration(tmp_path / "none.json"), "none.json: no such calibration file",
             "learnboard calibrate --out FILE")
    _refused(lambda: read_json(tmp_path), f"{tmp_path}: cannot read: ")


# -- schedule files ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, parts", [
    ('chunk = 0\n[[phase]]\nsteps = 5', ["chunk: 0 is not a whole number >= 1"]),
    ('seed = 1.5\n[[phase]]\nsteps = 5', ["seed: 1.5 is not a whole number"]),
    ('phase = []', ["phase: [] is not a list of at least 1 item (give at least one [[phase]] table)"]),
    ('[[phase]]\nsteps = 5\ncolour = 1', ["phase[0].colour: unknown key; allowed: alpha, alpha_to, controller, down"]),
    ('[[phase]]\nkind = "tolerance"\ntau = "x"\nsteps = 5', ["phase[0].tau: 'x' is not a number > 0 and < 1 (a relative error C/C0, e.g. 0.05) or 'task'"]),
    ('[[phase]]\nkind = "tolerance"\nlam = 0.1\nsteps = 5', ["phase[0].lam: a tolerance phase sets lambda"]),
    ('[[phase]]\nsteps = 5\nlam_to = 0.1', ["phase[0].lam_to: only a ramp phase takes lam_to"]),
    ('version = 2\n[[phase]]\neta_to = 0.1', ["phase[0].eta_to: ramping a parameter needs the phase's steps"]),
    ('version = 2\n[[phase]]\nsteps = 5\neta_to = 0.1', ["phase[0].eta: eta_to needs a start value eta"]),
    ('version = 2\n[[phase]]\nsteps = 5\nalpha = inf', ["phase[0].alpha: inf is not a finite number"]),
    ('[[phase]]\nsteps = 5\n[stop]\nsettled = 1', ["stop.settled: 1 is not true or false"]),
    ('[[phase]]\nsteps = 5\n[stop]\ntime = -1', ["stop.time: -1 is not a finite number > 0"]),
    ('stop = 3\n[[phase]]\nsteps = 5', ["stop: 3 is not an object"]),
])
def test_a_malformed_schedule_names_file_field_and_value(tmp_path, text, parts):
    f = tmp_path / "s.toml"
    f.write_text(text)
    _refused(lambda: load_schedule(f), f"{f}: ", *parts)


# -- telemetry records ------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"kind": "tlm", "step": "x", "i": 3, "t": 1.0},
    {"kind": "tlm", "step": -1, "i": 3, "t": 1.0},
    {"kind": "tlm", "i": 3, "t": 1.0},
    {"kind": "tlm", "step": 3, "i": 3, "t": 1.0, "k": ["a"]},
    {"kind": "tlm", "step": 3, "i": 3, "t": 1.0, "v": 5},
])
def test_a_telemetry_record_the_host_could_not_have_written_is_damage(tmp_path, bad):
    """Even with a matching checksum: inside the log readers skip it and go on (the
    follower of a live run too) and --resume refuses; at the end it is a cut tail, which
    --resume drops before continuing."""
    from learnboard.host.follow import LogFollower
    from learnboard.host.runlog import RunLog, pack, read_log, scan_log

    from learnboard.errors import LearnboardError

    path = tmp_path / "t.msgpack"
    with RunLog(path) as log:
        for s in range(3):
            log.append({"kind": "tlm", "step": s, "k": [1.0, 2], "v": None})
    whole = path.read_bytes()
    after = pack({"kind": "event", "name": "x", "i": 4, "t": 1.0})
    path.write_bytes(whole + pack(bad) + after)
    assert [r["i"] for r in read_log(path)] == [0, 1, 2, 4]
    assert [r["i"] for r in LogFollower(path).poll()] == [0, 1, 2, 4]
    with pytest.raises(LearnboardError, match=f"damaged at byte {len(whole)} "):
        RunLog(path, resume=True)
    path.write_bytes(whole + pack(bad))
    records, end = scan_log(path)
    assert [r["i"] for r in records] == [0, 1, 2] and end == len(whole)
    with RunLog(path, resume=True) as log:
        assert log.append({"kind": "tlm", "step": 3}) == 3
    assert [r["i"] for r in read_log(path)] == [0, 1, 2, 3]


# -- the port registry and the plot: damaged files are passed over, never a crash -------------

def test_a_damaged_port_entry_names_no_run_and_a_busy_port_stays_busy(tmp_path, monkeypatch):
    from learnboard.host.ownership import _files, holder, own_port

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    port = "/dev/ttyFAKE0"
    with own_port(port, "learnboard train", tmp_path):
        entry = _files(port)[1]
        for content in ("{", "[]", '{"pid": "x", "run_dir": "."}', '{"run_dir": "."}'):
            entry.write_text(content)
            assert run_holding(port) is None  # no run to follow ...
            assert holder(port).command == "another learnboard command"  # ... but the port is held
        entry.write_text(json.dumps({"pid": __import__("os").getpid(), "run_dir": str(tmp_path)}))
        assert run_holding(port) == tmp_path
    assert run_holding(port) is None and holder(port) is None  # the lock went with its holder


def test_damaged_emulator_announcements_are_passed_over(tmp_path, monkeypatch):
    import os

    from learnboard.host.serial_ports import emulated_ports

    from learnboard.emulated_ports import emulated_dir as _emulated_dir

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    pty = tmp_path / "pty"
    pty.write_text("")
    folder = _emulated_dir()  # made private (0700) on first use
    good = {"port": str(pty), "board": "gen2-clln", "pid": os.getpid(), "previous": [], "moved_at": 0.0}
    for i, bad in enumerate(["{", "[]", json.dumps({**good, "pid": "x"}), json.dumps({**good, "previous": 3}),
                             json.dumps({k: v for k, v in good.items() if k != "board"})]):
        (folder / f"bad{i}.json").write_text(bad)
    (folder / "good.json").write_text(json.dumps(good))
    assert emulated_ports() == [(str(pty), "gen2-clln")]


# -- the translation itself ---------------------------------------------------------------------

def test_the_library_error_becomes_file_field_value_and_hint():
    with pytest.raises(InputError) as err:
        S.convert({"step": 1, "k": [0.5, "a"], "c0": 1.0}, S.Checkpoint, "ck.json", "do this")
    assert str(err.value) == "ck.json: k[1]: 'a' is not a finite number; do this"
    assert (err.value.source, err.value.field) == ("ck.json", "k[1]")


def test_a_dict_value_at_fault_is_named_by_its_key():
    """msgspec says ``$.controllers[...]``; the message names the key whose value is wrong,
    also when an earlier key holds another fault further on."""
    data = {"controllers": {"1": {"lam": 0.1, "s0": None}, "7": {"lam": -1, "s0": None}}}
    with pytest.raises(InputError, match=r"^s\.json: controllers\.7\.lam: -1 is not a finite number >= 0$"):
        S.convert(data, S.ScheduleState, "s.json")


def test_a_long_value_is_shortened_in_the_message():
    with pytest.raises(InputError) as err:
        S.convert({"step": "x" * 500, "k": [], "c0": 0}, S.Checkpoint, "ck.json")
    assert len(str(err.value)) < 120 and "..." in str(err.value)
