"""Speed of the learning engine against the published algorithm, same task, same process.

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_engine.py [--repeats 5] [--general]``
(the variable is also pinned below, before numpy is imported). Prints medians of repeats
of CPU time per step, the load average, and the ratios against the published algorithm.
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
    loop = LinearEngine(net, eng.terminals, data, eng.config, compiled=False)  # the numpy loop
    t_loop = median_time(lambda: loop.train(k0, steps_engine, record_every=steps_engine),
                         repeats) / steps_engine
    band = engine_for(net, "band")[0]  # the general loop with the banded backend, for reference
    t_band = median_time(lambda: band.train(k0, steps_engine, record_every=steps_engine),
                         repeats) / steps_engine
    return {"name": name, "nodes": net.n_nodes, "edges": net.n_edges, "solver": eng.solver.method,
            "base_us": t_base * 1e6, "eng_us": t_eng * 1e6, "speedup": t_base / t_eng,
            "band_us": t_band * 1e6, "loop_us": t_loop * 1e6, "eng_rel": e_rel, "base_rel": b_rel}


def _cpu_per_step(fn, steps, repeats):
    """Median CPU seconds per step of ``fn()`` (which runs ``steps`` steps) over repeats."""
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return float(np.median(times)) / steps


def _sim_seconds_per_step(network_file: str, steps: int, repeats: int) -> tuple[float, float]:
    """``learnboard sim --json`` in fresh processes: medians of the sim's own seconds per
    step, wall (its ``steps_per_second``) and CPU (its ``cpu_seconds``)."""
    import json
    import subprocess

    wall, cpu = [], []
    for _ in range(repeats):
        out = json.loads(subprocess.run(
            [sys.executable, "-m", "learnboard", "sim", "--network", network_file, "--steps",
             str(steps), "--lam", "1e-6", "--json"], check=True, capture_output=True, text=True,
            env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}).stdout)
        wall.append(1.0 / out["steps_per_second"])
        cpu.append(out["cpu_seconds"] / steps)
    return float(np.median(wall)), float(np.median(cpu))


def rows_linear(args) -> list[str]:
    """Small networks (compiled step, ldl) against the published algorithm, same run:
    CPU time per step of both, and the ``learnboard sim --json`` path over 20 000 steps."""
    found = reference_folder(args.reference)
    if not found:
        return [f"no reference networks (--reference DIR or {ENV}); skipping the r1/r101 rows"]
    folder, setting = found
    lines = [f"{'network':14s} {'baseline µs/step':>17s} {'engine µs/step':>15s} {'ratio':>7s} "
             f"{'sim --json CPU µs/step':>23s} {'ratio':>7s} {'(wall':>7s} {'ratio)':>7s}  "
             f"C/C0 @2000 engine / numpy loop / baseline"]
    for name, steps_base, steps_eng in (("r1", 400, 20000), ("r101", 40, 4000)):
        path = reference_file(folder, name, setting)
        net = read_network(path)
        eng, src, tgt, data = engine_for(net)
        base = PublishedBaseline(net, src, tgt, data.inputs, data.targets, lam=1e-6)
        k0 = np.ones(net.n_edges)
        e_rel = eng.train(k0, 2000, record_every=2000).relative_error  # also loads the kernel
        ref = LinearEngine(net, eng.terminals, data, eng.config, compiled=False)
        r_rel = ref.train(k0, 2000, record_every=2000).relative_error
        b_rel = base.train(k0, 2000)[0] if net.n_nodes <= 64 else float("nan")
        t_base = _cpu_per_step(lambda b=base, k=k0, n=steps_base: b.train(k, n), steps_base,
                               args.repeats)
        t_eng = _cpu_per_step(lambda e=eng, k=k0, n=steps_eng: e.train(k, n, record_every=n),
                              steps_eng, args.repeats)
        w_sim, t_sim = _sim_seconds_per_step(str(path), 20000, args.repeats)
        lines.append(f"{name + f' (N={net.n_nodes})':14s} {t_base * 1e6:17.1f} {t_eng * 1e6:15.2f} "
                     f"{t_base / t_eng:6.1f}x {t_sim * 1e6:23.2f} {t_base / t_sim:6.1f}x "
                     f"{w_sim * 1e6:7.2f} {t_base / w_sim:6.1f}x  "
                     f"{e_rel:.9e} / {r_rel:.9e} / {b_rel:.6e}")
    return lines


def rows_emulator(args) -> list[str]:
    """The emulated boards' rows: CPU ms per learning step of gen1-digipot in process
    (``bench_inprocess.measure``) and through the pty and the MicroPython VM
    (``bench_vm_board.bench``: the emulator process's and the VM's CPU added), with lazy
    solves (the default) and eager ones (the reference) in the same run, interleaved;
    gen2-clln in process alongside (no settling reads to take: it must not be slower).
    Medians of the rounds."""
    from bench_inprocess import measure
    from bench_vm_board import bench
    from learnboard.emulator.world import SOLVES_ENV

    rounds = max(1, args.repeats // 2)
    kept = os.environ.get(SOLVES_ENV)
    got: dict = {}
    try:
        for _ in range(rounds):
            for mode in ("lazy", "eager"):
                os.environ[SOLVES_ENV] = mode
                for board in ("gen1-digipot", "gen2-clln"):
                    r = measure(board, args.emulator_steps)
                    got.setdefault(("in", board, mode), []).append(
                        (r["cpu_us_step"] / 1e3, r["solves_step"], r["steps_s"]))
                r = bench("gen1-digipot", args.emulator_steps, 2, 8, 0)
                got.setdefault(("vm", "gen1-digipot", mode), []).append(
                    (r["emu_cpu_ms"] + r["vm_cpu_ms"], r["solves"], r["steps_s"], r["rt"],
                     r["emu_cpu_ms"], r["vm_cpu_ms"]))
    finally:
        if kept is None:
            os.environ.pop(SOLVES_ENV, None)
        else:
            os.environ[SOLVES_ENV] = kept

    def med(key, i):
        return float(np.median([x[i] for x in got[key]]))

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    out = [f"emulated boards ({args.emulator_steps} steps, {rounds} round(s) of lazy then eager "
           f"solves, medians; load average {load}): CPU ms per learning step"]
    for board, target in (("gen1-digipot", " (target <= 1)"), ("gen2-clln", "")):
        lz, eg = ("in", board, "lazy"), ("in", board, "eager")
        out.append(f"  {board:13s} in process (bench_inprocess.py): lazy {med(lz, 0):.3f} ms"
                   f"{target}, eager {med(eg, 0):.3f} ms ({med(eg, 0) / med(lz, 0):.2f}x); "
                   f"solves/step {med(lz, 1):.1f}; {med(lz, 2):.0f} vs {med(eg, 2):.0f} steps/s")
    lz, eg = ("vm", "gen1-digipot", "lazy"), ("vm", "gen1-digipot", "eager")
    out.append(f"  gen1-digipot  pty + VM, batch 2 (bench_vm_board.py): lazy {med(lz, 0):.2f} ms "
               f"(emulator {med(lz, 4):.2f} + VM {med(lz, 5):.2f}; target <= 2.5), eager "
               f"{med(eg, 0):.2f} ms (emulator {med(eg, 4):.2f} + VM {med(eg, 5):.2f}; "
               f"{med(eg, 0) / med(lz, 0):.2f}x); round trips/step {med(lz, 3):.1f} vs "
               f"{med(eg, 3):.1f}; solves/step {med(lz, 1):.1f}; {med(lz, 2):.0f} vs "
               f"{med(eg, 2):.0f} steps/s")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--lattice", type=int, default=100, help="periodic lattice side (nodes = side^2)")
    ap.add_argument("--reference", metavar="DIR", default=None,
                    help="folder with the authors' reference networks (default: $LEARNBOARD_REFERENCE)")
    ap.add_argument("--general", action="store_true",
                    help="also time the numpy loops (ldl without the kernel, and band) on r1/r101")
    ap.add_argument("--emulator-steps", type=int, default=300,
                    help="learning steps per emulated-board measurement (0: skip those rows)")
    args = ap.parse_args()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; CPU time per step")
    for line in rows_linear(args):
        print(line)
    found = reference_folder(args.reference)
    if found and args.general:
        folder, setting = found
        for name, se, sb in (("r1", 4000, 400), ("r101", 2000, 40)):
            r = compare(name, read_network(reference_file(folder, name, setting)), se, sb,
                        args.repeats)
            print(f"{name}: numpy loop {r['loop_us']:.1f} µs/step ({r['base_us'] / r['loop_us']:.1f}x), "
                  f"band backend {r['band_us']:.1f} µs/step ({r['base_us'] / r['band_us']:.1f}x)")
    for line in rows_large(args):
        print(line)
    for line in rows_board(args):
        print(line)
    if args.emulator_steps > 0:
        for line in rows_emulator(args):
            print(line, flush=True)


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
    t_pcg = _cpu_per_step(lambda: eng.train(k0, steps, record_every=steps), steps, repeats)
    solver = eng.solver
    solver.iterations.clear()
    res = eng.train(k0, steps, record_every=steps)
    its = np.mean(solver.iterations)
    # the same grounded reduced Laplacian, at the conductances the run ended with
    lap = solver.laplacian(res.conductances).tocsc()
    t_lu = _cpu_per_step(lambda: spl.splu(lap), 1, repeats)
    # a continuous run: the factor ages and is renewed on the way
    long = engine_for(net, "pcg")[0]
    long.train(k0, 1, record_every=1)
    long_steps = 1000
    t_long = _cpu_per_step(lambda: long.train(k0, long_steps, record_every=long_steps),
                          long_steps, 1)
    its_long, refac = np.mean(long.solver.iterations), long.solver.refactors - 1
    band = engine_for(net, "band")[0]
    band.train(k0, 1, record_every=1)
    t_band = _cpu_per_step(lambda: band.train(k0, 10, record_every=10), 10, max(1, repeats // 2))
    return [
        f"{name}, pcg: {t_pcg * 1e3:.2f} ms CPU/step (median of {repeats} runs of {steps} steps "
        f"from k = 1), CG iterations/step {its:.2f}",
        f"{name}: SuperLU factorisation (splu, default options) {t_lu * 1e3:.1f} ms CPU; "
        f"pcg step / factorisation = {t_pcg / t_lu:.3f} (target <= 0.12)",
        f"{name}, pcg, {long_steps} steps in one run: {t_long * 1e3:.2f} ms CPU/step, "
        f"CG iterations/step {its_long:.2f}, {refac} refactorisations",
        f"{name}, band: {t_band * 1e3:.1f} ms CPU/step",
    ]


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
