"""A board profile with its device imperfections, through :class:`BoardEngine`.

The nominal :class:`~learnboard.engine.board_engine.BoardEngine` solves both states on one
network of ideal parts. A real twin board differs in two ways this class adds:

- the free state is measured on network 0 and the clamped state on network 1, each with
  its own fixed device spread (``mismatch`` seed: transistor ``vt``/``beta`` and digipot
  end-to-end spreads from the parts' ratings, :func:`learnboard.boards.circuit_for_board`);
- node voltages are read through the board's ADC, so every drop the rule sees is
  quantised to one ADC step referred to the node (``vref / 2**bits / front-end gain``).

Power is still the physical power of the free network (Σ I dV, watts).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from learnboard.boards import circuit_for_board
from learnboard.engine.board_engine import BoardEngine, _fix
from learnboard.physics import solve


class ImperfectBoardEngine(BoardEngine):
    """:class:`BoardEngine` on the twin networks' mismatched devices, read through the ADC."""

    def __init__(self, board, data, config, digipot_rule: str = "accumulate", *, mismatch: int = 0):
        super().__init__(board, data, config, digipot_rule)
        self.mismatch = int(mismatch)
        gain = min((m.gain for m in board.muxes.values()), default=1.0) or 1.0
        self.lsb = board.adc.vref / 2**board.adc.bits / gain  # volts at the node
        edges = board.network().edges
        self._ei, self._ej = edges[:, 0], edges[:, 1]

    def _read(self, v: np.ndarray) -> np.ndarray:
        return np.round(v / self.lsb) * self.lsb

    def _states(self, state, x, y, ex, eta):
        board = self.board
        free_net = circuit_for_board(board, state, 0, self.mismatch)
        clamp_net = circuit_for_board(board, state, min(1, board.n_nets - 1), self.mismatch)
        fixes = [_fix(p.a, p.b, float(v)) for p, v in zip(self.inputs, x, strict=True)]
        fixes += [_fix(p.a, p.b, float(p.fixed)) for p in self.bias]
        free = solve(free_net, fixes, initial=self._warm[ex])
        self._warm[ex] = free.node_voltages
        vf = self._read(free.node_voltages)
        out = np.array([vf[p.a] - (vf[p.b] if p.b is not None else 0.0) for p in self.outputs])
        nudged = out + eta * (y - out)
        clamped = solve(clamp_net, fixes + [_fix(p.a, p.b, float(c))
                                            for p, c in zip(self.outputs, nudged, strict=True)],
                        initial=free.node_voltages)
        vc = self._read(clamped.node_voltages)
        self.iterations += [free.iterations, clamped.iterations]
        return (SimpleNamespace(drops=vf[self._ei] - vf[self._ej], power=free.power),
                SimpleNamespace(drops=vc[self._ei] - vc[self._ej]), out)
