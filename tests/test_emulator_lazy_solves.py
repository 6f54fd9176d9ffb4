"""Lazy and eager solves give the same emulated board.

``World(solves=...)`` / ``LEARNBOARD_EMULATOR_SOLVES``: with lazy solves (the default) a
block of conversions while a linear network's drives settle takes its per-sample
re-solves in one compiled pass, and the world server runs such reads ahead of the VM;
eager solves are the reference, one re-solve after another in Python. Seeded sessions
must be bit-identical between the two: every block of codes with its clock, the
learner's state after each step, the final taps or gates, the solve count, the noise
stream's position and the true node volts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from learnboard.emulator import machine_layer
from learnboard.emulator.world import SOLVES_ENV, World, solves_mode
from learnboard.firmware.lbfw import app as app_mod
from learnboard.firmware.lbfw.hal import Hal

from learnboard.boards import compile_board, load_board
from learnboard.errors import InputError


class _NullPort:
    def read(self):
        return None

    def write(self, data) -> None:
        pass


def _session(board_name: str, mode: str, steps: int) -> tuple[dict, int]:
    """A seeded training session on the in-process firmware: what it recorded, and how
    many blocks took the compiled settling pass."""
    from learnboard.tasks import load_task

    board = load_board(board_name)
    compiled = compile_board(board)
    world = World(board, seed=7, solves=mode)
    blocks: list = []
    kernel = [0]
    adc_block, settle_block = world.adc_block, world._settle_block

    def recorded(channel, n, period_us=2):
        codes = adc_block(channel, n, period_us)
        blocks.append((channel, n, period_us, world.clock.now_us, tuple(codes)))
        return codes

    def counted(*a):
        kernel[0] += 1
        return settle_block(*a)

    world.adc_block, world._settle_block = recorded, counted
    machine, utime = machine_layer.build(world)
    app = app_mod.App(compiled.body, compiled.sha256, machine, utime, _NullPort())
    task = load_task("regression", board=board, seed=7)
    app.upload_examples({"x": task.x_train.tolist(), "y": task.y_train.tolist(), "clear": True})
    params = {"batch": 2}
    if any(e.kind == "transistor" for e in board.edges):
        params["alpha"] = 1.0  # gates really pulse
    app.set_params(params)
    learner = []
    for _ in range(steps):
        moved = app.locked_step()
        learner.append((moved, list(app.learner.pos), list(app.learner.vf)))
    out = {"blocks": blocks, "learner": learner, "now": world.clock.now_us,
           "solves": world.solves,
           "edges": [world.edge_state(n).tolist() for n in range(world.board.n_nets)],
           "volts": [world.true_state(n).node_voltages.tolist()
                     for n in range(world.board.n_nets)],
           "noise": world.adc.ahead(8).tolist()}
    return out, kernel[0]


@pytest.mark.parametrize("board", ["gen1-digipot", "gen2-clln"])
def test_a_seeded_session_is_bit_identical_lazy_and_eager(board):
    lazy, compiled = _session(board, "lazy", 24)
    eager, none = _session(board, "eager", 24)
    assert lazy == eager
    assert none == 0
    if board == "gen1-digipot":
        # the drives settle during most reads: the compiled pass took them, and the
        # network really was re-solved many times a step
        assert compiled >= 24 * 16
        assert lazy["solves"] > 24 * 50
    assert len({b[4] for b in lazy["blocks"]}) > 100  # the codes vary: real reads


def _settling_blocks(mode: str, seed: int) -> list:
    """adc_block against the drives settling on gen1-digipot, with the conditions the
    compiled pass must treat as the reference does: noise scales, stuck edges, block
    lengths and periods, a watchdog that runs out inside a block, a clock listener that
    acts at times of its own (a brown-out schedule's kind)."""
    w = World("gen1-digipot", seed=seed, solves=mode)
    rng = np.random.default_rng(seed)
    fired = []
    w.watchdog.on_expire = lambda: fired.append(w.clock.now_us)
    # a clock listener that acts from a time on (as a brown-out schedule does) and says so
    acts_from = [w.clock.now_us + 1500]
    seen = []

    def listener(now):
        if now >= acts_from[0]:
            seen.append(now)
            acts_from[0] = now + 700

    w.clock.on_advance(listener, lambda: acts_from[0])
    out = []
    for r in range(30):
        if r % 3 == 0:
            for gpio in sorted(w.pwms):
                w.set_pwm(gpio, int(rng.integers(0, 65536)))
        if r == 10:
            w.faults.noise_scale = 0.0
        if r == 14:
            w.faults.noise_scale = 2.5
        if r == 18:
            w.set_stuck(0, 3)
        if r == 20:
            w.watchdog.start(1)  # runs out 1 ms later: inside one of the blocks below
        for m in w.board.muxes.values():
            ch = int(rng.integers(0, len(m.nodes)))
            for bit, gpio in enumerate(m.select):
                w.set_pin(gpio, (ch >> bit) & 1)
            if m.enable is not None:
                w.set_pin(m.enable, m.enable_level)
            w.clock.advance_us(int(rng.integers(0, 40)))
            n, period = int(rng.integers(1, 40)), int(rng.integers(2, 6))
            out.append((w.adc_block(m.adc_channel, n, period), w.clock.now_us, w.solves))
            if m.enable is not None:
                w.set_pin(m.enable, 1 - m.enable_level)
    out.append([(m._channel, m._channel_since, m._out) for m in w.muxes.values()])
    out.append((fired, seen, w.adc.ahead(4).tolist(), w._cache.snapshot()[2:]))
    out.append([w.true_state(n).node_voltages.tolist() for n in range(w.board.n_nets)])
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_settling_blocks_are_the_references(seed):
    lazy = _settling_blocks("lazy", seed)
    assert lazy == _settling_blocks("eager", seed)
    assert lazy[-2][0] and len(lazy[-2][1]) > 5  # the watchdog ran out, the listener acted


def test_the_solve_mode_comes_from_the_option_or_the_environment(monkeypatch):
    monkeypatch.delenv(SOLVES_ENV, raising=False)
    assert solves_mode() == "lazy"
    monkeypatch.setenv(SOLVES_ENV, "Eager")
    assert solves_mode() == "eager"
    assert World("gen1-digipot", solves="lazy").solves_mode == "lazy"
    monkeypatch.setenv(SOLVES_ENV, "fast")
    with pytest.raises(InputError, match=f"{SOLVES_ENV}.*'fast'.*lazy.*eager"):
        World("gen1-digipot")
    with pytest.raises(InputError, match="solves.*'sometimes'"):
        solves_mode("sometimes")


def _scans(h) -> list:
    """Node scans of both networks right after new drive codes (the drives still
    settle), six rounds, each ending with a short scan of a few nodes."""
    out = []
    for r in range(6):
        for i in range(6):  # the PWM pins of the inputs (both networks) and outputs
            h.drive(h.vline([-1, 6 + i]), 300 + 450 * i + 97 * r)
        for net in (0, 1):
            codes = [0] * len(h.nrd[net][0])
            h.read_nodes(net, codes)
            out.append(codes)
        out.append([h._sample(0, ch) for ch in range(1 + r)])
    h.drive(h.vline([-1, 6]), 0)  # (ends the VM's last run-ahead: the world goes back)
    return out


@pytest.mark.vm
def test_the_vm_runs_settling_reads_ahead_and_reads_what_the_world_gives(tmp_path,
                                                                          monkeypatch):
    import inspect

    from learnboard.emulator.world_server import WorldServer

    from tests.mpvm import run_vm
    from tests.test_vm_machine_drives_the_world import VMLIB

    body = compile_board(load_board("gen1-digipot")).body
    (tmp_path / "body.json").write_text(json.dumps(body))
    sock = str(tmp_path / "w.sock")
    monkeypatch.setenv("LB_WORLD", sock)
    src = f"""
import json, machine
from lbfw.hal import Clock, Hal
h = Hal(json.load(open({str(tmp_path / 'body.json')!r})), machine, Clock())
import select
select.poll().poll(0)  # as the firmware's main loop does once booted: scripts may come
{inspect.getsource(_scans)}
print(json.dumps(_scans(h)))
"""
    world = World("gen1-digipot", seed=5)
    with WorldServer(world, sock) as server:
        proc = run_vm(src, path=[VMLIB])
        assert server.wait_idle()
        ahead = server.read_ahead
    got = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    ref = World("gen1-digipot", seed=5, solves="eager")
    machine, utime = machine_layer.build(ref, blocks=True)
    assert got == _scans(Hal(body, machine, utime))
    assert abs(world.clock.now_us - ref.clock.now_us) <= 50  # VM start-up ticks aside
    assert world.solves == ref.solves
    assert ahead.scripts >= 5  # ran ahead while the drives settled (eager solves: never)
