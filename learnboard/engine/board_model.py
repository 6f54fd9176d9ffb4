"""What a board and its firmware do to the learning, for :class:`~learnboard.engine.board_engine.BoardEngine`'s ``model="board"``.

The constants and draws the engine needs to be a twin of the emulated board as
``learnboard train`` drives it: the converters' steps (:class:`BoardIO`), the range the
firmware plans gate pulses in (:func:`planning_range`), the emulated gate capacitors'
switch-off lag and leak of a seed (:func:`gate_spread`), and the task and learning-rate
schedule ``learnboard train`` uses by default (:func:`board_task`,
:func:`board_session_defaults`). Each says where on the board or in the firmware its
numbers come from; tests compare them with the firmware's and the emulator's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from learnboard.boards.schema import DacGateDriver, TransistorPart
from learnboard.tasks import Dataset

# The firmware's own time to switch a gate line off, beyond shifting the expander chain
# out (measured at boot by ``hal.pulse_overhead_us``: 25 us on the emulated gen2-clln, of
# which 12.8 us are its 128-bit chain at 10 MHz).
FIRMWARE_SWITCH_US = 12.2
# The firmware's time per oversampled ADC sample of a node scan (measured on the emulated
# gen2-clln: 74.6 ms per step of 20 examples, each two scans of 15 nodes x 16 samples);
# sets how long the gates leak per step.
ADC_SAMPLE_US = 7.8
SKEW_US = 0.2  # std of an emulated gate switch's turn-off lag (us), drawn once per device
FIRMWARE_KEEP_MS = 1000  # the firmware's KEEP_MS: it puts leaked gates back this often
FIRMWARE_KEEP_LIFT = 4  # read-back codes into the range a kept gate is put (KEEP_LIFT)


def planning_range(board, io: BoardIO) -> tuple[float, float]:
    """The gate range (V) the firmware plans pulses in: the description's hard range in
    read-back codes (``safety.Limits.gate_bounds``), moved inwards by the margins of
    ``gates.PulseGates.margins`` (a pulse's switch-off, a faster capacitor, read-back
    noise, leakage), in volts of the read-back codes."""
    from learnboard.firmware.lbfw.safety import NOISE, RC_TOL

    part = next(p for p in board.parts.values() if isinstance(p, TransistorPart))
    lim = board.limits
    vpc = io.gate_vpc
    g_hi = min(part.vg_max, part.vt - 3.0 * part.vt_spread +
               lim.max_edge_amps / (part.beta * (1.0 + 3.0 * part.beta_spread) * lim.max_node_volts))
    g_lo = 0.0
    if lim.gate_range is not None:
        g_lo, g_hi = max(g_lo, lim.gate_range[0]), min(g_hi, lim.gate_range[1])
    lo, hi = math.ceil(g_lo / vpc), int(g_hi / vpc)
    if io.dac_gates:
        hi = min(hi, io.gate_max)  # and no DAC code beyond full scale
    if board.gates is None or board.gates.driver != "pulse":
        return lo * vpc, hi * vpc
    g = min(16383, int(io.rail / vpc))
    rcf = io.rc_us * (1.0 - RC_TOL)
    slack = io.pulse_overhead_us + 2
    eps = RC_TOL + (1.0 - RC_TOL) * math.log(1.0 - RC_TOL)
    xs = (1.0 - RC_TOL) * math.log(1.0 / (1.0 - RC_TOL))
    leak = 2.0 * part.gate_leak * FIRMWARE_KEEP_MS / 1000.0 / vpc
    up = (g - hi) * slack / rcf + eps * (g - lo) + NOISE
    down = lo * slack / rcf + eps * lo / (1.0 - xs) + NOISE + leak
    p_hi, p_lo = hi - math.ceil(up) - 1, lo + math.ceil(down) + 1
    if p_lo > p_hi:
        p_lo = p_hi = (lo + hi) // 2
    return p_lo * vpc, p_hi * vpc


def gate_spread(board, seed: int, skew_us: float = SKEW_US) -> tuple[np.ndarray, np.ndarray]:
    """(idle leak in V/s, switch-off lag in us), (networks, edges), of the gate capacitors
    of the emulated board of ``seed``: the same draws, in the same order, as the emulator's
    world makes them (a test checks that they agree). Zero for edges without a gate."""
    rng = np.random.default_rng([int(seed), 5])
    leak = np.zeros((board.n_nets, board.n_edges))
    skew = np.zeros((board.n_nets, board.n_edges))
    for net in range(board.n_nets):
        for i, e in enumerate(board.edges):
            if e.kind != "transistor":
                continue  # resistors and digipots draw nothing
            leak[net, i] = board.parts[e.part].gate_leak * rng.uniform(1 / 3, 5 / 3)
            skew[net, i] = skew_us * rng.standard_normal()
    return leak, skew


@dataclass(frozen=True)
class BoardIO:
    """How the firmware sees volts on ``board`` (from its description).

    Attributes:
        read_lsb: node volts of one ADC step (the output node's front end).
        node_vpc: node volts the firmware takes one code for (``vref / (2**bits - 1) / gain``).
        adc_max: highest ADC code.
        in_vpc, in_max: input driver volts per code and highest code (below the node limit).
        clamp_vpc, clamp_max: the same for each output's clamp driver.
        gate_lsb, gate_vpc: gate read-back volts per ADC step / per firmware code.
        rc_us: gate RC (us); rail: the charge rail (V).
        pulse_overhead_us: how much longer than planned a pulse conducts.
    """

    read_lsb: float
    node_vpc: float
    adc_max: int
    in_vpc: float
    in_max: int
    clamp_vpc: np.ndarray
    clamp_max: np.ndarray
    gate_lsb: float
    gate_vpc: float
    rc_us: float
    rail: float
    pulse_overhead_us: float
    n_read: int = 0
    oversample: int = 1
    dac_gates: bool = False  # gates held by DAC channels (their state a DAC code)
    gate_max: int = 0  # the highest gate DAC code

    def step_seconds(self, n_examples: int) -> float:
        """A learning step's time (s) on the board: two node scans per example."""
        return n_examples * 2 * self.n_read * self.oversample * ADC_SAMPLE_US * 1e-6

    @classmethod
    def of(cls, board) -> BoardIO:
        adc = board.adc
        adc_max = (1 << adc.bits) - 1
        vn = board.limits.max_node_volts

        def mux_gain(net: int, node: int | None = None, edge: int | None = None) -> float:
            for m in board.muxes.values():
                if m.net == net and ((node is not None and node in m.nodes) or
                                     (edge is not None and edge in m.gates)):
                    return m.gain
            return 1.0

        def line(ln) -> tuple[float, int]:
            d = board.dacs.get(ln.device) if ln is not None else None
            if d is not None:
                vpc, top = d.vref * d.gain / (1 << d.bits), (1 << d.bits) - 1
            elif board.pwm is not None:
                p = board.pwm
                vpc, top = p.vref * p.gain / (1 << p.bits), (1 << p.bits) - 1
            else:
                return vn / adc_max, adc_max
            return vpc, min(top, int(vn / vpc))

        g_out = mux_gain(0, node=board.outputs[0].a)
        ins = [p for p in board.inputs if p.fixed is None]
        in_vpc, in_max = line(ins[-1].drive[0] if ins else None)
        clamps = [line(next((d for d in reversed(p.drive) if d is not None), None))
                  for p in board.outputs]
        gates = [i for i, e in enumerate(board.edges) if e.kind == "transistor"]
        g_gate = mux_gain(0, edge=gates[0]) if gates else 1.0
        part = next((p for p in board.parts.values() if isinstance(p, TransistorPart)), None)
        rc = part.gate_c * part.gate_r * 1e6 if part is not None else 2200.0
        rail = board.rails.get(board.gates.charge_rail, 8.0) if board.gates else 8.0
        over = 0.0
        gate_lsb, gate_vpc = adc.vref / (1 << adc.bits) / g_gate, adc.vref / adc_max / g_gate
        dac_gates, gate_max = False, 0
        drivers = board.edges[gates[0]].drivers if gates else ()
        if drivers and isinstance(drivers[0], DacGateDriver):
            d = board.dacs[drivers[0].dac.device]
            gate_lsb = gate_vpc = d.vref * d.gain / (1 << d.bits)
            dac_gates, gate_max = True, (1 << d.bits) - 1
        if board.gates is not None and board.gates.driver == "pulse":
            chain = max((x.bits / board.spi[x.bus].baud for x in board.expanders.values()),
                        default=0.0)
            over = chain * 1e6 + FIRMWARE_SWITCH_US
        return cls(read_lsb=adc.vref / (1 << adc.bits) / g_out, node_vpc=adc.vref / adc_max / g_out,
                   adc_max=adc_max, in_vpc=in_vpc, in_max=in_max,
                   clamp_vpc=np.array([c[0] for c in clamps]),
                   clamp_max=np.array([c[1] for c in clamps], dtype=np.int64),
                   gate_lsb=gate_lsb, gate_vpc=gate_vpc, rc_us=float(max(16, int(rc))),
                   rail=float(rail), pulse_overhead_us=float(over),
                   n_read=board.n_nodes - 1, oversample=adc.oversample,
                   dac_gates=dac_gates, gate_max=gate_max)


def anneals(board) -> bool:
    """Whether a session on ``board`` anneals its learning rate when none is given: on
    transistor boards, unless the profile's ``[learning] anneal = false``."""
    return board.learning.anneal and board.has_gates


def board_session_defaults(board, steps: int, alpha: float | None = None,
                           eta: float | None = None):
    """(alpha_at, eta) as ``learnboard train`` sets them on ``board`` when not given: the
    board's nudge, and on transistor boards the annealed learning rate
    (:func:`learnboard.engine.config.annealed_alpha`, changed every chunk of steps)
    unless the profile says ``anneal = false``, else the board's rate."""
    from learnboard.engine.config import ANNEAL_CHUNK, annealed_alpha

    eta = board.learning.eta if eta is None else eta
    if alpha is not None:
        return (lambda s: alpha), eta
    if anneals(board) and steps > 0:
        return (lambda s: annealed_alpha(s - s % ANNEAL_CHUNK, steps)), eta
    return (lambda s: board.learning.alpha), eta


def board_task(board, seed: int = 0, task: str | None = None) -> Dataset:
    """The training examples ``learnboard train`` uploads to ``board`` by default (the
    profile's task, :func:`learnboard.tasks.load_task` with ``seed``)."""
    from learnboard.tasks import load_task

    name = task or getattr(board.learning, "task", None) or "regression"
    t = load_task(name, board=board, seed=seed)
    return Dataset(np.asarray(t.x_train, float), np.asarray(t.y_train, float),
                   name=f"{name} on {board.name}")
