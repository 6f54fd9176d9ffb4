"""Benchmark of the whole firmware learning step inside the real MicroPython VM.

Builds the application from a shipped profile's board.json with a fake ``machine``
(no-op sleeps, so only compute and driver overhead count) and prints, per profile:
µs per learning step (2 examples), µs per telemetry frame, heap bytes consumed by N
steps under ``heap_lock()`` (gc.mem_free delta) and the frame bytes MicroPython would
heap-allocate per step without the lock (``mem_total`` delta).

Run: ``python benchmarks/bench_firmware_app.py [--steps N] [--heap 192K]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VM_SOURCE = r"""
import gc, micropython, time
from lbfw import app, desc
import fake_machine as machine


class Clock:
    ticks_us = staticmethod(time.ticks_us)
    ticks_diff = staticmethod(time.ticks_diff)

    def sleep_us(self, us):
        pass


class NullPort:
    def read(self):
        return None

    def write(self, data):
        pass


body, h = desc.load_description(PATH)
a = app.App(body, h, machine, Clock(), NullPort())
del body
no = a.learner.n_out
a.upload_examples({"x": [[0.1, 0.3], [0.2, 0.1]], "y": [[0.2] * no, [0.1] * no]})
lr = a.learner
a.locked_step()
i = f1 = t1 = 0
gc.collect()
t0 = time.ticks_us()
f0 = gc.mem_free()
micropython.heap_lock()
for i in range(STEPS):
    lr.step()
micropython.heap_unlock()
f1 = gc.mem_free()
t1 = time.ticks_us()
step_us = time.ticks_diff(t1, t0) / STEPS
m0 = micropython.mem_total()
for i in range(20):
    lr.step()
would = (micropython.mem_total() - m0) // 20
t0 = time.ticks_us()
for i in range(100):
    a.send_telemetry()
tlm_us = time.ticks_diff(time.ticks_us(), t0) / 100
print("%.0f %d %d %.0f" % (step_us, f0 - f1, would, tlm_us))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--heap", default="192K")
    args = parser.parse_args()
    from learnboard.boards import compile_board, load_board
    from tests._fake_machine import FAKE_MACHINE
    from tests.mpvm import run_vm

    print(f"{'profile':14s} {'us/step':>8s} {'heap B':>7s} {'unlocked B/step':>16s} "
          f"{'us/tlm':>7s}   ({args.steps} steps, heap {args.heap})")
    for profile in ("gen1-digipot", "gen2-clln"):
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "fake_machine.py").write_text(FAKE_MACHINE)
            compile_board(load_board(profile)).write(d / "board.json")
            src = f"PATH = {str(d / 'board.json')!r}\nSTEPS = {args.steps}\n" + VM_SOURCE
            out = run_vm(src, heap=args.heap, path=[d]).stdout.decode().split()
        print(f"{profile:14s} {out[0]:>8s} {out[1]:>7s} {out[2]:>16s} {out[3]:>7s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
