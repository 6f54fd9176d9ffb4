"""Schedules: TOML phases, errors naming the field, the paper's controller run
literally through the chunked host loop, ramps and stop conditions."""

from __future__ import annotations

import pytest
from learnboard.host.schedule import (
    ScheduleRunner,
    load_schedule,
    power_settled,
    schedule_from_flags,
)

from learnboard.engine.controller import AdaptiveController, ToleranceController, balance_lambda
from learnboard.errors import InputError

GOOD = """
version = 2
init = "low"
chunk = 25
[stop]
steps = 1000
[[phase]]
kind = "constant"
lam = 0.0
steps = 200
alpha = 1.0
alpha_to = 0.5
eta = 0.5
[[phase]]
kind = "ramp"
lam = 0.0
lam_to = 0.02
steps = 400
[[phase]]
kind = "tolerance"
tau = 0.05
start = 1e-3
every = 50
"""


def test_a_schedule_file_parses_into_phases(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text(GOOD)
    s = load_schedule(f)
    assert [p.kind for p in s.phases] == ["constant", "ramp", "tolerance"]
    assert s.init == "low" and s.total_steps == 1000 and s.chunk == 25
    r = ScheduleRunner(s)
    assert r.params(0, None) == {"lam": 0.0, "alpha": 1.0, "eta": 0.5}
    assert r.params(100, 0.5)["alpha"] == pytest.approx(0.75)  # the learning rate ramped halfway
    assert r.params(400, 0.5)["lam"] == pytest.approx(0.01)  # lambda ramp halfway
    assert r.chunk(190) == 10  # chunks end at phase boundaries
    assert r.chunk(990) == 10  # ... and at the stop


@pytest.mark.parametrize("text, field", [
    ('[[phase]]\nkind = "spiral"\nsteps = 5', "phase[0].kind"),
    ('[[phase]]\nkind = "ramp"\nsteps = 5', "phase[0].lam_to"),
    ('[[phase]]\nkind = "constant"\nlam = 2.0\nsteps = 5', "phase[0].lam"),
    ('[[phase]]\nkind = "tolerance"\ntau = -1\nsteps = 5', "phase[0].tau"),
    ('[[phase]]\nkind = "tolerance"\ntau = 1.0\nsteps = 5', "phase[0].tau"),
    ('[[phase]]\nkind = "tolerance"\ntau = 0.0\nsteps = 5', "phase[0].tau"),
    ('[[phase]]\nkind = "tolerance"\nup = 1.0\nsteps = 5', "phase[0].up"),
    ('[[phase]]\nkind = "tolerance"\ncontroller = "pid"\nsteps = 5', "phase[0].controller"),
    ('[[phase]]\nkind = "tolerance"\ncontroller = "paper"\ntarget = 0.7\nsteps = 5', "phase[0].target"),
    ('[[phase]]\nkind = "tolerance"\ndown = 0.5\nsteps = 5', "phase[0].down"),
    ('[[phase]]\nkind = "constant"\ncontroller = "paper"\nsteps = 5', "phase[0].controller"),
    ('[[phase]]\nkind = "constant"\nsteps = 5\nevery = 3', "phase[0].every"),
    ('init = "high"\n[[phase]]\nsteps = 5', "init"),
    ('null_offset_every = -1\n[[phase]]\nsteps = 5', "null_offset_every"),
    ('null_offset_every = 2.5\n[[phase]]\nsteps = 5', "null_offset_every"),
    ('[stop]\nsteps = "ten"', "stop.steps"),
    ('[stop]\nwhen = 3', "stop.when"),
    ('[[phase]]\nkind = "constant"', "stop"),
    ('[[phase]]\nkind = "constant"\n[[phase]]\nsteps = 4', "phase[0].steps"),
])
def test_bad_schedule_files_name_the_field(tmp_path, text, field):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(InputError) as err:
        load_schedule(f)
    assert f"{f}: {field}:" in str(err.value)


def test_invalid_toml_and_missing_file(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[[phase]\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_schedule(f)
    with pytest.raises(InputError, match="not found"):
        load_schedule(tmp_path / "nope.toml")


def test_the_chunked_controller_is_the_papers_controller_step_for_step():
    """Driving the runner chunk by chunk gives the same lambdas as calling the paper's
    controller at every step, for an error trace that crosses tau several times."""
    def rel_err(step):  # falls below tau at 130, then oscillates around it
        return 1.0 if step < 130 else (0.5e-3 if (step // 300) % 2 == 0 else 2e-3)

    sched = schedule_from_flags(steps=2000, tolerance=1e-3, controller="paper")
    runner = ScheduleRunner(sched)
    ref = ToleranceController(tau=1e-3)
    step, got, want = 0, {}, {}
    for s in range(0, 2000, 10):  # the reference sees the error at every telemetry step
        want[s] = ref.lam_for(s, rel_err(s))
    # the runner decides only at chunk starts; before s0 chunks are `every` long, so
    # feed it the error at chunk starts on the 10-step telemetry grid
    while step < 2000:
        got[step] = runner.params(step, rel_err(step))["lam"]
        step += runner.chunk(step)
    s0 = runner.controllers[0].s0
    assert s0 is not None and s0 % 100 == 0 and s0 >= 130
    ref = ToleranceController(tau=1e-3)
    for s in sorted(got):
        assert got[s] == ref.lam_for(s, rel_err(s))
    lams = [got[s] for s in sorted(got) if s >= s0]
    ratios = {round(b / a, 6) for a, b in zip(lams, lams[1:], strict=False)}
    assert lams[0] == 1e-9 and ratios == {1.05, 0.5}  # grown under tau, halved above


def test_runner_state_round_trips_for_checkpoints():
    sched = schedule_from_flags(steps=1000, tolerance=0.1)
    a = ScheduleRunner(sched)
    for s in range(0, 600, 100):
        a.params(s, 0.05)
    b = ScheduleRunner(sched)
    b.load_state(a.state())
    assert b.params(600, 0.05) == a.params(600, 0.05)


def test_stop_when_tolerance_reached_and_power_settled():
    sched = load_schedule({"stop": {"settled": True, "settle_window": 100, "settle_rel": 0.05},
                           "phase": [{"kind": "tolerance", "tau": 0.1}]})
    r = ScheduleRunner(sched)
    r.params(0, 0.05)
    falling = [(s, 1.0 / (1 + s)) for s in range(0, 200, 10)]
    flat = [(s, 1.0) for s in range(0, 200, 10)]
    assert r.stop_reason(190, 1.0, 0.05, falling) is None
    assert r.stop_reason(190, 1.0, 0.05, flat) == "settled"
    assert r.stop_reason(190, 1.0, 0.5, flat) is None  # error above tau
    assert power_settled(flat[:2], 190, 100, 0.05) is False  # too little history


def test_flags_conflict_and_time_stop():
    with pytest.raises(InputError, match="--lambda"):
        schedule_from_flags(lam=0.1, tolerance=0.1)
    s = load_schedule({"stop": {"time": 5.0}, "phase": [{"kind": "constant"}]})
    assert ScheduleRunner(s).stop_reason(10, 6.0, None, []) == "time"


# -- versions: alpha is the learning rate and eta the nudge since version 2 ----------------


@pytest.mark.parametrize("key", ["alpha", "eta", "alpha_to", "eta_to"])
def test_an_unversioned_schedule_that_sets_alpha_or_eta_is_refused_saying_what_to_write(
        tmp_path, key):
    """learnboard 0.1.0 read alpha as the nudge: an old file must not be guessed at."""
    f = tmp_path / "old.toml"
    extra = {"alpha_to": "alpha = 1.0\n", "eta_to": "eta = 0.5\n"}.get(key, "")
    f.write_text(f'[[phase]]\nkind = "constant"\nsteps = 10\n{extra}{key} = 0.5\n')
    with pytest.raises(InputError) as err:
        load_schedule(f)
    msg = str(err.value)
    assert str(f) in msg and "phase[0]." in msg
    assert "version = 2" in msg and "alpha is the learning rate and eta the nudge" in msg


def test_the_same_file_with_version_2_means_alpha_learning_rate_and_eta_nudge(tmp_path):
    f = tmp_path / "new.toml"
    f.write_text('version = 2\n[[phase]]\nkind = "constant"\nsteps = 10\nalpha = 3.0\neta = 0.25\n')
    assert ScheduleRunner(load_schedule(f)).params(0, None) == {"lam": 0.0, "alpha": 3.0, "eta": 0.25}
    f.write_text('version = 2\n[[phase]]\nkind = "constant"\nsteps = 10\neta = 2.0\n')
    with pytest.raises(InputError, match=r"phase\[0\]\.eta.*<= 1"):  # the nudge is at most 1
        load_schedule(f)


def test_an_unversioned_schedule_without_alpha_or_eta_still_loads(tmp_path):
    f = tmp_path / "lam.toml"
    f.write_text('[[phase]]\nkind = "ramp"\nlam = 0.0\nlam_to = 0.01\nsteps = 10\n')
    assert ScheduleRunner(load_schedule(f)).params(5, None) == {"lam": pytest.approx(0.005)}


@pytest.mark.parametrize("version", ["1", "3", '"2"', "true"])
def test_an_unknown_schedule_version_is_refused(tmp_path, version):
    f = tmp_path / "v.toml"
    f.write_text(f'version = {version}\n[[phase]]\nkind = "constant"\nsteps = 10\n')
    with pytest.raises(InputError, match="version = 2"):
        load_schedule(f)


@pytest.mark.parametrize("flags, flag", [({"start": 2e-3}, "--lambda-start"), ({"every": 20}, "--check-every"),
                                         ({"up": 1.2}, "--lambda-up"), ({"controller": "paper"}, "--controller")])
def test_controller_flags_without_a_tolerance_say_what_to_do(flags, flag):
    with pytest.raises(InputError) as err:
        schedule_from_flags(steps=100, **flags)
    said = str(err.value)
    assert said.startswith(flag) and "--tolerance task" in said and f"drop {flag}" in said


@pytest.mark.parametrize("tau", [1.0, 2.0, 0.0, -0.1])
def test_a_tolerance_outside_0_1_is_refused_with_what_it_means(tau):
    with pytest.raises(InputError) as err:
        schedule_from_flags(steps=100, tolerance=tau)
    assert str(err.value).startswith("--tolerance") and "between 0 and 1" in str(err.value)


def test_the_adaptive_controller_is_the_default_and_scales_to_the_board():
    """--tolerance alone: the adaptive controller, checks every steps/50, its first lambda a
    quarter of the board's balance lambda and its ceiling four times it; given flags stay."""
    runner = ScheduleRunner(schedule_from_flags(steps=1000, tolerance="task"), task_tolerance=0.04)
    c = runner.controllers[0]
    assert isinstance(c, AdaptiveController) and c.every == 20 and c.hold_from == 900
    runner.set_board_scale(eta=0.5, c0=0.01, input_rms=0.25)
    bal = balance_lambda(0.5, 0.01, 0.25, 0.04)
    assert c.start == pytest.approx(bal / 4) and c.lam_max == pytest.approx(4 * bal)
    given = ScheduleRunner(schedule_from_flags(steps=1000, tolerance=0.04, start=2e-3, every=50, up=1.2))
    given.set_board_scale(eta=0.5, c0=0.01, input_rms=0.25)
    g = given.controllers[0]
    assert (g.start, g.every, g.up) == (2e-3, 50, 1.2)
    assert given.chunk(0) == 50


def test_a_run_recorded_before_the_adaptive_controller_resumes_with_the_papers():
    from learnboard.host.session import TrainConfig

    old = {"task": "regression", "schedule": {"phases": [
        {"kind": "tolerance", "steps": None, "lam": 0.0, "lam_to": None, "tau": 0.05, "start": 1e-9,
         "every": 100, "up": 1.05, "down": 0.5, "alpha": None, "alpha_to": None, "eta": None,
         "eta_to": None}], "init": "uniform", "chunk": 50, "stop": {"steps": 1000}, "seed": 0}}
    cfg = TrainConfig.from_dict(old)
    assert cfg.schedule.phases[0].controller == "paper"
    assert isinstance(ScheduleRunner(cfg.schedule).controllers[0], ToleranceController)
    new = TrainConfig.from_dict(TrainConfig(schedule=schedule_from_flags(tolerance=0.05)).as_dict())
    assert new.schedule.phases[0].controller == "adaptive"


def test_the_null_offset_period_from_a_file_and_from_the_flag(tmp_path):
    """``null_offset_every`` (file) and ``--null-offset-every`` (flag, over the file):
    an integer >= 0, 0 = off; anything else is refused naming the flag and the range."""
    f = tmp_path / "s.toml"
    f.write_text("null_offset_every = 10\n[[phase]]\nsteps = 5\n")
    sched = load_schedule(f)
    assert sched.null_offset_every == 10 and sched.as_dict()["null_offset_every"] == 10
    assert schedule_from_flags(base=sched, null_offset_every=0).null_offset_every == 0
    for bad in (-1, 2.5, True):
        with pytest.raises(InputError, match="--null-offset-every.*integer >= 0"):
            schedule_from_flags(null_offset_every=bad)


def test_what_the_flags_and_the_file_leave_open_is_the_boards():
    """Neither the flags nor the file set ``init`` or ``null_offset_every``: the session
    takes the profile's ``[learning]`` values (gen2-clln: uniform, off; gen2-clln-xor:
    low gates, every step); what either sets wins."""
    from learnboard.host.schedule import with_board_defaults

    from learnboard.boards import load_board

    plain, xor = load_board("gen2-clln"), load_board("gen2-clln-xor")
    open_ = schedule_from_flags(steps=5)
    assert (open_.init, open_.null_offset_every) == (None, None)
    got = with_board_defaults(schedule_from_flags(steps=5), plain)
    assert (got.init, got.null_offset_every) == ("uniform", 0)
    got = with_board_defaults(schedule_from_flags(steps=5), xor)
    assert (got.init, got.null_offset_every) == ("low", 1)
    given = with_board_defaults(schedule_from_flags(steps=5, init="uniform", null_offset_every=0), xor)
    assert (given.init, given.null_offset_every) == ("uniform", 0)
