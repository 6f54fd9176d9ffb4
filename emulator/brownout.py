"""Brown-outs of an emulated board, and the fault flags shared by its front ends.

A brown-out is a power loss: the microcontroller stops at once (the VM is killed, or the
in-process firmware thread restarts), the parts power-cycle (:meth:`World.power_cycle`:
X9C taps come back from EEPROM, SPI pots at mid-scale, DACs at 0 V, gate capacitors keep
their charge) and the firmware boots again from ``board.json``.

When: the emulator cannot see the firmware's step counter, so brown-outs are scheduled on
the world's **virtual clock** (µs since the emulator powered the board up; it never goes
back, not even across resets). A learning step advances the virtual clock by a fixed,
board-dependent amount (settling, conversions, pulses: see ``docs/emulator.md``), so
"at step N" is "at N × that time". Random brown-outs are a Poisson process with a mean
rate per virtual second, seeded, so a run with a seed is reproducible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
from learnboard.emulator.world import Faults

from learnboard.boards import Board
from learnboard.errors import InputError

NEVER = 1 << 62


class BrownOuts:
    """When the power fails, in virtual time.

    Args:
        at_s: virtual seconds (since power-up) of brown-outs that happen once each.
        rate_per_s: mean random brown-outs per virtual second (0: none).
        seed: seed of the random ones.
    """

    def __init__(self, at_s: Iterable[float] = (), rate_per_s: float = 0.0, seed: int | None = 0) -> None:
        times = [float(t) for t in at_s]
        if any(not t >= 0 for t in times):
            raise InputError(f"brown-out times must be >= 0 virtual seconds, got {times}", field="--brownout-at")
        if not rate_per_s >= 0:
            raise InputError(f"the brown-out rate must be >= 0 per virtual second, got {rate_per_s}",
                             field="--brownout-rate")
        self._fixed = sorted(int(round(t * 1e6)) for t in times)
        self.rate_per_s = float(rate_per_s)
        self._rng = np.random.default_rng([0 if seed is None else int(seed), 0xB0])
        self._random_next = self._draw(0) if self.rate_per_s > 0 else NEVER
        self.count = 0
        """Brown-outs that have happened."""
        self.next_us = NEVER
        """Virtual µs of the next brown-out (:data:`NEVER` if none is due): a cheap test."""
        self._update()

    def __bool__(self) -> bool:
        return bool(self._fixed) or self.rate_per_s > 0

    def _draw(self, now_us: int) -> int:
        return now_us + max(1, int(self._rng.exponential(1e6 / self.rate_per_s)))

    def _update(self) -> None:
        self.next_us = min(self._fixed[0] if self._fixed else NEVER, self._random_next)

    def due(self, now_us: int) -> bool:
        """True (once) when a brown-out falls at or before ``now_us``; schedules the next.
        Several overdue brown-outs count as one: the board is already off."""
        if now_us < self.next_us:
            return False
        while self._fixed and self._fixed[0] <= now_us:
            self._fixed.pop(0)
        if self._random_next <= now_us:
            self._random_next = self._draw(now_us)
        self.count += 1
        self._update()
        return True


_EDGE = re.compile(r"^(?:(\d+):)?(\d+)$")


def parse_stuck_edges(specs: Sequence[str], board: Board) -> set[tuple[int, int]]:
    """``["3", "1:7"]`` -> ``{(0, 3), (1, 7)}``: ``EDGE`` (on network 0) or ``NET:EDGE``, both
    0-based; an edge name of the description is accepted too."""
    names = {e.name: i for i, e in enumerate(board.edges)}
    out = set()
    for spec in specs:
        net_s, _, edge_s = spec.rpartition(":")
        m = _EDGE.match(spec)
        if m:
            net, edge = int(m.group(1) or 0), int(m.group(2))
        elif edge_s in names and (not net_s or net_s.isdigit()):
            net, edge = int(net_s or 0), names[edge_s]
        else:
            raise InputError(f"stuck edge {spec!r}: give EDGE or NET:EDGE (0-based indices, or an edge name "
                             "of the description)", field="--stuck-edge")
        if not (0 <= net < board.n_nets and 0 <= edge < board.n_edges):
            raise InputError(f"stuck edge {spec!r} is not on {board.name}: networks 0..{board.n_nets - 1}, "
                             f"edges 0..{board.n_edges - 1}", field="--stuck-edge")
        out.add((net, edge))
    return out


def make_faults(board: Board, *, stuck_edges: Sequence[str] = (), dead_adc: Sequence[int] = (),
                noise_scale: float = 1.0, leak_scale: float = 1.0) -> Faults:
    """The world's :class:`Faults` from command-line values, each checked."""
    for ch in dead_adc:
        if not 0 <= ch <= 4:
            raise InputError(f"ADC channel {ch} does not exist (0..4 on the RP2040)", field="--dead-adc")
    for name, value in (("--noise-scale", noise_scale), ("--leak-scale", leak_scale)):
        if not value >= 0:
            raise InputError(f"must be >= 0 (1 is the part's own value), got {value}", field=name)
    return Faults(stuck_edges=parse_stuck_edges(stuck_edges, board), dead_adc=set(dead_adc),
                  noise_scale=float(noise_scale), leak_scale=float(leak_scale))
