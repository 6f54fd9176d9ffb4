"""Serial line faults: bytes dropped, corrupted or duplicated at a per-byte rate.

One :class:`SerialFaults` sits on one direction of the virtual serial line. Each byte
passing through independently suffers at most one fault: dropped with probability
``drop_rate``, else corrupted (XOR with a random non-zero mask, so it really changes)
with ``corrupt_rate``, else duplicated with ``dup_rate``. The random streams come from
a seed and do not depend on how the traffic is chunked, so a seeded run is reproducible.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from learnboard.errors import InputError


@dataclass
class FaultCounters:
    """What one direction of the line carried and what it did to the bytes."""

    bytes_in: int = 0
    """Bytes offered to the line."""
    bytes_out: int = 0
    """Bytes delivered (bytes_in - dropped + duplicated)."""
    dropped: int = 0
    corrupted: int = 0
    duplicated: int = 0

    def copy(self) -> FaultCounters:
        return FaultCounters(**vars(self))


def check_rate(value: float, name: str) -> float:
    """A fault rate must be a probability; raise :class:`InputError` naming the option."""
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise InputError(f"{value!r} is not a probability; give a rate between 0 and 1", field=name)
    return value


class SerialFaults:
    """Per-byte fault injection for one direction of a serial line.

    Args:
        drop_rate: probability that a byte is lost.
        corrupt_rate: probability that a byte arrives changed.
        dup_rate: probability that a byte arrives twice.
        seed: seed of the random streams (None: fresh entropy).
    """

    def __init__(
        self,
        drop_rate: float = 0.0,
        corrupt_rate: float = 0.0,
        dup_rate: float = 0.0,
        seed: int | np.random.SeedSequence | None = None,
    ) -> None:
        self.drop_rate = check_rate(drop_rate, "drop_rate")
        self.corrupt_rate = check_rate(corrupt_rate, "corrupt_rate")
        self.dup_rate = check_rate(dup_rate, "dup_rate")
        if self.drop_rate + self.corrupt_rate + self.dup_rate > 1.0:
            raise InputError("the three fault rates add up to more than 1", field="fault rates")
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # Separate streams for "which fault" and "which corruption mask" keep the
        # sequence independent of chunk sizes.
        pick, mask = seq.spawn(2)
        self._pick = np.random.Generator(np.random.PCG64(pick))
        self._mask = np.random.Generator(np.random.PCG64(mask))
        self.counters = FaultCounters()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return (self.drop_rate + self.corrupt_rate + self.dup_rate) > 0.0

    def apply(self, data: bytes) -> bytes:
        """Pass ``data`` through the line; return what arrives at the other end."""
        n = len(data)
        with self._lock:
            self.counters.bytes_in += n
            if not self.active or n == 0:
                self.counters.bytes_out += n
                return bytes(data)
            u = self._pick.random(n)
            arr = np.frombuffer(bytes(data), dtype=np.uint8).copy()
            drop = u < self.drop_rate
            corrupt = (~drop) & (u < self.drop_rate + self.corrupt_rate)
            dup = (~drop) & (~corrupt) & (u < self.drop_rate + self.corrupt_rate + self.dup_rate)
            n_corrupt = int(corrupt.sum())
            if n_corrupt:
                # Masks from doubles (one 64-bit draw each): small-int draws are
                # buffered by numpy, which would make them depend on chunk sizes.
                masks = 1 + np.floor(self._mask.random(n_corrupt) * 255.0).astype(np.uint8)
                arr[corrupt] ^= masks
            repeats = np.where(drop, 0, np.where(dup, 2, 1))
            out = np.repeat(arr, repeats).tobytes()
            c = self.counters
            c.dropped += int(drop.sum())
            c.corrupted += n_corrupt
            c.duplicated += int(dup.sum())
            c.bytes_out += len(out)
            return out

    def snapshot(self) -> FaultCounters:
        """A copy of the counters, safe to read while traffic flows."""
        with self._lock:
            return self.counters.copy()
