"""Speed of the transistor DC solver: the emulator's warm re-solves and the physics solves.

    python benchmarks/bench_dc_solver.py                    # this tree
    python benchmarks/bench_dc_solver.py --against OLD_TREE # ratios to another checkout

Times, per case, the mean wall time of one solve (best of ``--repeats`` runs of ``--n``
solves): the emulator's warm-started re-solve of a gen2-clln network after its gates moved
(what a learning step does after every actuation), the emulator's linear re-solve of a
gen1-digipot network for new drive volts (a kept factorisation), and the physics
package's ``solve`` on a 4x4 transistor lattice from a cold start and from a warm one.
With ``--against`` each case is timed in this tree and in ``OLD_TREE`` (a checkout of
another revision, e.g. ``git archive <commit> | tar -x -C OLD_TREE``), alternating the
two, and the ratio old / new is printed (above 1: this tree is faster). Each tree runs in
its own process: on a shared machine, ratios within about ±10 % are noise (a case whose
code did not change shows that spread).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Run in a child process: maps the package onto one tree's folders, times every case and
# prints one JSON object (seconds per solve).
CHILD = r"""
import importlib.util, json, sys, time
from importlib.machinery import ModuleSpec
from pathlib import Path

tree = Path(sys.argv[1])
folders = {"learnboard": tree / "learnboard", "learnboard.emulator": tree / "emulator",
           "learnboard.host": tree / "host", "learnboard.firmware": tree / "firmware"}


class _Tree:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name in folders:
            return importlib.util.spec_from_file_location(
                name, folders[name] / "__init__.py",
                submodule_search_locations=[str(folders[name])])
        return None


sys.meta_path.insert(0, _Tree)
import numpy as np
from learnboard.boards import load_board
from learnboard.boards.board_circuit import circuit_for_board
from learnboard.physics import Circuit, Fix, solve
from learnboard.emulator.world import World
try:
    from learnboard.physics.network_dc import NetworkDC as Resolver
except ImportError:
    from learnboard.emulator.fast_dc import FastDC as Resolver

n, repeats = int(sys.argv[2]), int(sys.argv[3])


def best(run):
    run(max(1, n // 10))  # compile / warm the caches
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(n)
        times.append((time.perf_counter() - t0) / n)
    return min(times)


def emulator_transistor():
    b = load_board("gen2-clln")
    net = b.network()
    rng = np.random.default_rng(0)
    fixed = sorted(World("gen2-clln", seed=2).driven(0))
    drives = {int(k): float(v) for k, v in zip(fixed, rng.uniform(0, 0.45, len(fixed)))}
    state = np.full(b.n_edges, 2.5)
    first = circuit_for_board(b, state, 0, mismatch=2)
    prev = solve(first, [Fix(k, v) for k, v in sorted(drives.items())]).node_voltages
    res = Resolver(b.n_nodes, net.edges, net.ground)
    steps = [np.clip(state + rng.normal(0, 0.05, b.n_edges), 0.75, 5.2) for _ in range(64)]

    def run(k):
        p = prev
        for j in range(k):
            p = res.solve(first, drives, p, gates=steps[j % 64]).node_voltages
    return best(run)


def emulator_linear():
    b = load_board("gen1-digipot")
    net = b.network()
    circuit = circuit_for_board(b, np.full(b.n_edges, 60.0), 0, mismatch=2)
    fixed = sorted(World("gen1-digipot", seed=2).driven(0))
    rng = np.random.default_rng(1)
    drives = [{int(k): float(v) for k, v in zip(fixed, row)}
              for row in rng.uniform(0, 0.4, (64, len(fixed)))]
    res = Resolver(b.n_nodes, net.edges, net.ground)

    def run(k):
        for j in range(k):
            res.solve(circuit, drives[j % 64], None)
    return best(run)


def physics(warm):
    rng = np.random.default_rng(2)
    side = 4
    edges = []
    for y in range(side):
        for x in range(side):
            m = y * side + x
            edges.append((m, y * side + (x + 1) % side))
            edges.append((m, ((y + 1) % side) * side + x))
    from learnboard.network import Network
    net = Network(16, np.array(edges), ground=15)
    circuits = [Circuit.transistors(net, rng.uniform(0.75, 5.2, 32)) for _ in range(16)]
    fixes = [Fix(0, 0.45), Fix(6, 0.2), Fix(9, 0.1)]
    starts = [solve(c, fixes).node_voltages if warm else None for c in circuits]
    starts = [None if s is None else s + 0.01 for s in starts]

    def run(k):
        for j in range(k):
            solve(circuits[j % 16], fixes, initial=starts[j % 16])
    return best(run)


print(json.dumps({
    "emulator re-solve, transistor network (warm)": emulator_transistor(),
    "emulator re-solve, linear network (kept factorisation)": emulator_linear(),
    "physics solve, transistor lattice (cold start)": physics(False),
    "physics solve, transistor lattice (warm start)": physics(True),
}))
"""


def measure(tree: Path, n: int, repeats: int) -> dict[str, float]:
    """Seconds per solve of every case, timed in a child process on ``tree``'s sources."""
    run = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(n), str(repeats)],
                         capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"timing the solvers of {tree} failed:\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="solves per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (best is kept)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="with --against: alternations of the two trees (best is kept)")
    parser.add_argument("--against", type=Path, help="another checkout to compare with")
    args = parser.parse_args()
    if args.against is None:
        for case, sec in measure(ROOT, args.n, args.repeats).items():
            print(f"{case:58s} {sec * 1e6:9.1f} µs")
        return
    new: dict[str, float] = {}
    old: dict[str, float] = {}
    for _ in range(args.rounds):
        for tree, got in ((args.against, old), (ROOT, new)):
            for case, sec in measure(tree, args.n, args.repeats).items():
                got[case] = min(sec, got.get(case, float("inf")))
    print(f"{'case':58s} {'old µs':>9s} {'new µs':>9s} {'old/new':>8s}")
    for case in new:
        print(f"{case:58s} {old[case] * 1e6:9.1f} {new[case] * 1e6:9.1f} "
              f"{old[case] / new[case]:8.2f}")


if __name__ == "__main__":
    main()
