"""DC solver: Kirchhoff's laws, a dense reference, nonlinear convergence, clear errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnboard.errors import ConvergenceError, InputError
from learnboard.network import Network, read_network
from learnboard.physics import (
    DIODE,
    RESISTOR,
    TRANSISTOR,
    Circuit,
    Fix,
    FixDrop,
    LinearSolver,
    solve,
    solve_linear_batch,
    with_mismatch,
)
from tests.physics_helpers import periodic_lattice, random_connected_network


def source_injection(n_nodes: int, fixes, lam: np.ndarray) -> np.ndarray:
    """Current each constraint source pushes into each node (N,)."""
    inj = np.zeros(n_nodes)
    for f, current in zip(fixes, lam, strict=True):
        if isinstance(f, Fix):
            inj[f.node] += current
        else:
            inj[f.i] += current
            inj[f.j] -= current
    return inj


def check_kirchhoff(circuit: Circuit, fixes, sol, rel: float) -> None:
    """KCL at every non-ground node, constraints held (KVL of the sources), Tellegen."""
    scale = max(np.abs(sol.edge_currents).max(), 1e-300)
    kcl = circuit.node_outflow(sol.edge_currents) - source_injection(
        circuit.n_nodes, fixes, sol.constraint_currents
    )
    kcl[circuit.network.ground] = 0.0
    assert np.abs(kcl).max() <= rel * scale
    v = sol.node_voltages
    assert v[circuit.network.ground] == 0.0
    for f in fixes:
        held = v[f.node] if isinstance(f, Fix) else v[f.i] - v[f.j]
        assert held == pytest.approx(f.volts, abs=1e-12)
    assert np.array_equal(sol.drops, circuit.drops(v))
    # Tellegen: what the sources deliver is what the edges dissipate
    delivered = sum(lam * f.volts for f, lam in zip(fixes, sol.constraint_currents, strict=True))
    assert sol.power == pytest.approx(delivered, rel=1e-9, abs=1e-300)


def dense_reference(circuit: Circuit, fixes) -> tuple[np.ndarray, np.ndarray]:
    """Textbook modified nodal analysis with numpy's dense solver."""
    n, g = circuit.n_nodes, circuit.network.ground
    b = circuit.network.incidence().toarray()
    lap = b.T @ np.diag(circuit.conductance) @ b
    c = np.zeros((len(fixes) + 1, n))
    vals = np.zeros(len(fixes) + 1)
    for k, f in enumerate(fixes):
        if isinstance(f, Fix):
            c[k, f.node] = 1
        else:
            c[k, f.i], c[k, f.j] = 1, -1
        vals[k] = f.volts
    c[-1, g] = 1  # ground
    kkt = np.block([[lap, -c.T], [c, np.zeros((len(vals), len(vals)))]])
    sol = np.linalg.solve(kkt, np.concatenate([np.zeros(n), vals]))
    return sol[:n], sol[n:-1]


def random_fixes(rng, network: Network, n_fix: int, n_drop: int):
    free = [n for n in range(network.n_nodes) if n != network.ground]
    nodes = rng.choice(free, size=n_fix + 2 * n_drop, replace=False)
    fixes = [Fix(int(n), float(rng.uniform(-1, 1))) for n in nodes[:n_fix]]
    pairs = nodes[n_fix:].reshape(-1, 2)
    fixes += [FixDrop(int(i), int(j), float(rng.uniform(-1, 1))) for i, j in pairs]
    return fixes


# ----------------------------------------------------------------------------- linear


@pytest.mark.parametrize("seed", range(6))
def test_linear_solve_matches_dense_reference(seed):
    rng = np.random.default_rng(seed)
    net = random_connected_network(rng, int(rng.integers(5, 60)), int(rng.integers(0, 80)))
    circuit = Circuit.linear(net, rng.uniform(1e-3, 1e3, net.n_edges))
    fixes = random_fixes(rng, net, int(rng.integers(0, 3)), int(rng.integers(1, 3)))
    sol = solve(circuit, fixes)
    v_ref, lam_ref = dense_reference(circuit, fixes)
    assert np.allclose(sol.node_voltages, v_ref, rtol=1e-9, atol=1e-12)
    assert np.allclose(sol.constraint_currents, lam_ref, rtol=1e-9, atol=1e-12)
    check_kirchhoff(circuit, fixes, sol, rel=1e-10)
    assert sol.co_content == pytest.approx(0.5 * sol.power)
    assert sol.method == "linear" and sol.iterations == 0


def test_floating_drop_between_two_non_ground_nodes():
    # 0 -1- 1 -1- 2(ground); hold V0 - V1 = 1 only: no current returns, so V1 = 0
    net = Network(3, np.array([[0, 1], [1, 2]]), ground=2)
    sol = solve(Circuit.linear(net, [1.0, 1.0]), [FixDrop(0, 1, 1.0)])
    assert sol.node_voltages == pytest.approx([1.0, 0.0, 0.0], abs=1e-15)
    # the only return path is through node 1 -> ground, which carries no current
    assert sol.edge_currents[1] == pytest.approx(0.0, abs=1e-15)
    assert sol.edge_currents[0] == pytest.approx(1.0)


def test_reference_network_fix_drop(reference_networks):
    net = read_network(reference_networks / "data_N00064_Lp0.0100_r1.txt")
    circuit = Circuit.linear(net, np.ones(net.n_edges))
    fixes = [FixDrop(0, 35, 1.0)]
    sol = solve(circuit, fixes)
    v_ref, _ = dense_reference(circuit, fixes)
    assert np.allclose(sol.node_voltages, v_ref, rtol=1e-10, atol=1e-13)
    check_kirchhoff(circuit, fixes, sol, rel=1e-10)
    # one source: dissipation = V²·G_eff, and the drop is exactly one volt
    assert sol.power == pytest.approx(sol.constraint_currents[0])


def test_batch_and_reused_factor_match_single_solves():
    rng = np.random.default_rng(3)
    net = random_connected_network(rng, 40, 60)
    circuit = Circuit.linear(net, rng.uniform(0.1, 10, net.n_edges))
    fixes = [Fix(3, 0.0), FixDrop(5, 7, 0.0), Fix(11, 0.0)]
    values = rng.uniform(-1, 1, (8, 3))
    batch = solve_linear_batch(circuit, fixes, values)
    lin = LinearSolver(circuit, fixes)
    for row, v in zip(values, batch, strict=True):
        one = solve(circuit, [Fix(3, row[0]), FixDrop(5, 7, row[1]), Fix(11, row[2])])
        assert np.allclose(v, one.node_voltages, rtol=1e-12, atol=1e-14)
        assert np.allclose(lin.solve(row).node_voltages, v, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["dense", "sparse"])
def test_linear_solver_update_refactors_for_new_conductances(method):
    rng = np.random.default_rng(4)
    net = random_connected_network(rng, 30, 40)
    fixes = [Fix(0, 1.0), FixDrop(4, 9, 0.3)]
    lin = LinearSolver(Circuit.linear(net, 1.0), fixes, method=method)
    for _ in range(3):
        k = rng.uniform(0.1, 10, net.n_edges)
        lin.update(k)
        fresh = solve(Circuit.linear(net, k), fixes)
        assert np.allclose(lin.solve().node_voltages, fresh.node_voltages, rtol=1e-10, atol=1e-13)
    with pytest.raises(InputError, match="conductance"):
        lin.update(-k)


def test_sparse_newton_path_matches_dense(monkeypatch):
    import learnboard.physics.solver as solver_module

    rng = np.random.default_rng(9)
    circuit = lattice_circuit(rng)
    fixes = [Fix(0, 0.45), FixDrop(6, 2, -0.1), Fix(12, 0.05)]
    dense = solve(circuit, fixes)
    monkeypatch.setattr(solver_module, "DENSE_LIMIT", 0)
    sparse = solve(circuit, fixes)
    assert np.allclose(sparse.node_voltages, dense.node_voltages, rtol=1e-10, atol=1e-13)
    check_kirchhoff(circuit, fixes, sparse, rel=1e-9)


def test_no_constraints_gives_zero_state():
    net = periodic_lattice()
    sol = solve(Circuit.linear(net, 1.0), [])
    assert not sol.node_voltages.any() and sol.power == 0.0


# ----------------------------------------------------------------------------- nonlinear


def lattice_circuit(rng, gate_range=(1.2, 5.2)):
    net = periodic_lattice()
    return Circuit.transistors(net, rng.uniform(*gate_range, net.n_edges))


@pytest.mark.parametrize("seed", range(5))
def test_transistor_lattice_converges_from_cold_start(seed):
    rng = np.random.default_rng(seed)
    circuit = lattice_circuit(rng, (0.75, 5.2))
    fixes = [Fix(0, 0.45), Fix(6, float(rng.uniform(0, 0.45))), FixDrop(9, 10, 0.1)]
    sol = solve(circuit, fixes)
    assert sol.method == "newton" and sol.co_content is None
    check_kirchhoff(circuit, fixes, sol, rel=1e-9)
    # warm start from the answer: converges at once to the same state
    again = solve(circuit, fixes, initial=sol.node_voltages)
    assert again.iterations <= 2
    assert np.allclose(again.node_voltages, sol.node_voltages, rtol=1e-10, atol=1e-13)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(1, 5),
    st.floats(0.0, 0.45),
)
def test_every_board_range_state_converges(seed, n_fix, vmax):
    """Gates anywhere in the gen2 range [0.75, 5.2] V, node drives in 0..0.45 V."""
    rng = np.random.default_rng(seed)
    circuit = lattice_circuit(rng, (0.75, 5.2))
    circuit = with_mismatch(circuit, rng, vt_sigma=0.03, beta_rel_sigma=0.1)
    nodes = rng.choice(15, size=n_fix, replace=False)
    fixes = [Fix(int(n), float(rng.uniform(0, vmax))) for n in nodes]
    sol = solve(circuit, fixes)
    check_kirchhoff(circuit, fixes, sol, rel=1e-9)


def test_mixed_resistor_diode_transistor_circuit():
    rng = np.random.default_rng(7)
    net = random_connected_network(rng, 12, 10)
    kind = rng.choice([RESISTOR, TRANSISTOR, DIODE], size=net.n_edges)
    circuit = Circuit.build(
        net,
        kind,
        conductance=rng.uniform(1e-4, 1e-2, net.n_edges),
        gate=rng.uniform(1.0, 3.0, net.n_edges),
        i_s=1e-12,
        n_ideality=1.8,
    )
    fixes = [Fix(0, 1.0), Fix(5, -0.5), FixDrop(2, 3, 0.7)]
    sol = solve(circuit, fixes)
    check_kirchhoff(circuit, fixes, sol, rel=1e-9)
    assert sol.power > 0  # passive devices only dissipate


def test_linear_circuit_through_newton_with_gmin_matches_shunted_reference():
    rng = np.random.default_rng(2)
    net = random_connected_network(rng, 10, 8)
    k = rng.uniform(0.5, 2, net.n_edges)
    sol = solve(Circuit.linear(net, k), [Fix(0, 1.0)], gmin=1e-3)
    # reference: explicit 1e-3 S shunts from every node to a new ground node
    shunt = [(n, net.ground) for n in range(net.n_nodes) if n != net.ground]
    big = Network(net.n_nodes, np.vstack([net.edges, shunt]), ground=net.ground)
    ref = solve(Circuit.linear(big, np.concatenate([k, np.full(len(shunt), 1e-3)])), [Fix(0, 1.0)])
    assert np.allclose(sol.node_voltages, ref.node_voltages, rtol=1e-9, atol=1e-12)


def test_mismatch_perturbs_only_matching_edges():
    rng = np.random.default_rng(0)
    net = periodic_lattice()
    kind = np.where(np.arange(net.n_edges) % 2, TRANSISTOR, RESISTOR)
    base = Circuit.build(net, kind, conductance=1e-3, gate=2.0)
    twin = with_mismatch(base, rng, vt_sigma=0.01, beta_rel_sigma=0.05, conductance_rel_sigma=0.1)
    t, r = kind == TRANSISTOR, kind == RESISTOR
    assert np.all(base.vt == 0.62) and np.all(base.conductance[r] == 1e-3)  # original kept
    assert np.all(twin.vt[t] != 0.62) and np.all(twin.vt[r] == 0.62)
    assert np.all(twin.conductance[r] != 1e-3) and np.all(twin.conductance[t] == 1e-3)
    assert np.all(twin.beta > 0) and np.all(twin.beta[r] == base.beta[r])
    assert np.std(np.log(twin.conductance[r])) == pytest.approx(0.1, rel=0.5)


# ----------------------------------------------------------------------------- errors


def test_floating_network_is_a_clear_error():
    net = Network(4, np.array([[0, 1], [2, 3]]), ground=3)
    with pytest.raises(InputError, match="not connected"):
        solve(Circuit.linear(net, 1.0), [Fix(0, 1.0)])
    with pytest.raises(InputError, match="not connected"):
        solve(Circuit.transistors(net, 2.0), [Fix(0, 1.0)])


@pytest.mark.parametrize(
    "fixes, message",
    [
        ([Fix(1, 1.0), Fix(1, 1.0)], "constrained twice"),
        ([Fix(1, 1.0), Fix(2, 0.5), FixDrop(1, 2, 0.2)], "conflicts"),
        ([Fix(1, 1.0), Fix(2, 0.5), FixDrop(1, 2, 0.5)], "redundant"),
        ([FixDrop(1, 2, 0.5), FixDrop(2, 4, 0.5), FixDrop(4, 1, 0.0)], "conflicts"),
        ([Fix(15, 1.0)], "ground"),
        ([Fix(16, 1.0)], "outside"),
        ([FixDrop(3, 3, 1.0)], "two different nodes"),
        ([Fix(2, float("nan"))], "finite"),
    ],
)
def test_bad_constraints_are_clear_errors(fixes, message):
    circuit = Circuit.linear(periodic_lattice(), 1.0)
    with pytest.raises(InputError, match=message):
        solve(circuit, fixes)


def test_bad_device_parameters_are_clear_errors():
    net = periodic_lattice()
    with pytest.raises(InputError, match="edge 3.*conductance"):
        Circuit.linear(net, np.where(np.arange(32) == 3, -1.0, 1.0))
    with pytest.raises(InputError, match="one value per edge"):
        Circuit.transistors(net, np.ones(5))


def test_non_convergence_raises_and_names_what_was_tried():
    circuit = lattice_circuit(np.random.default_rng(1))
    with pytest.raises(ConvergenceError) as info:
        solve(circuit, [Fix(0, 0.45), Fix(5, 0.1)], max_iter=1)
    text = str(info.value)
    for part in ("Newton", "gmin stepping", "source stepping", "node", "edge"):
        assert part in text


# ----------------------------------------------------------------------------- one Newton


def _newton_case(seed: int):
    """A random connected network of resistors, NMOS edges and diodes with random Fix and
    FixDrop constraints; its edge arrays, constraints and a start that satisfies them."""
    from learnboard.physics.dc_newton import EdgeArrays
    from learnboard.physics.solver import Constraints, _linear_guess

    rng = np.random.default_rng(seed)
    net = random_connected_network(rng, int(rng.integers(6, 40)), int(rng.integers(0, 40)))
    kind = rng.choice([RESISTOR, TRANSISTOR, TRANSISTOR, DIODE], size=net.n_edges)
    circuit = Circuit.build(net, kind, conductance=rng.uniform(1e-4, 1e-2, net.n_edges),
                            gate=rng.uniform(0.75, 5.2, net.n_edges), i_s=1e-12,
                            n_ideality=1.8)
    circuit = with_mismatch(circuit, rng, vt_sigma=0.03, beta_rel_sigma=0.1)
    fixes = random_fixes(rng, net, int(rng.integers(1, 3)), int(rng.integers(0, 2)))
    fixes = [f if isinstance(f, FixDrop) else Fix(f.node, abs(f.volts) * 0.45) for f in fixes]
    cons = Constraints(circuit, fixes)
    start = cons.place(_linear_guess(circuit, cons), cons.values)
    return EdgeArrays.of(circuit), cons, start


@pytest.mark.parametrize("gmin", [0.0, 1e-9])
@pytest.mark.parametrize("seed", range(12))
def test_compiled_newton_matches_the_numpy_reference(seed, gmin):
    """The compiled kernel (dense elimination) and the numpy reference (LAPACK; scipy's
    sparse LU) take the same steps: same outcome, same state to rounding (also where
    plain Newton fails, which solve() then hands to gmin or source stepping)."""
    from learnboard.physics.dc_newton import CONVERGED, newton, newton_reference

    edges, cons, start = _newton_case(seed)
    vscale = max(float(np.max(np.abs(cons.values))), 1e-6)
    runs = []
    for how in ("compiled", "dense", "sparse"):
        v, last = start.copy(), np.zeros(len(start))
        if how == "compiled":
            status, it, i = newton(*edges.args(), cons.col, cons.nvar, v, vscale, gmin, 1e-10,
                                   100, 0.5, last)
        else:
            status, it, i = newton_reference(edges, cons.col, cons.nvar, v, vscale, gmin, 1e-10,
                                             100, 0.5, last, dense=how == "dense")
        runs.append((status, it, v, i))
    (status, it, v, i), others = runs[0], runs[1:]
    assert status == CONVERGED or seed == 3  # (seed 3 needs stepping)
    for o_status, o_it, o_v, o_i in others:
        assert o_status == status and abs(o_it - it) <= 1
        np.testing.assert_allclose(o_v, v, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(o_i, i, rtol=1e-7, atol=1e-15)


@settings(max_examples=200, deadline=None)
@given(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5), st.floats(0.0, 6.0), st.floats(0.02, 0.2),
       st.floats(-1.0, 1.0))
def test_compiled_device_laws_equal_their_python_source(va, vb, vg, slope, vd):
    """The laws the kernel inlines give, compiled, what their plain Python source gives."""
    from learnboard.physics.devices import (
        diode_current,
        diode_law,
        nmos_current,
        nmos_law,
        subthreshold_knee,
    )

    compiled = [float(x) for x in nmos_current(va, vb, vg, 0.62, 8.5e-4, slope)]
    plain = nmos_law.py_func(va, vb, vg - 0.62, 8.5e-4, float(subthreshold_knee(slope)))
    assert compiled == pytest.approx(list(plain), rel=1e-14, abs=1e-300)
    compiled = [float(x) for x in diode_current(vd, 1e-12, 1.8)]
    plain = diode_law.py_func(vd, 1e-12, 1.8 * 0.025852)
    assert compiled == pytest.approx(list(plain), rel=1e-14, abs=1e-300)


def test_drop_constraints_tie_their_nodes_into_one_variable():
    circuit = lattice_circuit(np.random.default_rng(5))
    from learnboard.physics.solver import Constraints

    cons = Constraints(circuit, [Fix(0, 0.4), FixDrop(1, 0, 0.1), FixDrop(6, 2, -0.2)])
    assert cons.col[0] == cons.col[1] == cons.col[15] == -1  # held, through 0, ground
    assert cons.col[6] == cons.col[2] >= 0
    assert cons.nvar == 16 - 3 - 1
    v = cons.place(np.linspace(0, 1, 16), cons.values)
    assert v[0] == 0.4 and v[1] == pytest.approx(0.5) and v[15] == 0.0
    assert v[6] - v[2] == pytest.approx(-0.2)
    # least change: the tied pair moves by the same amount in opposite directions
    before = np.linspace(0, 1, 16)
    assert (v[6] - before[6]) == pytest.approx(-(v[2] - before[2]))


def test_compiled_first_guess_is_the_linear_solve(monkeypatch):
    """solve()'s cold start (the linear circuit of the 0 V conductances) from the compiled
    kernel equals the factorised linear solve it replaces below DENSE_LIMIT."""
    import learnboard.physics.solver as solver_module

    circuit = lattice_circuit(np.random.default_rng(8), (0.75, 5.2))
    cons = solver_module.Constraints(circuit, [Fix(0, 0.45), FixDrop(6, 2, -0.1), Fix(12, 0.05)])
    compiled = solver_module._linear_guess(circuit, cons)
    monkeypatch.setattr(solver_module, "DENSE_LIMIT", 0)
    factorised = solver_module._linear_guess(circuit, cons)
    np.testing.assert_allclose(compiled, factorised, rtol=1e-10, atol=1e-13)
