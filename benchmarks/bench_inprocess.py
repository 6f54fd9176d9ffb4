"""Learning steps per second of the fast in-process emulated board.

The unchanged firmware ``App`` (``learnboard.firmware.lbfw.app``) runs under CPython on
the emulator's ``machine`` layer (:func:`learnboard.emulator.machine_layer.build`) and a
:class:`~learnboard.emulator.world.World`, exactly as
:class:`~learnboard.emulator.inprocess_board.InProcessBoard` runs it, but driven directly from
this thread (no host link, no telemetry) so only the step is timed. Per profile it
prints steps/s (wall), µs per step (wall and CPU time of this process: the CPU figure
is the one to compare on a shared machine), ``machine``-layer calls per step (pin writes, ADC reads,
SPI/PWM writes) and circuit solves per step, at the board's own ADC oversampling and,
with ``--oversample 1`` added, at one conversion per node read.

Target: >= 1000 steps/s for gen2-clln in this mode (>= 250 for gen1-digipot).

    python benchmarks/bench_inprocess.py [--steps N] [--boards gen2-clln gen1-digipot]
        [--oversample K ...] [--profile] [--cost-model rp2040|zero]

Measured 2026-12-06 03:29-03:30 UTC at load average 1.4-1.6, 300 steps, regression
task, board defaults (os 16), two interleaved rounds, b02ee61 (the firmware handing its
scans to the emulator's ``adc_scan``) and this version (the firmware's own read loop on
``ADC.read_u16``, the rp2040 cost model):

    board          batch   CPU us/step                  steps/s (wall)
    gen2-clln        1     434-486 -> 963-1,007          2,029-2,306 -> 981-1,039
    gen1-digipot     1     2,328-2,568 -> 2,551-2,803    384-427 -> 351-391

gen1-digipot (>= 250): met. gen2-clln (>= 1000): borderline (490-1,000 in the day's
runs at load up to 2.8; docs/emulator.md, "Speed"). The read path's speed work after it
(every seeded result unchanged), 03:50 UTC at load 1.5-1.9, two interleaved rounds:
gen2-clln 991-995 -> 907-913 us CPU a step (997-1,008 -> 1,082-1,095 steps/s),
gen1-digipot 2,486-2,510 -> 2,431-2,444 us. "machine calls" counts calls into
the world (a block of conversions is one); "virt us" is the virtual time of a step.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learnboard.emulator import machine_layer  # noqa: E402
from learnboard.emulator.inprocess_board import _FirmwareClock as _Clock  # noqa: E402
from learnboard.emulator.world import World  # noqa: E402
from learnboard.firmware.lbfw import app as app_mod  # noqa: E402

from learnboard.boards import compile_board, load_board  # noqa: E402


class _NullPort:
    def read(self):
        return None

    def write(self, data) -> None:
        pass


class _Counting:
    """Counts calls into the machine layer by wrapping the world's entry points."""

    NAMES = ("set_pin", "pin_changed", "adc_read_u16", "adc_block", "spi_write", "set_pwm",
             "i2c_write", "spi_transfer", "i2c_read")

    def __init__(self, world: World) -> None:
        self.n = 0
        self.depth = 0
        for name in self.NAMES:
            fn = getattr(world, name, None)
            if fn is not None:  # older worlds lack some entry points
                setattr(world, name, self._wrap(fn))

    def _wrap(self, fn):
        def counted(*a, **k):  # only calls from the machine layer, not nested ones
            self.n += not self.depth
            self.depth += 1
            try:
                return fn(*a, **k)
            finally:
                self.depth -= 1
        return counted


def make_app(board_name: str, seed: int = 0, oversample: int | None = None, batch: int = 1,
             cost: str = "rp2040"):
    """The firmware App on a fresh World with the default task's training examples
    uploaded and the learning parameters a host session sets (learning rate ``alpha``
    1.0 on transistor boards, so gates really pulse); ``batch`` examples per step (0: all)."""
    from learnboard.tasks import load_task

    board = load_board(board_name)
    compiled = compile_board(board)
    body = compiled.body
    if oversample is not None:
        body = dict(body, adc=dict(body["adc"], os=int(oversample)))
    world = World(board, seed=seed)
    machine, utime = machine_layer.build(world, cost=cost)
    app = app_mod.App(body, compiled.sha256, machine, _Clock(utime), _NullPort())
    task = load_task("regression", board=board, seed=seed)
    app.upload_examples({"x": task.x_train.tolist(), "y": task.y_train.tolist(), "clear": True})
    params = {"batch": batch}
    if any(e.kind == "transistor" for e in board.edges):
        params["alpha"] = 1.0
    app.set_params(params)
    return app, world


def measure(board_name: str, steps: int, oversample: int | None = None,
            profile: bool = False, batch: int = 1, cost: str = "rp2040") -> dict:
    app, world = make_app(board_name, oversample=oversample, batch=batch, cost=cost)
    for _ in range(3):  # warm up: first solves, caches
        app.locked_step()
    solves0 = world.solves
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    c0 = time.process_time()
    if prof:
        prof.enable()
    moved = 0
    v0 = world.clock.now_us
    for _ in range(steps):
        moved += max(0, app.locked_step())
    virt = world.clock.now_us - v0
    if prof:
        prof.disable()
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    solves = world.solves - solves0
    # calls counted in further steps: the counting wrappers would slow the timed ones
    counted = max(1, steps // 4)
    counter = _Counting(world)
    for _ in range(counted):
        app.locked_step()
    out = {"board": board_name, "os": app.hal.os, "batch": app.learner.batch,
           "steps_s": steps / dt,
           "us_step": dt / steps * 1e6, "cpu_us_step": cpu / steps * 1e6,
           "solves_step": solves / steps, "calls_step": counter.n / counted,
           "virt_us": virt / steps,
           "moved": moved / steps}
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--boards", nargs="+", default=["gen2-clln", "gen1-digipot"])
    p.add_argument("--oversample", type=int, nargs="*", default=[],
                   help="extra runs at these oversampling factors (default: board's only)")
    p.add_argument("--batch", type=int, nargs="+", default=[1],
                   help="examples per step (0: the whole training set, as sessions do)")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the steps")
    p.add_argument("--cost-model", choices=("rp2040", "zero"), default="rp2040",
                   help="the firmware's Python on the virtual clock (default rp2040)")
    args = p.parse_args(argv)
    print(f"{'board':14s} {'os':>3s} {'batch':>5s} {'steps/s':>9s} {'us/step':>9s} {'cpu us':>9s} "
          f"{'calls/step':>11s} {'solves/step':>12s} {'moved/step':>11s} {'virt us':>8s}")
    for name in args.boards:
        for batch in args.batch:
            for os_ in [None] + list(args.oversample):
                r = measure(name, args.steps, os_, args.profile, batch, args.cost_model)
                print(f"{r['board']:14s} {r['os']:3d} {r['batch']:5d} {r['steps_s']:9.1f} "
                      f"{r['us_step']:9.1f} {r['cpu_us_step']:9.1f} {r['calls_step']:11.1f} {r['solves_step']:12.2f} "
                      f"{r['moved']:11.1f} {r['virt_us']:8.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
