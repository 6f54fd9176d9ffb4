"""Reads ahead of the VM: a whole mux scan of the firmware in about one round trip.

The firmware reads its nodes one at a time (select pins, enable, settle, ``n`` ×
``ADC.read_u16``, disable) and the VM's ``machine`` must wait for the world at every
node's first conversion. The world server records what the VM sends between those
waits — runs of mux-pin writes (``P``), sleeps (``D``) and block reads (``B``) — and
when a block read arrives whose preceding requests it has seen before, it *runs ahead*:
it executes what followed last time (up to the end of that run, at most
:data:`SCRIPT_MAX` bytes) for real, after keeping :meth:`World.read_state`, and sends
those requests with their answers (the conversions and the clock of each block) along
with the block: the *script*. The VM then checks each request the firmware makes
against the script: while they match, it answers the reads from the script and sends
nothing; at the first difference, or at the script's end, it sends ``C`` with how many
script bytes it used. The server keeps everything if all were used; otherwise it goes
back to the kept state and runs again only the used part — the same requests in the
same state, so the same conversions the VM has already answered with. The firmware
cannot tell: every conversion is the one the request would have got sent on its own.

Speculative requests are only mux-pin writes (``P``, ``p``), sleeps and conversions, and a run-ahead
ends before a read that would need a new circuit solve (a solve's warm start is not
undone). With lazy solves (the default) it also runs while a linear network's drives
settle: those reads re-solve from the network's linear map, which
:meth:`World.restore_read_state` undoes like any other bookkeeping.
Clock listeners (a brown-out schedule) see the run-ahead's time as it happens.
"""

from __future__ import annotations

import struct

SCRIPT_MAX = 2048  # keep equal to emulator/vmlib/_lbahead.py's _SCRIPT_MAX
_P, _PD, _D, _B = 80, 112, 68, 66  # _PD: a pin write after a short sleep (the call costs)
_SIZE = {_P: 3, _PD: 4, _D: 5, _B: 4}
_MASK32 = 0xFFFFFFFF
_TABLE_MAX = 1024
CONTEXT = 4  # reads whose requests make a prediction's key


class ReadAhead:
    """The server side of the run-ahead for one world (see the module docstring)."""

    def __init__(self, world) -> None:
        self.world = world
        self._mux_pins = frozenset(world._mux_pins)
        self._table: dict[bytes, tuple[bytes, int]] = {}  # key -> (run, offset after B)
        # key -> block reads to run ahead at most: how many the VM used of the last
        # script from this key that it did not use up (a run that ends differently
        # from time to time, e.g. the twins' gates read after a scan by a mask)
        self._limit: dict[bytes, int] = {}
        self.reset()
        self.scripts = 0
        """Run-aheads sent."""
        self.undone = 0
        """Run-aheads the VM used only in part (the world went back and re-ran)."""

    def reset(self) -> None:
        """A new VM connection: no run, nothing pending, no scripts until the VM has
        room for them (``K``)."""
        self.enabled = False
        self._run = bytearray()
        self._starts: list[int] = []  # where each read's requests start in the run
        self._keys: list[tuple[bytes, int]] = []
        self._pending = None  # (kept state, [(script end, op)], script length, key)

    @property
    def pending(self) -> bool:
        return self._pending is not None

    # -- recording --------------------------------------------------------------------

    def seen(self, op: bytes) -> bytes | None:
        """Record a request the world has just run; for a block read, return its key."""
        code = op[0]
        if code == _D or code == _B or ((code == _P or code == _PD) and
                                        op[1] in self._mux_pins):
            self._run += op
            if code == _B:
                # the key: the requests of the last CONTEXT reads (a read alone is
                # ambiguous: only the select lines that change are written)
                starts = self._starts
                key = bytes(self._run[starts[-CONTEXT] if len(starts) >= CONTEXT else 0:])
                self._keys.append((key, len(self._run)))
                starts.append(len(self._run))
                return key
            return None
        self.end_run()
        return None

    def end_run(self) -> None:
        """A request that is never run ahead: the run so far is kept for predictions."""
        if not self._run:  # no run (nor keys, nor starts: they come with its requests)
            return
        if self._keys:
            run = bytes(self._run)
            if len(self._table) > _TABLE_MAX:
                self._table.clear()
            for key, off in self._keys:
                self._table[key] = (run, off)
            self._keys.clear()
        self._run.clear()
        self._starts.clear()

    # -- running ahead ------------------------------------------------------------------

    def script_after(self, key: bytes | None) -> bytes:
        """After the block read with ``key``: run ahead what followed it last time and
        return the script (empty if there is nothing to run ahead)."""
        if key is None or not self.enabled:
            return b""
        found = self._table.get(key)
        w = self.world
        if found is None or not w.reads_undoable():
            return b""  # nothing seen, or gates moving / (eager) drives settling: solves ahead
        ops = _plan(*found, self._limit.get(key, _TABLE_MAX))
        if not ops:
            return b""
        kept = w.read_state()
        solves = w._cache.kept
        script = bytearray()
        marks = []
        clock = w.clock
        advance, set_pin, cached, block = (clock.advance_int, w.set_pin, w.block_is_cached,
                                           w.adc_block)
        blocks = 0
        for op in ops:
            code = op[0]
            if code == _PD:
                advance(op[3])
                set_pin(op[1], op[2])
            elif code == _P:
                set_pin(op[1], op[2])
            elif code == _D:
                advance(op[1] | (op[2] << 8) | (op[3] << 16) | (op[4] << 24))
            else:
                if not cached(op[1], op[2], op[3]):
                    break  # this read needs a new solve: the script ends before it
                codes = block(op[1], op[2], op[3])
                if w._cache.kept != solves:  # a new solve: its warm start cannot be undone
                    w.restore_read_state(kept)
                    return b""
                script += op
                script += (clock._us & _MASK32).to_bytes(4, "little")
                script += _packer(len(codes)).pack(*codes)
                marks.append((len(script), op))
                blocks += 1
                continue
            script += op
            marks.append((len(script), op))
        if not blocks:
            w.restore_read_state(kept)  # nothing worth a script
            return b""
        self._pending = (kept, marks, len(script), key)
        self.scripts += 1
        return bytes(script)

    def commit(self, used: int) -> None:
        """The VM used ``used`` bytes of the script: keep them, undo the rest."""
        kept, marks, total, key = self._pending
        self._pending = None
        if used == total:
            # the run goes on with them; their keys already lead to this continuation
            run, starts = self._run, self._starts
            for _, op in marks:
                run += op
                if op[0] == _B:
                    starts.append(len(run))
            return
        if used and not any(e == used for e, _ in marks):
            raise ConnectionError(f"world server: the VM used {used} bytes of a script, "
                                  "not a whole number of its requests")
        self.undone += 1
        if len(self._limit) > _TABLE_MAX:
            self._limit.clear()
        self._limit[key] = sum(1 for e, op in marks if e <= used and op[0] == _B)
        w = self.world
        w.restore_read_state(kept)
        clock = w.clock
        for end, op in marks:
            if end > used:
                break
            code = op[0]
            if code == _P or code == _PD:
                if code == _PD:
                    clock.advance_int(op[3])
                w.set_pin(op[1], op[2])
            elif code == _D:
                clock.advance_int(op[1] | (op[2] << 8) | (op[3] << 16) | (op[4] << 24))
            else:
                w.adc_block(op[1], op[2], op[3])
            self.seen(op)


_PACKERS: dict = {}


def _packer(n: int) -> struct.Struct:
    """The ``struct`` of ``n`` little-endian u16 (kept per ``n``)."""
    p = _PACKERS.get(n)
    if p is None:
        p = _PACKERS[n] = struct.Struct(f"<{n}H")
    return p


def _plan(run: bytes, off: int, blocks: int) -> list[bytes]:
    """The requests of ``run`` from ``off`` up to its last block read whose script fits
    in :data:`SCRIPT_MAX` bytes, at most ``blocks`` block reads."""
    ops = []
    size = 0
    last = 0  # requests up to the last block read that fits
    pos = off
    while pos < len(run):
        n = _SIZE[run[pos]]
        op = run[pos:pos + n]
        size += n + (4 + 2 * op[2] if op[0] == _B else 0)
        if size > SCRIPT_MAX:
            break
        ops.append(op)
        if op[0] == _B:
            last = len(ops)
            blocks -= 1
            if blocks <= 0:
                break
        pos += n
    return ops[:last]
