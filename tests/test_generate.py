"""Network generators: connected, reference-like, reproducible, and round-trip through the file format."""

import numpy as np
import pytest

from learnboard.errors import InputError
from learnboard.generate import disordered, from_spec, lattice
from learnboard.network import read_network, write_network


@pytest.mark.parametrize("n, periodic", [(64, False), (254, False), (128, True)])
def test_disordered_like_reference(n, periodic):
    net = disordered(n, seed=2, periodic=periodic)
    deg = np.bincount(net.edges.ravel(), minlength=n)
    assert net.n_nodes == n and net.is_connected()
    assert 2 * net.n_edges / n == pytest.approx(4.47, abs=0.03)
    assert deg.min() >= 3
    assert len(np.unique(np.sort(net.edges, axis=1), axis=0)) == net.n_edges  # no repeats
    assert net.ground == n - 1


def test_disordered_is_seeded():
    a, b, c = disordered(64, seed=1), disordered(64, seed=1), disordered(64, seed=2)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert not np.array_equal(a.edges, c.edges)


def test_lattice_counts():
    open_ = lattice(4, 3)
    assert open_.n_nodes == 12 and open_.n_edges == 3 * 3 + 4 * 2
    per = from_spec("lattice:4x4,periodic")
    assert per.n_edges == 32  # the Gen-2 board graph: 16 nodes, 32 edges
    assert np.all(np.bincount(per.edges.ravel()) == 4)


def test_round_trip_through_file(tmp_path):
    net = from_spec("disordered:N=50,seed=3,z=4")
    write_network(net, tmp_path / "n.txt")
    back = read_network(tmp_path / "n.txt")
    np.testing.assert_array_equal(back.edges, net.edges)
    np.testing.assert_allclose(back.positions, net.positions, rtol=1e-5)


@pytest.mark.parametrize("spec, msg", [("ring:5", "unknown generator"),
                                       ("lattice:4by4", "16x16"),
                                       ("disordered:N=64,q=1", "unknown option"),
                                       ("disordered:N=abc", "must be a number"),
                                       ("disordered:N=64,z=7", "coordination")])
def test_bad_specs(spec, msg):
    with pytest.raises(InputError, match=msg):
        from_spec(spec)
