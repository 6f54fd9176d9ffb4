"""Test-only hardware for the firmware app under CPython: a stand-in for ``lbfw.hal.Hal``
at its seam (one level above the pins, see hal.py), with the real physics behind it
(``learnboard.boards.circuit_for_board`` + ``learnboard.physics.solve``)."""

from __future__ import annotations

import numpy as np

from learnboard.boards import circuit_for_board
from learnboard.physics.solver import Fix, solve


class PhysicsHal:
    """Digipot and pulse-gate boards: taps move by ``move`` (gates charge toward the
    rail through RC for the pulse's µs); node codes come from solving the network with
    every driven line's node held at its volts."""

    def __init__(self, board, body):
        self.board = board
        self.body = body
        self.nets = body["nets"]
        self.keys: list[tuple[int, int]] = []
        self.node_of: dict[tuple[int, int], tuple[int, int]] = {}  # line -> (net, node)
        for p in body["ins"] + body["outs"]:
            for net, line in enumerate(p["d"]):
                if line is not None:
                    self.node_of[tuple(line)] = (net, p["a"])
        self.volts: dict[int, float] = {}
        self.taps = np.zeros(len(body["edges"]))
        adc = body["adc"]
        self.adc_max = (1 << adc["bits"]) - 1
        self.vpc = adc["vref"] / self.adc_max / body["mux"][0]["g"]
        self.moves = 0
        self.os = 1
        self.out_settle_us = 0
        self.gate = np.array([e["k"] == "t" for e in body["edges"]])
        if self.gate.any():
            part = body["parts"][next(e["p"] for e in body["edges"] if e["k"] == "t")]
            self.rc_us = part["cg"] * part["rg"] * 1e6
            self.rail = body["gates"]["rv"]
            gmux = body["mux"][body["grd"][0][0][0]]
            self.gate_vpc = adc["vref"] / self.adc_max / gmux["g"]

    def vline(self, line):
        key = (line[0], line[1])
        if key not in self.keys:
            self.keys.append(key)
        return self.keys.index(key)

    def volts_per_code(self, line):
        p = self.body["pwm"] if line[0] < 0 else self.body["dacs"][line[0]]
        return p["vref"] * p["gain"] / (1 << p["bits"])

    def max_code(self, line):
        p = self.body["pwm"] if line[0] < 0 else self.body["dacs"][line[0]]
        return (1 << p["bits"]) - 1

    def drive(self, i, code):
        self.volts[i] = code * self.volts_per_code(self.keys[i])

    def settle(self):
        pass

    def switch(self, on):
        pass

    def voltages(self, net):
        fixes = [Fix(self.node_of[self.keys[i]][1], v) for i, v in self.volts.items()
                 if self.node_of[self.keys[i]][0] == net]
        circuit = circuit_for_board(self.board, self.taps, twin=net)
        return solve(circuit, fixes).node_voltages

    def read_nodes(self, net, out):
        codes = np.clip(np.rint(self.voltages(net) / self.vpc), 0, self.adc_max)
        for k, c in enumerate(codes):
            out[k] = int(c)

    def read_gates(self, pos, net=0, mask=None):
        for e in np.flatnonzero(self.gate):
            if mask is None or mask[e] == 2:
                pos[e] = self.read_gate(net, e)

    def read_gate(self, net, e):
        return int(round(self.taps[e] / self.gate_vpc)) if self.gate[e] else -1

    def move(self, e, q):
        self.moves += 1
        if self.gate[e]:
            rail = self.rail if q > 0 else 0.0
            self.taps[e] = rail + (self.taps[e] - rail) * np.exp(-abs(q) / self.rc_us)
        else:
            self.taps[e] = min(self.board_taps(e) - 1, max(0, self.taps[e] + q))

    def board_taps(self, e):
        return self.body["parts"][self.body["edges"][e]["p"]]["nt"]

    def park(self):
        for i in list(self.volts):
            self.volts[i] = 0.0
