"""Power-aware training on the emulated boards: `learnboard train --tolerance task` against
`learnboard train` (lambda 0), each with the product's defaults, per shipped profile.

For each board it runs both sessions through the command line (`--json`, one seed),
prints the final and tail-mean C/C0 against the task's tolerance, the board-reported total
power with its source (measured / estimate), the emulator's true total power and the
board's figure as a fraction of it, and the ratio of true power lambda 0 / controller;
then `learnboard compare` of the pair, with its figure in ``--out``. The targets it
checks by eye: the tolerance reached on the tail mean, the board's figure within 15 % of
the true total, and the power ratio (>= 3x on gen2-clln, >= 2x asked on gen1-digipot,
whose floor with every tap at its highest resistance is 2.0x, docs/training.md).

    python benchmarks/power_aware.py [--boards gen2-clln gen1-digipot gen2-clln-sense]
        [--seed 0] [--steps N] [--out DIR]

Measured 2026-12-06 (seed 0, 1000 steps, load ~1): see docs/training.md, "Measured";
gen2-clln 421.3 -> 41.3 uW true (10.2x), gen1-digipot 34.25 -> 17.71 uW (1.93x),
gen2-clln-sense 309.1 -> 41.8 uW (7.4x); board / true 0.90-1.00 in all six.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _train(board: str, runs: Path, name: str, seed: int, steps: int | None, *flags: str) -> dict:
    cmd = [sys.executable, "-m", "learnboard", "train", "--board", board, "--json", "--no-plot",
           "--runs", str(runs), "--name", name, "--seed", str(seed), *flags]
    if steps:
        cmd += ["--steps", str(steps)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _row(label: str, d: dict) -> str:
    true = d["true_power"]
    return (f"  {label:<18} C/C0 {d['relative_error']:.3g} (tail {d['tail_relative_error']:.3g}, "
            f"tolerance {d['tolerance']:.3g}, reached {d['reached']}), board "
            f"{d['power'] * 1e6:.4g} uW ({d['power_source']}), true {true * 1e6:.4g} uW "
            f"(board/true {d['power'] / true:.3f}), lambda {d['lambda']:.3g}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--boards", nargs="+", default=["gen2-clln", "gen1-digipot", "gen2-clln-sense"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="default: the product's (1000)")
    ap.add_argument("--out", type=Path, default=None, help="keep the runs and figures here")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="power-aware-"))
    for board in args.boards:
        runs = out / board
        plain = _train(board, runs, "lambda0", args.seed, args.steps)
        ctrl = _train(board, runs, "controller", args.seed, args.steps, "--tolerance", "task")
        print(f"{board} (seed {args.seed}):")
        print(_row("learnboard train", plain))
        print(_row("--tolerance task", ctrl))
        print(f"  true power {plain['true_power'] / ctrl['true_power']:.2f}x lower with the controller")
        subprocess.run([sys.executable, "-m", "learnboard", "compare", plain["run_dir"],
                        ctrl["run_dir"], "--plot", str(out / f"compare-{board}.png")], check=True)
    print(f"runs and figures: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
