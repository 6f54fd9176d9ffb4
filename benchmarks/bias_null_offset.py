"""Why did the null offset raise seed 1's floor at 1500 steps? (docs/paper.md, "Learning bias")

On the gen2-clln board twin (``learnboard sim --board gen2-clln --alpha 0.2``: the emulated
board of each seed, the firmware's rule, converters, gate pulses, leak), task A, alpha 0.2
constant. For each seed one run per variant of ``--steps`` steps; from its history the
floor (mean C/C0 over the last quarter) at every length of ``--at`` (a deterministic run
of N steps is the first N steps of a longer one), the run's minimum and its step, and the
power (µW) over the last quarter at the longest length. Variants:

- ``plain``: no null offset; ``n10`` / ``n1``: the null offset measured every 10 / every
  step (a stale null would show as n10 above n1);
- ``n10-eta1``: with nudge 1 instead of 0.5 (the nudge's resolution in converter codes);
- ``n10-clamp12``: the clamp DAC 16 times finer (12 bits instead of 8: its quantisation).

    python benchmarks/bias_null_offset.py --seeds 0 1 --steps 1500 --variants plain n10 n1 n10-eta1 n10-clamp12
    python benchmarks/bias_null_offset.py --seeds 0 1 2 3 4 5 6 7 --steps 24000 --at 1500 6000 24000 --variants plain n10 [--lam 0.001]

About 0.35 ms of CPU per step (a 24000-step run: 8-9 s).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from learnboard.boards import load_board
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_session_defaults, board_task
from learnboard.engine.config import LearningConfig

VARIANTS = {"plain": (0, None, 1), "n10": (10, None, 1), "n1": (1, None, 1),
            "n10-eta1": (10, 1.0, 1), "n10-clamp12": (10, None, 16)}


def run(seed: int, steps: int, variant: str, lam: float) -> dict:
    every, eta, finer = VARIANTS[variant]
    board = load_board("gen2-clln")
    alpha_at, eta = board_session_defaults(board, steps, 0.2, eta)
    eng = BoardEngine(board, board_task(board, seed), LearningConfig(alpha=0.2, eta=eta, lam=lam),
                      model="board", seed=seed, alpha_at=alpha_at, null_offset_every=every)
    if finer != 1:  # a finer clamp DAC over the same span
        io = eng.io
        eng.io = dataclasses.replace(io, clamp_vpc=io.clamp_vpc / finer,
                                     clamp_max=io.clamp_max * finer + finer - 1)
    h = eng.train(eng.initial_state("uniform"), steps, record_every=10).history
    return {"step": h["step"], "rel": h["relative_error"], "power": h["power_watts"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--at", type=int, nargs="*", default=None, help="floor at these lengths")
    ap.add_argument("--variants", nargs="+", default=["plain", "n10"], choices=sorted(VARIANTS))
    ap.add_argument("--lam", type=float, default=0.0)
    a = ap.parse_args()
    at = a.at or [a.steps]
    print("seed variant " + " ".join(f"floor@{n}" for n in at) + " min@step power_uW")
    for seed in a.seeds:
        for v in a.variants:
            r = run(seed, a.steps, v, a.lam)
            st, rel = r["step"], r["rel"]
            floors = [float(np.mean(rel[(st > 0.75 * n) & (st <= n)])) for n in at]
            last = (st > 0.75 * a.steps)
            print(f"{seed} {v} " + " ".join(f"{f:.2g}" for f in floors)
                  + f" {rel.min():.2g}@{int(st[np.argmin(rel)])} {np.mean(r['power'][last]) * 1e6:.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
