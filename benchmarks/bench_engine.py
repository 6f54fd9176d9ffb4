"""Speed of the learning engine against the published algorithm, same task, same process.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_engine.py [--repeats 5]``
(the variable is also pinned below, before numpy is imported). Prints medians of repeats.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # noqa: E402 - must precede the numpy import
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_published import PublishedBaseline  # noqa: E402

from learnboard.engine.config import LearningConfig  # noqa: E402
from learnboard.engine.linear import LinearEngine, Terminals  # noqa: E402
from learnboard.generate import lattice  # noqa: E402
from learnboard.network import read_network  # noqa: E402
from learnboard.reference import ENV, reference_file, reference_folder  # noqa: E402
from learnboard.tasks import notebook_task  # noqa: E402


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def engine_for(net, method="auto", lam=1e-6):
    src, tgt, data = notebook_task(net.n_edges)
    return LinearEngine(net, Terminals(tuple(src), tuple(tgt)), data, LearningConfig(lam=lam),
                        method=method), src, tgt, data


def compare(name, net, steps_engine, steps_base, repeats):
    eng, src, tgt, data = engine_for(net)
    base = PublishedBaseline(net, src, tgt, data.inputs, data.targets, lam=1e-6)
    k0 = np.ones(net.n_edges)
    # equal error: both run the same 2000-step reference task first
    ref_steps = 2000
    e_rel = eng.train(k0, ref_steps, record_every=ref_steps).relative_error
    t_base = median_time(lambda: base.train(k0, steps_base), repeats) / steps_base
    b_rel = base.train(k0, ref_steps)[0] if net.n_nodes <= 64 else float("nan")
    t_eng = median_time(lambda: eng.train(k0, steps_engine, record_every=steps_engine),
                        repeats) / steps_engine
    band = engine_for(net, "band")[0]  # the general loop with the banded backend, for reference
    t_band = median_time(lambda: band.train(k0, steps_engine, record_every=steps_engine),
                         repeats) / steps_engine
    return {"name": name, "nodes": net.n_nodes, "edges": net.n_edges, "solver": eng.solver.method,
            "base_us": t_base * 1e6, "eng_us": t_eng * 1e6, "speedup": t_base / t_eng,
            "band_us": t_band * 1e6, "eng_rel": e_rel, "base_rel": b_rel}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lattice", type=int, default=100, help="periodic lattice side (nodes = side^2)")
    ap.add_argument("--reference", metavar="DIR", default=None,
                    help="folder with the authors' reference networks (default: $LEARNBOARD_REFERENCE)")
    args = ap.parse_args()
    rows = []
    found = reference_folder(args.reference)
    if found:
        folder, setting = found
        rows.append(compare("r1 (N=64)", read_network(reference_file(folder, "r1", setting)),
                            4000, 400, args.repeats))
        rows.append(compare("r101 (N=256)", read_network(reference_file(folder, "r101", setting)),
                            2000, 40, args.repeats))
    else:
        print(f"no reference networks (--reference DIR or {ENV}); skipping the baseline comparison")
    print(f"{'network':14s} {'nodes':>6s} {'edges':>6s} {'solver':>6s} {'baseline µs/step':>17s} "
          f"{'steps/s':>9s} {'engine µs/step':>15s} {'steps/s':>9s} {'speedup':>8s}  C/C0 @2000 (engine / baseline)")
    for r in rows:
        print(f"{r['name']:14s} {r['nodes']:6d} {r['edges']:6d} {r['solver']:>6s} {r['base_us']:17.1f} "
              f"{1e6 / r['base_us']:9.0f} {r['eng_us']:15.1f} {1e6 / r['eng_us']:9.0f} "
              f"{r['speedup']:7.1f}x  {r['eng_rel']:.6e} / {r['base_rel']:.6e}")
    for r in rows:
        print(f"{r['name']}: engine with the band backend {r['band_us']:.1f} µs/step "
              f"({r['base_us'] / r['band_us']:.1f}x)")
    side = args.lattice
    net = lattice(side, side, periodic=True)
    for method in ("pcg", "band"):
        eng = engine_for(net, method)[0]
        k0 = np.ones(net.n_edges)
        eng.train(k0, 5, record_every=5)  # first factorisation outside the timing
        steps = 100 if method == "pcg" else 10
        t = median_time(lambda eng=eng, steps=steps, k0=k0: eng.train(k0, steps, record_every=steps),
                        max(1, args.repeats // 2)) / steps
        info = eng.train(k0, steps, record_every=steps).info
        extra = (f", CG iterations/step {info['cg_iterations_mean']:.2f}, "
                 f"refactorisations {info['refactorisations']}") if "cg_iterations_mean" in info else ""
        print(f"periodic lattice {side}x{side} ({net.n_nodes} nodes, {net.n_edges} edges), "
              f"{method}: {t * 1e3:.2f} ms/step{extra}")
    for line in rows_board(args):
        print(line)


def rows_board(args) -> list[str]:
    """Board profiles through ``BoardEngine`` as ``learnboard sim --board`` runs them
    (model ``board``, the profile's 20 default examples, seed 0): CPU steps/s of the
    batched path and of the per-example reference path in the same run, Newton iterations
    per warm-started solve, C/C0 after 1000 steps."""
    from learnboard.boards import load_board
    from learnboard.engine.board_engine import BoardEngine
    from learnboard.engine.board_model import board_session_defaults, board_task

    out = []
    for name in ("gen2-clln", "gen1-digipot"):
        board = load_board(name)
        steps, ref_steps = 1000, 40
        alpha_at, eta = board_session_defaults(board, steps)
        rule = "sign" if board.learning.rule == "sign" else "accumulate"
        data = board_task(board, 0)

        def run(solver, n, board=board, alpha_at=alpha_at, eta=eta, rule=rule, data=data):
            eng = BoardEngine(board, data, LearningConfig(alpha=alpha_at(0), eta=eta), rule,
                              model="board", seed=0, alpha_at=alpha_at, solver=solver)
            return eng.train(eng.initial_state(), n, record_every=n)

        run("batch", 5)  # JIT and caches outside the timing
        fast = [run("batch", steps) for _ in range(max(1, args.repeats // 2))]
        sec = float(np.median([r.seconds for r in fast]))
        ref = run("reference", ref_steps)
        ref_sps = ref_steps / ref.seconds
        out.append(f"board {name} ({board.n_edges} edges, {data.n_examples} examples): batched "
                   f"{steps / sec:.0f} steps/s CPU ({sec / steps * 1e6:.0f} µs/step), per-example "
                   f"reference {ref_sps:.1f} steps/s ({steps / sec / ref_sps:.0f}x), Newton "
                   f"iterations per warm-started solve {fast[0].newton_iterations_mean:.2f}, "
                   f"C/C0 after {steps} steps {fast[0].relative_error:.4g}")
    return out


if __name__ == "__main__":
    main()
