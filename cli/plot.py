"""``learnboard plot``: publication-ready figures of a run folder."""

from __future__ import annotations

import argparse

HELP = "draw a run's error, power, lambda, error-power trade-off and network (PNG)"
DESCRIPTION = """\
Write PNG figures of a training run into RUN_DIR/figures/ (or --out):
error.png (relative error C/C0 against step, log-log, with the tolerance and the final
train/test errors), power.png (board-reported power in µW against step, log-log, named
measured or estimate, with the emulator's true power at start and end and the λ 0 run of
the same board and task from the same runs folder as a reference), lambda.png (lambda against step), tradeoff.png
(power against C/C0 along the run, coloured by step), and network.png (the board's
network with each edge's gate voltage or conductance at the first and last checkpoint).
Steps redone after a restore are drawn once (the later records). Details: docs/tasks.md#plot."""
EPILOG = """\
examples:
  learnboard plot runs/20261128-171502-regression
      figures into runs/20261128-171502-regression/figures/
  learnboard plot runs/20261128-171502-regression --out paper-figs/
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder written by `learnboard train`")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="output folder (default: RUN_DIR/figures)")


def run(args: argparse.Namespace) -> int:
    from learnboard.host.plots import plot_run

    for p in plot_run(args.run_dir, args.out):
        print(p)
    return 0
