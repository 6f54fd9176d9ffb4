"""Safety as a property: random host command sequences never drive the emulated physics
beyond the board description's limits.

A :class:`LimitMonitor` checks the true physical state (node volts, edge currents, gate
volts) after every pass of the firmware's main loop — so after every actuation the
firmware makes, not only after each host command. :func:`random_commands` throws valid,
borderline and invalid requests at the board; the board must refuse what is unsafe
(an error reply, nothing moves) and the monitor must never see a violation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from learnboard.boards import Board

# Slack on the limits for what the physics adds beyond the firmware's control: the
# node-voltage limit is enforced on DAC and ADC codes, each good to a few LSB; the
# current bound holds for device spreads up to 3 sigma. Gates get none: the firmware
# plans every pulse against the gate limit. (Leakage may take an idle gate below the
# range's lower end; that is not an actuation, so only the upper end is checked.)
VOLTS_SLACK = 0.01
AMPS_SLACK_REL = 0.02
GATE_SLACK = 0.0


@dataclass
class Violation:
    what: str  # "node", "edge current", "gate"
    net: int
    index: int
    value: float
    limit: float


@dataclass
class LimitMonitor:
    """Checks every network's true state against ``board.limits``; keeps the worst
    margins (fraction of each limit reached) and every violation."""

    board: Board
    checks: int = 0
    worst_node: float = 0.0  # max |V| / max_node_volts
    worst_current: float = 0.0  # max |I| / max_edge_amps
    worst_gate: float = 0.0  # max gate / gate_range[1]
    violations: list[Violation] = field(default_factory=list)

    def __call__(self, world) -> None:
        lim = self.board.limits
        self.checks += 1
        transistor = np.array([e.kind == "transistor" for e in self.board.edges])
        for net in range(self.board.n_nets):
            st = world.true_state(net)
            v = np.abs(st.node_voltages)
            i = np.abs(st.edge_currents)
            self.worst_node = max(self.worst_node, float(v.max()) / lim.max_node_volts)
            self.worst_current = max(self.worst_current, float(i.max()) / lim.max_edge_amps)
            for n in np.flatnonzero(v > lim.max_node_volts + VOLTS_SLACK):
                self.violations.append(Violation("node", net, int(n), float(v[n]), lim.max_node_volts))
            for e in np.flatnonzero(i > lim.max_edge_amps * (1 + AMPS_SLACK_REL)):
                self.violations.append(Violation("edge current", net, int(e), float(i[e]), lim.max_edge_amps))
            if lim.gate_range is not None and transistor.any():
                g = st.edge_state[transistor]
                self.worst_gate = max(self.worst_gate, float(g.max()) / lim.gate_range[1])
                idx = np.flatnonzero(transistor)
                for e in idx[g > lim.gate_range[1] + GATE_SLACK]:
                    self.violations.append(Violation("gate", net, int(e), float(st.edge_state[e]),
                                                     lim.gate_range[1]))


@dataclass
class CommandLog:
    sent: int = 0
    refused: int = 0  # BoardError replies (the board said no)
    trained: int = 0  # train requests accepted (and run to their end)
    by_command: dict = field(default_factory=dict)


def _edge_values(rng: random.Random, board: Board, current: list[float]) -> list[float]:
    lim = board.limits
    out = []
    for e, k in zip(board.edges, current, strict=True):
        r = rng.random()
        if e.kind == "transistor" and lim.gate_range is not None:
            lo, hi = lim.gate_range
            out.append(rng.uniform(lo - 2, hi + 4) if r < 0.3 else rng.uniform(lo, hi) if r < 0.7 else k)
        elif lim.tap_range is not None:
            lo, hi = lim.tap_range
            out.append(float(rng.randint(lo - 20, hi + 20)) if r < 0.3 else
                       float(rng.randint(lo, hi)) if r < 0.7 else k)
        else:
            out.append(k)
    return out


def _inputs(rng: random.Random, n: int, vn: float) -> list[float]:
    if rng.random() < 0.25:  # out of range, including negative and absurd values
        return [rng.choice([-vn, 1.5 * vn, 10.0, -3.0, vn * 1.001]) for _ in range(n)]
    return [rng.uniform(0, vn) for _ in range(n)]


COMMANDS = ("write_edges", "write_edges", "upload_examples", "train", "infer", "infer",
            "set_params", "self_test", "park", "measure", "stop", "read_edges")


def random_commands(link, board: Board, *, n: int, seed: int, log: CommandLog | None = None,
                    step_timeout: float = 10.0, exclude: tuple[str, ...] = ()) -> CommandLog:
    """Send ``n`` random requests (none of ``exclude``); every one must get a result or a
    BoardError."""
    from learnboard.host.link import BoardError

    log = log or CommandLog()
    rng = random.Random(seed)
    n_in = sum(1 for p in board.inputs if p.fixed is None)
    n_out = len(board.outputs)
    vn = board.limits.max_node_volts
    # start from valid examples, so that train requests run steps (the actuations under test)
    link.request("upload_examples", {"start": 0, "clear": True,
                                     "x": [[rng.uniform(0, vn) for _ in range(n_in)] for _ in range(4)],
                                     "y": [[rng.uniform(0, vn) for _ in range(n_out)] for _ in range(4)]})
    for i in range(n):
        cmd = "train" if i % 8 == 7 else rng.choice([c for c in COMMANDS if c not in exclude])
        args: dict = {}
        if cmd == "write_edges":
            k = link.call("read_edges")["k"]
            args = {"start": 0, "k": _edge_values(rng, board, k)}
        elif cmd == "upload_examples":
            m = rng.randint(1, 6)
            args = {"start": 0, "clear": True,
                    "x": [_inputs(rng, n_in, vn) for _ in range(m)],
                    "y": [_inputs(rng, n_out, vn) for _ in range(m)]}
        elif cmd == "train":
            args = {"steps": rng.randint(1, 4), "every": rng.randint(1, 3)}
        elif cmd == "infer":
            args = {"x": _inputs(rng, n_in, vn)}
        elif cmd == "set_params":
            args = rng.choice([{"alpha": rng.uniform(-1, 2)}, {"eta": rng.uniform(0, 50)},
                               {"lam": rng.uniform(-0.5, 1.5)}, {"pulse_us": rng.randint(0, 100000)},
                               {"mode": rng.choice(["cl", "gen1", "desync", "bogus"])},
                               {"oversample": rng.randint(0, 64)}])
        log.sent += 1
        log.by_command[cmd] = log.by_command.get(cmd, 0) + 1
        try:
            link.request(cmd, args)
        except BoardError:
            log.refused += 1
            continue
        if cmd == "train":  # let the steps run (the actuations under test), then stop
            log.trained += 1
            while (ev := link.next_event(timeout=step_timeout)) is not None and ev[0] != "done":
                pass
            link.request("stop")
    return log
