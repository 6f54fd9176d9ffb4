"""Peripheral traffic of one learning step on the emulated gen2-clln, in-process and in the VM.

A step is what the firmware HAL does to the hardware per step: set the 7 DAC channels,
settle, read all nodes of both networks (16x oversampled), and pulse every gate of both
networks once (32 pulses, each two chain loads). Prints steps/s (wall time) and the
requests per step that cross the VM's world socket.

    python benchmarks/bench_world.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "firmware"))

from learnboard.emulator.machine_layer import build  # noqa: E402
from learnboard.emulator.world import World  # noqa: E402
from learnboard.emulator.world_server import WorldServer  # noqa: E402
from learnboard.firmware import FIRMWARE_DIR  # noqa: E402

from learnboard.boards import compile_board, load_board  # noqa: E402

STEPS = 50

STEP = """
def step(h, out, k):
    for ch in range(7):
        h.drive(h.vline([0, ch]), 100 + (k + ch) % 50)
    h.settle()
    h.read_nodes(0, out)
    h.read_nodes(1, out)
    for e in range(32):
        h.move(e, 5 if (e + k) % 2 else -5)
"""


def in_process() -> float:
    world = World("gen2-clln", seed=1)
    machine, utime = build(world)
    from lbfw.hal import Hal

    h = Hal(compile_board(load_board("gen2-clln")).body, machine, utime)
    ns: dict = {}
    exec(STEP, ns)
    out = [0] * 16
    ns["step"](h, out, 0)
    t0 = time.perf_counter()
    for k in range(STEPS):
        ns["step"](h, out, k)
    return STEPS / (time.perf_counter() - t0), world.solves


def in_vm() -> tuple[float, float]:
    world = World("gen2-clln", seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "w.sock")
        body = os.path.join(tmp, "body.json")
        Path(body).write_text(json.dumps(compile_board(load_board("gen2-clln")).body))
        src = f"""
import json, machine, time
from lbfw.hal import Clock, Hal
h = Hal(json.load(open({body!r})), machine, Clock())
{STEP}
out = [0] * 16
step(h, out, 0)
t0 = time.ticks_ms
import utime
t0 = utime.ticks_ms()
"""
        # wall time measured on the host around the whole VM run, minus a 1-step run
        with WorldServer(world, sock) as server:
            env = dict(os.environ, LB_WORLD=sock,
                       MICROPYPATH=f"{ROOT / 'emulator' / 'vmlib'}:{FIRMWARE_DIR}")
            runs = {}
            for n in (1, 1 + STEPS):
                before = server.requests
                code = src + f"for k in range({n}):\n    step(h, out, k)\nmachine._sync()\n"
                t0 = time.perf_counter()
                subprocess.run(["micropython", "-X", "heapsize=192K", "-c", code], env=env,
                               check=True)
                server.wait_idle()
                runs[n] = (time.perf_counter() - t0, server.requests - before)
        dt = runs[1 + STEPS][0] - runs[1][0]
        reqs = (runs[1 + STEPS][1] - runs[1][1]) / STEPS
        return STEPS / dt, reqs


if __name__ == "__main__":
    rate, solves = in_process()
    print(f"in-process (CPython machine layer): {rate:8.1f} steps/s ({solves} solves)")
    vm_rate, reqs = in_vm()
    print(f"VM + world socket:                  {vm_rate:8.1f} steps/s, "
          f"{reqs:.0f} socket requests/step")
