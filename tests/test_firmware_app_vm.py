"""The firmware application in the real MicroPython VM (the board's 192K heap on the
32-bit VM) with a fake ``machine`` (tests/_fake_machine.py; constant ADC codes, no
physics): it boots from a board.json, answers hello over a pipe, and runs 1000 learning
steps with the heap locked."""

from __future__ import annotations

import pytest

from learnboard.boards import compile_board, load_board

from ._fake_machine import FAKE_MACHINE, VM_HARNESS, pipe_link, start_firmware
from .mpvm import require_vm, run_vm

pytestmark = pytest.mark.vm  # runs the firmware in the real VM(s)

STEPS = VM_HARNESS + r"""
import gc, micropython, time
from lbfw import app, desc
import fake_machine as machine

body, h = desc.load_description(PATH)
a = app.App(body, h, machine, Clock(), NullPort())
del body
gc.collect()
print("free", gc.mem_free())
no = a.learner.n_out
a.upload_examples({"x": [[0.1, 0.3], [0.2, 0.1]], "y": [[0.2] * no, [0.1] * no], "clear": True})
a.set_params({"lam": 0.01, "order": ORDER, "seed": 0x3FFFFFFF})
lr = a.learner
a.locked_step()
moved = i = f1 = t1 = 0
gc.collect()
t0 = time.ticks_us()
f0 = gc.mem_free()
micropython.heap_lock()
for i in range(1000):
    moved += lr.step() > 0
micropython.heap_unlock()
f1 = gc.mem_free()
t1 = time.ticks_us()
print("steps", 1000, "moved", moved, "refused", lr.refused, "heap_change", f0 - f1)
print("us_per_step", time.ticks_diff(t1, t0) // 1000)
m0 = micropython.mem_total()
for i in range(20):
    lr.step()
print("unlocked_bytes_per_step", (micropython.mem_total() - m0) // 20)
a.set_params({"tlm_every": 10})
a.training = True
a.target = 0
t0 = time.ticks_us()
for i in range(200):
    a._train_step()
print("us_per_step_with_tlm", time.ticks_diff(time.ticks_us(), t0) // 200, a.training)
"""


@pytest.fixture
def vm_dir(tmp_path):
    (tmp_path / "fake_machine.py").write_text(FAKE_MACHINE)
    return tmp_path


@pytest.mark.parametrize("order", ["seq", "shuffle"])
@pytest.mark.parametrize("profile", ["gen2-clln", "gen1-digipot"])
def test_thousand_locked_steps_in_vm(vm_dir, profile, order):
    """1000 steps under heap_lock allocate nothing, in example order and shuffled (its
    xorshift once shifted past 2^30: a MemoryError on the 32-bit VM, as on a board)."""
    _thousand_locked_steps(vm_dir, profile, order)


def test_thousand_locked_steps_in_vm_with_current_monitors(vm_dir):
    """The same with seven monitors: their module loads and zeroes them at boot, telemetry
    reads them between steps; the locked step allocates nothing."""
    _thousand_locked_steps(vm_dir, "gen2-clln-sense", "seq")


def test_thousand_locked_steps_in_vm_with_a_differential_output(vm_dir):
    """gen2-clln-xor: both nodes of its differential output clamped each step (signed
    targets, two clamp drivers); the locked step allocates nothing. At the session's
    learning rate (1.0): at the profile's 0.0023 the fake ADC's wobble moves no gate."""
    _thousand_locked_steps(vm_dir, "gen2-clln-xor", "seq", alpha=1.0)


def _thousand_locked_steps(vm_dir, profile, order, alpha=None):
    compile_board(load_board(profile)).write(vm_dir / "board.json")
    steps = STEPS if alpha is None else STEPS.replace('"lam": 0.01', f'"lam": 0.01, "alpha": {alpha}')
    src = f"PATH = {str(vm_dir / 'board.json')!r}\nORDER = {order!r}\n" + steps
    out = run_vm(src, path=[vm_dir]).stdout.decode()
    facts = dict(line.split(" ", 1) for line in out.splitlines())
    assert "steps" in facts, out
    fields = facts["steps"].split()
    assert fields[0] == "1000"
    assert int(fields[2]) > 0  # the wobbling fake ADC makes the rule move edges
    assert int(fields[6]) == 0  # no heap consumed by 1000 locked steps
    assert facts["us_per_step_with_tlm"].endswith("True")  # still training: no fault
    print(profile, out)


def test_boots_from_board_json_and_answers_hello_over_pipe(vm_dir):
    compiled = compile_board(load_board("gen2-clln"))
    proc = start_firmware(vm_dir, compiled, require_vm())
    try:
        link = pipe_link(proc, timeout=5.0)
        hello = link.hello()
        assert hello["impl"] == "micropython"
        assert hello["desc_hash"] == compiled.sha256 and hello["board"] == "gen2-clln"
        assert link.call("status")["state"] == "idle"
        x = [[0.1, 0.3], [0.2, 0.1], [0.4, 0.4]]
        assert link.call("upload_examples", x=x, y=[[0.1]] * 3, clear=True) == {"count": 3}
        assert link.call("train", steps=30, every=10) == {"step": 0, "target": 30}
        steps = []
        for tlm in link.telemetry(timeout=20):
            steps.append(tlm["step"])
            assert tlm["dt"] > 0 and tlm["n"] == 30 and tlm["err"] >= 0.0
            if tlm["step"] >= 30:
                break
        assert steps == [10, 20, 30]
        assert link.next_event(timeout=5) == ("boot", {"fw": "0.1.0", "board": "gen2-clln", "proto": 5})
        assert link.next_event(timeout=5) == ("done", {"step": 30})
        assert link.call("status")["state"] == "idle"
        assert link.call("repl") == {}
        link.close()
        assert proc.wait(20) == 0, proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


NULL_OFFSET = VM_HARNESS + r"""
import gc, micropython
from lbfw import app, desc
import fake_machine as machine

body, h = desc.load_description(PATH)
a = app.App(body, h, machine, Clock(), NullPort())
del body
no = a.learner.n_out
a.upload_examples({"x": [[0.1, 0.3], [0.2, 0.1]], "y": [[0.2] * no, [0.1] * no], "clear": True})
a.set_params({"lam": 0.01, "null_every": 3})
lr = a.learner
sd = lr.rule.sd
off = lr.off
a.locked_null()
a.locked_step()
top = 0x3FFFFFFF
n = measured = 0
gc.collect()
f0 = gc.mem_free()
micropython.heap_lock()
# the training loop's passes: a measurement when one is due, else a step
for n in range(400):
    if lr.null_left <= 0:
        lr.measure_null()
        measured += 1
    else:
        lr.step()
# saturation: sums and offsets at the ends of the range, in the locked step's arithmetic
sd[0] = -top + 5
off[0] = top
sd[1] = top - 5
off[1] = -top
sd[2] = 1000
off[2] = 1500
sd[3] = -7
off[3] = -7
lr._subtract()
micropython.heap_unlock()
print("heap_change", f0 - gc.mem_free(), "measured", measured, "refused", lr.refused)
print("sat", sd[0], sd[1], sd[2], sd[3])
a.set_params({"null_every": 0})
print("cleared", max(abs(off[e]) for e in range(len(off))), lr.null_every)
"""


def test_null_offset_is_measured_and_subtracted_without_allocating(vm_dir):
    """The null offset's two passes (the zero-nudge measurement, the step that subtracts
    it) allocate nothing under heap_lock on either VM; sum minus offset saturates at
    +-(2^30 - 1) instead of becoming a heap int (a MemoryError on a 32-bit board);
    null_every 0 clears the offset."""
    compile_board(load_board("gen2-clln")).write(vm_dir / "board.json")
    src = f"PATH = {str(vm_dir / 'board.json')!r}\n" + NULL_OFFSET
    out = run_vm(src, path=[vm_dir]).stdout.decode()
    facts = dict(line.split(" ", 1) for line in out.splitlines())
    heap, measured, refused = facts["heap_change"].split()[::2]
    assert int(heap) == 0, out
    assert int(measured) == 100, out  # one in every null_every + 1 passes
    assert facts["sat"].split() == [str(-(2**30 - 1)), str(2**30 - 1), "-500", "0"], out
    assert facts["cleared"].split() == ["0", "0"], out
