"""Records that check themselves: the checksum of each telemetry-log record and of each
checkpoint, and reading a log past damaged records (docs/runs.md, "Checksums").

A log record is a msgpack map whose last entry is ``"crc"``: the CRC-32 (``zlib.crc32``) of
the msgpack packing of the map without that entry (msgpack-python's packing: shortest
integers, 64-bit floats, str for text, bin for bytes, keys in the record's order). The
writer packs ``crc`` as a uint32 (``ce`` + 4 bytes, big-endian), so the last nine bytes of
a record are ``a3 63 72 63 ce`` and the checksum, and a reader checks a record from its
bytes without packing it again. A stock ``msgpack.Unpacker`` still reads one map per
record; ``rec.pop("crc") == zlib.crc32(msgpack.packb(rec))`` checks one in two lines.

A checkpoint (JSON) carries ``"crc"``: the CRC-32 of the other fields as canonical JSON
(keys sorted, no spaces, ASCII, ``NaN`` allowed). Records and checkpoints without ``crc``
were written by an earlier learnboard and are read unchecked.

Damage is a stretch of bytes that is not a good record: undecodable, not a map, a checksum
that does not match, or a record without one after checksummed records. Reading goes on
at the next good record (a map with a matching checksum), so one bad byte costs one record,
not the rest of the log. Damage with no good record after it is a *tail*: what a crash
mid-write leaves; it is dropped, as a cut record always was.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from .schemas import TelemetryRecord, try_convert

CRC = "crc"
TRAILER = b"\xa3crc\xce"
"""The bytes before a record's checksum: the key ``crc`` (fixstr) and the uint32 marker."""
_MAP_START = re.compile(rb"[\x80-\x8f\xde\xdf]")  # fixmap, map16, map32
_U32 = struct.Struct(">I")
_WINDOW = 4096  # bytes a resync candidate is first decoded from (records are far smaller)


# -- checksums -------------------------------------------------------------------------------

def _map_header(n: int) -> bytes:
    if n < 16:
        return _FIXMAP[n]
    if n < 0x10000:
        return b"\xde" + n.to_bytes(2, "big")
    return b"\xdf" + n.to_bytes(4, "big")


_FIXMAP = [bytes([0x80 | n]) for n in range(16)]


def _header_len(first: int) -> int:
    """Bytes of the map header that starts with ``first`` (0: not a map)."""
    if 0x80 <= first <= 0x8F:
        return 1
    return {0xDE: 3, 0xDF: 5}.get(first, 0)


def seal(body: bytes, n: int) -> bytes:
    """The record packed as ``body`` (a map of ``n`` entries, no ``crc``) with its checksum
    appended as the last entry."""
    return b"".join((_map_header(n + 1), memoryview(body)[_header_len(body[0]):], TRAILER,
                     _U32.pack(zlib.crc32(body))))


def record_crc_ok(raw: bytes | memoryview, rec: dict) -> bool | None:
    """Whether the record ``rec``, decoded from the bytes ``raw``, matches its checksum;
    None when it carries none (an earlier learnboard wrote it)."""
    if CRC not in rec:
        # a "crc" key damaged into another three-letter key still ends like a checksum
        last = next(reversed(rec), None) if rec else None
        if (len(raw) > 9 and raw[-9] == 0xA3 and raw[-5] == 0xCE and isinstance(last, str)
                and len(last) == 3 and sum(a != b for a, b in zip(last, CRC, strict=True)) == 1
                and isinstance(rec[last], int)):
            return False
        return None
    value = rec[CRC]
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    h = _header_len(raw[0])
    if h and bytes(raw[-9:-4]) == TRAILER:
        crc = zlib.crc32(raw[h:-9], zlib.crc32(_map_header(len(rec) - 1)))
    else:  # another writer's packing of the same rule
        try:
            crc = zlib.crc32(msgpack.packb({k: v for k, v in rec.items() if k != CRC}, use_bin_type=True))
        except (TypeError, ValueError):
            return False
    return crc == value


def _canonical_json(data: dict) -> bytes:
    return json.dumps({k: v for k, v in data.items() if k != CRC}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True, allow_nan=True).encode("ascii")


def seal_json(data: dict, default: Callable[[Any], Any] | None = None) -> dict:
    """``data`` as plain JSON values with ``crc`` (see the module docstring) added."""
    plain = json.loads(json.dumps(data, default=default, allow_nan=True))  # numpy, tuples, int keys
    plain.pop(CRC, None)
    plain[CRC] = zlib.crc32(_canonical_json(plain))
    return plain


def json_crc_ok(data: dict) -> bool | None:
    """Whether a parsed JSON object matches its ``crc``; None when it carries none."""
    if CRC not in data:
        return None
    value = data[CRC]
    return (isinstance(value, int) and not isinstance(value, bool)
            and zlib.crc32(_canonical_json(data)) == value)


# -- reading a log past damage --------------------------------------------------------------

@dataclass(frozen=True)
class Damage:
    """Bytes of a log that are not a good record."""

    offset: int  # file offset of the first damaged byte (where the last good record ended)
    length: int  # bytes up to the next good record (or the end of the file)
    records: int | None  # records lost there, from the indices around it; None: unknown
    first_i: int | None  # the index the first lost record had
    reason: str


@dataclass
class LogScan:
    """What reading a whole log found (see :func:`scan_bytes`)."""

    records: list[dict] = field(default_factory=list)  # the good records, ``crc`` removed
    spans: list[tuple[int, int]] = field(default_factory=list)  # their byte ranges
    damaged: list[Damage] = field(default_factory=list)  # each followed by a good record
    tail: Damage | None = None  # after the last good record: a crash mid-write
    unchecked: int = 0  # records without a checksum (an earlier learnboard's)
    size: int = 0

    @property
    def end(self) -> int:
        """Where the last good record ends: a resumed log continues there."""
        return self.spans[-1][1] if self.spans else 0

    @property
    def skipped(self) -> int:
        """Records lost in the damage inside the log (unknown counts as one)."""
        return sum(1 if d.records is None else d.records for d in self.damaged)


def is_record(rec: Any) -> bool:
    """``rec`` is a record (a map; a ``tlm`` one fits :class:`~.schemas.TelemetryRecord`)."""
    return isinstance(rec, dict) and (rec.get("kind") != "tlm"
                                      or try_convert(rec, TelemetryRecord) is not None)


class LogReader:
    """Reads a log's bytes as they arrive (:meth:`feed`, :meth:`read`), passing over damage.
    ``damaged`` lists each stretch skipped; with ``spans`` the good records' byte ranges are
    kept too (for a repair)."""

    def __init__(self, *, spans: bool = False) -> None:
        self._buf = bytearray()
        self._base = 0  # file offset of _buf[0]
        self._checked = False  # a checksummed record was read: an unchecked one is damage now
        self._last_i: int | None = None
        self._bad: tuple[int, str] | None = None  # damage being read past: (offset, reason)
        self.scan = LogScan()
        self._spans = spans

    @property
    def damaged(self) -> list[Damage]:
        return self.scan.damaged

    def feed(self, data: bytes) -> None:
        self._buf += data
        self.scan.size += len(data)

    def read(self, final: bool = False) -> list[dict]:
        """The good records completed since the last call. ``final``: no more bytes will
        come, so damage at the end is the tail (else it waits for the next good record)."""
        out: list[dict] = []
        pos = 0
        buf = memoryview(self._buf)
        try:
            while True:
                if self._bad is None:
                    pos, why = self._run(buf, pos, out)
                    if why is None:
                        # the rest is a record still being written, unless a good record
                        # follows: then a damaged length made this one run past it
                        if pos >= len(buf) or self._resync(buf, pos + 1) is None:
                            break
                        why = "a length running past the next record"
                    self._bad = (self._base + pos, why)
                start = self._bad[0] - self._base
                nxt = self._resync(buf, start + 1)
                if nxt is None:
                    if final:
                        self.scan.tail = Damage(self._bad[0], len(buf) - start, None, None, self._bad[1])
                        pos = len(buf)
                    else:
                        pos = start  # wait for more bytes
                    break
                self._note_damage(self._bad[0], nxt - start, self._peek_i(buf, nxt), self._bad[1])
                self._bad = None
                pos = nxt
        finally:
            buf.release()
        if final and self._bad is None and pos < len(self._buf) and self.scan.tail is None:
            self.scan.tail = Damage(self._base + pos, len(self._buf) - pos, None, None,
                                    "a record cut at the end of the file")
        del self._buf[:pos]
        self._base += pos
        return out

    # -- internals -------------------------------------------------------------------------

    def _run(self, buf: memoryview, pos: int, out: list[dict]) -> tuple[int, str | None]:
        """Good records from ``pos`` on; returns where they end and why reading stopped
        there (None: the bytes ran out)."""
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        unpacker.feed(buf[pos:])
        start = pos
        while True:
            try:
                rec = unpacker.unpack()
            except msgpack.OutOfData:
                return start, None
            except (ValueError, msgpack.UnpackException, TypeError):
                return start, "not msgpack"
            end = pos + unpacker.tell()
            why = self._accept(buf[start:end], rec)
            if why is not None:
                return start, why
            self._keep(rec, start, end, out)
            start = end

    def _accept(self, raw: memoryview, rec: Any) -> str | None:
        """None when ``rec`` is a good record, else why not."""
        if not isinstance(rec, dict):
            return "not a record (a map)"
        ok = record_crc_ok(raw, rec)
        if ok is False:
            return "checksum mismatch"
        if ok is None and self._checked:
            return "no checksum after checksummed records"
        if not is_record(rec):
            return "a telemetry record the host could not have written"
        return None

    def _keep(self, rec: dict, start: int, end: int, out: list[dict]) -> None:
        if rec.pop(CRC, None) is not None:
            self._checked = True
        else:
            self.scan.unchecked += 1
        i = rec.get("i")
        if isinstance(i, int):
            self._last_i = i
        out.append(rec)
        self.scan.records.append(rec)
        span = (self._base + start, self._base + end)
        if self._spans or not self.scan.spans:
            self.scan.spans.append(span)
        else:  # only where the last one ends is needed
            self.scan.spans[-1] = span

    def _decode_one(self, buf: memoryview, p: int) -> tuple[Any, int] | None:
        """The object at ``p`` and where it ends, or None (undecodable or incomplete)."""
        window = _WINDOW
        while True:
            unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
            unpacker.feed(buf[p:p + window])
            try:
                return unpacker.unpack(), p + unpacker.tell()
            except msgpack.OutOfData:
                if p + window >= len(buf):
                    return None
                window *= 16
            except (ValueError, msgpack.UnpackException, TypeError, RecursionError):
                return None

    def _resync(self, buf: memoryview, frm: int) -> int | None:
        """The offset (in ``buf``) of the first good record at or after ``frm``, or None."""
        data = bytes(buf[frm:]) if frm < len(buf) else b""
        for m in _MAP_START.finditer(data):
            p = frm + m.start()
            got = self._decode_one(buf, p)
            if got is None:
                continue
            rec, end = got
            if not isinstance(rec, dict):
                continue
            ok = record_crc_ok(buf[p:end], rec)
            if ok is True and is_record(rec):
                return p
            if ok is None and not self._checked and self._plausible_legacy(rec):
                return p
        return None

    def _plausible_legacy(self, rec: dict) -> bool:
        """An unchecked map that looks like a whole record of an earlier learnboard (not a
        map nested in a damaged one): an index after the last one, a time and a kind."""
        i = rec.get("i")
        return (isinstance(i, int) and not isinstance(i, bool) and (self._last_i is None or i > self._last_i)
                and isinstance(rec.get("t"), float) and isinstance(rec.get("kind"), str) and is_record(rec))

    def _peek_i(self, buf: memoryview, p: int) -> int | None:
        got = self._decode_one(buf, p)
        i = got[0].get("i") if got is not None and isinstance(got[0], dict) else None
        return i if isinstance(i, int) and not isinstance(i, bool) else None

    def _note_damage(self, offset: int, length: int, next_i: int | None, why: str) -> None:
        first = 0 if self._last_i is None else self._last_i + 1
        n = next_i - first if next_i is not None and next_i >= first else None
        self.scan.damaged.append(Damage(offset, length, n, first, why))


def scan_bytes(data: bytes, *, spans: bool = False) -> LogScan:
    """Read a whole log held in ``data`` (see :class:`LogReader`)."""
    reader = LogReader(spans=spans)
    reader.feed(data)
    reader.read(final=True)
    return reader.scan


# -- messages ---------------------------------------------------------------------------------

def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def where(damaged: list[Damage]) -> str:
    """``byte 24917`` / ``bytes 1200, 24917``: the offsets of the damage (at most five)."""
    offs = [str(d.offset) for d in damaged[:5]] + (["…"] if len(damaged) > 5 else [])
    return ("byte " if len(damaged) == 1 else "bytes ") + ", ".join(offs)


def run_folder_of(log: Path) -> Path:
    """The run folder a log belongs to (its folder)."""
    return Path(log).parent


def damage_warning(log: str | Path, damaged: list[Damage]) -> str | None:
    """One line saying what reading ``log`` skipped, or None when nothing was."""
    if not damaged:
        return None
    n = sum(1 if d.records is None else d.records for d in damaged)
    size = sum(d.length for d in damaged)
    return (f"warning: {log}: skipped {_count(n, 'damaged record')} at {where(damaged)} "
            f"({_count(size, 'byte')}) and read the rest; `learnboard repair {run_folder_of(Path(log))}` "
            "writes a repaired copy")


def resume_refusal(log: str | Path, scan: LogScan) -> str:
    """Why a log with damage inside cannot be continued, and what to do."""
    d = scan.damaged[0]
    after = sum(1 for s, _ in scan.spans if s > d.offset) if len(scan.spans) > 1 else None
    lost = "records" if d.records is None else _count(d.records, "record")
    good = f"{_count(after, 'good record')} follow it" if after else "good records follow it"
    more = f" (and {len(scan.damaged) - 1} more damaged places)" if len(scan.damaged) > 1 else ""
    from .repair import default_out  # repair reads logs through this module

    run = run_folder_of(Path(log))
    return (f"{log}: damaged at byte {d.offset} ({d.reason}; {lost} unreadable) and {good}{more}; "
            "continuing would cut them off, so the log was left as it is. Write a repaired copy with "
            f"`learnboard repair {run}` and resume the copy: `learnboard train --resume {default_out(run)}`")
