"""Can the gen2-clln board represent XOR? (docs/tasks.md, known limits)

On the nominal board (``circuit_for_board``, ``learnboard.physics.solve``), with the xor
task's input corners (per input: the highest "low" and the lowest "high" training value)
and the bias input at its fixed voltage:

1. random gate sets (uniform in the gate range, on/off mixes, near threshold): the largest
   amount by which the output *falls* when an input rises (monotonicity: <= 0 means never),
   and the best XOR margin ``min(true corners) - max(false corners)`` of the output, either
   sign;
2. a Powell optimiser over the 32 gate voltages maximising that margin (several starts);
3. the same margin for the difference of two nodes, output minus ``--second`` (what a
   one-hot two-output board would read).

    python benchmarks/xor_representability.py [--sets 300] [--starts 3] [--evals 1500]

Prints the numbers and the CPU time; takes about 1.5 min of CPU with the defaults.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from learnboard.boards import circuit_for_board, load_board
from learnboard.physics import Fix, solve
from learnboard.tasks import load_task


def corners_of(task) -> np.ndarray:
    x = task.x_train
    hi = x > x.mean(axis=0)
    lo_v = np.where(hi, -np.inf, x).max(axis=0)
    hi_v = np.where(hi, x, np.inf).min(axis=0)
    return np.array([[(lo_v, hi_v)[a][0], (lo_v, hi_v)[b][1]] for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--board", default="gen2-clln")
    ap.add_argument("--second", default="n33", help="second node for the difference")
    ap.add_argument("--sets", type=int, default=300)
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--evals", type=int, default=1500)
    args = ap.parse_args()
    board = load_board(args.board)
    glo, ghi = board.limits.gate_range or (0.75, 5.2)
    corners = corners_of(load_task("xor", board=board, seed=0))
    ins = [p for p in board.inputs if p.fixed is None]
    fixed = [Fix(p.a, p.fixed) for p in board.inputs if p.fixed is not None]
    out, second = board.outputs[0].a, board.nodes.index(args.second)

    def volts(g):
        c = circuit_for_board(board, np.clip(g, glo, ghi))
        return np.array([solve(c, [Fix(p.a, float(v)) for p, v in zip(ins, x, strict=True)]
                               + fixed).node_voltages for x in corners])

    def margin(o):
        return min(o[1], o[2]) - max(o[0], o[3])

    t0 = time.process_time()
    rng = np.random.default_rng(1)
    n_e = board.n_edges
    fall = best1 = best2 = -np.inf
    for i in range(args.sets):
        g = [rng.uniform(glo, ghi, n_e), np.where(rng.random(n_e) < 0.5, glo, ghi),
             rng.uniform(glo, glo + 0.45, n_e)][i % 3]
        v = volts(g)
        o = v[:, out]
        fall = max(fall, o[0] - min(o[1], o[2]), max(o[1], o[2]) - o[3])
        best1 = max(best1, margin(o), margin(-o))
        best2 = max(best2, margin(v[:, out] - v[:, second]))
    print(f"{board.name}: corners {np.round(corners, 4).tolist()} V")
    print(f"{args.sets} random gate sets: largest fall of the output when an input rises "
          f"{fall * 1e3:.3f} mV (<= 0: never falls); best XOR margin of the output "
          f"{best1 * 1e3:.3f} mV; of V({board.nodes[out]}) - V({args.second}) {best2 * 1e3:.3f} mV")
    best = (-np.inf, None)
    for r in range(args.starts):
        for sign in (1, -1):
            g0 = rng.uniform(glo, ghi, n_e) if r % 2 == 0 else rng.uniform(glo, glo + 0.75, n_e)
            res = minimize(lambda g, s=sign: -margin(s * volts(g)[:, out]), g0, method="Powell",
                           bounds=[(glo, ghi)] * n_e,
                           options={"maxfev": args.evals, "xtol": 1e-3, "ftol": 1e-9})
            print(f"  Powell start {r} sign {sign:+d}: margin {-res.fun * 1e3:.3f} mV ({res.nfev} evaluations)")
            if -res.fun > best[0]:
                best = (-res.fun, res.x)
    o = volts(best[1])[:, out]
    print(f"optimiser: best XOR margin {best[0] * 1e3:.3f} mV; its outputs at the corners "
          f"(low,low) (low,high) (high,low) (high,high) {np.round(o * 1e3, 2).tolist()} mV")
    print(f"cpu {time.process_time() - t0:.0f} s")


if __name__ == "__main__":
    main()
