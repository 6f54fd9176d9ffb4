"""Every user mistake in a board file gives one clear InputError naming file, field and fix."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learnboard.boards import load_board, parse_board
from learnboard.boards.load import board_from_data
from learnboard.errors import InputError
from tests.test_boards_helpers import profile_data, single_data

SOURCE = "my-board.toml"


def _set(path, value):
    def mutate(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value
    return mutate


def _del(path):
    def mutate(d):
        for key in path[:-1]:
            d = d[key]
        del d[path[-1]]
    return mutate


def _mux_drop_node(d):
    d["muxes"]["nodes_clamped"]["nodes"][3] = ""


def _add_node(d):
    d["nodes"]["names"].append("h9")
    d["nodes"]["positions"].append([3, 3])


def _split_network(d):
    # cut every edge of node 'y2' and give it its own island with a new node
    d["nodes"]["names"].append("z")
    d["nodes"]["positions"].append([3, 0])
    d["edges"] = [e for e in d["edges"] if "y2" not in e["nodes"]]
    d["edges"].append({"nodes": ["y2", "z"], "kind": "digipot", "part": "X9C303",
                       "cs": ["cs.5", "cs.21"], "name": "e99"})


# (profile, mutation, field named in the message, what the message says)
CASES = {
    "unknown key": ("gen1-digipot", _set(("board", "nmae"), "x"), "board.nmae",
                    r"unknown key 'nmae' \(did you mean 'name'\?\)"),
    "unknown edge key": ("gen1-digipot", _set(("edges", 3, "tapr"), "log"), "edges[3].tapr",
                         r"unknown key 'tapr'"),
    "unknown top table": ("gen1-digipot", _set(("limit",), {}), "limit",
                          r"did you mean 'limits'"),
    "bad taper": ("gen1-digipot", _set(("parts", "X9C303", "taper"), "logarithmic"),
                  "parts.X9C303.taper", r"one of 'log' \| 'linear'.*did you mean 'log'"),
    "missing field": ("gen1-digipot", _del(("limits", "reason")), "limits.reason",
                      r"missing required field 'reason'.*say why"),
    "missing table": ("gen2-clln", _del(("adc",)), "adc", r"missing required field 'adc'"),
    "dangling edge end": ("gen1-digipot", _set(("edges", 3, "nodes"), ["gnd", "y3"]),
                          "edges[3].nodes[1]", r"node 'y3' is not declared.*did you mean 'y[12]'"),
    "dangling node": ("gen1-digipot", _add_node, "nodes.names", r"'h9' is dangling"),
    "disconnected": ("gen1-digipot", _split_network, "edges", r"no path to ground"),
    "self loop": ("gen1-digipot", _set(("edges", 0, "nodes"), ["a", "a"]), "edges[0].nodes",
                  r"to itself"),
    "duplicate node": ("gen1-digipot", _set(("nodes", "names", 1), "x1"), "nodes.names",
                       r"'x1' is declared twice"),
    "chip select twice": ("gen1-digipot", _set(("edges", 1, "cs"), ["cs.0", "cs.17"]),
                          "edges[1].cs", r"expander cs.0 is already used as chip select of e00"),
    "pin twice": ("gen1-digipot", _set(("x9c", "ud"), 3), "edges[0].ud",
                  r"GPIO 3 is already used as mux select bit 1"),
    "adc pin reused": ("gen1-digipot", _set(("inputs", 0, "drive"), ["GP26", "GP7"]),
                       "inputs[0].drive", r"GPIO 26 is already used as ADC input 0"),
    "pwm output twice": ("gen1-digipot", _set(("inputs", 0, "drive"), ["GP6", "GP25"]),
                         "inputs[1].drive", r"PWM slice 4 output B is already used as driver of x1 "
                         r"\(GPIO 25\)"),
    "dac channel twice": ("gen2-clln", _set(("outputs", 0, "clamp"), "din.1"),
                          "outputs[0].clamp", r"dac din.1 is already used as driver of x1"),
    "node read twice": ("gen2-clln", _set(("muxes", "nodes_free", "nodes", 0), "n01"),
                        "muxes.nodes_free.nodes", r"'n01' is on two channels"),
    "node not read": ("gen1-digipot", _mux_drop_node, "muxes",
                      r"node 'gnd'|node 'b' of network 1 is read by no multiplexer"),
    "mux without enable": ("gen2-clln", _del(("muxes", "gates_free_1", "enable")),
                           "muxes.gates_free_1.enable", r"each need an enable pin"),
    "bit beyond expander": ("gen1-digipot", _set(("edges", 2, "cs"), ["cs.2", "cs.40"]),
                            "edges[2].cs", r"bits 0-31, not 40"),
    "gpio beyond chip": ("gen1-digipot", _set(("expanders", "cs", "latch"), 31),
                         "expanders.cs.latch", r"GPIO 31 does not exist on the rp2040"),
    "spi pin not on bus": ("gen1-digipot", _set(("spi", "spi0", "sck"), 5), "spi.spi0.sck",
                           r"SPI0 SCK can be GPIO 2, 6, 18, 22"),
    "current over rating": ("gen1-digipot", _set(("limits", "max_edge_amps"), 0.002),
                            "limits.max_edge_amps", r"above part 'X9C303'.*rating of 1 mA"),
    "worst case over limit": ("gen1-digipot", _set(("limits", "tap_range"), [20, 99]), "edges[0]",
                              r"worst case.*raise limits.tap_range\[0\] to >= 40"),
    "no tap range": ("gen1-digipot", _del(("limits", "tap_range")), "edges[0]",
                     r"raise limits.tap_range\[0\] to >= 40 or lower max_node_volts"),
    "tap range beyond part": ("gen1-digipot", _set(("limits", "tap_range"), [40, 100]),
                              "limits.tap_range", r"0 <= lo < hi <= 99"),
    "gate beyond rail": ("gen2-clln", _set(("rails", "gate"), 5.0), "limits.gate_range",
                         r"beyond the 'gate' rail \(5 V\)"),
    "gate beyond part": ("gen2-clln", _set(("parts", "nmos", "vg_max"), 5.0), "limits.gate_range",
                         r"gate rating of 5 V"),
    "edge current gen2": ("gen2-clln", _set(("limits", "max_edge_amps"), 0.001), "edges[0]",
                          r"2.03 mA in the worst case"),
    "gain too high": ("gen2-clln", _set(("muxes", "nodes_free", "gain"), 8.0),
                      "muxes.nodes_free.gain", r"0.45 V x gain 8 = 3.6 V drives the ADC beyond its "
                      r"3.3 V reference; use gain <= 7.333"),
    "gate gain too high": ("gen2-clln", _set(("muxes", "gates_clamped_0", "gain"), 0.7),
                           "muxes.gates_clamped_0.gain", r"gate_range\[1\] 5.2 V x gain 0.7"),
    "adc vref over chip": ("gen2-clln", _set(("adc", "vref"), 5.0), "adc.vref",
                           r"at most 3.3 V"),
    "wrong type string": ("gen2-clln", _set(("board", "networks"), 2), "board.networks",
                          r"must be a string, not an integer \(2\)"),
    "wrong type number": ("gen2-clln", _set(("limits", "max_node_volts"), "0.45"),
                          "limits.max_node_volts", r"must be a number, not a string"),
    "wrong type array": ("gen2-clln", _set(("nodes", "names"), "n00"), "nodes.names",
                         r"must be an array"),
    "bool for int": ("gen2-clln", _set(("adc", "bits"), True), "adc.bits", r"must be an integer"),
    "negative": ("gen2-clln", _set(("parts", "nmos", "beta"), -1.0), "parts.nmos.beta",
                 r"must be > 0"),
    "eta out of range": ("gen2-clln", _set(("learning", "eta"), 1.5), "learning.eta",
                         r"must be <= 1"),
    "rule vs kind": ("gen2-clln", _set(("learning", "rule"), "sign"), "learning.rule",
                     r"rule 'sign' moves digipot edges.*use rule = 'gate'"),
    "unknown part": ("gen1-digipot", _set(("edges", 4, "part"), "X9C30"), "edges[4].part",
                     r"no \[parts.X9C30\].*did you mean 'X9C303'"),
    "kind vs part": ("gen1-digipot", _set(("edges", 4, "kind"), "transistor"), "edges[4].part",
                     r"is a digipot, but this edge's kind is 'transistor'"),
    "twin needs two": ("gen1-digipot", _set(("edges", 0, "cs"), "cs.0"), "edges[0].cs",
                       r"twin board: give one line per network"),
    "bad line": ("gen1-digipot", _set(("edges", 0, "cs"), ["cs0", "cs.16"]), "edges[0].cs[0]",
                 r"is not a line"),
    "line to unknown device": ("gen1-digipot", _set(("edges", 0, "cs"), ["cz.0", "cs.16"]),
                               "edges[0].cs", r"names no expander.*did you mean 'cs'"),
    "port on ground": ("gen1-digipot", _set(("outputs", 0, "node"), "gnd"), "outputs[0]",
                       r"'gnd' is ground"),
    "port node twice": ("gen1-digipot", _set(("outputs", 0, "node"), "x1"), "outputs[0]",
                        r"'x1' is already used by inputs\[0\]"),
    "twin clamp list": ("gen1-digipot", _set(("outputs", 0, "clamp"), ["GP10", "GP12"]),
                        "outputs[0].clamp", r"clamp drives the clamped network only"),
    "mcu": ("gen1-digipot", _set(("board", "microcontroller"), "esp32"), "board.microcontroller",
            r"not supported yet.*supported: rp2040"),
    "format": ("gen1-digipot", _set(("format",), 2), "format", r"format 2 is not supported"),
    "single needs switch": ("single", _del(("outputs", 0, "switch")), "outputs[0].switch",
                            r"analog switch"),
    "pair needs second driver": ("single", _del(("outputs", 0, "clamp_b")), "outputs[0]",
                                 r"needs its own driver: set clamp_b"),
    "spi wiper twice": ("single", _set(("edges", 3, "wiper"), 0), "edges[3].wiper",
                        r"already used as wiper of e2"),
    "i2c dac address": ("single", _del(("dacs", "d", "address")), "dacs.d.address",
                        r"7-bit address"),
    "internal adc keys": ("gen1-digipot", _set(("adc", "bus"), "spi0"), "adc.bus",
                          r"an internal ADC has no 'bus'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_mistake_gives_clear_error(case):
    profile, mutate, field, message = CASES[case]
    data = single_data() if profile == "single" else profile_data(profile)
    mutate(data)
    with pytest.raises(InputError) as info:
        board_from_data(data, SOURCE)
    err = info.value
    text = str(err)
    assert text.startswith(f"{SOURCE}: "), text
    assert err.source == SOURCE
    assert err.field is not None and err.field.startswith(field), (err.field, text)
    assert re.search(message, text), text


def test_toml_syntax_error_reports_line_and_column(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text('[board]\nname = "x"\nnetworks = twin\n')
    with pytest.raises(InputError) as info:
        load_board(path)
    text = str(info.value)
    assert text.startswith(str(path)) and "line 3" in text and "column" in text


def test_unknown_profile_lists_shipped_ones():
    with pytest.raises(InputError, match=r"did you mean 'gen2-clln'.*shipped profiles: .*gen1-digipot"):
        load_board("gen2-cln")


def test_unreadable_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(InputError, match="UTF-8"):
        load_board(path)


# ------------------------------------------------------------------ fuzzing

_scalars = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True),
                     st.text(max_size=8), st.booleans())
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=6)


def _paths(obj, path=()):
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*path, i))


@st.composite
def _mutated(draw):
    name = draw(st.sampled_from(["gen1-digipot", "gen2-clln", "single"]))
    data = single_data() if name == "single" else profile_data(name)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(data) if p]
        path = draw(st.sampled_from(paths))
        parent = data
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_values)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_fuzzed_descriptions_raise_only_input_error(data):
    try:
        board_from_data(data, SOURCE)
    except InputError as exc:
        assert str(exc).startswith(SOURCE)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_fuzzed_text_raises_only_input_error(text):
    try:
        parse_board(text, SOURCE)
    except InputError as exc:
        assert str(exc).startswith(SOURCE)
