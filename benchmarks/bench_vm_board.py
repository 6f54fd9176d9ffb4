"""Benchmark of the virtual board through pty + real MicroPython VM + world physics.

Flashes the firmware and the board description into a fresh flash folder of a
:class:`~learnboard.emulator.vm_board.VMBoard`, uploads ``--examples`` training
examples through the host link, trains ``--steps`` learning steps (each over
``--batch`` examples) and prints, per profile: learning steps per second (real time),
world requests, blocking round trips and socket writes per step, virtual µs per step,
the world's solves per step, and the real time per step split into the world's share
(handling requests: device models and physics) and the rest (VM, socket, pty, host).

Run: ``python benchmarks/bench_vm_board.py [--steps 200] [--batch 2] [--profiles gen2-clln gen1-digipot]``.

Round trips are the world's answered request batches (the times the VM waited). CPU ms
per step are given for the world's server thread, the whole emulator process (world,
pty, host link) and the VM process: on the shared machine compare those, not wall time.
Measured 2026-12-06 03:29-03:30 UTC at load average 1.4-1.6, 200 steps, batch 2, two
interleaved rounds, b02ee61 (the firmware handing its scans to the emulator's
``adc_scan``) -> this version (the firmware's own read loop on ``ADC.read_u16``; blocks of
conversions, the world server running scans ahead; the rp2040 cost model):

    profile        steps/s (wall)          requests/step   world CPU ms/step   VM CPU ms/step
    gen2-clln      1,284-1,322 -> 318-337   55 -> 103       0.45-0.50 -> 1.55   0.25-0.30 -> 1.35-1.50
    gen1-digipot   210-220 -> 170-193       160 -> 316      4.0-4.4 -> 4.5-4.9  0.35 -> 0.75-0.90

(372 steps/s for gen2-clln with --cost-model zero; 278-365 in the day's runs at load up
to 2.8.) Target >= 300 steps/s (gen2-clln): met. docs/emulator.md, "Speed", has the
history.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _open_booted(port: str):
    """A link to the board once it has booted. Listen before talking, as `learnboard flash`
    does: a request sent while main.py boots begins with 0x03, a Ctrl-C that stops it."""
    from learnboard.host.flashing import verify
    from learnboard.host.link import Link

    verify(port, desc_hash=None, timeout=20)
    return Link.open(port, timeout=5.0)


def bench(profile: str, steps: int, batch: int, examples: int, seed: int,
          cost: str = "rp2040") -> dict:
    import numpy as np
    from learnboard.emulator.vm_board import VMBoard
    from learnboard.host.flashing import plan
    from learnboard.host.session import load_session_task

    with tempfile.TemporaryDirectory() as tmp:
        flash = Path(tmp) / "flash"
        files, _ = plan(profile)
        for f in files:  # what `learnboard flash` writes over mpremote
            (flash / f.path).parent.mkdir(parents=True, exist_ok=True)
            (flash / f.path).write_bytes(f.data)
        with VMBoard(flash, board=profile, seed=seed, cost_model=cost) as vb, _open_booted(vb.port) as link:
            task = load_session_task("regression", vb.board)  # the default task
            x, y = task.x_train[:examples], task.y_train[:examples]
            link.call("upload_examples", x=np.asarray(x).tolist(), y=np.asarray(y).tolist(), clear=True)
            link.call("set_params", batch=batch, tlm_every=0)
            srv = vb._server
            b0 = srv.busy_s
            pid = vb.vm_pid
            vm0 = _proc_cpu(pid)
            cpu0 = time.process_time()
            wc0 = _thread_cpu(srv._thread)
            r0, rt0, s0, v0, so0 = srv.requests, srv.round_trips, srv.sends, vb.world.clock.now_us, vb.world.solves
            t0 = time.perf_counter()
            link.call("train", steps=steps, every=0)
            while True:
                ev = link.next_event(timeout=600)
                if ev is None or ev[0] == "done":
                    break
            dt = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            vm_cpu = _proc_cpu(pid) - vm0
            wc = _thread_cpu(srv._thread) - wc0
            with vb.lock:
                busy = srv.busy_s - b0
                r, rt, s, v, so = srv.requests, srv.round_trips, srv.sends, vb.world.clock.now_us, vb.world.solves
            return {"profile": profile, "steps_s": steps / dt, "req": (r - r0) / steps,
                    "rt": (rt - rt0) / steps, "sends": (s - s0) / steps,
                    "virt_us": (v - v0) / steps, "solves": (so - so0) / steps,
                    "world_ms": busy / steps * 1e3, "other_ms": (dt - busy) / steps * 1e3,
                    "world_cpu_ms": wc / steps * 1e3, "emu_cpu_ms": cpu / steps * 1e3,
                    "vm_cpu_ms": vm_cpu / steps * 1e3}


def _proc_cpu(pid) -> float:
    """CPU seconds (user + system) of process ``pid`` so far (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def _thread_cpu(thread) -> float:
    """CPU seconds of ``thread`` of this process so far (the world server's; Linux /proc)."""
    try:
        with open(f"/proc/self/task/{thread.native_id}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, TypeError):
        return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=2, help="examples per learning step")
    ap.add_argument("--examples", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profiles", nargs="+", default=["gen2-clln", "gen1-digipot"])
    ap.add_argument("--cost-model", choices=("rp2040", "zero"), default="rp2040",
                    help="the firmware's Python on the virtual clock (default rp2040)")
    a = ap.parse_args()
    print(f"{'profile':14s} {'steps/s':>8s} {'req/step':>9s} {'rt/step':>8s} {'writes/step':>11s} "
          f"{'virt us/step':>12s} {'solves/step':>11s} {'world ms/step':>13s} {'rest ms/step':>12s} "
          f"{'world cpu ms':>12s} {'emu cpu ms':>10s} {'vm cpu ms':>9s}   ({a.steps} steps, batch {a.batch})")
    for p in a.profiles:
        r = bench(p, a.steps, a.batch, a.examples, a.seed, a.cost_model)
        print(f"{r['profile']:14s} {r['steps_s']:8.1f} {r['req']:9.0f} {r['rt']:8.1f} {r['sends']:11.1f} "
              f"{r['virt_us']:12.0f} {r['solves']:11.2f} {r['world_ms']:13.2f} {r['other_ms']:12.2f} "
              f"{r['world_cpu_ms']:12.2f} {r['emu_cpu_ms']:10.2f} {r['vm_cpu_ms']:9.2f}", flush=True)


if __name__ == "__main__":
    main()
