"""A circuit: a :class:`~learnboard.network.Network` plus a device on every edge.

Per-edge parameters live in flat arrays of length E (entries that do not apply to an
edge's kind are ignored), so currents and Jacobians are computed for all edges of a
kind at once. Edge ``e = (i, j)`` carries current ``I_e`` from ``i`` to ``j`` and has the
drop ``V_i - V_j``; gate voltages are referenced to the network's ground node.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from learnboard.errors import InputError
from learnboard.network import Network
from learnboard.physics.devices import VT_THERMAL, diode_current, nmos_current

RESISTOR = 0
TRANSISTOR = 1
DIODE = 2
KIND_NAMES = {RESISTOR: "resistor", TRANSISTOR: "transistor", DIODE: "diode"}

# Gen-2 lab fit (Dillavou et al., PNAS 121, e2319718121 (2024))
DEFAULT_VT = 0.62
DEFAULT_BETA = 8.5e-4
DEFAULT_SUB_SLOPE = 0.1

_PARAMS = ("conductance", "gate", "vt", "beta", "sub_slope", "i_s", "n_ideality")


def _edge_array(value, n_edges: int, name: str, source: str) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n_edges, float(arr))
    if arr.shape != (n_edges,):
        raise InputError(
            f"{name} needs one value per edge ({n_edges}), got shape {arr.shape}",
            source=source,
            field=name,
        )
    return arr.copy()


@dataclass
class Circuit:
    """A network whose edges are resistors, gate-referenced NMOS transistors or diodes.

    Attributes:
        network: topology and ground node.
        kind: int8 per edge: :data:`RESISTOR`, :data:`TRANSISTOR` or :data:`DIODE`.
        conductance: S, resistor edges.
        gate: gate voltage (V to ground), transistor edges.
        vt: threshold voltage (V), transistor edges.
        beta: ``KP·W/L`` (A/V²), transistor edges.
        sub_slope: subthreshold slope (V/decade), transistor edges.
        i_s: saturation current (A), diode edges (anode = first endpoint).
        n_ideality: ideality factor, diode edges.
        vt_thermal: thermal voltage kT/q (V) for the diodes.
    """

    network: Network
    kind: np.ndarray
    conductance: np.ndarray
    gate: np.ndarray
    vt: np.ndarray
    beta: np.ndarray
    sub_slope: np.ndarray
    i_s: np.ndarray
    n_ideality: np.ndarray
    vt_thermal: float = VT_THERMAL
    _index: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n_e = self.network.n_edges
        src = self.network.name
        kind = np.asarray(self.kind)
        if kind.ndim == 0:
            kind = np.full(n_e, int(kind))
        if kind.shape != (n_e,):
            raise InputError(f"kind needs one entry per edge ({n_e})", source=src, field="kind")
        unknown = ~np.isin(kind, list(KIND_NAMES))
        if unknown.any():
            e = int(np.flatnonzero(unknown)[0])
            raise InputError(
                f"edge {e} has unknown kind {kind[e]} (use RESISTOR=0, TRANSISTOR=1, DIODE=2)",
                source=src,
                field="kind",
            )
        self.kind = kind.astype(np.int8)
        for name in _PARAMS:
            setattr(self, name, _edge_array(getattr(self, name), n_e, name, src))
        self._index = {k: np.flatnonzero(self.kind == k) for k in KIND_NAMES}
        self._check_values()

    def _check_values(self) -> None:
        src = self.network.name
        checks = [
            (RESISTOR, "conductance", lambda v: v > 0, "must be positive (S)"),
            (TRANSISTOR, "beta", lambda v: v > 0, "must be positive (A/V²)"),
            (TRANSISTOR, "sub_slope", lambda v: v > 0, "must be positive (V/decade)"),
            (TRANSISTOR, "gate", np.isfinite, "must be finite (V)"),
            (TRANSISTOR, "vt", np.isfinite, "must be finite (V)"),
            (DIODE, "i_s", lambda v: v > 0, "must be positive (A)"),
            (DIODE, "n_ideality", lambda v: v > 0, "must be positive"),
        ]
        for k, name, ok, what in checks:
            idx = self._index[k]
            vals = getattr(self, name)[idx]
            bad = ~(np.isfinite(vals) & ok(vals))
            if bad.any():
                e = int(idx[np.flatnonzero(bad)[0]])
                raise InputError(
                    f"edge {e} ({KIND_NAMES[k]}): {name} = {vals[bad][0]!r} {what}",
                    source=src,
                    field=name,
                )

    # -- constructors -----------------------------------------------------------------

    @classmethod
    def build(
        cls,
        network: Network,
        kind: np.ndarray | int,
        *,
        conductance=0.0,
        gate=0.0,
        vt=DEFAULT_VT,
        beta=DEFAULT_BETA,
        sub_slope=DEFAULT_SUB_SLOPE,
        i_s=1e-14,
        n_ideality=1.0,
        vt_thermal: float = VT_THERMAL,
    ) -> Circuit:
        """General constructor: per-edge ``kind`` and parameters (scalars broadcast)."""
        return cls(
            network, kind, conductance, gate, vt, beta, sub_slope, i_s, n_ideality, vt_thermal
        )

    @classmethod
    def linear(cls, network: Network, conductances) -> Circuit:
        """All edges resistors with the given conductances (S, or arbitrary units)."""
        return cls.build(network, RESISTOR, conductance=conductances)

    @classmethod
    def transistors(
        cls,
        network: Network,
        gate,
        vt=DEFAULT_VT,
        beta=DEFAULT_BETA,
        sub_slope=DEFAULT_SUB_SLOPE,
    ) -> Circuit:
        """All edges gate-referenced NMOS transistors (defaults: the Gen-2 lab fit)."""
        return cls.build(network, TRANSISTOR, gate=gate, vt=vt, beta=beta, sub_slope=sub_slope)

    def replace(self, **changes) -> Circuit:
        """A copy with some fields replaced, e.g. ``circuit.replace(gate=new_gates)``."""
        return dataclasses.replace(self, **changes)

    # -- properties --------------------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return self.network.n_nodes

    @property
    def n_edges(self) -> int:
        return self.network.n_edges

    @property
    def is_linear(self) -> bool:
        """True when every edge is a resistor."""
        return bool(np.all(self.kind == RESISTOR))

    def edges_of(self, kind: int) -> np.ndarray:
        """Indices of the edges of one kind."""
        return self._index[kind]

    # -- physics -----------------------------------------------------------------------

    def drops(self, v_nodes: np.ndarray) -> np.ndarray:
        """Edge drops ``V_i - V_j`` (E,) for node voltages (N,)."""
        v = np.asarray(v_nodes, dtype=float)
        return v[self.network.edges[:, 0]] - v[self.network.edges[:, 1]]

    def edge_currents_and_derivatives(
        self, v_nodes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edge currents (A, from i to j) and their partials w.r.t. ``V_i`` and ``V_j``."""
        v = np.asarray(v_nodes, dtype=float)
        vi = v[self.network.edges[:, 0]]
        vj = v[self.network.edges[:, 1]]
        i = np.empty(self.n_edges)
        di_dvi = np.empty(self.n_edges)
        di_dvj = np.empty(self.n_edges)

        r = self._index[RESISTOR]
        g = self.conductance[r]
        i[r] = g * (vi[r] - vj[r])
        di_dvi[r] = g
        di_dvj[r] = -g

        t = self._index[TRANSISTOR]
        if t.size:
            i[t], di_dvi[t], di_dvj[t] = nmos_current(
                vi[t], vj[t], self.gate[t], self.vt[t], self.beta[t], self.sub_slope[t]
            )

        d = self._index[DIODE]
        if d.size:
            i[d], gd = diode_current(
                vi[d] - vj[d], self.i_s[d], self.n_ideality[d], self.vt_thermal
            )
            di_dvi[d] = gd
            di_dvj[d] = -gd
        return i, di_dvi, di_dvj

    def edge_currents(self, v_nodes: np.ndarray) -> np.ndarray:
        """Edge currents (A, from i to j) for node voltages (N,)."""
        return self.edge_currents_and_derivatives(v_nodes)[0]

    def node_outflow(self, edge_currents: np.ndarray) -> np.ndarray:
        """Net current leaving each node through the edges (N,): ``B^T I``."""
        out = np.zeros(self.n_nodes)
        np.add.at(out, self.network.edges[:, 0], edge_currents)
        np.add.at(out, self.network.edges[:, 1], -edge_currents)
        return out

    def small_signal_conductance(self, v_nodes: np.ndarray | None = None) -> np.ndarray:
        """A positive conductance per edge near ``v_nodes`` (all 0 V when None).

        Resistors give their conductance; transistors their channel conductance at
        zero drop (``beta·overdrive``, floored at the subthreshold knee); diodes their
        slope. Used for a linear first guess of the nonlinear solve.
        """
        v = np.zeros(self.n_nodes) if v_nodes is None else np.asarray(v_nodes, dtype=float)
        _, dvi, dvj = self.edge_currents_and_derivatives(v)
        g = 0.5 * (dvi - dvj)
        return np.maximum(g, 1e-12 * max(float(np.max(np.abs(g), initial=0.0)), 1e-30))


def with_mismatch(
    circuit: Circuit,
    rng: np.random.Generator,
    vt_sigma: float = 0.0,
    beta_rel_sigma: float = 0.0,
    conductance_rel_sigma: float = 0.0,
) -> Circuit:
    """A copy of ``circuit`` with random device mismatch (e.g. a twin network's copy).

    ``vt`` gets additive Gaussian noise (V); ``beta`` and ``conductance`` are multiplied
    by ``exp(sigma·z)`` with standard normal ``z`` (≈ ``1 + sigma·z`` for small sigma,
    and always positive). Only the edges of the matching kind are perturbed.
    """
    n_e = circuit.n_edges
    t = circuit.kind == TRANSISTOR
    r = circuit.kind == RESISTOR
    vt = circuit.vt + np.where(t, vt_sigma * rng.standard_normal(n_e), 0.0)
    beta = circuit.beta * np.where(t, np.exp(beta_rel_sigma * rng.standard_normal(n_e)), 1.0)
    k = circuit.conductance * np.where(
        r, np.exp(conductance_rel_sigma * rng.standard_normal(n_e)), 1.0
    )
    return circuit.replace(vt=vt, beta=beta, conductance=k)
