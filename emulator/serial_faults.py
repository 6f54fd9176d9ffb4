"""Serial line faults: bytes dropped, corrupted or duplicated at a per-byte rate, and
random bytes inserted at a rate in bytes per second.

One :class:`SerialFaults` sits on one direction of the virtual serial line. Each byte
passing through independently suffers at most one fault: dropped with probability
``drop_rate``, else corrupted (XOR with a random non-zero mask, so it really changes)
with ``corrupt_rate``, else duplicated with ``dup_rate``. Independently of the traffic,
``insert_rate`` random bytes per second (uniform 0..255: 0x00, Ctrl-C and the other
control characters included) arrive as a Poisson stream on the line's clock — a noisy
cable, a second program writing to the port, a bootloader's chatter. Where an inserted
byte lands follows its arrival time: a chunk of traffic occupies the line for
``byte_time_s`` per byte from the moment it is sent (:meth:`SerialFaults.apply`), so a
byte arriving meanwhile lands inside it at that position and one arriving before goes
ahead of it; on an idle line they pass on their own (:meth:`SerialFaults.noise`). The random streams come from a seed and do not depend
on how the traffic is chunked, so a seeded run is reproducible on a reproducible clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from learnboard.errors import InputError


@dataclass
class FaultCounters:
    """What one direction of the line carried and what it did to the bytes."""

    bytes_in: int = 0
    """Bytes offered to the line."""
    bytes_out: int = 0
    """Bytes delivered (bytes_in - dropped + duplicated + inserted)."""
    dropped: int = 0
    corrupted: int = 0
    duplicated: int = 0
    inserted: int = 0
    """Random bytes added to the line (counted in ``bytes_out``)."""
    inserted_control: int = 0
    """Of those, control characters (below 0x20: 0x00, Ctrl-C, Ctrl-D, ...)."""

    def copy(self) -> FaultCounters:
        return FaultCounters(**vars(self))


def check_insert_rate(value: float, name: str = "insert_rate") -> float:
    """Inserted bytes per second: a finite number >= 0; raise :class:`InputError` naming the option."""
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise InputError(f"{value!r} is not a rate; give bytes per second >= 0, e.g. 200", field=name)
    return value


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
        insert_rate: random bytes inserted per second of ``clock``.
        byte_time_s: seconds one byte occupies the line; decides how often an inserted
            byte lands inside a frame. Default 1 µs: a board's USB serial port (full-speed
            USB moves about 1 MB/s); a UART at 115200 baud takes ``10 / 115200``.
        seed: seed of the random streams (None: fresh entropy).
        clock: seconds on the line's clock (default ``time.monotonic``; the in-process
            board sets its virtual clock); also settable later as :attr:`clock`.
    """

    def __init__(
        self,
        drop_rate: float = 0.0,
        corrupt_rate: float = 0.0,
        dup_rate: float = 0.0,
        seed: int | np.random.SeedSequence | None = None,
        insert_rate: float = 0.0,
        clock: Callable[[], float] | None = None,
        byte_time_s: float = 1e-6,
    ) -> None:
        self.drop_rate = check_rate(drop_rate, "drop_rate")
        self.corrupt_rate = check_rate(corrupt_rate, "corrupt_rate")
        self.dup_rate = check_rate(dup_rate, "dup_rate")
        if self.drop_rate + self.corrupt_rate + self.dup_rate > 1.0:
            raise InputError("the three fault rates add up to more than 1", field="fault rates")
        seq = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        # Separate streams for "which fault" and "which corruption mask" keep the
        # sequence independent of chunk sizes.
        pick, mask, insert = seq.spawn(3)
        self._pick = np.random.Generator(np.random.PCG64(pick))
        self._mask = np.random.Generator(np.random.PCG64(mask))
        self._ins = np.random.Generator(np.random.PCG64(insert))
        self.insert_rate = check_insert_rate(insert_rate)
        self.clock: Callable[[], float] | None = clock
        self._next_at: float | None = None  # clock time of the next inserted byte
        self.byte_time_s = float(byte_time_s)
        self._busy_until = -math.inf  # the last chunk's bytes are on the line until then
        self.counters = FaultCounters()
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return (self.drop_rate + self.corrupt_rate + self.dup_rate) > 0.0

    def _now(self) -> float:
        return (self.clock or time.monotonic)()

    def _due(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        """The insertion stream's bytes due by ``now`` and their arrival times (under the lock)."""
        if self.insert_rate <= 0.0:
            return np.empty(0, dtype=np.uint8), np.empty(0)
        if self._next_at is None:  # the stream starts with the line's first use
            self._next_at = now + self._gap()
        out, at = [], []
        while self._next_at <= now:
            # one double per byte value: chunk-independent, like the masks
            out.append(int(self._ins.random() * 256.0))
            at.append(self._next_at)
            self._next_at += self._gap()
        self.counters.inserted_control += sum(1 for b in out if b < 0x20)
        return np.array(out, dtype=np.uint8), np.array(at)

    def _gap(self) -> float:
        return -math.log(1.0 - self._ins.random()) / self.insert_rate

    def noise(self, now: float | None = None) -> bytes:
        """The inserted bytes due by ``now`` on an idle line (call it now and then)."""
        with self._lock:
            extra, _ = self._due(self._now() if now is None else now)
            self.counters.inserted += len(extra)
            self.counters.bytes_out += len(extra)
            return extra.tobytes()

    def apply(self, data: bytes, now: float | None = None) -> bytes:
        """Pass ``data`` through the line at clock time ``now`` (default: the line's
        clock); return what arrives at the other end, inserted bytes included."""
        with self._lock:
            out = self._faults(data)
            if self.insert_rate <= 0.0:
                return out
            start = max(self._now() if now is None else now, self._busy_until)
            end = start + len(out) * self.byte_time_s
            extra, at = self._due(end)
            if len(extra):
                # bytes that arrived before the chunk go ahead of it, those arriving while
                # it is on the line land where it is then
                bt = self.byte_time_s
                pos = (np.zeros(len(at), dtype=np.int64) if bt <= 0 else
                       np.clip(np.ceil((at - start) / bt), 0, len(out)).astype(np.int64))
                out = np.insert(np.frombuffer(out, dtype=np.uint8), pos, extra).tobytes()
                self.counters.inserted += len(extra)
                self.counters.bytes_out += len(extra)
            self._busy_until = start + len(out) * self.byte_time_s
            return out

    def _faults(self, data: bytes) -> bytes:
        """Drops, corruptions and duplicates (under the lock)."""
        n = len(data)
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
