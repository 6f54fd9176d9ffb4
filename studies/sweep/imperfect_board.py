"""A board profile with its device imperfections, through :class:`BoardEngine`.

The nominal :class:`~learnboard.engine.board_engine.BoardEngine` (``model="ideal"``) solves
both states on one network of ideal parts. A real twin board differs in two ways this
class adds (``model="board"`` goes further: the emulated board's converters, pulses and
gate drift, as ``learnboard sim --board`` runs it):

- the free state is measured on network 0 and the clamped state on network 1, each with
  its own fixed device spread (``mismatch`` seed: transistor ``vt``/``beta`` and digipot
  end-to-end spreads from the parts' ratings, :func:`learnboard.boards.circuit_for_board`);
- node voltages are read through the board's ADC, so every drop the rule sees is
  quantised to one ADC step referred to the node (``vref / 2**bits / front-end gain``).

Power is still the physical power of the free network (Σ I dV, watts).
"""

from __future__ import annotations

import numpy as np

from learnboard.engine.board_engine import BoardEngine, _Net


class ImperfectBoardEngine(BoardEngine):
    """:class:`BoardEngine` on the twin networks' mismatched devices, read through the ADC."""

    def __init__(self, board, data, config, digipot_rule: str = "accumulate", *, mismatch: int = 0):
        super().__init__(board, data, config, digipot_rule)
        self.mismatch = int(mismatch)
        gain = min((m.gain for m in board.muxes.values()), default=1.0) or 1.0
        self.lsb = board.adc.vref / 2**board.adc.bits / gain  # volts at the node
        ports_free = [(p.a, p.b) for p in self.inputs + self.bias]
        ports_clamp = ports_free + [(p.a, p.b) for p in self.outputs]
        s0 = self.initial_state()
        self.nets = [_Net(board, twin, self.mismatch, ports_free, ports_clamp, s0)
                     for twin in (0, min(1, board.n_nets - 1))]

    def _read(self, v: np.ndarray) -> np.ndarray:
        return np.round(v / self.lsb) * self.lsb

    def states(self, state: np.ndarray, eta: float):
        free_net, clamp_net = self.nets
        vf, i_f = self._solve(free_net, state, 0, self.x_free, self._warm)
        self._warm = vf
        a, b = free_net.a, free_net.b
        power = float(np.mean(np.sum(i_f * (vf[:, a] - vf[:, b]), axis=1)))
        rf = self._read(vf)
        out = self._outputs(rf)
        err = float(np.mean(np.sum((out - self.y) ** 2, axis=1)))
        nudged = out + eta * (self.y - out)
        vc, _ = self._solve(clamp_net, state, 1, np.hstack([self.x_free, nudged]), vf)
        rc = self._read(vc)
        return rf[:, a] - rf[:, b], rc[:, a] - rc[:, b], err, power
