"""Safety as a property: random host commands never drive the emulated physics beyond
the board description's limits, on either side of any bound.

A :class:`LimitMonitor` checks the true physical state against every bound of the
description's ``[limits]``: all of it after every pass of the firmware's main loop, and
the edges and drivers after every single actuation inside a pass (each pin, SPI, I2C
or PWM write that changes the circuit), so that a pulse pair or a put-back within one
command is seen at its extremes — a gate is furthest along when its switch turns off:

* node volts within ``0 .. max_node_volts``;
* edge currents within ``max_edge_amps`` (either direction);
* transistor gates within ``gate_range`` (low and high);
* digipot taps within ``tap_range`` (low and high);
* the voltage outputs (DAC / PWM drivers of inputs, biases and clamps) within
  ``0 .. max_node_volts``: a driver beyond it would push its node beyond the node limit.

:func:`random_commands` throws valid, borderline and invalid requests at the board; the
board must refuse what is unsafe (an error reply, nothing moves) and the monitor must
never see a violation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from learnboard.boards import Board

# Slack on a bound only where the physics adds what no firmware check can see:
# * edge currents: the firmware bounds them from the description's part values with a
#   3-sigma device spread; the emulator draws spreads from a normal law, so a rare edge
#   lies beyond 3 sigma (2 % covers 4 sigma of the 5 % beta spread at the top gate).
# * node volts: the DC solver's tolerance (1e-10 of a volts scale of a few V) leaves a
#   node at 0 V as a -1e-321 V residue; 1 nV ignores that numerical noise only.
# Every other bound gets none: node volts follow from the drivers (a passive network
# stays between ground and its highest driver), drivers are set in whole codes the
# firmware checks, gates are planned against the range with the pulse overhead and the
# twin networks' read-backs, idle gates are topped up before they leak out of the range,
# and taps are counted from a homed wiper.
VOLTS_SLACK = 1e-9
AMPS_SLACK_REL = 0.02
GATE_SLACK = 0.0
TAP_SLACK = 0

# Violations kept with their details (all are counted): enough to see a pattern.
KEEP = 200


@dataclass
class Violation:
    what: str  # a bound's name, e.g. "gate low"
    net: int
    index: int  # node, edge or driven node
    value: float
    limit: float


@dataclass
class Bound:
    """One side of one limit: ``value <= limit`` (``upper``) or ``value >= limit``."""

    what: str
    limit: float
    upper: bool
    unit: str
    slack: float = 0.0
    worst: float | None = None  # the value closest to (or furthest beyond) the limit
    checked: int = 0
    violations: int = 0

    @property
    def margin(self) -> float | None:
        """Distance from the worst value to the limit (negative: beyond it)."""
        if self.worst is None:
            return None
        return self.limit - self.worst if self.upper else self.worst - self.limit

    def check(self, values: np.ndarray, net: int, index: np.ndarray, out: list[Violation]) -> int:
        if values.size == 0:
            return 0
        self.checked += int(values.size)
        w = float(values.max() if self.upper else values.min())
        if self.worst is None or (w > self.worst if self.upper else w < self.worst):
            self.worst = w
        bad = values > self.limit + self.slack if self.upper else values < self.limit - self.slack
        n = int(bad.sum())
        if n:
            self.violations += n
            for k in np.flatnonzero(bad):
                if len(out) < KEEP:
                    out.append(Violation(self.what, net, int(index[k]), float(values[k]), self.limit))
        return n


def board_bounds(board: Board) -> list[Bound]:
    """Every bound the description's ``[limits]`` sets, both sides of each range."""
    lim = board.limits
    vn = lim.max_node_volts
    out = [Bound("node V low", 0.0, False, "V", VOLTS_SLACK),
           Bound("node V high", vn, True, "V", VOLTS_SLACK),
           Bound("edge current", lim.max_edge_amps, True, "A", lim.max_edge_amps * AMPS_SLACK_REL),
           Bound("driver V low", 0.0, False, "V", VOLTS_SLACK),
           Bound("driver V high", vn, True, "V", VOLTS_SLACK)]
    if lim.gate_range is not None and board.has_gates:
        out += [Bound("gate low", lim.gate_range[0], False, "V", GATE_SLACK),
                Bound("gate high", lim.gate_range[1], True, "V", GATE_SLACK)]
    if lim.tap_range is not None and any(e.kind == "digipot" for e in board.edges):
        out += [Bound("tap low", lim.tap_range[0], False, "taps", TAP_SLACK),
                Bound("tap high", lim.tap_range[1], True, "taps", TAP_SLACK)]
    return out


@dataclass
class LimitMonitor:
    """Checks every network's true state against every bound of ``board.limits``; keeps
    each bound's worst value and margin, and the violations."""

    board: Board
    checks: int = 0
    worst_node: float = 0.0  # max |V| / max_node_volts
    worst_current: float = 0.0  # max |I| / max_edge_amps
    worst_gate: float = 0.0  # max gate / gate_range[1]
    bounds: list[Bound] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    n_violations: int = 0  # all of them (``violations`` keeps the first KEEP)
    every_actuation: bool = True  # also check edges and drivers inside a loop pass
    actuation_checks: int = 0
    # states beyond a bound while a board powers up (a digipot wiper back at its stored
    # tap, a discharged gate) until its first loop pass: the parts', not the firmware's
    power_up_states: int = 0
    _powering_up: bool = False

    def __post_init__(self) -> None:
        if not self.bounds:
            self.bounds = board_bounds(self.board)
        self._by = {b.what: b for b in self.bounds}
        kinds = [e.kind for e in self.board.edges]
        self._gates = np.flatnonzero([k == "transistor" for k in kinds])
        self._pots = np.flatnonzero([k == "digipot" for k in kinds])

    def power_up(self) -> None:
        """The board is about to power up: its parts start where power-up leaves them,
        possibly beyond a bound, and the firmware's boot brings them in. What the
        actuation checks see until the first loop pass counts as ``power_up_states``."""
        self._powering_up = True

    def bound(self, what: str) -> Bound | None:
        return self._by.get(what)

    def _check(self, what: str, values, net: int, index) -> None:
        b = self._by.get(what)
        if b is None:
            return
        if self._powering_up:
            v = np.asarray(values, dtype=float)
            self.power_up_states += int(np.sum(v > b.limit + b.slack if b.upper else v < b.limit - b.slack))
            return
        self.n_violations += b.check(np.asarray(values, dtype=float), net, np.asarray(index),
                                     self.violations)

    def watch(self, world) -> None:
        """Check ``world``'s edges and drivers after each of its actuation entry points
        (``set_pin``, ``spi_write``, ``i2c_write``, ``set_pwm``) that changed the circuit
        (the world's generation counter moved; mux selects do not)."""
        if getattr(world, "_limit_monitor", None) is self:
            return
        world._limit_monitor = self
        last = [getattr(world, "_gen", 0)]

        def wrap(fn):
            def checked(*args, **kw):
                r = fn(*args, **kw)
                if world._gen != last[0]:
                    last[0] = world._gen
                    self.check_edges(world)
                return r
            return checked

        for name in ("set_pin", "spi_write", "i2c_write", "set_pwm"):
            if hasattr(world, name):
                setattr(world, name, wrap(getattr(world, name)))

    def check_edges(self, world) -> None:
        """Gates, taps and driver volts of every network now (no circuit solve)."""
        self.actuation_checks += 1
        for net in range(self.board.n_nets):
            self._edges(world, net, np.asarray(world.edge_state(net), dtype=float))

    def _edges(self, world, net: int, s: np.ndarray) -> None:
        lim = self.board.limits
        driven = getattr(world, "driven", None)
        if driven is not None:
            d = driven(net)
            keys = np.array(sorted(d), dtype=int)
            dv = np.array([d[k] for k in keys], dtype=float)
            self._check("driver V low", dv, net, keys)
            self._check("driver V high", dv, net, keys)
        if self._gates.size and "gate high" in self._by:
            g = s[self._gates]
            self.worst_gate = max(self.worst_gate, float(g.max()) / lim.gate_range[1])
            self._check("gate low", g, net, self._gates)
            self._check("gate high", g, net, self._gates)
        if self._pots.size and "tap high" in self._by:
            t = s[self._pots]
            self._check("tap low", t, net, self._pots)
            self._check("tap high", t, net, self._pots)

    def __call__(self, world) -> None:
        lim = self.board.limits
        self.checks += 1
        self._powering_up = False
        if self.every_actuation and hasattr(world, "_gen"):
            self.watch(world)
        for net in range(self.board.n_nets):
            st = world.true_state(net)
            v = np.asarray(st.node_voltages, dtype=float)
            i = np.abs(np.asarray(st.edge_currents, dtype=float))
            nodes = np.arange(v.size)
            self.worst_node = max(self.worst_node, float(np.abs(v).max()) / lim.max_node_volts)
            self.worst_current = max(self.worst_current, float(i.max()) / lim.max_edge_amps)
            self._check("node V low", v, net, nodes)
            self._check("node V high", v, net, nodes)
            self._check("edge current", i, net, np.arange(i.size))
            self._edges(world, net, np.asarray(st.edge_state, dtype=float))

    def table(self) -> list[str]:
        """Markdown rows: bound, limit, worst value, worst margin, violations."""
        rows = []
        for b in self.bounds:
            # (+ 0.0: the solver's -1e-321 V at a grounded node prints as 0.0000, not -0.0000)
            fmt = (lambda x: f"{x:.3g}") if b.unit == "A" else (
                (lambda x: f"{x:.0f}") if b.unit == "taps" else (lambda x: f"{round(x, 4) + 0.0:.4f}"))
            worst = "-" if b.worst is None else fmt(b.worst)
            margin = "-" if b.margin is None else fmt(b.margin)
            rows.append(f"{b.what} | {'<=' if b.upper else '>='} {fmt(b.limit)} {b.unit} | {worst} "
                        f"| {margin} | {b.violations}")
        return rows


@dataclass
class CommandLog:
    sent: int = 0
    refused: int = 0  # the board said no: BoardError replies other than INTERNAL
    internal: int = 0  # INTERNAL replies: an exception in a handler (a firmware bug)
    trained: int = 0  # train requests accepted (and run to their end)
    faults: int = 0  # fault events (an exception inside a learning step)
    by_command: dict = field(default_factory=dict)
    by_code: dict = field(default_factory=dict)  # ErrorCode name -> replies


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
    BoardError (counted by code: a refusal, or ``internal`` for a firmware bug)."""
    from learnboard.host.link import BoardError
    from learnboard.host.messages import ErrorCode

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
            args = rng.choice([{"eta": rng.uniform(-1, 2)}, {"alpha": rng.uniform(0, 50)},
                               {"lam": rng.uniform(-0.5, 1.5)}, {"pulse_us": rng.randint(0, 100000)},
                               {"mode": rng.choice(["cl", "gen1", "desync", "bogus"])},
                               {"oversample": rng.randint(0, 64)}])
        log.sent += 1
        log.by_command[cmd] = log.by_command.get(cmd, 0) + 1
        try:
            link.request(cmd, args)
        except BoardError as exc:
            name = ErrorCode(exc.code).name if exc.code in set(ErrorCode) else f"code {exc.code}"
            log.by_code[name] = log.by_code.get(name, 0) + 1
            if exc.code == ErrorCode.INTERNAL:
                log.internal += 1
            else:
                log.refused += 1
            continue
        if cmd == "train":  # let the steps run (the actuations under test), then stop
            log.trained += 1
            while (ev := link.next_event(timeout=step_timeout)) is not None and ev[0] != "done":
                log.faults += ev[0] == "fault"
            link.request("stop")
    return log


class _CheckedLink:
    """A host link that runs a full :class:`LimitMonitor` check after every request
    (the VM's own loop passes are out of reach; its actuations are watched)."""

    def __init__(self, link, check) -> None:
        self.link = link
        self.check = check

    def request(self, cmd, args=None, **kw):
        try:
            return self.link.request(cmd, args, **kw)
        finally:
            self.check()

    def call(self, cmd, **args):
        try:
            return self.link.call(cmd, **args)
        finally:
            self.check()

    def next_event(self, timeout=None):
        ev = self.link.next_event(timeout=timeout)
        self.check()
        return ev


def random_commands_in_vm(board: Board, monitor: LimitMonitor, flash_dir, *, n: int, seed: int,
                          executable: str | None = None, exclude: tuple[str, ...] = (),
                          boot_timeout: float = 60.0) -> CommandLog:
    """:func:`random_commands` against the unchanged firmware in a MicroPython VM
    (``executable``: any unix-port binary, e.g. a 32-bit build; default the one beside
    Python). ``monitor`` watches every actuation the VM makes on the world and checks
    the whole state after every request and event."""
    import time
    from pathlib import Path

    from learnboard.emulator.vm_board import VMBoard
    from learnboard.firmware import FIRMWARE_DIR
    from learnboard.host.link import Link

    from learnboard.boards import compile_board

    flash = Path(flash_dir)
    files = [FIRMWARE_DIR / "main.py", FIRMWARE_DIR / "boot.py", *sorted((FIRMWARE_DIR / "lbfw").glob("*.py"))]
    for f in files:
        dest = flash / ("lbfw" if f.parent.name == "lbfw" else "") / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    (flash / "board.json").write_bytes(compile_board(board).to_bytes())
    with VMBoard(flash, board=board, seed=seed, executable=executable) as vb:
        with vb.lock:
            monitor.watch(vb.world)

        def check() -> None:
            with vb.lock:
                monitor(vb.world)

        deadline = time.monotonic() + boot_timeout
        with Link.open(vb.port, timeout=2.0) as link:
            # no request before the firmware's boot event: while a slow VM still sits
            # in its REPL, a frame's bytes are keystrokes (0x04 soft-resets it)
            while (ev := link.next_event(timeout=max(0.1, deadline - time.monotonic()))) is not None \
                    and ev[0] != "boot":
                pass
            while True:
                try:
                    link.hello()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            return random_commands(_CheckedLink(link, check), board, n=n, seed=seed, exclude=exclude)
