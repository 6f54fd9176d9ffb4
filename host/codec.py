"""Host end of the frame format (see docs/protocol.md), using the standard ``msgpack``.

A frame is ``COBS(header + msgpack body + CRC-32) + 0x00`` with a 4-byte header
(version, type, little-endian u16 sequence number) and a little-endian CRC-32 over
header and body. A sender writes ``0x00`` before every frame as well (:func:`wire`), so
bytes inserted on the line end at a delimiter and cost at most the frame they land in. This module is byte-compatible with the firmware's
``lbfw.frame``; the test vectors of docs/protocol.md are checked on both.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import msgpack

VERSION = 5
OLD_VERSION = 1
"""Protocol-1 firmware's version byte: the link recognises such a board (see Link.hello)."""
PREV_VERSION = 2
"""Protocol-2 firmware's version byte (no board identity in hello): recognised the same way."""
V3_VERSION = 3
"""Protocol-3 firmware's version byte (power of the free network only): recognised the same way."""
V4_VERSION = 4
"""Protocol-4 firmware's version byte (no null offset): recognised the same way."""
OLD_VERSIONS = frozenset({OLD_VERSION, PREV_VERSION, V3_VERSION, V4_VERSION})
HEADER = 4
TRAILER = 4
MAX_ENCODED = 1024
"""Most bytes between two delimiters."""
MAX_RAW = 1016
"""Most bytes of header + body + CRC before COBS."""
MAX_BODY = MAX_RAW - HEADER - TRAILER
MIN_RAW = HEADER + 1 + TRAILER


class MessageType(IntEnum):
    """The frame's type byte."""

    REQ = 1
    OK = 2
    ERR = 3
    TLM = 4
    EVT = 5


class FrameError(ValueError):
    """A frame that cannot be decoded; ``reason`` names the counter it goes to."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class FrameTooLarge(ValueError):
    """A message whose body exceeds MAX_BODY bytes."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame."""

    mtype: int
    seq: int
    body: Any
    version: int = VERSION


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode ``data``; a final full 254-byte block gets no trailing code byte."""
    out = bytearray()
    chunks = bytes(data).split(b"\x00")
    last = len(chunks) - 1
    for index, chunk in enumerate(chunks):
        pos, size = 0, len(chunk)
        while size - pos >= 254:
            out.append(0xFF)
            out += chunk[pos : pos + 254]
            pos += 254
        if index == last and size and pos == size:
            break
        out.append(size - pos + 1)
        out += chunk[pos:]
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Decode one COBS block sequence (no delimiter); raises FrameError when malformed."""
    out = bytearray()
    i, size = 0, len(data)
    while i < size:
        code = data[i]
        if code == 0 or i + code > size:
            raise FrameError("bad_cobs", f"malformed COBS at byte {i}")
        out += data[i + 1 : i + code]
        i += code
        if code < 0xFF and i < size:
            out.append(0)
    return bytes(out)


def pack_body(body: Any) -> bytes:
    """msgpack exactly as the firmware packs it: bin type for bytes, float32 floats.

    Raises ValueError for values msgpack cannot carry (floats beyond float32 included).
    """
    try:
        return msgpack.packb(body, use_bin_type=True, use_single_float=True)
    except (TypeError, OverflowError) as exc:
        raise ValueError(f"cannot encode {body!r:.80}: {exc}") from exc


def encode_packed(mtype: int, seq: int, packed: bytes, version: int = VERSION) -> bytes:
    """Frame an already-packed body: returns COBS bytes plus the 0x00 delimiter."""
    if len(packed) > MAX_BODY:
        raise FrameTooLarge(f"message body is {len(packed)} bytes; the limit is {MAX_BODY}")
    raw = struct.pack("<BBH", version, int(mtype), seq & 0xFFFF) + packed
    raw += struct.pack("<I", zlib.crc32(raw))
    return cobs_encode(raw) + b"\x00"


def encode_frame(mtype: int, seq: int, body: Any, version: int = VERSION) -> bytes:
    """Encode one message as a complete frame (delimiter included); ``version`` other
    than VERSION only to talk to older firmware (OLD_VERSIONS)."""
    return encode_packed(mtype, seq, pack_body(body), version)


def wire(frame: bytes) -> bytes:
    """What a sender writes for an encoded ``frame``: a 0x00 first, then the frame."""
    return b"\x00" + frame


def decode_frame(encoded: bytes, accept: frozenset[int] | None = None,
                 old_versions: frozenset[int] = frozenset()) -> Frame:
    """Decode one frame given without its delimiter; raises FrameError. A frame of a
    version in ``old_versions`` is decoded too (its ``version`` says which)."""
    if len(encoded) > MAX_ENCODED:
        raise FrameError("oversize", f"frame of {len(encoded)} bytes exceeds {MAX_ENCODED}")
    raw = cobs_decode(encoded)
    if len(raw) < MIN_RAW:
        raise FrameError("short", f"frame of {len(raw)} bytes is shorter than {MIN_RAW}")
    if len(raw) > MAX_RAW:
        raise FrameError("oversize", f"frame decodes to {len(raw)} bytes; the limit is {MAX_RAW}")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - TRAILER)
    if zlib.crc32(raw[:-TRAILER]) != crc:
        raise FrameError("bad_crc", "CRC mismatch")
    version, mtype, seq = struct.unpack_from("<BBH", raw)
    if version != VERSION and version not in old_versions:
        raise FrameError("bad_version", f"protocol version {version}, expected {VERSION}")
    if accept is not None and mtype not in accept:
        raise FrameError("bad_type", f"unexpected message type {mtype}")
    try:
        body = msgpack.unpackb(raw[HEADER:-TRAILER], raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types
        raise FrameError("bad_body", f"undecodable body: {exc}") from exc
    return Frame(mtype, seq, body, version)


@dataclass(frozen=True)
class ErrorReply:
    """The body of an ERR frame: the request id, the code (``messages.ErrorCode``), the
    board's message and, from its ``detail`` map, the argument (``field``) and edge at
    fault (None when the board named none)."""

    rid: int | None
    code: int
    message: str
    field: str | None = None
    edge: int | None = None


def decode_error(body: Any) -> ErrorReply:
    """An ERR body ``[id, code, message, detail]``; the ``[id, code, message]`` of
    protocol-1 firmware is accepted too (so an old board's refusal of the version check
    can be read). Raises ValueError for any other shape."""
    if not isinstance(body, list) or len(body) not in (3, 4):
        raise ValueError(f"an error reply is [id, code, message, detail], not {body!r:.80}")
    rid, code, message = body[0], body[1], body[2]
    detail = body[3] if len(body) == 4 else {}
    if rid is not None and (not isinstance(rid, int) or isinstance(rid, bool)):
        raise ValueError(f"error reply id {rid!r:.40} is not an int")
    if not isinstance(code, int) or isinstance(code, bool):
        raise ValueError(f"error reply code {code!r:.40} is not an int")
    if not isinstance(message, str) or not isinstance(detail, dict):
        raise ValueError("error reply message must be a str and detail a map")
    fld = detail.get("field")
    edge = detail.get("edge")
    if fld is not None and not isinstance(fld, str):
        raise ValueError(f"error reply detail.field {fld!r:.40} is not a str")
    if edge is not None and (not isinstance(edge, int) or isinstance(edge, bool)):
        raise ValueError(f"error reply detail.edge {edge!r:.40} is not an int")
    return ErrorReply(rid, code, message, fld, edge)


BOARD_TYPES = frozenset({MessageType.OK, MessageType.ERR, MessageType.TLM, MessageType.EVT})
"""Frame types a board sends."""


@dataclass
class DecoderStats:
    """Frames decoded and dropped, by reason (same names as the firmware's counters)."""

    ok: int = 0
    bad_crc: int = 0
    bad_cobs: int = 0
    short: int = 0
    oversize: int = 0
    bad_version: int = 0
    bad_type: int = 0
    bad_body: int = 0

    def bad(self) -> int:
        """Total frames dropped."""
        return (
            self.bad_crc + self.bad_cobs + self.short + self.oversize
            + self.bad_version + self.bad_type + self.bad_body
        )


@dataclass
class FrameDecoder:
    """Incremental decoder: ``feed(bytes)`` returns the complete good frames, in order.

    Frames of a version in ``old_versions`` are returned too but counted as
    ``bad_version`` (they are not part of this protocol's traffic)."""

    accept: frozenset[int] | None = BOARD_TYPES
    old_versions: frozenset[int] = frozenset()
    stats: DecoderStats = field(default_factory=DecoderStats)
    _buf: bytearray = field(default_factory=bytearray)
    _skip: bool = False

    def reset(self) -> None:
        """Forget any partial frame."""
        self._buf.clear()
        self._skip = False

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        start = 0
        while True:
            zero = data.find(b"\x00", start)
            piece = data[start:] if zero < 0 else data[start:zero]
            if not self._skip:
                if len(self._buf) + len(piece) > MAX_ENCODED:
                    self._skip = True
                    self._buf.clear()
                    self.stats.oversize += 1
                else:
                    self._buf += piece
            if zero < 0:
                return frames
            if self._skip:
                self._skip = False
            elif self._buf:
                try:
                    frame = decode_frame(bytes(self._buf), self.accept, self.old_versions)
                    frames.append(frame)
                    if frame.version == VERSION:
                        self.stats.ok += 1
                    else:
                        self.stats.bad_version += 1
                except FrameError as exc:
                    setattr(self.stats, exc.reason, getattr(self.stats, exc.reason) + 1)
                self._buf.clear()
            start = zero + 1
