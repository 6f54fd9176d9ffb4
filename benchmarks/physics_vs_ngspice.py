"""Agreement of learnboard's DC solver with ngspice over many random circuits.

    python benchmarks/physics_vs_ngspice.py --n 200

Prints, per family, the worst and median relative disagreement (node voltages over
their scale, and source currents over theirs; see
:func:`learnboard.physics.spice.relative_disagreement`) and the subthreshold gap on
gen2-range gates. The figures in docs/physics.md come from this script.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from learnboard.physics import Circuit, Fix, solve  # noqa: E402
from learnboard.physics.spice import relative_disagreement, run_ngspice  # noqa: E402
from tests.physics_helpers import periodic_lattice  # noqa: E402
from tests.test_physics_spice import lattice_case, random_resistor_case  # noqa: E402


def full_range_lattice(seed: int):
    """Gates anywhere in the board's [0.75, 5.2] V: some edges fall below the knee."""
    rng = np.random.default_rng(seed)
    net = periodic_lattice()
    circuit = Circuit.transistors(net, rng.uniform(0.75, 5.2, net.n_edges))
    nodes = rng.choice(net.n_nodes - 1, size=3, replace=False)
    return circuit, [Fix(int(n), float(rng.uniform(0, 0.45))) for n in nodes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="random circuits per family")
    args = parser.parse_args()
    families = {
        "random resistor networks (5-50 nodes, 1 Ω-10 kΩ)": random_resistor_case,
        "gen2 lattice, gates above the knee (level-1 region)": lattice_case,
    }
    for name, make in families.items():
        errs = np.array([relative_disagreement(*make(1000 + s)) for s in range(args.n)])
        print(f"{name}: n={args.n} worst={errs.max():.2e} median={np.median(errs):.2e}")
    gaps = []
    for s in range(args.n):
        circuit, fixes = full_range_lattice(2000 + s)
        ours, ref = solve(circuit, fixes), run_ngspice(circuit, fixes)
        gaps.append(np.abs(ours.node_voltages - ref.node_voltages).max())
    gaps = np.array(gaps)
    print(
        f"gen2 lattice, gates in [0.75, 5.2] V (subthreshold tail vs level-1 cut-off): "
        f"n={args.n} max |ΔV|={gaps.max() * 1e3:.3g} mV median={np.median(gaps) * 1e3:.3g} mV"
    )


if __name__ == "__main__":
    main()
