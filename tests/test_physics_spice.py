"""Cross-checks against ngspice on the same netlists (ngspice: the trusted simulator)."""

import numpy as np
import pytest

from learnboard.physics import DIODE, RESISTOR, Circuit, Fix, FixDrop, solve
from learnboard.physics.devices import subthreshold_knee
from learnboard.physics.spice import relative_disagreement, run_ngspice, write_netlist
from tests.physics_helpers import periodic_lattice, random_connected_network

pytestmark = pytest.mark.ngspice


def random_resistor_case(seed: int):
    rng = np.random.default_rng(seed)
    net = random_connected_network(rng, int(rng.integers(5, 50)), int(rng.integers(0, 60)))
    circuit = Circuit.linear(net, 10.0 ** rng.uniform(-4, 0, net.n_edges))  # 1 Ω … 10 kΩ
    free = [n for n in range(net.n_nodes) if n != net.ground]
    nodes = rng.choice(free, size=min(4, len(free)), replace=False)
    fixes = [Fix(int(nodes[0]), float(rng.uniform(-5, 5)))]
    if len(nodes) >= 3:
        fixes.append(FixDrop(int(nodes[1]), int(nodes[2]), float(rng.uniform(-1, 1))))
    return circuit, fixes


def lattice_case(seed: int):
    """gen2-clln shape: 4×4 periodic lattice, 32 NMOS, Vt 0.62 (±spread), beta 8.5e-4.

    Gates in [vt + 0.45 V + knee, 5.2] keep every source overdrive above the subthreshold
    knee for node voltages in 0..0.45 V, the region where our model is level-1 exactly.
    """
    rng = np.random.default_rng(seed)
    net = periodic_lattice()
    vt = 0.62 + 0.01 * rng.standard_normal(net.n_edges)
    beta = 8.5e-4 * np.exp(0.05 * rng.standard_normal(net.n_edges))
    low = float(vt.max()) + 0.45 + subthreshold_knee(0.1) + 0.01
    gates = rng.uniform(low, 5.2, net.n_edges)
    nodes = rng.choice(net.n_nodes - 1, size=4, replace=False)
    fixes = [Fix(int(n), float(rng.uniform(0, 0.45))) for n in nodes[:3]]
    # a floating drop from the fourth node to a fixed one, staying in 0..0.45 V
    top = fixes[0].volts
    fixes.append(FixDrop(int(nodes[3]), int(nodes[0]), float(rng.uniform(-top, 0.45 - top))))
    return Circuit.transistors(net, gates, vt=vt, beta=beta), fixes


@pytest.mark.parametrize("seed", range(8))
def test_random_resistor_networks_agree_to_1e9(ngspice, seed):
    circuit, fixes = random_resistor_case(seed)
    assert relative_disagreement(circuit, fixes, ngspice=ngspice) <= 1e-9


@pytest.mark.parametrize("seed", range(8))
def test_gen2_lattice_transistor_networks_agree_to_1e4(ngspice, seed):
    circuit, fixes = lattice_case(seed)
    sol = solve(circuit, fixes)
    # the premise: every transistor's source overdrive is above the knee (level-1 region)
    v = sol.node_voltages
    vlow = np.minimum(v[circuit.network.edges[:, 0]], v[circuit.network.edges[:, 1]])
    assert np.all(circuit.gate - circuit.vt - vlow >= subthreshold_knee(0.1))
    assert relative_disagreement(circuit, fixes, ngspice=ngspice) <= 1e-4


def test_gen2_clln_profile_agrees(ngspice):
    from learnboard.boards import board_circuit as bridge
    from learnboard.boards import load as loader

    board = loader.load_board("gen2-clln")
    rng = np.random.default_rng(11)
    circuit = bridge.circuit_for_board(board, rng.uniform(1.3, 5.2, board.n_edges), mismatch=3)
    nodes = [n for n in range(board.n_nodes) if n != board.ground][:3]
    fixes = [Fix(nodes[0], 0.45), Fix(nodes[1], 0.2), Fix(nodes[2], 0.05)]
    assert relative_disagreement(circuit, fixes, ngspice=ngspice) <= 1e-4


def test_diode_resistor_networks_agree(ngspice):
    rng = np.random.default_rng(5)
    net = random_connected_network(rng, 10, 8)
    kind = np.where(np.arange(net.n_edges) % 3 == 0, DIODE, RESISTOR)
    circuit = Circuit.build(net, kind, conductance=1e-3, i_s=1e-14, n_ideality=1.5)
    # drops stay below the 40·n·kT/q where our exponential turns linear (no overflow)
    fixes = [Fix(0, 0.9), Fix(4, -0.5)]
    assert relative_disagreement(circuit, fixes, ngspice=ngspice) <= 1e-9


def test_subthreshold_is_where_the_models_differ_by_design(ngspice):
    """Gate below threshold: level-1 is cut off, ours leaks at 0.1 V/decade."""
    from learnboard.network import Network

    # node 0 -- NMOS -- node 1 -- 1 kΩ -- ground (2)
    net = Network(3, np.array([[0, 1], [1, 2]]), ground=2)
    kind = np.array([1, 0])
    circuit = Circuit.build(net, kind, conductance=[0.0, 1e-3], gate=0.55)
    ref = run_ngspice(circuit, [Fix(0, 0.3)], ngspice=ngspice)
    ours = solve(circuit, [Fix(0, 0.3)])
    assert abs(ref.node_voltages[1]) < 1e-9  # SPICE: off
    # ours: saturated subthreshold current ½β x0² 10^((x - x0)/(2·0.05))·… with x ≈ -0.07 V
    assert 1e-9 < ours.node_voltages[1] < 1e-4


def test_netlist_turns_body_effect_and_junctions_off():
    circuit = Circuit.transistors(periodic_lattice(), 2.0)
    text = write_netlist(circuit, [Fix(0, 0.3), FixDrop(1, 2, 0.1)])
    model = next(line for line in text.splitlines() if line.startswith(".model nm0"))
    for part in ("LEVEL=1", "GAMMA=0", "LAMBDA=0", "IS=0", "KP=0.00085", "VTO=0.62"):
        assert part in model
    assert "VF1 n1 n2 DC 0.1" in text
    assert "VF0 n0 0 DC 0.3" in text
