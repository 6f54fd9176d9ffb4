"""On how many emulated gen2-clln-xor boards does XOR learn from the profile's defaults?

The board twin of ``learnboard sim --board gen2-clln-xor --seed S`` (the emulated board of
seed S: its device spread, converters, gate pulses and twin networks; the task's
examples of seed S) trained as ``learnboard train --port emu:gen2-clln-xor --seed S``
trains it, once per seed and setting. A seed counts when the held-out accuracy (nearest
level on the task's 8 noisy corners) is 1.0; the training accuracy is printed beside it.
The settings:

- ``defaults``: the profile's (``[learning]``: gates from the low end, constant learning
  rate 5, nudge 0.5, the null offset every step), 1000 steps (``learnboard train``'s);
- ``every 2``: the same with the null offset every 2 steps (``null_offset_every = 2``);
- ``no null offset``: the same with ``null_offset_every = 0``;
- ``gen2-clln's``: the plain gen2-clln session defaults on this wiring (uniform gates,
  learning rate annealed 1.0 -> 0.2, no null offset): what the profile had before;
- ``gen2-clln's + null offset``: those with the profile's null offset.

For each seed it also prints the twins' learning bias at the starting gates against the
nudge's signal (``benchmarks/xor_twin_bias.py``: the norm of the update term at zero
nudge over the part the nudge of 0.5 adds). Prints a Markdown table and the counts.

    python benchmarks/xor_seeds.py [--seeds 0 10] [--steps 1000]

About 1.5 s of CPU per run (1000 steps), ~1 min for the default 10 seeds.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np

from learnboard.boards import load_board
from learnboard.engine.board_engine import BoardEngine
from learnboard.engine.board_model import board_session_defaults, board_task
from learnboard.engine.config import LearningConfig
from learnboard.tasks import load_task

BOARD = "gen2-clln-xor"


def run(board, seed: int, steps: int) -> tuple[float, float, float]:
    """(held-out accuracy, training accuracy, final C/C0) of the twin session of ``seed``
    with ``board``'s session defaults (init, learning rate, nudge, null offset)."""
    alpha_at, eta = board_session_defaults(board, steps)
    eng = BoardEngine(board, board_task(board, seed=seed),
                      LearningConfig(alpha=alpha_at(0), eta=eta, lam=0.0), model="board",
                      seed=seed, alpha_at=alpha_at,
                      null_offset_every=board.learning.null_offset_every)
    res = eng.train(eng.initial_state(board.learning.init), steps, record_every=steps)
    task = load_task("xor", board=board, seed=seed)
    return (task.accuracy(eng.outputs_at(res.state, task.x_test), task.y_test),
            task.accuracy(eng.outputs_at(res.state, task.x_train), task.y_train),
            res.relative_error)


def bias_ratio(board, seed: int) -> float:
    """|update at zero nudge| / |what the nudge adds| at the profile's starting gates."""
    from xor_twin_bias import terms

    bias, sig = terms(board, seed, board.learning.init)
    return float(np.linalg.norm(bias) / np.linalg.norm(sig))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs=2, default=[0, 10], metavar=("FROM", "TO"),
                    help="seeds FROM .. TO-1 (default 0 10)")
    ap.add_argument("--steps", type=int, default=1000)
    a = ap.parse_args()
    board = load_board(BOARD)
    ln = board.learning
    plain = load_board("gen2-clln").learning
    old = replace(ln, init=plain.init, anneal=plain.anneal, alpha=plain.alpha,
                  null_offset_every=plain.null_offset_every)
    settings = {"defaults": ln, "every 2": replace(ln, null_offset_every=2),
                "no null offset": replace(ln, null_offset_every=0),
                "gen2-clln's": old,
                "gen2-clln's + null offset": replace(old, null_offset_every=ln.null_offset_every)}
    seeds = range(*a.seeds)
    t0 = time.process_time()
    table = {name: [run(replace(board, learning=lr), s, a.steps) for s in seeds]
             for name, lr in settings.items()}
    ratios = [bias_ratio(board, s) for s in seeds]
    print(f"{BOARD}, {a.steps} steps, defaults: init {ln.init}, alpha {ln.alpha:g} "
          f"({'annealed 1.0 -> 0.2' if ln.anneal else 'constant'}), eta {ln.eta:g}, "
          f"null offset every {ln.null_offset_every}\n")
    print("| seed | " + " | ".join(f"{n}: held out (train)" for n in settings)
          + " | bias / nudge at start |")
    print("|---" * (len(settings) + 2) + "|")
    for i, s in enumerate(seeds):
        cells = [f"{table[n][i][0]:.2f} ({table[n][i][1]:.2f})" for n in settings]
        print(f"| {s} | " + " | ".join(cells) + f" | {ratios[i]:.2f} |")
    counts = [f"**{sum(r[0] == 1.0 for r in table[n])} / {len(seeds)}**" for n in settings]
    print("| at 100 % held out | " + " | ".join(counts) + " | |")
    print("| median C/C0 | " + " | ".join(f"{np.median([r[2] for r in table[n]]):.3f}"
                                          for n in settings) + " | |")
    print(f"\n{time.process_time() - t0:.0f} s CPU")


if __name__ == "__main__":
    main()
