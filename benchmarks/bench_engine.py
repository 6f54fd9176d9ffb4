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
    for line in rows_large(args):
        print(line)


def cpu_per_step(fn, steps, repeats):
    """Median CPU seconds per step of ``fn()`` (which runs ``steps`` steps) over repeats."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) / steps)
    return float(np.median(times))


def rows_large(args) -> list[str]:
    """The periodic lattice with the pcg backend against one SuperLU factorisation of the
    same grounded Laplacian, CPU time in the same run; the banded backend for reference."""
    import scipy.sparse.linalg as spl

    from learnboard.engine import pcg_kernels

    pcg_kernels.warm_up()
    side = args.lattice
    net = lattice(side, side, periodic=True)
    name = f"periodic lattice {side}x{side} ({net.n_nodes} nodes, {net.n_edges} edges)"
    k0 = np.ones(net.n_edges)
    eng = engine_for(net, "pcg")[0]
    eng.train(k0, 5, record_every=5)  # first factorisation outside the timing
    steps, repeats = 100, max(3, args.repeats)
    t_pcg = cpu_per_step(lambda: eng.train(k0, steps, record_every=steps), steps, repeats)
    solver = eng.solver
    solver.iterations.clear()
    res = eng.train(k0, steps, record_every=steps)
    its = np.mean(solver.iterations)
    # the same grounded reduced Laplacian, at the conductances the run ended with
    lap = solver.laplacian(res.conductances).tocsc()
    t_lu = cpu_per_step(lambda: spl.splu(lap), 1, repeats)
    # a continuous run: the factor ages and is renewed on the way
    long = engine_for(net, "pcg")[0]
    long.train(k0, 1, record_every=1)
    long_steps = 1000
    t_long = cpu_per_step(lambda: long.train(k0, long_steps, record_every=long_steps),
                          long_steps, 1)
    its_long, refac = np.mean(long.solver.iterations), long.solver.refactors - 1
    band = engine_for(net, "band")[0]
    band.train(k0, 1, record_every=1)
    t_band = cpu_per_step(lambda: band.train(k0, 10, record_every=10), 10, max(1, repeats // 2))
    return [
        f"{name}, pcg: {t_pcg * 1e3:.2f} ms CPU/step (median of {repeats} runs of {steps} steps "
        f"from k = 1), CG iterations/step {its:.2f}",
        f"{name}: SuperLU factorisation (splu, default options) {t_lu * 1e3:.1f} ms CPU; "
        f"pcg step / factorisation = {t_pcg / t_lu:.3f} (target <= 0.12)",
        f"{name}, pcg, {long_steps} steps in one run: {t_long * 1e3:.2f} ms CPU/step, "
        f"CG iterations/step {its_long:.2f}, {refac} refactorisations",
        f"{name}, band: {t_band * 1e3:.1f} ms CPU/step",
    ]


if __name__ == "__main__":
    main()
