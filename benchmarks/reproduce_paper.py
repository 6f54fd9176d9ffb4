"""Reproduce BRIEF §2's table and the paper's findings with the engine (1e5-step runs).

Run: ``python benchmarks/reproduce_paper.py`` (about a minute on one core). Prints
C/C0 and P (½ convention) per run, the log-log slope of C/C0 against lambda over
1e-10..1e-8, and the tolerance controller's tail means.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # noqa: E402

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from learnboard.engine.config import LearningConfig  # noqa: E402
from learnboard.engine.controller import ToleranceController, tail_means  # noqa: E402
from learnboard.engine.linear import LinearEngine, Terminals  # noqa: E402
from learnboard.network import read_network  # noqa: E402
from learnboard.tasks import notebook_task  # noqa: E402

REF = Path(__file__).resolve().parents[2] / "shared" / "reference" / "networks"
STEPS = 100_000


def main() -> None:
    net = read_network(REF / "data_N00064_Lp0.0100_r1.txt")
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
    main()
