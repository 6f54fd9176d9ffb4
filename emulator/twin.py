"""A calibrated twin: an emulated board whose parts are those a calibration measured.

:class:`TwinWorld` is a :class:`~learnboard.emulator.world.World` whose measured network
(0, the free one) uses the calibrated per-edge parameters — digipot end-to-end scale and
wiper resistance, or transistor threshold and gain — and whose ADC has the calibrated
gain and offset. Networks the calibration could not see use nominal parts. Use it as::

    from learnboard.emulator.inprocess_board import InProcessBoard
    from learnboard.emulator.twin import twin_factory
    cal = load_calibration("calibration.json", board)
    with InProcessBoard(board, world_factory=twin_factory(cal)) as b: ...

Digipot taps are in the firmware's tap coordinates (what ``read_edges`` reports), so the
twin's X9C parts start where the firmware believes they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from learnboard.emulator.devices import AdcModel, X9cDigipot
from learnboard.emulator.devices.adc import E11_CODES
from learnboard.emulator.world import World

from learnboard.boards import Board, load_board
from learnboard.boards.board_circuit import edge_parameters
from learnboard.boards.schema import DigipotPart
from learnboard.physics.circuit import RESISTOR, TRANSISTOR, Circuit
from learnboard.physics.devices import digipot_resistance


def firmware_start_tap(board: Board, part: DigipotPart) -> int:
    """The tap the firmware assumes a digipot starts at: the middle of its safe range
    (the same rule as the firmware's ``safety.pot_bounds``)."""
    lim = board.limits
    r_need = lim.max_node_volts / lim.max_edge_amps
    taps = np.arange(part.n_taps)
    r = digipot_resistance(taps, part.n_taps, part.r_min, part.r_max, part.taper, 0.0)
    ok = np.flatnonzero(r * (1.0 - part.tolerance) + part.r_wiper >= r_need)
    lo, hi = (int(ok[0]) if ok.size else part.n_taps - 1), part.n_taps - 1
    if lim.tap_range is not None:
        lo, hi = max(lo, lim.tap_range[0]), min(hi, lim.tap_range[1])
    return (lo + hi) // 2


def twin_parameters(board: Board, calibration: dict, net: int = 0) -> dict[str, np.ndarray]:
    """Per-edge device arrays for ``net`` (r_scale, r_wiper, vt, beta, sub_slope): the
    calibration's where it measured that network, else the parts' nominal values."""
    nominal = edge_parameters(board, net, None)
    p = {k: np.array(v, dtype=float) for k, v in nominal.items()}
    p["r_wiper"] = np.array([board.parts[e.part].r_wiper if e.kind == "digipot" else 0.0
                             for e in board.edges])
    edges = calibration["edges"]
    if net != edges.get("net", 0):
        return p
    if edges["kind"] == "digipot":
        p["r_scale"] = np.asarray(edges["r_scale"], dtype=float)
        p["r_wiper"] = np.asarray(edges["r_wiper"], dtype=float)
    elif edges["kind"] == "transistor":
        p["vt"] = np.asarray(edges["vt"], dtype=float)
        p["beta"] = np.asarray(edges["beta"], dtype=float)
    return p


def set_adc_errors(world: World, gain_error: float, offset_lsb: float) -> None:
    """Give ``world``'s converter this gain error and offset: a new model built as World
    builds its own (same bits, reference, noise, E11 spikes and noise seed)."""
    b, a = world.board, world.adc
    e11 = b.adc.type == "internal" and b.microcontroller == "rp2040"
    world.adc = AdcModel(a.bits, a.vref, gain_error=gain_error, offset_lsb=offset_lsb,
                         noise_lsb=a.noise_lsb, spikes=E11_CODES if e11 else (),
                         seed=[world.seed, 11])


class TwinWorld(World):
    """A World built from ``calibration`` (a validated dict, see
    :func:`learnboard.host.calibration.load_calibration`); other arguments as World's."""

    def __init__(self, board: Board | str | Path, calibration: dict, **kwargs) -> None:
        super().__init__(board, **kwargs)
        b = self.board
        self.calibration = calibration
        self._params = [twin_parameters(b, calibration, net) for net in range(b.n_nets)]
        self._kind = np.array([TRANSISTOR if e.kind == "transistor" else RESISTOR
                               for e in b.edges], dtype=np.int8)
        self._network = b.network()
        self._fixed_g = np.array([1.0 / e.resistance if e.kind == "resistor" else 0.0
                                  for e in b.edges])
        for net_edges in self.edges:
            for i, dev in enumerate(net_edges):
                if isinstance(dev, X9cDigipot):
                    dev.stored_tap = dev.tap = firmware_start_tap(b, b.parts[b.edges[i].part])
        ch = next(iter(calibration["adc"]["channels"].values()), None)
        mux = next((m for m in b.muxes.values() if m.net == 0 and m.nodes), None)
        if ch is not None and mux is not None:
            # the firmware reads code * vref / (2^bits - 1) / gain: map the measured node-volt
            # gain and offset back to the converter's
            full = (1 << self.adc.bits)
            set_adc_errors(self, ch["gain"] * (full - 1) / full - 1.0,
                           ch["offset_v"] * mux.gain / self.adc.vref * (full - 1))

    def circuit(self, net: int, state: np.ndarray) -> Circuit:
        b = self.board
        p = self._params[net]
        state = np.asarray(state, dtype=float)
        g = self._fixed_g.copy()
        for name, part in b.parts.items():
            if not isinstance(part, DigipotPart):
                continue
            idx = np.array([i for i, e in enumerate(b.edges) if e.part == name])
            track = digipot_resistance(np.rint(state[idx]), part.n_taps, part.r_min,
                                       part.r_max, part.taper, 0.0)
            g[idx] = 1.0 / (track * p["r_scale"][idx] + p["r_wiper"][idx])
        fet = self._kind == TRANSISTOR
        return Circuit.build(self._network, self._kind, conductance=np.where(fet, 0.0, g),
                             gate=np.where(fet, state, 0.0), vt=np.where(fet, p["vt"], 0.62),
                             beta=np.where(fet, p["beta"], 8.5e-4), sub_slope=p["sub_slope"])


def twin_factory(calibration: dict, **kwargs) -> Callable[[Board], World]:
    """A ``world_factory`` for :class:`~learnboard.emulator.inprocess_board.InProcessBoard`."""
    return lambda board: TwinWorld(board, calibration, **kwargs)


def twin_world(board: Board | str | Path, calibration: dict, **kwargs) -> TwinWorld:
    """The twin World of ``board`` (a Board, profile name or TOML path)."""
    return TwinWorld(board if isinstance(board, Board) else load_board(board), calibration,
                     **kwargs)
