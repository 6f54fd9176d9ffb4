"""Reproduce the reference results and the paper's findings with the engine (1e5-step runs).

The paper: Stern, Dillavou, Jayaraman, Durian & Liu, "Training self-learning circuits for
power-efficient solutions", APL Machine Learning 2, 016114 (2024); the reference results
(an exact re-run of the authors' published algorithm on r1) are the values kept in
:mod:`learnboard.studies.paper.compare` and shown in docs/paper.md.

Run: ``python benchmarks/reproduce_paper.py [--reference DIR]`` (about a minute on one
core; DIR defaults to ``$LEARNBOARD_REFERENCE``, the authors' reference networks). Prints
C/C0 and P (½ convention) per run, the log-log slope of C/C0 against lambda over
1e-10..1e-8, and the tolerance controller's tail means.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # noqa: E402

import argparse  # noqa: E402

import numpy as np  # noqa: E402

from learnboard.engine.config import LearningConfig  # noqa: E402
from learnboard.engine.controller import ToleranceController, tail_means  # noqa: E402
from learnboard.engine.linear import LinearEngine, Terminals  # noqa: E402
from learnboard.network import read_network  # noqa: E402
from learnboard.reference import reference_file, require_folder  # noqa: E402
from learnboard.tasks import notebook_task  # noqa: E402

STEPS = 100_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", metavar="DIR", default=None,
                    help="folder with the authors' reference networks (default: $LEARNBOARD_REFERENCE)")
    args = ap.parse_args()
    folder, setting = require_folder(args.reference)
    net = read_network(reference_file(folder, "r1", setting))
    src, tgt, data = notebook_task(net.n_edges)
    terms = Terminals(tuple(src), tuple(tgt))

    def run(lam, k0=1.0, steps=STEPS, controller=None):
        eng = LinearEngine(net, terms, data, LearningConfig(lam=lam))
        every = 1 if controller else steps
        return eng.train(np.full(net.n_edges, k0), steps, record_every=every, controller=controller)

    print(f"{'run':32s} {'C/C0':>10s} {'P (½)':>8s}")
    rel = {}
    for k0, lam in [(1, 0), (1, 1e-10), (1, 1e-9), (1, 1e-8), (1, 1e-7), (1, 1e-6), (1, 1e-5),
                    (1, 1e-4), (1, 1e-3), (0.1, 0), (0.01, 0)]:
        r = run(lam, k0)
        rel[(k0, lam)] = r.relative_error
        print(f"k0 {k0:<5g} lambda {lam:<8g} 1e5 steps  {r.relative_error:10.3g} {r.final.power:8.3g}")
    for steps, lam in [(2000, 1e-6), (20000, 0), (20000, 1e-6)]:
        r = run(lam, steps=steps)
        print(f"k0 1     lambda {lam:<8g} {steps:>6d} steps {r.relative_error:10.6g} {r.final.power:8.3g}")
    lams = np.array([1e-10, 1e-9, 1e-8])
    slope = np.polyfit(np.log10(lams), np.log10([rel[(1, lam)] for lam in lams]), 1)[0]
    print(f"log-log slope of C/C0 vs lambda over 1e-10..1e-8: {slope:.3f} (paper: 2)")
    for tau in (1e-3, 1e-4, 1e-6):
        ctl = ToleranceController(tau)
        tail = tail_means(run(0.0, controller=ctl).history)
        print(f"tolerance {tau:g}: lambda on at step {ctl.s0}; last 10 %: "
              f"C/C0 {tail['relative_error']:.3g}, P {tail['power']:.4g}")


if __name__ == "__main__":
    from learnboard.errors import LearnboardError

    try:
        main()
    except LearnboardError as exc:  # a missing reference folder: the message says what to set
        raise SystemExit(f"error: {exc}") from None
