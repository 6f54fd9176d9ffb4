"""Board descriptions: shipped profiles load, compile canonically, hash stably, bridge to physics."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from learnboard.boards import (
    CompiledBoard,
    compile_board,
    load_board,
    pin_map,
    profile_names,
    worst_case_current,
)
from learnboard.boards.board_circuit import circuit_for_board
from learnboard.boards.load import board_from_data
from learnboard.errors import InputError
from learnboard.physics.circuit import RESISTOR, TRANSISTOR
from learnboard.physics.devices import digipot_resistance
from learnboard.physics.solver import Fix, solve
from tests.test_boards_helpers import profile_data, single_data

PROFILES = ["gen1-digipot", "gen2-clln"]


def test_shipped_profiles_are_listed():
    assert set(PROFILES) <= set(profile_names())


def test_gen1_matches_its_board_page():
    b = load_board("gen1-digipot")
    assert (b.n_edges, b.networks, b.learning.rule, b.microcontroller) == (16, "twin", "sign", "rp2040")
    part = b.parts["X9C303"]
    assert (part.n_taps, part.r_min, part.r_max, part.taper, part.r_wiper) == (100, 40.0, 32e3, "log", 40.0)
    assert part.i_max == 1e-3 and part.tolerance == 0.15
    assert len(b.inputs) == 2 and len(b.outputs) == 2
    # every edge's worst case keeps the X9C's ±1 mA wiper rating
    assert max(worst_case_current(b, i) for i in range(b.n_edges)) <= 1e-3


def test_gen2_matches_its_board_page():
    b = load_board("gen2-clln")
    assert (b.n_nodes, b.n_edges, b.networks, b.learning.rule) == (16, 32, "twin", "gate")
    fet = b.parts["nmos"]
    assert (fet.vt, fet.beta, fet.gate_c, fet.gate_r) == (0.62, 8.5e-4, 2.2e-6, 1000.0)
    assert b.limits.gate_range == (0.75, 5.2) and b.rails[b.gates.charge_rail] == 8.0
    assert b.limits.max_node_volts == 0.45
    assert b.dacs["din"].bits == 8
    # periodic 4x4 lattice: every node has degree 4, no edge repeated
    edges = b.edge_array()
    assert np.all(np.bincount(edges.ravel(), minlength=16) == 4)
    assert len({tuple(sorted(e)) for e in edges.tolist()}) == 32
    # the node front end fills but never exceeds the RP2040's 3.3 V ADC
    for m in b.muxes.values():
        span = b.limits.max_node_volts if m.nodes else b.limits.gate_range[1]
        assert 0.9 * b.adc.vref <= span * m.gain <= b.adc.vref


@pytest.mark.parametrize("name", PROFILES)
def test_every_node_and_gate_read_once_per_network(name):
    b = load_board(name)
    for net in range(b.n_nets):
        channels = [b.node_channel(i, net) for i in range(b.n_nodes) if i != b.ground]
        assert None not in channels and len(set(channels)) == len(channels)
        gates = [b.gate_channel(i, net) for i, e in enumerate(b.edges) if e.kind == "transistor"]
        assert None not in gates and len(set(gates)) == len(gates)


@pytest.mark.parametrize("name", PROFILES)
def test_pin_map_has_no_duplicates(name):
    rows = pin_map(load_board(name))
    labels = [r[0] for r in rows]
    assert len(labels) == len(set(labels))
    assert any(label.startswith("GPIO") for label in labels)


@pytest.mark.parametrize("name", PROFILES)
def test_compiled_roundtrip(name, tmp_path):
    compiled = compile_board(load_board(name))
    data = compiled.to_bytes()
    back = CompiledBoard.from_bytes(data)
    assert back == compiled and back.sha256 == compiled.sha256
    path = compiled.write(tmp_path / "board.json")
    assert CompiledBoard.read(path) == compiled
    # layout promised to the firmware: body at bytes [5:-72], hash in the wrapper
    import hashlib

    assert hashlib.sha256(data[5:-72]).hexdigest() == json.loads(data)["h"] == compiled.sha256
    assert data[5:-72] == compiled.canonical and compiled.short_id == compiled.sha256[:8]
    # canonical: sorted keys, no whitespace between tokens, ASCII
    again = json.dumps(json.loads(compiled.canonical), sort_keys=True, separators=(",", ":"))
    assert again.encode("ascii") == compiled.canonical


def test_compiled_form_resolves_indices():
    b = load_board("gen2-clln")
    body = compile_board(b).body
    assert body["nets"] == 2 and body["gnd"] == b.ground and len(body["edges"]) == 32
    e = body["edges"][5]
    assert (e["a"], e["b"]) == (b.edges[5].a, b.edges[5].b) and e["k"] == "t"
    assert body["parts"][e["p"]]["n"] == "nmos"
    # gate driver lines are [expander index, bit]
    xp = body["xp"][e["d"][1]["ch"][0]]
    assert xp["n"] == "gsw" and e["d"][1]["ch"][1] == 64 + 10
    # node read table per network: [mux index, channel]
    mux, ch = body["nrd"][1][b.outputs[0].a]
    assert body["mux"][mux]["net"] == 1 and body["mux"][mux]["g"] == 7.0
    assert body["nrd"][0][b.ground] == [-1, -1]
    assert isinstance(body["mux"][0]["sel"][0], int) and isinstance(body["adc"]["vref"], float)


def test_corrupt_compiled_board_is_refused(tmp_path):
    data = bytearray(compile_board(load_board("gen1-digipot")).to_bytes())
    data[40] = ord("9") if data[40] != ord("9") else ord("8")
    with pytest.raises(InputError, match="hash mismatch|invalid JSON"):
        CompiledBoard.from_bytes(bytes(data), "board.json")
    with pytest.raises(InputError, match="not a compiled board"):
        CompiledBoard.from_bytes(b'{"a":1}', "board.json")
    with pytest.raises(InputError, match="board.json"):
        CompiledBoard.from_bytes(b"\xff\xfe", "board.json")


def test_hash_is_stable_across_processes_and_key_order():
    ref = compile_board(load_board("gen1-digipot")).sha256
    code = "from learnboard.boards import load_board, compile_board as c; print(c(load_board('gen1-digipot')).sha256)"
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    assert out.stdout.strip() == ref
    data = profile_data("gen1-digipot")
    data["board"] = dict(reversed(list(data["board"].items())))
    data["parts"]["X9C303"] = dict(reversed(list(data["parts"]["X9C303"].items())))
    assert compile_board(board_from_data(data, "x.toml")).sha256 == ref
    # an integer where a float is meant compiles the same (canonical floats)
    data["limits"]["max_node_volts"] = 0.5
    data["rails"]["analog"] = 5
    assert compile_board(board_from_data(data, "x.toml")).sha256 == ref


def _leaves(obj, path=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        for i, v in enumerate(obj):
            yield from _leaves(v, (*path, i))
    else:
        yield path, obj


def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.97 if value else 0.01
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list) and value:
        return [_perturb(value[0]), *value[1:]]
    return value


@pytest.mark.parametrize("name", ["gen1-digipot", "gen2-clln"])
def test_hash_changes_when_any_field_changes(name):
    base = profile_data(name)
    ref = compile_board(board_from_data(base, "x.toml")).sha256
    leaves = list(_leaves(base))
    valid = 0
    for path, value in leaves:
        data = profile_data(name)
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = _perturb(value)
        try:
            board = board_from_data(data, "x.toml")
        except InputError:
            continue  # the change made the board invalid: caught, not hashed
        valid += 1
        assert compile_board(board).sha256 != ref, f"changing {path} left the hash unchanged"
    # many single-field changes keep the board valid (others break a reference), so the
    # check above ran on dozens of fields
    assert valid >= 40


def test_single_network_board_compiles():
    b = board_from_data(single_data(), "bench.toml")
    assert b.n_nets == 1 and b.adc.type == "spi" and b.outputs[0].b is not None
    body = compile_board(b).body
    out = body["outs"][0]
    assert out["sw"] == [-1, 20] and out["swb"] == [-1, 21] and out["d"] == [[0, 1]]
    assert body["dacs"][0]["if"] == "i2c" and body["dacs"][0]["addr"] == 96
    assert body["edges"][0]["k"] == "r" and body["edges"][0]["r"] == 1000.0


def test_network_uses_board_ground():
    b = load_board("gen1-digipot")
    net = b.network()
    assert net.ground == b.ground and net.n_edges == 16 and net.is_connected()
    assert np.array_equal(net.edges, b.edge_array())


def test_circuit_for_digipot_board_matches_taper():
    b = load_board("gen1-digipot")
    taps = np.arange(40, 56)
    c = circuit_for_board(b, taps)
    assert np.all(c.kind == RESISTOR)
    expected = 1.0 / digipot_resistance(taps, 100, 40.0, 32e3, "log", 40.0)
    assert np.allclose(c.conductance, expected, rtol=1e-12)
    with pytest.raises(InputError, match="outside 0..99"):
        circuit_for_board(b, np.full(16, 100))


def test_circuit_mismatch_is_fixed_per_seed_and_differs_between_twins():
    b = load_board("gen2-clln")
    gates = np.full(32, 3.0)
    nominal = circuit_for_board(b, gates)
    assert np.all(nominal.kind == TRANSISTOR) and np.all(nominal.vt == 0.62)
    free = circuit_for_board(b, gates, twin=0, mismatch=7)
    again = circuit_for_board(b, gates, twin=0, mismatch=7)
    clamped = circuit_for_board(b, gates, twin=1, mismatch=7)
    assert np.array_equal(free.vt, again.vt) and not np.array_equal(free.vt, clamped.vt)
    spread = b.parts["nmos"].vt_spread
    assert 0 < np.std(free.vt - 0.62) < 3 * spread
    with pytest.raises(InputError, match="network 2"):
        circuit_for_board(b, gates, twin=2)


def test_gen2_solution_respects_the_current_limit():
    """At the fully-on gate limit with inputs at the node limit, no edge exceeds the bound."""
    b = load_board("gen2-clln")
    c = circuit_for_board(b, np.full(32, b.limits.gate_range[1]))
    fixes = [Fix(p.a, b.limits.max_node_volts) for p in b.inputs]
    sol = solve(c, fixes)
    bound = max(worst_case_current(b, i) for i in range(b.n_edges))
    assert np.abs(sol.edge_currents).max() <= bound <= b.limits.max_edge_amps
    assert sol.node_voltages.max() <= b.limits.max_node_volts + 1e-9


@pytest.mark.vm
def test_board_json_reads_in_micropython(tmp_path):
    from tests.mpvm import require_vm, run_vm

    require_vm()
    compiled = compile_board(load_board("gen2-clln"))
    path = compiled.write(tmp_path / "board.json")
    source = f"""
import json, hashlib, binascii
f = open({str(path)!r}, 'rb'); raw = f.read(); f.close()
d = json.loads(raw)
h = binascii.hexlify(hashlib.sha256(raw[5:-72]).digest()).decode()
b = d['b']
print(h == d['h'], d['h'][:8], len(b['edges']), b['edges'][3]['a'], b['nrd'][1][5][1])
"""
    out = run_vm(source).stdout.decode().split()
    body = compiled.body
    assert out == ["True", compiled.short_id, "32", str(body["edges"][3]["a"]),
                   str(body["nrd"][1][5][1])]
