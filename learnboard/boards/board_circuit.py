"""Bridge from a board description to the shared physics (:class:`~learnboard.physics.circuit.Circuit`).

``edge_state`` holds one number per edge: the tap of a digipot edge, the gate voltage
of a transistor edge (resistor edges ignore theirs). ``mismatch`` (a seed) gives each
network of a twin board its own fixed device spread, drawn from the parts' ratings:
digipot end-to-end error within ±tolerance, transistor ``vt`` and ``beta`` spreads.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from learnboard.boards.schema import Board, DigipotPart, TransistorPart
from learnboard.errors import InputError
from learnboard.physics.circuit import RESISTOR, TRANSISTOR, Circuit
from learnboard.physics.devices import digipot_resistance


def _cache(board: Board) -> dict[str, Any]:
    """Per-board arrays that never change (kinds, part groups, topology), built once.

    Stored on the (frozen) board object itself: the engine and the emulator build a
    circuit per solve, so these must not be recomputed with Python loops every time.
    """
    cache = board.__dict__.get("_circuit_cache")
    if cache is None:
        groups = {}
        for name in sorted(board.parts):
            idx = np.array([i for i, e in enumerate(board.edges) if e.part == name], dtype=np.int64)
            if idx.size:
                groups[name] = idx
        resistors = np.array([i for i, e in enumerate(board.edges) if e.kind == "resistor"],
                             dtype=np.int64)
        kind = np.array([TRANSISTOR if e.kind == "transistor" else RESISTOR for e in board.edges],
                        dtype=np.int8)
        cache = {
            "groups": groups,
            "resistors": resistors,
            "r_fixed": np.array([board.edges[i].resistance for i in resistors], dtype=float),
            "kind": kind,
            "network": board.network(),
            "params": {},
        }
        object.__setattr__(board, "_circuit_cache", cache)
    return cache


def edge_parameters(board: Board, twin: int = 0,
                    mismatch: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Per-edge device arrays for network ``twin``: r_scale, vt, beta, sub_slope.

    With an integer seed the draw is fixed for (seed, twin), so repeated calls agree.
    """
    if not 0 <= twin < board.n_nets:
        raise InputError(f"network {twin} does not exist: the board has {board.n_nets} "
                         f"({'free 0, clamped 1' if board.n_nets == 2 else 'only 0'})",
                         source=board.name, field="twin")
    cache = _cache(board)
    key = (int(mismatch), twin) if isinstance(mismatch, (int, np.integer)) else None
    if mismatch is None:
        key = (None, twin)
    if key is not None and key in cache["params"]:
        return cache["params"][key]
    n = board.n_edges
    r_scale = np.ones(n)
    vt = np.zeros(n)
    beta = np.ones(n)
    sub_slope = np.full(n, 0.1)
    rng = None
    if mismatch is not None:
        rng = mismatch if isinstance(mismatch, np.random.Generator) else (
            np.random.default_rng([int(mismatch), twin]))
    for name, idx in cache["groups"].items():
        part = board.parts[name]
        if isinstance(part, DigipotPart):
            if rng is not None:
                # tolerance is a bound: draw within it (3 sigma at the bound)
                z = np.clip(rng.standard_normal(idx.size) / 3.0, -1.0, 1.0)
                r_scale[idx] = 1.0 + part.tolerance * z
        elif isinstance(part, TransistorPart):
            vt[idx] = part.vt
            beta[idx] = part.beta
            sub_slope[idx] = part.sub_slope
            if rng is not None:
                vt[idx] += part.vt_spread * rng.standard_normal(idx.size)
                beta[idx] *= np.exp(part.beta_spread * rng.standard_normal(idx.size))
    params = {"r_scale": r_scale, "vt": vt, "beta": beta, "sub_slope": sub_slope}
    for arr in params.values():
        arr.flags.writeable = False  # shared through the cache
    if key is not None:
        cache["params"][key] = params
    return params


def edge_conductances(board: Board, edge_state: np.ndarray, r_scale: np.ndarray) -> np.ndarray:
    """Conductance (S) of every resistor and digipot edge (0 for transistors)."""
    state = np.asarray(edge_state, dtype=float)
    cache = _cache(board)
    g = np.zeros(board.n_edges)
    g[cache["resistors"]] = 1.0 / cache["r_fixed"]
    for name, idx in cache["groups"].items():
        part = board.parts[name]
        if not isinstance(part, DigipotPart):
            continue
        taps = np.rint(state[idx])
        if np.any((taps < 0) | (taps > part.n_taps - 1)) or not np.all(np.isfinite(state[idx])):
            bad = int(idx[np.flatnonzero(~((taps >= 0) & (taps <= part.n_taps - 1)))[0]])
            raise InputError(f"edge {board.edges[bad].name!r}: tap {state[bad]!r} is outside "
                             f"0..{part.n_taps - 1}", source=board.name, field="edge_state")
        # the end-to-end spread scales the track, not the wiper contact
        track = digipot_resistance(taps, part.n_taps, part.r_min, part.r_max, part.taper, 0.0)
        g[idx] = 1.0 / (track * r_scale[idx] + part.r_wiper)
    return g


def circuit_for_board(board: Board, edge_state, twin: int = 0,
                      mismatch: int | np.random.Generator | None = None) -> Circuit:
    """The physics of one network of ``board`` with taps / gate volts ``edge_state`` (E,).

    Args:
        board: a loaded board.
        edge_state: digipot tap or transistor gate voltage (V) per edge.
        twin: which network (0 free, 1 clamped on twin boards).
        mismatch: None for nominal parts, or a seed (or Generator) for device spread.
    """
    state = np.asarray(edge_state, dtype=float).reshape(-1)
    if state.shape != (board.n_edges,):
        raise InputError(f"edge_state needs one value per edge ({board.n_edges}), got "
                         f"{state.size}", source=board.name, field="edge_state")
    params = edge_parameters(board, twin, mismatch)
    kind = _cache(board)["kind"]
    conductance = np.where(kind == RESISTOR, edge_conductances(board, state, params["r_scale"]), 0.0)
    gate = np.where(kind == TRANSISTOR, state, 0.0)
    vt = np.where(kind == TRANSISTOR, params["vt"], 0.62)
    beta = np.where(kind == TRANSISTOR, params["beta"], 8.5e-4)
    return Circuit.build(_cache(board)["network"], kind, conductance=conductance, gate=gate, vt=vt,
                         beta=beta, sub_slope=params["sub_slope"])
