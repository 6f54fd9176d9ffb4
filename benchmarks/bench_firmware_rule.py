"""Benchmark of the on-board learning rule inside the real MicroPython VM.

Prints, for a 32-edge / 16-node network (16 digipots, 8 pulse gates, 8 DAC gates), the
time per update (one example accumulated and applied) and the bytes allocated per step
(``gc.mem_alloc`` deltas, heap not locked) of:

- ``fixed``: ``lbfw.rule`` (plain bytecode, integers only),
- ``fixed+viper``: the same with the ``lbfw.rule_viper`` kernels when present,
- ``float``: a plain float implementation of the same rule written the obvious way.

Run: ``python benchmarks/bench_firmware_rule.py [--steps N] [--heap 192K]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VM_SOURCE = r"""
import array, gc, time
from lbfw import rule
try:
    from lbfw import rule_viper
except ImportError:
    rule_viper = None

NE = 32
NN = 16
STEPS = %(steps)d
ei = [e %% NN for e in range(NE)]
ej = [(e + 1 + e // NN * 3) %% NN for e in range(NE)]
kind = bytearray([rule.POT] * 16 + [rule.PULSE] * 8 + [rule.DAC] * 8)
VPC = 3.3 / 4095 / 11
GVPC = 5.5 / 4095
models = [rule.pot_gains(100, 40.0, 32000.0), rule.gate_gains(GVPC)]
model = [0] * 16 + [1] * 16
lo = [0] * 16 + [136] * 16
hi = [99] * 16 + [3872] * 16
P = dict(alpha=2e-5, eta=0.5, lam=1e-3, volts_per_code=VPC, n_examples=1, p=0.5,
         seed=7, g_charge=5956, g_discharge=0)

# Preallocated input tables: 64 pseudo-random free/clamped states.
NT = 64
x = 12345
tf = []
tc = []
for t in range(NT):
    a = array.array('H', bytes(2 * NN))
    b = array.array('H', bytes(2 * NN))
    for i in range(NN):
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        a[i] = (x >> 8) & 4095
        x = (x * 1103515245 + 12345) & 0x3FFFFFFF
        b[i] = (a[i] + ((x >> 8) & 63) - 32) & 4095
    tf.append(a)
    tc.append(b)


class FloatRule:
    # The same rule in floats: volts, siemens, fractional taps as Python floats.
    def __init__(self):
        self.gains = [list(m) for m in models]
        self.acc = [0.0] * NE
        self.u = [0.0] * NE
        self.out = array.array('i', bytes(4 * NE))
        self.hi16 = 0
        self.lo16 = 7

    def begin(self):
        u = self.u
        for e in range(NE):
            u[e] = 0.0

    def add(self, vf, vc):
        u = self.u
        lam = P['lam']
        for e in range(NE):
            i = ei[e]
            j = ej[e]
            df = (vf[i] - vf[j]) * VPC
            dc = (vc[i] - vc[j]) * VPC
            u[e] += dc * dc - (1.0 - lam) * df * df

    def apply(self, pos):
        ae = P['alpha'] / P['eta'] / P['n_examples']
        u = self.u
        acc = self.acc
        out = self.out
        rh = self.hi16
        rl = self.lo16
        p16 = int(P['p'] * 65536)
        for e in range(NE):
            t = ((rh << 13) | (rl >> 3)) & 0xFFFF
            rl ^= (rl << 13) & 0xFFFF
            rh ^= t
            rl ^= rh >> 1
            t = ((rh << 5) | (rl >> 11)) & 0xFFFF
            rl ^= (rl << 5) & 0xFFFF
            rh ^= t
            if rh >= p16:
                out[e] = 0
                continue
            k = kind[e]
            pe = pos[e]
            if k == rule.POT:
                a = acc[e] + ae * u[e] * self.gains[0][pe]
            else:
                a = acc[e] - ae * u[e] * self.gains[1][0]
            if k == rule.PULSE:
                rate = ((5956 - pe) if a > 0 else pe) / 2200.0
                q = int(a / rate)
                q = max(-100, min(100, q))
                a -= q * rate
            else:
                q = int(a)
                mx = 1 if k == rule.POT else 16
                q = max(-mx, min(mx, q))
                q = max(lo[e] - pe, min(hi[e] - pe, q))
                a -= q
            acc[e] = a
            out[e] = q
        self.hi16 = rh
        self.lo16 = rl

    def commit(self, pos):
        for e in range(NE):
            if kind[e] != rule.PULSE:
                pos[e] += self.out[e]


def bench(name, r):
    pos = array.array('i', [50] * 16 + [2000] * 16)
    for s in range(4):
        r.begin(); r.add(tf[s], tc[s]); r.apply(pos); r.commit(pos)
    gc.collect()
    gc.disable()
    m0 = gc.mem_alloc()
    for s in range(10):
        r.begin(); r.add(tf[s & 63], tc[s & 63]); r.apply(pos); r.commit(pos)
    m1 = gc.mem_alloc()
    gc.enable()
    best = [10 ** 9, 10 ** 9, 10 ** 9]
    for rep in range(5):
        gc.collect()
        t0 = time.ticks_us()
        for s in range(STEPS):
            r.begin(); r.add(tf[s & 63], tc[s & 63]); r.apply(pos); r.commit(pos)
        t1 = time.ticks_us()
        for s in range(STEPS):
            r.add(tf[s & 63], tc[s & 63])
        t2 = time.ticks_us()
        d = time.ticks_diff(t1, t0)
        if d < best[0]:
            best[0] = d
        d = time.ticks_diff(t2, t1)
        if d < best[1]:
            best[1] = d
    print('ROW', name, best[0] / STEPS, best[1] / STEPS, (m1 - m0) / 10)


r = rule.Rule(ei, ej, kind, model, models, lo, hi)
r.set_params(**P)
bench('fixed', r)
if rule_viper is not None:
    rv = rule_viper.Rule(ei, ej, kind, model, models, lo, hi)
    rv.set_params(**P)
    bench('fixed+viper', rv)
bench('float', FloatRule())
"""


def main(argv: list[str] | None = None) -> int:
    from tests.mpvm import run_vm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--heap", default="192K")
    args = ap.parse_args(argv)
    proc = run_vm(VM_SOURCE % {"steps": args.steps}, heap=args.heap, timeout=600)
    rows = {}
    for line in proc.stdout.decode().splitlines():
        if line.startswith("ROW "):
            _, name, step, add, alloc = line.split()
            rows[name] = (float(step), float(add), float(alloc))
    ref = rows["float"][0]
    print(f"MicroPython VM, heap {args.heap}, 32 edges / 16 nodes, 1 example per step, "
          f"best of 5 x {args.steps} steps")
    print(f"{'implementation':<14} {'us/update':>10} {'us/add':>8} {'bytes/step':>11} {'vs float':>9}")
    for name, (step, add, alloc) in rows.items():
        print(f"{name:<14} {step:>10.2f} {add:>8.2f} {alloc:>11.1f} {step / ref:>8.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
