"""The firmware's own Python costs virtual time (``learnboard.emulator.cost_model``).

* A known sequence of ``machine``/``time`` calls advances the virtual clock by exactly
  what the model says — in-process and in the VM alike.
* A gate pulse conducts for the time asked plus the model's overhead, and the firmware's
  own measurement at boot (``Hal.pulse_overhead_us``, which the gate bounds use) sees it.
* Seeded in-process runs stay bit-identical from run to run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from learnboard.emulator import machine_layer
from learnboard.emulator.cost_model import MODELS, cost_model
from learnboard.emulator.devices.gate import GateCap
from learnboard.emulator.world import World
from learnboard.emulator.world_server import WorldServer
from learnboard.firmware.lbfw import app as app_mod
from learnboard.firmware.lbfw.consts import K_PULSE
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board
from learnboard.errors import InputError
from tests.mpvm import run_vm
from tests.test_vm_machine_drives_the_world import VMLIB

BODY = compile_board(load_board("gen2-clln")).body

# pin write, pin read, PWM duty, a 2-byte SPI write at 10 MHz, a tick read, a 10 µs sleep,
# four ADC reads; then the closing tick read
CALLS = """
p = machine.Pin(5, machine.Pin.OUT)
pwm = machine.PWM(machine.Pin(6))
spi = machine.SPI(0, baudrate=10000000)
adc = machine.ADC(26)
t0 = time.ticks_us()
p.value(1)
p.value()
pwm.duty_u16(1000)
spi.write(b"ab")
time.ticks_us()
time.sleep_us(10)
for _ in range(4):
    adc.read_u16()
dt = time.ticks_diff(time.ticks_us(), t0)
"""


def _expected(name: str) -> int:
    m = MODELS[name]
    call, tick = m.call_us, max(m.call_us, 1)  # a tick read costs at least the clock's 1 µs
    spi_bytes = 2  # round(2 bytes * 8 / 10 MHz) = 1.6 -> 2 µs
    return (call + call + call + (call + spi_bytes) + tick + (call + 10) +
            4 * m.adc_period_us + tick)


@pytest.mark.parametrize("name", ["rp2040", "zero"])
def test_calls_cost_what_the_model_says_in_process(name):
    machine, time = machine_layer.build(World("gen2-clln", seed=0), cost=name)
    scope = {"machine": machine, "time": time}
    exec(CALLS, scope)
    assert scope["dt"] == _expected(name)


def test_calls_cost_what_the_model_says_in_the_vm(tmp_path, monkeypatch):
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    monkeypatch.setenv("LB_COST", cost_model("rp2040").env())
    with WorldServer(World("gen2-clln", seed=0), sock):
        proc = run_vm("import machine, time\n" + CALLS + "print(dt)\n", path=[VMLIB])
    assert int(proc.stdout.decode().split()[-1]) == _expected("rp2040")
    assert _expected("rp2040") == 53  # 3 µs per call, 5 µs per ADC read (2 + 3)


def _pulse(cost: str):
    """The firmware's measured pulse overhead and a 100 µs pulse's conducting time."""
    world = World("gen2-clln", seed=1)
    machine, time = machine_layer.build(world, cost=cost)
    hal = Hal(BODY, machine, time)
    over = hal.pulse_overhead_us()
    e = next(i for i in range(len(hal.ekind)) if hal.ekind[i] == K_PULSE)
    gate = world.edges[0][e]
    times = []
    original = GateCap.set_switches

    def watched(self, charge, discharge, now):
        if self is gate:
            times.append(now)
        return original(self, charge, discharge, now)

    GateCap.set_switches = watched
    try:
        hal.move(e, 100)
    finally:
        GateCap.set_switches = original
    on, off = times
    return over, off - on


def test_a_gate_pulse_conducts_the_modelled_overhead_and_the_firmware_measures_it():
    over, conducting = _pulse("rp2040")
    # on: the latch of the switch-on; then sleep_us (3 + 100), the switch-off's latch low
    # (3), the chain's bytes (3 + their bus time) and latch high (3)
    assert conducting == 100 + over
    zero_over, zero_conducting = _pulse("zero")
    assert over == zero_over - 1 + 4 * MODELS["rp2040"].call_us  # the tick's 1 µs is a call now
    assert zero_conducting == 100 + zero_over - 1  # without the model: only the bus time


def test_the_firmware_sees_the_overhead_in_its_gate_margins():
    def margins(cost):
        world = World("gen2-clln", seed=1)
        machine, time = machine_layer.build(world, cost=cost)
        app = app_mod.App(BODY, "x", machine, time, _NullPort())
        return app.pulse_over
    assert margins("rp2040") == _pulse("rp2040")[0] > margins("zero")


def test_the_vm_firmware_measures_the_same_pulse_overhead(tmp_path, monkeypatch):
    (tmp_path / "body.json").write_text(json.dumps(BODY))
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = f"""
import json, machine
from lbfw.hal import Clock, Hal
h = Hal(json.load(open({str(tmp_path / 'body.json')!r})), machine, Clock())
print(h.pulse_overhead_us())
"""
    with WorldServer(World("gen2-clln", seed=1), sock):
        proc = run_vm(src, path=[VMLIB])
    assert int(proc.stdout.decode().split()[-1]) == _pulse("rp2040")[0]


class _NullPort:
    def read(self):
        return None

    def write(self, data) -> None:
        pass


def _run(seed: int) -> tuple:
    from learnboard.tasks import load_task

    board = load_board("gen2-clln")
    world = World(board, seed=seed)
    machine, time = machine_layer.build(world)
    app = app_mod.App(BODY, "x", machine, time, _NullPort())
    task = load_task("regression", board=board, seed=seed)
    app.upload_examples({"x": task.x_train.tolist(), "y": task.y_train.tolist(), "clear": True})
    app.set_params({"batch": 2, "alpha": 1.0})
    for _ in range(8):
        app.locked_step()
    return (world.clock.now_us, list(app.learner.pos), list(app.learner.vf),
            world.true_state(0).node_voltages.tobytes(), world.solves)


def test_seeded_inprocess_runs_are_bit_identical():
    first = _run(4)
    assert first == _run(4)
    assert first != _run(5)
    assert np.frombuffer(first[3]).any()


def test_an_unknown_cost_model_is_refused_by_name():
    with pytest.raises(InputError, match="cost_model.*'fast'.*rp2040, zero"):
        cost_model("fast")


def test_info_shows_the_steps_per_second_the_model_predicts():
    import subprocess
    import sys

    from learnboard.emulator.predict import rp2040_steps_per_s

    done = subprocess.run([sys.executable, "-m", "learnboard", "info", "--json"],
                          capture_output=True, text=True, timeout=120)
    hello = json.loads(done.stdout)
    predicted = rp2040_steps_per_s("gen2-clln")
    assert hello["rp2040_steps_s"] == pytest.approx(predicted)  # deterministic
    # the firmware's calls cost time on the board: fewer steps than the parts alone allow
    assert 20 < predicted < rp2040_steps_per_s("gen2-clln", cost="zero")


def test_the_vms_clock_wraps_at_2_30_without_a_big_int(tmp_path, monkeypatch):
    # a 32-bit VM's small ints end at 2**30 - 1: past ~18 virtual minutes the VM's copy of
    # the clock must wrap (as ticks_us does) inside the heap-locked learning step
    world = World("gen2-clln", seed=0)
    world.clock.advance_us((1 << 30) * 3 - 400)
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = """
import machine, micropython, time
def run(p):
    t0 = time.ticks_us()
    micropython.heap_lock()
    for i in range(50):
        p.value(i & 1)
        time.sleep_us(10)
    t1 = time.ticks_us()
    micropython.heap_unlock()
    return t0, t1
t0, t1 = run(machine.Pin(5, machine.Pin.OUT))
print(t0 > t1, time.ticks_diff(t1, t0))
"""
    with WorldServer(world, sock):
        proc = run_vm(src, path=[VMLIB])
    wrapped, dt = proc.stdout.decode().split()[-2:]
    assert wrapped == "True"  # the ticks went past 2**30 and on from 0
    call = MODELS["rp2040"].call_us
    assert int(dt) == 50 * (call + call + 10) + max(call, 1)
