"""``learnboard sim``: train a simulated network with power-aware coupled learning."""

from __future__ import annotations

import argparse

from learnboard.cli.learning_flags import ALPHA_HELP, ETA_HELP, LAMBDA_HELP

HELP = "train a simulated network with power-aware coupled learning"
DESCRIPTION = """\
Train a simulated network with coupled learning plus the power term of Stern et al. 2024
(APL Machine Learning 2, 016114): dk = -(alpha/eta) <(dV^C)^2 - (1 - lambda)(dV^F)^2>,
clipped to [k-min, k-max]; alpha is the learning rate, eta the nudge and lambda the power
weight, as in learnboard train, board and schedule files. Reports the relative error
C/C0, the power in the paper's ½ convention (½ Σ k dV^2, mean over examples; comparable
with the paper's figures) and the physical power Σ k dV^2 (watts when k is in siemens and
V in volts).

Without a network option, a disordered 64-node network is generated and the published
notebook's task is drawn on it: RandomState(seed) picks 2 source and 2 target edges, then
20 inputs in [0, 1); targets y = A x with A = --coeffs.

With --board, the simulation is a twin of that board as learnboard train drives it
(--board-model board, the default): the same task and examples (the profile's task drawn
with --seed), the same defaults for alpha and eta (on transistor boards the learning rate
annealed 1.0 -> 0.2 over --steps), the firmware's rule, converters and gate pulses, and
the device spread of the emulated board of the same --seed. Its C/C0 lands within a
factor 2 of `learnboard train --port emu:PROFILE --seed S` at equal steps, so a board
session can be planned in simulation (docs/engine.md, "Board profiles")."""

EPILOG = """\
examples:
  learnboard sim
      generated disordered N=64 network, notebook-style task, 2000 steps
  learnboard sim --network data_N00064_Lp0.0100_r1.txt --lam 1e-6 --steps 2000
      the published reference run (C/C0 = 1.49658e-2, P = 0.476)
  learnboard sim --network net.txt --sources 45,118 --targets 16,56 --data train.csv
      your own terminals and data (CSV columns x0,x1,... inputs, y0,y1,... targets)
  learnboard sim --generate lattice:16x16,periodic --source-nodes 3,40 --target-nodes 100 \\
      --task regression --coeffs "0.2,0.3" --train-size 50 --seed 2 --batch online
  learnboard sim --generate disordered:N=256,seed=4 --tolerance 1e-3 --steps 100000 --json
      closed-loop lambda for C/C0 about 1e-3; JSON summary on stdout
  learnboard sim --init low --steps 20000 --save run1/
      low starting conductances; writes run1/conductances.csv and run1/history.csv
  learnboard sim --network data_N00064_Lp0.0100_r1.txt --lam 1e-4 --steps 100000 \\
      --replicas 10 --perturb 1e-12 --json
      strong lambda is a distribution: median, IQR and modes over 10 perturbed starts
  learnboard sim --seed 1 --steps 100000 --inverse
      a task the rule leaves at C/C0 0.58: is it the task or the rule? (inverse problem)
  learnboard sim --board gen1-digipot --steps 100
      a shipped board profile through the same engine (digipot taps, transistor gates)
  learnboard sim --board gen2-clln --steps 1000 --seed 2 --json
      plan a session: what `learnboard train --port emu:gen2-clln --seed 2 --steps 1000` reaches
  learnboard sim --board gen2-clln --lam 0.05 --power-term exact --json
      the board twin's rule with the exact power gradient instead of its local term

--generate specs: disordered:N=64,seed=1[,z=4.47][,periodic=1]   lattice:16x16[,periodic]
"""


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    net = p.add_argument_group("network (one of; default: --generate disordered:N=64,seed=1)")
    src = net.add_mutually_exclusive_group()
    src.add_argument("--network", metavar="FILE",
                     help="network file (first line 'NN NE L', NN lines 'x y', NE lines 'i j'); "
                          "e.g. --network data_N00064_Lp0.0100_r1.txt")
    src.add_argument("--board", metavar="NAME|FILE",
                     help="board profile name or TOML description; its devices (digipot taps, "
                          "transistor gates) are simulated; e.g. --board gen2-clln")
    net.add_argument("--board-model", choices=("board", "ideal"), default="board",
                     help="with --board: board = a twin of the emulated board of --seed "
                          "(twin-network device spread, converters, the firmware's pulses, "
                          "learnboard train's defaults); ideal = nominal parts and exact volts, "
                          "gates moved by the rule's volts; default %(default)s")
    net.add_argument("--null-offset-every", type=int, default=None, metavar="N",
                     help="with --board: every N steps measure the rule's update at zero nudge "
                          "and subtract it from the following steps' (the firmware's "
                          "null_every; learnboard train --null-offset-every); default: the "
                          "profile's [learning] null_offset_every (0 = off)")
    net.add_argument("--power-term", choices=("local", "exact", "exact-total"), default="local",
                     help="with --board on a transistor board: the rule's power term; local = "
                          "<(dV^F)^2> (what a board computes), exact = the exact gradient of "
                          "the free network's physical power with respect to the gates, "
                          "exact-total = of the free plus clamped power (with --board-model "
                          "board: network 0's and the clamped twin's own devices; an adjoint "
                          "solve per example, scaled to the local term's norm; "
                          "docs/physics.md); the agreement of the local term with both is "
                          "reported in --json (default %(default)s)")
    src.add_argument("--generate", metavar="SPEC",
                     help="generate a network: disordered:N=64,seed=1[,z=4.47][,periodic=1] or "
                          "lattice:16x16[,periodic]")
    net.add_argument("--ground", type=int, metavar="N",
                     help="ground node (held at 0 V); default: the last node, e.g. --ground 0")
    net.add_argument("--method", default="auto", choices=("auto", "ldl", "band", "dense", "pcg"),
                     help="linear solver: ldl (sparse LDL^T), band (banded Cholesky), dense, pcg "
                          "(warm-started CG, large networks); default auto: ldl up to 3000 "
                          "nodes, pcg above")

    term = p.add_argument_group("inputs and outputs (default: drawn as the notebook does)")
    term.add_argument("--sources", type=_ints, default=(), metavar="E,E",
                      help="source edges: inputs are the drops V_i - V_j across these edges "
                           "(0-based, as listed in the file), e.g. --sources 45,118")
    term.add_argument("--targets", type=_ints, default=(), metavar="E,E",
                      help="target edges: outputs are the drops across them, e.g. --targets 16,56")
    term.add_argument("--source-nodes", type=_ints, default=(), metavar="N,N",
                      help="source nodes: inputs are node voltages to ground, e.g. --source-nodes 3,7")
    term.add_argument("--target-nodes", type=_ints, default=(), metavar="N,N",
                      help="target nodes: outputs are node voltages to ground, e.g. --target-nodes 12")

    task = p.add_argument_group("training data (one of)")
    task.add_argument("--data", metavar="CSV",
                      help="CSV with a header: x0,x1,... inputs (edges then nodes), y0,y1,... "
                           "targets; one row per example, e.g. --data train.csv")
    task.add_argument("--task", choices=("regression",), default="regression",
                      help="generated task (default): linear regression y = A x, x uniform in [0,1)")
    task.add_argument("--coeffs", default="0.2,0.3;0.1,0.5", metavar="A",
                      help="regression matrix, rows separated by ';' (targets x inputs); "
                           "default %(default)s")
    task.add_argument("--train-size", type=int, default=20, metavar="N",
                      help="number of generated examples (default %(default)s), e.g. --train-size 50")
    task.add_argument("--seed", type=int, default=0,
                      help="seed of the terminal choice and the data (numpy legacy RandomState, "
                           "as the notebook), also of shuffling and desynchronous updates; "
                           "default %(default)s")

    learn = p.add_argument_group("learning")
    learn.add_argument("--alpha", type=float, default=0.5, help=f"{ALPHA_HELP} (default %(default)s)")
    learn.add_argument("--eta", type=float, default=1e-3, help=f"{ETA_HELP} (default %(default)s)")
    learn.add_argument("--lam", "--lambda", dest="lam", type=float, default=0.0,
                       help=f"{LAMBDA_HELP}; default %(default)s, e.g. --lam 1e-6")
    learn.add_argument("--init", choices=("uniform", "random", "low"), default=None,
                       help="initial conductances: uniform k0, random in [k0/2, 3k0/2], or low "
                            "(10 x k-min); default uniform (with --board: the profile's "
                            "[learning] init, as learnboard train)")
    learn.add_argument("--k0", type=float, default=1.0,
                       help="initial conductance for --init uniform/random (default %(default)s)")
    learn.add_argument("--k-min", type=float, default=1e-4, help="lower clip (default %(default)s)")
    learn.add_argument("--k-max", type=float, default=1e6, help="upper clip (default %(default)s)")
    learn.add_argument("--steps", type=int, default=2000, help="learning steps (default %(default)s)")
    learn.add_argument("--batch", choices=("full", "online"), default="full",
                       help="full: mean over all examples per step; online: one example per step "
                            "(default %(default)s)")
    learn.add_argument("--order", choices=("cycle", "shuffle"), default="cycle",
                       help="online example order (default %(default)s)")
    learn.add_argument("--update-prob", type=float, default=1.0, metavar="P",
                       help="desynchronous learning: each edge updates with probability P per step "
                            "(default 1), e.g. --update-prob 0.5")
    learn.add_argument("--tolerance", type=float, metavar="TAU",
                       help="closed-loop lambda (the paper's): lambda = 0 until C/C0 < TAU, then 1e-9, "
                            "x1.05 or /2 every 100 steps; tail means over the last 10%% are "
                            "reported, e.g. --tolerance 1e-3")

    rep = p.add_argument_group("replicas (distributions where one run is not a result)")
    rep.add_argument("--replicas", type=int, metavar="R",
                     help="run R replicas and report median, IQR and modes (--json: replicas, "
                          "median, iqr, range, modes), e.g. --replicas 10 --perturb 1e-12")
    rep.add_argument("--perturb", type=float, default=0.0, metavar="EPS",
                     help="replica i starts from k0 * (1 + EPS u), u uniform in [-1, 1) per "
                          "edge, seeded by (--seed, i); default %(default)s")
    rep.add_argument("--vary-seed", action="store_true",
                     help="replica i uses learning seed --seed + i (shuffled order, "
                          "desynchronous masks); the task stays the same")
    inv = p.add_argument_group("representability (the inverse problem)")
    inv.add_argument("--inverse", type=int, nargs="?", const=8, default=0, metavar="STARTS",
                     help="after training, search the best conductances in [k-min, k-max] for "
                          "the task directly (multi-start L-BFGS-B on the exact error; starts: "
                          "the trained state, uniform, STARTS random, default 8, then up to "
                          "--inverse-more more while none reaches --inverse-below) and say "
                          "whether the task looks representable; e.g. --inverse or --inverse 20")
    inv.add_argument("--inverse-more", type=int, default=24, metavar="N",
                     help="further random starts tried while the best is still above "
                          "--inverse-below (default %(default)s)")
    inv.add_argument("--inverse-below", type=float, default=1e-5, metavar="TAU",
                     help="C/C0 the search must reach to call the task representable "
                          "(default %(default)s, the paper report's screening threshold)")
    inv.add_argument("--inverse-maxiter", type=int, default=3000, metavar="N",
                     help="L-BFGS-B iterations per start (default %(default)s)")

    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true", help="print one JSON object (no table)")
    out.add_argument("--save", metavar="DIR",
                     help="write DIR/conductances.csv, DIR/history.csv, DIR/summary.json "
                          "(and DIR/network.txt for generated networks)")
    out.add_argument("--record-every", type=int, default=0, metavar="S",
                     help="history interval in steps (default: about 200 points)")


def run(args: argparse.Namespace) -> int:
    from learnboard.engine.simulate import run_sim

    return run_sim(args)
