"""``learnboard paper``: reproduce the paper's figures and tables as a report folder."""

from __future__ import annotations

import argparse

HELP = "reproduce the power-efficient learning paper: figures, tables, report"
DESCRIPTION = """\
Reproduce Stern, Dillavou, Jayaraman, Durian & Liu, "Training self-learning circuits for
power-efficient solutions", APL Machine Learning 2, 016114 (2024) with the project's engine
and write a report folder: report.md, PNG figures and the CSV tables behind them.

  1. relative error and power against lambda, with the lambda² guide; the strong-lambda
     end as distributions over perturbed starts, and their small-alpha check (alpha
     halved at fixed alpha × steps until the distribution stops moving, or a budget);
  2. initial conditions (k0 1 / 0.1 / 0.01, low init): power at equal error;
  3. the error–power trade-off (each point a lambda, spread over seeds and networks);
  4. the tolerance controller against fixed lambda at equal error;
  5. the gen2-clln transistor board, nominal and with device imperfections (twin-network
     mismatch, ADC resolution), and its rule's local power term against the exact
     gradient of the physical power with respect to the gates (cosine and sign agreement
     along training, power reached at equal error);
  6-7. beyond the paper: noisy targets, energy spent during training;
  and the task screening: candidate tasks are first trained at lambda 0 and only those
  below C/C0 1e-5 are used (a filter); every task filtered out stays in the report with
  its plateau, the fraction of edges at k-min and a representability verdict from the
  inverse problem (best conductances found by multi-start L-BFGS-B on the exact error).

With the authors' reference networks (--reference DIR, or the folder named by the
environment variable LEARNBOARD_REFERENCE) the runs use r1..r5 and r51 and the report
compares r1 with the reference results, an exact re-run of the authors' published
algorithm on r1 (tolerances and pass/fail); otherwise, or with --generated, it uses
generated disordered networks of several sizes and seeds. The reference networks are the
NetworkStates/ folder of https://github.com/NachiStern/Power-efficient-learning (not
shipped with learnboard: that repository states no licence). All runs go through
`learnboard sweep` into OUT/sweep, so an interrupted report resumes."""

EPILOG = """\
examples:
  git clone https://github.com/NachiStern/Power-efficient-learning
  learnboard paper --reference Power-efficient-learning/NetworkStates --out paper-report
      the full report (budget: 20 minutes on 2 idle cores; the report's last section
      says what it cost)
  learnboard paper --quick --generated --out /tmp/quick
      a smaller grid on generated networks (budget: 3 minutes on 2 idle cores)
  learnboard paper --scheduler tcp://10.0.0.5:8786
      the same sweeps on a Dask cluster (networks from $LEARNBOARD_REFERENCE when set)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", default="paper-report", help="report folder (default: paper-report)")
    p.add_argument("--quick", action="store_true", help="small grid (budget: 3 minutes on 2 idle cores)")
    nets = p.add_mutually_exclusive_group()
    nets.add_argument("--reference", metavar="DIR", default=None,
                      help="folder with the authors' reference networks "
                           "(data_N00064_Lp0.0100_r1.txt, ...; default: $LEARNBOARD_REFERENCE)")
    nets.add_argument("--generated", action="store_true",
                      help="use generated networks even when LEARNBOARD_REFERENCE is set")
    p.add_argument("--workers", type=int, metavar="N", default=None,
                   help="local worker processes (default: number of cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None,
                   help="run the sweeps on a Dask distributed scheduler")
    p.add_argument("--no-board", action="store_true", help="skip the gen2-clln board runs")


def run(args: argparse.Namespace) -> int:
    import sys

    from learnboard.studies.paper import default_plan, run_paper

    from learnboard.errors import InputError

    if args.workers is not None and args.workers < 1:
        raise InputError("must be at least 1", field="--workers")
    plan = default_plan(args.reference, quick=args.quick, generated=args.generated)
    if args.no_board:
        plan.board = None
    command = "learnboard " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["paper"] else "learnboard paper"
    rep = run_paper(plan, args.out, workers=args.workers, scheduler=args.scheduler,
                    command=command)
    print(f"report: {rep.markdown} ({rep.runs} runs, {rep.failed} failed, {rep.seconds:.0f} s)")
    for r in rep.comparison + rep.findings:
        if r["pass"] is False:
            print(f"  outside tolerance: {r.get('quantity') or r.get('finding')}: {r['measured']}")
    return 0
