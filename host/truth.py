"""The optional "truth probe" of an emulated board: its physics, as no real board can tell.

An emulated board (in process, or the VM or CPython board on a pty when the caller started
it) knows the true node voltages, edge currents and power of its network. A session
records that true power beside the board's own measurement, so a run on an emulated board
shows how far the board's view is from the physics. The host needs no emulator for this:
whoever wires the two together (the command line, a study, a test) passes any object with
``true_state(net)``; a real board has none (``None``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


class TrueState(Protocol):
    """The physics of one network at one moment."""

    node_voltages: np.ndarray  # (N,) V
    edge_currents: np.ndarray  # (E,) A, from a to b
    power: float  # W dissipated in the network
    edge_state: np.ndarray  # taps or gate volts, per edge


@runtime_checkable
class TruthProbe(Protocol):
    """What the host may ask an emulated board beyond its port."""

    def true_state(self, net: int = 0) -> TrueState:
        """The physics of network ``net`` (0: the free network, 1: a twin's clamped one) now."""
        ...
