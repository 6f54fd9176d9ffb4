"""How the cost of a learning step grows with the network: periodic lattices of 1k to 100k nodes.

Run: ``python benchmarks/bench_scaling.py [--sides 32 55 100 173 316] [--figure PATH]``
(one BLAS thread, pinned below). Each size runs in its own process, so that the peak
resident memory it reports belongs to that size alone. Per size: CPU ms per learning step
with the ``pcg`` backend (notebook task, lambda 1e-6, median of repeats from k = 1 after a
warm-up), CG iterations per step, the exact ``ldl`` backend's ms per step (up to
``--ldl-max`` nodes), one SuperLU factorisation (``splu``, default options) of the same
grounded Laplacian, and memory per node: the engine's peak numpy allocations
(``tracemalloc``) and the growth of the process's peak resident set (this one also counts
the LDL^T factor, which lives in C). Prints a table and the fitted log-log exponents and
writes the figure (default ``docs/img/engine_scaling.png``).

``--crossover 1000 3000 10000`` instead times ``ldl`` against ``pcg`` on generated
disordered networks of those sizes (full batch, shuffled online, and full batch with
alpha 5) and on periodic lattices of about as many nodes (full batch), the measurement
behind ``PCG_ABOVE`` in ``learnboard/engine/solvers.py``.
"""

from __future__ import annotations

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # noqa: E402 - must precede the numpy import
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _status_kib(field: str) -> int:
    """A memory figure of this process from /proc (VmRSS, VmHWM), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def _cpu_per_step(fn, steps: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append((time.process_time() - t) / steps)
    return float(np.median(times))


def measure(side: int, ldl_max: int) -> dict:
    """All numbers for one periodic ``side x side`` lattice (run in a fresh process)."""
    import tracemalloc

    import scipy.sparse.linalg as spl

    from learnboard.engine import pcg_kernels
    from learnboard.engine.config import LearningConfig
    from learnboard.engine.linear import LinearEngine, Terminals
    from learnboard.generate import lattice
    from learnboard.tasks import notebook_task

    pcg_kernels.warm_up()
    net = lattice(side, side, periodic=True)
    src, tgt, data = notebook_task(net.n_edges)
    terms, cfg = Terminals(tuple(src), tuple(tgt)), LearningConfig(lam=1e-6)
    k0 = np.ones(net.n_edges)
    rss0 = _status_kib("VmRSS")
    tracemalloc.start()
    eng = LinearEngine(net, terms, data, cfg, method="pcg")
    eng.train(k0, 3, record_every=3)  # first factorisation outside the timing
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm = _status_kib("VmHWM")
    steps = max(30, min(100, 1_000_000 // net.n_nodes))
    t_pcg = _cpu_per_step(lambda: eng.train(k0, steps, record_every=steps), steps, 3)
    eng.solver.iterations.clear()
    res = eng.train(k0, steps, record_every=steps)
    its = float(np.mean(eng.solver.iterations))
    lap = eng.solver.laplacian(res.conductances).tocsc()
    t_lu = _cpu_per_step(lambda: spl.splu(lap), 1, 3)
    t_factor = _cpu_per_step(lambda: eng.solver._factor(res.conductances), 1, 3)
    row = {"side": side, "nodes": net.n_nodes, "edges": net.n_edges, "pcg_ms": t_pcg * 1e3,
           "cg_iterations": its, "superlu_ms": t_lu * 1e3, "refactor_ms": t_factor * 1e3,
           "factor_nnz": int(eng.solver._lfac[1].size),
           "traced_bytes_per_node": traced_peak / net.n_nodes,
           "rss_bytes_per_node": max(hwm - rss0, 0) * 1024 / net.n_nodes}
    if net.n_nodes <= ldl_max:
        ldl = LinearEngine(net, terms, data, cfg, method="ldl")
        ldl.train(k0, 1, record_every=1)
        lsteps = max(3, min(50, 200_000 // net.n_nodes))
        row["ldl_ms"] = _cpu_per_step(lambda: ldl.train(k0, lsteps, record_every=lsteps),
                                      lsteps, 3) * 1e3
    return row


def crossover(sizes: list[int], steps: int = 300) -> None:
    """ldl against pcg on disordered networks, three learning settings."""
    from learnboard.engine import pcg_kernels
    from learnboard.engine.config import LearningConfig
    from learnboard.engine.linear import LinearEngine, Terminals
    from learnboard.generate import disordered, lattice
    from learnboard.tasks import notebook_task

    pcg_kernels.warm_up()
    settings = {"full batch, alpha 0.5": LearningConfig(lam=1e-6),
                "online, shuffled": LearningConfig(lam=1e-6, batch="online", order="shuffle"),
                "full batch, alpha 5": LearningConfig(lam=1e-6, alpha=5.0)}
    cases = []
    for n in sizes:
        side = round(n**0.5)
        cases += [(f"disordered N={n}", disordered(n, seed=1), settings),
                  (f"periodic lattice {side}x{side}", lattice(side, side, periodic=True),
                   {k: v for k, v in settings.items() if k.startswith("full batch, alpha 0.5")})]
    for name, net, chosen in cases:
        src, tgt, data = notebook_task(net.n_edges)
        k0 = np.ones(net.n_edges)
        for label, cfg in chosen.items():
            ms = {}
            for method in ("ldl", "pcg"):
                eng = LinearEngine(net, Terminals(tuple(src), tuple(tgt)), data, cfg,
                                   method=method)
                eng.train(k0, 3, record_every=3)
                ms[method] = _cpu_per_step(
                    lambda eng=eng, k0=k0: eng.train(k0, steps, record_every=steps),
                    steps, 2) * 1e3
            print(f"{name}, {label}: ldl {ms['ldl']:.3f} ms/step, pcg {ms['pcg']:.3f} "
                  f"ms/step (pcg / ldl {ms['pcg'] / ms['ldl']:.2f})", flush=True)


def slope(x, y) -> float:
    """Least-squares exponent of ``y ~ x^p``."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = np.array([r["nodes"] for r in rows])
    fig, (ax, mx) = plt.subplots(1, 2, figsize=(10, 4.2))
    for key, label, style in (("pcg_ms", "pcg learning step", "o-"),
                              ("ldl_ms", "ldl learning step (exact refactorisation)", "s--"),
                              ("superlu_ms", "one SuperLU factorisation", "^:")):
        pts = [(r["nodes"], r[key]) for r in rows if key in r]
        if len(pts) < 2:
            continue
        x, y = np.array(pts).T
        ax.loglog(x, y, style, label=f"{label} (exponent {slope(x, y):.2f})")
    ax.set_xlabel("nodes (periodic square lattice)")
    ax.set_ylabel("CPU ms")
    ax.set_title("cost per learning step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    mx.semilogx(nodes, [r["rss_bytes_per_node"] / 1024 for r in rows], "o-",
                label="peak resident growth")
    mx.semilogx(nodes, [r["traced_bytes_per_node"] / 1024 for r in rows], "s--",
                label="numpy allocations (tracemalloc)")
    mx.set_xlabel("nodes")
    mx.set_ylabel("KiB per node")
    mx.set_title("memory of the pcg engine")
    mx.grid(True, which="both", alpha=0.3)
    mx.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sides", type=int, nargs="+", default=[32, 55, 100, 173, 316],
                    help="lattice sides (nodes = side^2; default about 1k, 3k, 10k, 30k, 100k)")
    ap.add_argument("--ldl-max", type=int, default=30000,
                    help="largest lattice also timed with the exact ldl backend (nodes)")
    ap.add_argument("--figure", type=Path, default=ROOT / "docs" / "img" / "engine_scaling.png")
    ap.add_argument("--crossover", type=int, nargs="+", metavar="N",
                    help="time ldl against pcg on disordered networks of these sizes instead")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = ap.parse_args()
    if args.crossover:
        crossover(args.crossover)
        return
    if args.one:
        print(json.dumps(measure(args.one, args.ldl_max)))
        return
    rows = []
    for side in args.sides:
        out = subprocess.run([sys.executable, __file__, "--one", str(side), "--ldl-max",
                              str(args.ldl_max)], check=True, capture_output=True, text=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        ldl = f"{r['ldl_ms']:9.2f}" if "ldl_ms" in r else f"{'-':>9s}"
        print(f"{r['nodes']:7d} nodes: pcg {r['pcg_ms']:8.2f} ms/step ({r['cg_iterations']:.2f} CG "
              f"iterations), ldl {ldl} ms/step, SuperLU {r['superlu_ms']:8.1f} ms "
              f"(ratio {r['pcg_ms'] / r['superlu_ms']:.3f}), refactorisation {r['refactor_ms']:7.1f} ms, "
              f"factor nnz {r['factor_nnz']}, memory {r['rss_bytes_per_node']:.0f} B/node "
              f"(numpy {r['traced_bytes_per_node']:.0f})", flush=True)
    nodes = [r["nodes"] for r in rows]
    pcg = [r["pcg_ms"] for r in rows]
    tail = f" ({slope(nodes[1:], pcg[1:]):.2f} without the smallest)" if len(rows) > 2 else ""
    print(f"exponents (ms/step ~ nodes^p): pcg {slope(nodes, pcg):.2f}{tail}, SuperLU "
          f"factorisation {slope(nodes, [r['superlu_ms'] for r in rows]):.2f}, factor entries "
          f"{slope(nodes, [r['factor_nnz'] for r in rows]):.2f}")
    figure(rows, args.figure)
    print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
