"""Current monitors: a board with an INA219 in every driver's output reports measured power
(``power_source`` "measured") within 15 % of the true total; an incomplete set keeps the
estimate and says which drivers lack one; the emulated INA219's step sizes, offset,
averaging, range and IN- pin; the gen2-clln-sense profile is gen2-clln plus monitors.
In-process boards, few steps."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from learnboard.cli.connection import open_board
from learnboard.emulator.devices.current_sense import BIAS_AMPS, CurrentSense
from learnboard.host.power import power_line
from learnboard.host.runfolder import RunFolder
from learnboard.host.schedule import schedule_from_flags
from learnboard.host.session import TrainConfig, initial_edges, run_session

from learnboard.boards import load_board
from learnboard.boards.load import profile_path
from learnboard.boards.validate import power_report, sensing_note
from learnboard.errors import InputError
from learnboard.tasks import load_task

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SENSE = "gen2-clln-sense"
WITHIN = 0.15


def test_the_sense_profile_is_gen2_clln_with_a_monitor_in_every_driver():
    sense = tomllib.loads(profile_path(SENSE).read_text())
    assert sense.pop("current_sense") and sense.pop("i2c")
    assert sense == {"extends": "gen2-clln", "board": {"name": SENSE, "description": sense["board"]["description"]}}
    board = load_board(SENSE)
    assert board.power_measured and not board.unsensed_drivers()
    assert len(board.current_sense) == len(board.drivers()) == 7
    assert power_report(board).startswith("power: measured (7 current monitors")
    assert power_report(load_board("gen2-clln")) == "power: device-model estimate (no current monitor)"


def _session(tmp_path, board, lam, steps=40):
    cfg = TrainConfig(schedule=schedule_from_flags(steps=steps, lam=lam), checkpoint_every=steps)
    with open_board(f"emu:{board}") as conn:
        return run_session(conn, cfg, RunFolder.create(tmp_path, "s")).as_dict()


def test_a_sensing_board_reports_measured_power_within_15_percent(tmp_path):
    """At step 0 (a plain state) and after 40 low-power steps (lambda 0.5: 5x lower)."""
    s = _session(tmp_path, SENSE, 0.5)
    assert s["power_source"] == s["initial_power_source"] == "measured"
    assert s["true_power"] * 5 < s["initial_true_power"]
    for pre in ("", "initial_"):
        assert s[f"{pre}power"] == pytest.approx(s[f"{pre}true_power"], rel=WITHIN)
        # the estimate's parts are still there, beside the measured total
        assert s[f"{pre}power_free"] > 0 and s[f"{pre}power_clamped"] > 0
    assert "(measured; estimate: free" in power_line(s)


def test_measured_power_at_the_lowest_conductance_state():
    """Gates just above threshold (where a low-power run parks many): tens of µA per driver."""
    with open_board(f"emu:{SENSE}") as conn:
        task = load_task("regression", board=conn.board, seed=0)
        k = initial_edges(conn.board, "low", conn.link.call("read_edges")["k"])
        conn.link.call("write_edges", k=k, clamp=True)
        rows = []
        for x, y in zip(task.x_train, task.y_train, strict=True):
            r = conn.link.call("infer", x=[float(v) for v in x], y=[float(v) for v in y])
            rows.append((r["pwr_m"], conn.true_state(0).power + conn.true_state(1).power))
    measured, true = np.mean(rows, axis=0)
    assert measured == pytest.approx(true, rel=WITHIN)


def test_an_incomplete_monitor_set_keeps_the_estimate_and_says_why(tmp_path):
    text = profile_path(SENSE).read_text()
    text = text[:text.index("[[current_sense]]   # y clamp")]  # the last monitor
    path = tmp_path / "six.toml"
    path.write_text(text)
    board = load_board(path)
    assert not board.power_measured
    note = sensing_note(board)
    assert "covers 6 of 7 drivers" in note and "network 1 node n11" in note and "[[current_sense]]" in note
    assert power_report(board).startswith("power: device-model estimate.")
    s = _session(tmp_path, path, 0.0, steps=2)
    assert s["power_source"] == "estimate"
    assert s["power"] == pytest.approx(s["power_free"] + s["power_clamped"], rel=1e-6)


def test_monitor_mistakes_name_the_field(tmp_path):
    text = profile_path(SENSE).read_text()
    for old, new, field in (("address = 0x41", "address = 0x40", r"current_sense\[1\].address"),
                            ('net = 1\nnode = "n11"', 'net = 1\nnode = "n02"', r"current_sense\[6\].node"),
                            ('net = 0\nnode = "n02"', 'net = 0\nnode = "n11"', r"current_sense\[0\].node"),
                            ("shunt = 10.0", "shunt = 30.0", r"current_sense\[0\].shunt")):
        path = tmp_path / "b.toml"
        path.write_text(text.replace(old, new, 1))
        with pytest.raises(InputError, match=field):
            load_board(path)


def test_a_single_current_sense_table_still_reads(tmp_path):
    text = profile_path(SENSE).read_text()
    first = text.index("[[current_sense]]")
    one = text[first:text.index("[[current_sense]]", first + 1)].replace("[[current_sense]]", "[current_sense]")
    path = tmp_path / "one.toml"
    path.write_text(text[:first] + one)
    board = load_board(path)
    assert len(board.current_sense) == 1 and not board.power_measured


def test_extends_names_a_shipped_profile(tmp_path):
    path = tmp_path / "b.toml"
    path.write_text(profile_path(SENSE).read_text().replace('extends = "gen2-clln"', 'extends = "gen2-cln"'))
    with pytest.raises(InputError, match=r"extends = 'gen2-cln' is not a shipped profile.*gen2-clln"):
        load_board(path)


def _code(dev: CurrentSense, reg: int) -> int:
    dev.write(bytes([reg]))
    return int.from_bytes(dev.read(2), "big", signed=reg == 1)


def test_the_ina219_model_steps_offset_averaging_and_range():
    amps = [0.0]
    dev = CurrentSense(0x40, 10.0, measure=lambda: (amps[0], 0.3012), noise_lsb=0.0, seed=[0, 1])
    dev.write(bytes([0, 0x11, 0xEB]))  # the firmware's configuration: PGA /4, 32 samples
    assert (dev.pga, dev.samples) == (2, 32)
    offset = dev.offset_volts
    assert 0 < abs(offset) < 4 * 30e-6  # datasheet-sized: 30 uV typical at PGA /4
    zero = _code(dev, 1)
    assert zero == round(offset / 10e-6)
    amps[0] = 1.234e-4  # 1.234 mV on 10 ohm: 123.4 LSB of 10 uV
    assert _code(dev, 1) - zero in (123, 124)
    assert _code(dev, 2) >> 3 == 75  # 0.3012 V in 4 mV steps (bus register bits 15..3)
    assert _code(dev, 2) & 2  # conversion ready
    amps[0] = 0.05  # 500 mV: clipped at the /4 range, 160 mV
    assert _code(dev, 1) == 16000
    # noise: 0.5 LSB per conversion, over sqrt(samples) when averaging
    noisy = CurrentSense(0x41, 10.0, measure=lambda: (1e-4, 0.3), seed=[0, 2])
    single = np.std([_code(noisy, 1) for _ in range(400)])
    noisy.write(bytes([0, 0x11, 0xEB]))
    averaged = np.std([_code(noisy, 1) for _ in range(400)])
    assert 0.35 < single < 0.7 and averaged < 0.35
    # the IN- pin: bias plus the bus input's 320 kOhm, each device within its spread
    assert dev.in_minus_amps(0.32) == pytest.approx(BIAS_AMPS + 1e-6, rel=0.4)


def test_the_shunt_drop_is_in_the_circuit():
    """The node sits below its driver by the shunt's I·R (and the IN- pin's bias flows
    through it); the plain profile's node is the driver's volts."""
    with open_board(f"emu:{SENSE}") as conn:
        conn.link.call("infer", x=[0.3, 0.1], y=[0.2])
        world = conn.world
        cs = conn.board.current_sense[2]  # bias, network 0
        amps, volts = world._sensed(2)
        held = world.driven(0)[cs.node]
        assert held - volts == pytest.approx(cs.shunt * amps, rel=1e-6)
        assert amps > 1e-4
