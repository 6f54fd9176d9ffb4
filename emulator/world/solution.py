"""The circuit solution: each network's DC state, re-solved only when the circuit changed.

:class:`SolveCache` keeps the last solve of every network and is the one place that
decides whether it still holds; :class:`CircuitSolution` (a part of ``World``) builds
the circuit from the board description and the edge state, solves it (the warm-started
``NetworkDC`` where it applies, ``learnboard.physics.solve`` otherwise) and keeps the
results there.
"""

from __future__ import annotations

import math

import numpy as np
from learnboard.emulator.devices.current_sense import CurrentSense
from learnboard.emulator.devices.digipot import X9cDigipot

from learnboard.boards.board_circuit import circuit_for_board, edge_conductances, edge_parameters
from learnboard.physics import Fix, solve
from learnboard.physics.circuit import TRANSISTOR
from learnboard.physics.network_dc import NetworkDC

_SHUNT_PASSES = 6  # substitution passes for the shunts' drops (2-3 reach 1 nV)


class SolveCache:
    """The kept DC solves of a world's networks and when they hold.

    A solve holds while nothing was actuated since it was last checked (``gen``, the
    actuation generation, unchanged), no output is still settling (``dynamic_until``),
    no gate is being driven, gate leakage cannot have moved a gate by ``tol`` volts and
    no stuck-edge fault is pending. :meth:`holds` is that rule; :meth:`node_volts` is the
    same rule for the node volts kept as a list, its leakage bound solved for the time
    once when the list is kept (:meth:`keep_volts`).

    Per network: ``solved`` (edge state, drives, DCSolution — None while it is owed:
    a re-solve taken from the linear map, :meth:`owe` / :meth:`complete`), ``checked``
    (generation, solve time) of the last full check, ``solved_at`` (µs) and ``volts``
    (generation, valid until µs, leak scale, node volts list). Only this class writes
    them.
    """

    __slots__ = ("gen", "dynamic_until", "solves", "kept", "solved", "checked", "solved_at",
                 "volts", "faults", "stuck_values", "active_gates", "dac_gates",
                 "max_leak", "tol")

    def __init__(self, n_nets: int, faults, stuck_values: dict, active_gates: set,
                 dac_gates: bool, max_leak: float, tol: float):
        self.gen = 0
        self.dynamic_until = 0
        self.solves = 0
        # solves computed by a solver (keep) rather than from a linear map: a solver's
        # warm start and caches are not undone by restore (never rewound)
        self.kept = 0
        self.solved: list = [None] * n_nets
        self.checked: list = [None] * n_nets
        self.solved_at: list = [0] * n_nets
        self.volts: list = [None] * n_nets
        self.faults = faults
        self.stuck_values = stuck_values  # the world's: (net, edge) -> frozen state
        self.active_gates = active_gates  # the world's: gates whose switches are on
        self.dac_gates = dac_gates  # gates held by DAC channels move between reads
        self.max_leak = max_leak  # V/s, the fastest gate leakage on the board
        self.tol = tol

    def actuated(self, now: int, settle_us: float = 0.0) -> None:
        """The circuit changed at ``now``; driven outputs settle for ``settle_us``."""
        self.gen += 1
        if now + settle_us > self.dynamic_until:
            self.dynamic_until = now + settle_us

    def quiet(self, now: int) -> bool:
        """No output settling and no gate moving at ``now``: a solve can outlast it."""
        return now >= self.dynamic_until and not self.active_gates and not self.dac_gates

    def holds(self, net: int, now: int) -> bool:
        """Whether the last solve of ``net`` still holds at ``now`` without looking."""
        chk = self.checked[net]
        return chk is not None and chk[0] == self.gen and not self.active_gates and \
            not self.dac_gates and now >= self.dynamic_until and \
            (now - chk[1]) * 1e-6 * self.max_leak * self.faults.leak_scale <= self.tol and \
            len(self.faults.stuck_edges) == len(self.stuck_values)

    def node_volts(self, net: int, until: int) -> list | None:
        """The kept node volts of ``net`` if they hold until ``until`` µs, else None."""
        c = self.volts[net]
        if c is not None and c[0] == self.gen and until <= c[1] and \
                c[2] == self.faults.leak_scale and \
                len(self.faults.stuck_edges) == len(self.stuck_values):
            return c[3]
        return None

    def keep_volts(self, net: int, volts: list, now: int) -> None:
        """Keep the node volts of a solve that holds at ``now``, for as long as
        :meth:`holds` would go on passing (nothing kept while anything moves)."""
        if self.quiet(now):
            rate = 1e-6 * self.max_leak * self.faults.leak_scale
            until = self.checked[net][1] + self.tol / rate if rate > 0 else float("inf")
            self.volts[net] = (self.gen, until, self.faults.leak_scale, volts)

    def confirm(self, net: int) -> None:
        """The last solve was checked against the circuit now and still applies."""
        self.checked[net] = (self.gen, self.solved_at[net])

    def keep(self, net: int, state, drives: dict, sol, now: int) -> None:
        """A new solve of ``net`` at ``now``."""
        self.kept += 1
        self.solved[net] = (state, drives, sol)
        self.count_solve(net, now)

    def owe(self, net: int, drives: dict) -> None:
        """The last re-solve of ``net`` (at these ``drives``) was taken from the network's
        linear map: its full solution is owed, completed when someone asks for it."""
        state = self.solved[net][0]
        self.solved[net] = (state, drives, None)

    def complete(self, net: int, sol) -> None:
        """The owed solution of ``net``'s last re-solve, now computed."""
        state, drives, _ = self.solved[net]
        self.solved[net] = (state, drives, sol)

    def count_solve(self, net: int, now: int) -> None:
        """A solve of ``net`` at ``now`` (its result recorded in ``solved``)."""
        self.solves += 1
        self.solved_at[net] = now
        self.checked[net] = (self.gen, now)

    def snapshot(self) -> tuple:
        return (list(self.volts), list(self.solved), list(self.checked),
                list(self.solved_at), self.solves, self.gen)

    def restore(self, snap: tuple) -> None:
        vc, so, ch, sa, self.solves, self.gen = snap
        self.volts[:], self.solved[:], self.checked[:], self.solved_at[:] = vc, so, ch, sa


class CircuitSolution:
    """The DC solution part of ``World`` (its state lives in ``self._cache``)."""

    def _build_solution(self) -> None:
        b = self.board
        self._cache = SolveCache(b.n_nets, self.faults, self._stuck_values,
                                 self._active_gates, self._dac_gates, self._max_leak,
                                 self.resolve_tol)
        self._network_dc: NetworkDC | None = None
        self._circuits: dict = {}  # (net, edge state bytes) -> Circuit of the last solve
        self._drive_tables: dict = {}  # net -> driven() table
        self._circuit_base: dict = {}  # net -> (first circuit, its transistor mask): gate-only
        self._tap_base: dict = {}  # net -> (first circuit, r_scale): resistors and digipots
        self._x9c_nets: dict = {}  # net -> its edge devices if all X9C or None, else ()
        self._ready_memo: dict = {}  # net -> _linear_ready's last (question, answer)
        self._op_memo: dict = {}  # net -> _linear_op's last (state, circuits, nodes, answer)
        self._state_lists: dict = {}  # net -> (a solve's edge state, as a list)
        self._gates_only = all(e.kind in ("transistor", "resistor") for e in b.edges)
        # networks of resistors and digipots only: re-solves can come from a linear map
        self._linear_board = all(e.kind in ("digipot", "resistor") for e in b.edges)
        self._linops: dict = {}  # (net, conductances, driven nodes) -> linear map
        self._edge_ends = b.edge_array()
        self._build_monitors()

    def _build_monitors(self) -> None:
        """The board's current monitors (INA219 models) and, per network, the shunts they
        put in series with drivers: (node, shunt ohm, monitor, the node's mux-channel
        leakage in A). The leakage: normal with a 10 nA standard deviation per node, an
        assumption well inside the HC4067's ±0.1 µA off-state maximum at 25 °C."""
        b = self.board
        self.monitors = []
        self._shunts: list[list] = [[] for _ in range(b.n_nets)]
        for i, cs in enumerate(b.current_sense):
            dev = CurrentSense(cs.address, cs.shunt, lambda i=i: self._sensed(i),
                               seed=[self.seed, 13, i])
            self.monitors.append(dev)
            leak = 10e-9 * float(np.random.default_rng([self.seed, 17, cs.net, cs.node])
                                 .standard_normal())
            self._shunts[cs.net].append((cs.node, cs.shunt, dev, leak))

    def _sensed(self, i: int) -> tuple[float, float]:
        """Monitor ``i``: (amps its shunt passes from the driver toward the node — the
        network's current, its own IN- pin's and the node's mux leakage —, volts at the
        node: its IN- pin and bus input). 0 A while the driver is off (a switched clamp)."""
        cs = self.board.current_sense[i]
        sol = self.solution(cs.net)
        volts = float(sol.node_voltages[cs.node])
        if cs.node not in self.driven(cs.net):
            return 0.0, volts
        node, _, dev, leak = next(x for x in self._shunts[cs.net] if x[0] == cs.node)
        amps = float(self._node_outflow(sol.edge_currents)[node])
        return amps + dev.in_minus_amps(volts) + leak, volts

    # the cache's counters, as the world's front ends and tests read them
    @property
    def solves(self) -> int:
        """Circuit solves so far."""
        return self._cache.solves

    @property
    def _gen(self) -> int:
        return self._cache.gen

    @property
    def _dynamic_until(self) -> float:
        return self._cache.dynamic_until

    def driven(self, net: int) -> dict[int, float]:
        """Node -> volts for every node a driver holds on network ``net`` now."""
        table = self._drive_tables.get(net)
        if table is None:  # (node, line, switch that must be on or None), built once
            table = []
            single = self.board.n_nets == 1
            for port in self.board.inputs + self.board.outputs:
                is_out = port in self.board.outputs
                for nodes, lines, sw in ((port.a, port.drive, port.switch),
                                         (port.b, port.drive_b, port.switch_b)):
                    if nodes is None or not lines:
                        continue
                    line = lines[net] if len(lines) > net else lines[0]
                    if line is None:
                        continue
                    table.append((nodes, line,
                                  sw if is_out and single and sw is not None else None))
            self._drive_tables[net] = table
        now = self.clock.now_us
        out: dict[int, float] = {}
        for nodes, line, sw in table:
            if sw is not None and not self.line_level(sw):
                continue
            out[nodes] = self._line_volts(line, now)
        out.pop(self.board.ground, None)
        return out

    def solution(self, net: int):
        """The DC solution of network ``net``, re-solved only if the circuit changed."""
        for key in self.faults.stuck_edges - set(self._stuck_values):
            self.set_stuck(*key)
        cache = self._cache
        now = self.clock.now_us
        if cache.holds(net, now):
            return self._sol(net)
        state = self.edge_state(net)
        drives = self.driven(net)
        prev = cache.solved[net]
        if prev is not None:
            p_state, p_drives, sol = prev
            if p_drives.keys() == drives.keys() and \
                    all(abs(p_drives[k] - v) <= 1e-7 for k, v in drives.items()) and \
                    np.max(np.abs(p_state - state), initial=0.0) <= self.resolve_tol:
                cache.confirm(net)
                return sol if sol is not None else self._sol(net)
        warm = None if prev is None or prev[2] is None else prev[2].node_voltages
        sol = self._solve_drives(net, state, drives, warm)
        if self._shunts[net]:
            sol = self._through_shunts(net, state, drives, sol)
        cache.keep(net, state, drives, sol, now)
        return sol

    def _solve_drives(self, net: int, state: np.ndarray, drives: dict, warm):
        """The DC solution of network ``net`` at edge ``state`` with ``drives`` held."""
        # warm-started re-solve (same model and tolerance); the general solver otherwise.
        # Where gate volts are the only change, the network's first circuit with these
        # gates (no new circuit object unless that fails)
        kept = self._circuit_base.get(net)
        tried = kept is not None and self._network_dc is not None and bool(np.isfinite(state).all())
        sol = self._network_dc.solve(kept[0], drives, warm, gates=state) if tried else None
        if sol is None:
            circuit = self._gate_circuit(net, state)
            if circuit is None:
                key = (net, state.tobytes())
                circuit = self._circuits.get(key)
                if circuit is None:  # digipot boards: the same taps come back while drives settle
                    circuit = self._tap_circuit(net, state)
                    self._circuits = {k: c for k, c in self._circuits.items() if k[0] != net}
                    self._circuits[key] = circuit
            if self._network_dc is None:
                self._network_dc = NetworkDC(circuit.n_nodes, circuit.network.edges,
                                       circuit.network.ground)
            if not tried:
                sol = self._network_dc.solve(circuit, drives, warm)
            if sol is None:
                fixes = [Fix(n, v) for n, v in sorted(drives.items())]
                sol = solve(circuit, fixes, initial=warm)
        return sol

    def _through_shunts(self, net: int, state: np.ndarray, drives: dict, sol):
        """The solution with each current monitor's shunt in series with its driver: the
        node sits below the driver by ``shunt × (the network's current + what the
        monitor's IN- pin and the node's mux channel draw)``. Solved by substitution
        (the shunt is ~1e-2 of the node's resistance to the network: each pass shrinks
        the error ~100-fold)."""
        shunts = [x for x in self._shunts[net] if x[0] in drives]
        if not shunts:
            return sol
        held = dict(drives)
        for _ in range(_SHUNT_PASSES):
            v = sol.node_voltages
            out = self._node_outflow(sol.edge_currents)
            moved = 0.0
            for node, ohms, dev, leak in shunts:
                amps = out[node] + dev.in_minus_amps(float(v[node])) + leak
                volts = drives[node] - ohms * amps
                moved = max(moved, abs(volts - held[node]))
                held[node] = volts
            if moved <= 1e-9:
                break
            sol = self._solve_drives(net, state, held, v)
        return sol

    def _node_outflow(self, edge_currents: np.ndarray) -> np.ndarray:
        """Current (A) leaving each node into the network's edges."""
        ends = self._edge_ends
        out = np.zeros(self.board.n_nodes)
        np.add.at(out, ends[:, 0], edge_currents)
        np.add.at(out, ends[:, 1], -edge_currents)
        return out

    def _gate_circuit(self, net: int, state: np.ndarray):
        """:meth:`circuit` for a new ``state`` of a network whose only state-dependent
        parameters are gate volts (transistors and fixed resistors, no digipots, the
        hook not overridden): the network's first circuit with its gates replaced —
        the arrays circuit_for_board gives. None otherwise."""
        kept = self._circuit_base.get(net)
        if kept is None:
            if type(self).circuit is not CircuitSolution.circuit or not self._gates_only:
                return None
            base = self.circuit(net, state)
            self._circuit_base[net] = (base, base.kind == TRANSISTOR)
            return base
        if not math.isfinite(float(state.sum())):
            return None  # the full constructor reports it
        base, is_t = kept
        return _with(base, gate=np.where(is_t, state, 0.0), _index=dict(base._index))

    def _tap_circuit(self, net: int, state: np.ndarray):
        """:meth:`circuit` for new taps of a network of resistors and digipots only (the
        hook not overridden): the network's first circuit with its conductances
        replaced — the array circuit_for_board gives (the same function of the taps,
        errors included), without building and checking a new circuit."""
        kept = self._tap_base.get(net)
        if kept is None:
            circuit = self.circuit(net, state)
            if type(self).circuit is CircuitSolution.circuit and circuit.is_linear:
                self._tap_base[net] = (circuit, edge_parameters(self.board, net,
                                                                self.seed)["r_scale"])
            return circuit
        base, r_scale = kept
        g = edge_conductances(self.board, np.asarray(state, dtype=float).reshape(-1), r_scale)
        if g.shape != base.conductance.shape or not bool(np.all(g > 0)) or \
                not bool(np.isfinite(g).all()):
            return self.circuit(net, state)  # the full constructor reports it
        return _with(base, conductance=g, _index=dict(base._index))

    def circuit(self, net: int, state: np.ndarray):
        """The physics of network ``net`` at edge ``state`` (a hook: a calibrated twin,
        learnboard.emulator.twin, overrides it with measured device parameters)."""
        return circuit_for_board(self.board, state, twin=net, mismatch=self.seed)

    def _node_volts(self, net: int, node: int) -> float:
        """Volts of ``node`` on network ``net`` now: :meth:`solution`'s, kept as a list
        while the cache says they hold."""
        now = self.clock._us
        volts = self._cache.node_volts(net, now)
        if volts is not None:
            return volts[node]
        volts = self.solution(net).node_voltages.tolist()
        self._cache.keep_volts(net, volts, self.clock._us)
        return volts[node]

    def _linear_op(self, net: int):
        """For a linear network whose last solve is current: the node volts as a linear map
        of the drive volts — ``(rows, lines, row arrays, outputs, nodes)`` with
        ``rows[node]`` the coefficient per driven node (``nodes``: sorted as
        :meth:`solution` sorts them), ``lines`` the driving line of each and ``outputs``
        its (settling output, channel) — or None (transistor networks, the general
        solver, no solve yet)."""
        prev = self._cache.solved[net]
        if prev is None or self._network_dc is None:
            return None
        p_state, p_drives, _sol = prev
        # the last answer for this net holds while its solve has the same edge state
        # (object) and driven nodes and the kept circuits are the same (dict) ones
        memo = self._op_memo.get(net)
        if memo is not None and memo[0] is p_state and memo[1] is self._circuits and \
                p_drives.keys() == memo[2]:
            return memo[3]
        circuit = self._circuits.get((net, p_state.tobytes()))
        if circuit is None:
            return None
        fixed = tuple(sorted(p_drives))
        key = (net, circuit.conductance.tobytes(), fixed)
        op = self._linops.get(key)
        if op is not None:
            self._op_memo[net] = (p_state, self._circuits, set(fixed), op)
            return op
        if not self._network_dc._kinds_of(circuit)[0] or not fixed or self._shunts[net]:
            return None
        # the drive table as driven() walks it (the last port on a node wins)
        table = {}
        for nodes, line, sw in self._drive_tables[net]:
            if sw is not None and not self.line_level(sw):
                continue
            table[nodes] = line
        if tuple(sorted(k for k in table if k != self.board.ground)) != fixed:
            return None
        # columns: the node volts of a unit volt on one driven node (superposition)
        m = np.stack(self._network_dc.linear_unit_volts(circuit, fixed), axis=1)
        getters = [self._line_getter(table[k]) for k in fixed]
        # (the rows as lists and as arrays, each getter's settling output and channel,
        # and the driven nodes in order, for the compiled block)
        op = (m.tolist(), getters, list(np.ascontiguousarray(m)),
              [(g.func.__self__, g.args[0]) for g in getters], fixed)
        if len(self._linops) > 256:
            self._linops.clear()
        self._linops[key] = op
        self._op_memo[net] = (p_state, self._circuits, set(fixed), op)
        return op

    def _sol(self, net: int):
        """The last solve of ``net`` as a DCSolution (a re-solve that :meth:`adc_block` took
        from the linear map is completed here, when someone asks for it)."""
        p_state, drives, sol = self._cache.solved[net]
        if sol is None:
            circuit = self._circuits[(net, p_state.tobytes())]
            sol = self._network_dc.solve(circuit, drives, None)
            self._cache.complete(net, sol)
        return sol

    def _linear_map(self, net: int):
        """The linear map of ``net`` for a block of reads: the kept one, or after a solve
        at new taps (the solve a single read of the block's first sample would make);
        None where a linear map does not apply."""
        op = self._linear_ready(net)
        if op is None:
            self.solution(net)
            op = self._linear_op(net)
        return op

    def _linear_ready(self, net: int):
        """The linear map of ``net`` if :meth:`solution` would now keep its last circuit
        (taps and driven nodes unchanged, no stuck-edge fault pending), else None."""
        cache = self._cache
        prev = cache.solved[net]
        if prev is None or not self._linear_board:
            return self._linear_ready_now(net, prev)
        # On a board of linear networks the answer only changes with an actuation (taps
        # and driven nodes move only with the actuation generation; nothing leaks), a
        # new solve (another edge state or driven nodes), other kept circuits or a fault:
        # the blocks of a scan ask it again and again. (When the kept solve holds, the
        # full check would find the same: it was checked at this generation.)
        key = (net, cache.gen, len(self.faults.stuck_edges), len(self._stuck_values),
               self.resolve_tol)
        memo = self._ready_memo.get(net)
        if memo is not None and memo[0] == key and memo[1] is prev[0] and \
                memo[2] is self._circuits and prev[1].keys() == memo[3]:
            return memo[4]
        op = self._linear_ready_now(net, prev)
        if op is not None:
            self._ready_memo[net] = (key, prev[0], self._circuits, set(prev[1]), op)
        return op

    def _linear_ready_now(self, net: int, prev):
        """:meth:`_linear_ready`, worked out."""
        if prev is None or self.faults.stuck_edges - set(self._stuck_values):
            return None
        op = self._linear_op(net)
        if op is None:
            return None
        if self._cache.holds(net, self.clock._us):
            return op  # solution() would return the cached solve without looking
        if prev[1].keys() != self._driven_nodes(net):
            return None
        if self._same_taps(net, prev[0]):
            return op
        if np.max(np.abs(prev[0] - self.edge_state(net)), initial=0.0) > self.resolve_tol:
            return None
        return op

    def _driven_nodes(self, net: int) -> set:
        """The keys of :meth:`driven` (the nodes a driver holds now), without the volts."""
        table = self._drive_tables.get(net)
        if table is None:
            return set(self.driven(net))
        nodes = {n for n, _line, sw in table if sw is None or self.line_level(sw)}
        nodes.discard(self.board.ground)
        return nodes

    def _same_taps(self, net: int, state: np.ndarray) -> bool:
        """Whether :meth:`edge_state` of ``net`` now equals ``state`` exactly, for a network
        of X9C digipots and fixed resistors (no stuck edge): the taps compared as a list,
        the array is not built. False: not known (compare :meth:`edge_state`)."""
        if self._stuck_values or self.resolve_tol < 0:
            return False
        pots = self._x9c_nets.get(net)
        if pots is None:
            devs = self.edges[net]
            pots = self._x9c_nets[net] = (
                devs if all(d is None or type(d) is X9cDigipot for d in devs) else ())
        if not pots:
            return False
        kept = self._state_lists.get(net)
        if kept is None or kept[0] is not state:
            kept = self._state_lists[net] = (state, state.tolist())
        # (edge_state: a fixed resistor's entry is 0.0; equal lists: every difference 0)
        return [0 if d is None else d.tap for d in pots] == kept[1]


def _with(base, **fields):
    """A shallow copy of ``base`` (``copy.copy``: a new instance with the same attribute
    dict) with ``fields`` replaced, without copy's generic protocol (a few µs a solve)."""
    c = object.__new__(type(base))
    c.__dict__.update(base.__dict__)
    c.__dict__.update(fields)
    return c
