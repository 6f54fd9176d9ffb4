"""Frames on the serial line: COBS(header + msgpack body + CRC-32) followed by 0x00.

A sender writes 0x00 before every frame too (``Encoder.finish(end, lead=True)``): bytes
inserted on the line (noise, a second program, a bootloader's text) then end at that
delimiter instead of merging into the frame, so they cost at most the frame they land in.

Layout before COBS (all header integers little-endian)::

    0  version   u8   (VERSION)
    1  type      u8   (REQ, OK, ERR, TLM, EVT)
    2  seq       u16  per-sender frame counter, wraps at 65536
    4  body      msgpack, one value
    -4 crc       u32  CRC-32/ISO-HDLC over version..body

Limits: at most MAX_RAW bytes before COBS and MAX_ENCODED between delimiters;
longer input is skipped up to the next 0x00 and counted, a frame that decodes to more
than MAX_RAW bytes is dropped and counted (``oversize``) too. Empty frames (two 0x00 in a
row) are ignored, so a sender may send a 0x00 to resynchronise the receiver.
"""

from . import cobs, mpack
from .crc import crc_into

VERSION = 5
OLD_VERSION = 1  # protocol-1 hosts: their requests get a protocol-1 ERR (server)
# protocol-2 and protocol-3 hosts (OLD_VERSION < v < VERSION): an ERR in their framing

REQ = 1  # host -> board: [id, command, args]
OK = 2  # board -> host: [id, result]
ERR = 3  # board -> host: [id, code, message, detail]
TLM = 4  # board -> host: telemetry map
EVT = 5  # board -> host: [name, data]

HEADER = 4
TRAILER = 4
MAX_ENCODED = 1024
MAX_RAW = 1016
MAX_BODY = MAX_RAW - HEADER - TRAILER
MIN_RAW = HEADER + 1 + TRAILER

_ZERO = b"\x00"


class _View:
    # A cached slice: ``obj`` is the memoryview it was cut from.
    def __init__(self, obj, n):
        self.obj = obj
        self.mv = obj[0:n]


class Encoder:
    """Builds frames in preallocated buffers; each result is valid until the next call."""

    def __init__(self, max_raw=MAX_RAW):
        self.raw = bytearray(max_raw)
        # out[0] is the leading delimiter, always 0; the COBS frame starts at out[1]
        self.out = bytearray(max_raw + max_raw // 254 + 3)
        self._out_mv = memoryview(self.out)
        self._cobs_mv = self._out_mv[1:]
        self.body_end = max_raw - TRAILER
        # Recently used slices of out, reused so frames of a recurring length
        # (telemetry) allocate nothing: MicroPython allocates every memoryview slice.
        self._lens = [-1] * 8
        self._views = [None] * 8
        self._next = 0

    def _view(self, mv, n):
        lens = self._lens
        for i in range(8):
            if lens[i] == n and self._views[i] is not None and self._views[i].obj is mv:
                return self._views[i]
        return self._new_view(mv, n)

    def _new_view(self, mv, n):
        i = self._next
        self._next = (i + 1) & 7
        v = _View(mv, n)
        self._lens[i] = n
        self._views[i] = v
        return v

    def begin(self, mtype, seq, version=VERSION):
        """Write the header; return the body's start offset (pack the body from there)."""
        raw = self.raw
        raw[0] = version
        raw[1] = mtype
        raw[2] = seq & 0xFF
        raw[3] = (seq >> 8) & 0xFF
        return HEADER

    def finish(self, end, lead=False):
        """Append the CRC to ``raw[0:end]``, COBS-encode, add the delimiter.

        Returns a memoryview of the encoded frame (trailing delimiter included); with
        ``lead`` the leading 0x00 too: what a sender writes to the line.
        """
        raw = self.raw
        crc_into(raw, end, raw, end)
        n = cobs.encode_into(raw, end + TRAILER, self._cobs_mv)
        self.out[n + 1] = 0
        if lead:
            return self._view(self._out_mv, n + 2).mv
        return self._view(self._cobs_mv, n + 1).mv

    def encode(self, mtype, seq, obj, lead=False):
        """Encode one message; raises ValueError when its body exceeds MAX_BODY."""
        pos = self.begin(mtype, seq)
        return self.finish(mpack.pack_into(self.raw, pos, obj, self.body_end), lead)

    def encode_packed(self, mtype, seq, body, lead=False):
        """Encode a frame around an already-packed msgpack ``body``."""
        pos = self.begin(mtype, seq)
        return self.finish(mpack.pack_raw(self.raw, pos, body, self.body_end), lead)


class Parser:
    """Incremental, bounded frame parser.

    ``feed(data)`` never raises and never grows memory beyond its two fixed buffers
    plus the decoded body of one frame at a time. Each good frame of an accepted
    type calls ``on_frame(mtype, seq, body)``; everything else is counted and dropped.
    ``crc`` holds a 30-bit key of the delivered frame's CRC (a retry key; the full CRC
    would be a heap int on a 32-bit board).
    """

    def __init__(self, on_frame, accept=(REQ,), max_encoded=MAX_ENCODED, max_raw=MAX_RAW):
        self.on_frame = on_frame
        self.max_raw = max_raw
        mask = 0
        for t in accept:
            mask |= 1 << t
        self.accept = mask
        self.rx = bytearray(max_encoded)
        self.raw = bytearray(max_encoded)
        self._crc = bytearray(TRAILER)
        self.n = 0
        self.skip = False
        self.crc = 0
        self.ok = 0  # good frames delivered
        self.bad_crc = 0
        self.bad_cobs = 0
        self.short = 0
        self.oversize = 0
        self.bad_version = 0
        self.bad_type = 0
        self.bad_body = 0
        self.internal = 0  # exceptions escaping on_frame or unusable input
        # on_old(version, seq, body): a good REQ frame of an older protocol (1 .. VERSION-1)
        # (counted as bad_version too)
        self.on_old = None

    def bad(self):
        """Total frames dropped for any reason."""
        return (self.bad_crc + self.bad_cobs + self.short + self.oversize
                + self.bad_version + self.bad_type + self.bad_body + self.internal)

    def reset(self):
        """Forget any partial frame."""
        self.n = 0
        self.skip = False

    def feed(self, data):
        """Consume received bytes (any bytes-like); deliver complete frames."""
        try:
            if hasattr(data, "find"):
                self._feed_find(data)
            else:
                self._feed_bytes(data)
        except Exception:
            self.internal += 1
            self.n = 0
            self.skip = True

    def _feed_bytes(self, data):
        rx = self.rx
        cap = len(rx)
        n = self.n
        for b in data:
            if b == 0:
                if self.skip:
                    self.skip = False
                elif n:
                    self.n = 0
                    self._frame(n)
                n = 0
            elif self.skip:
                pass
            elif n < cap:
                rx[n] = b
                n += 1
            else:
                self.skip = True
                self.oversize += 1
                n = 0
        self.n = n

    def _feed_find(self, data):
        rx = self.rx
        cap = len(rx)
        n = self.n
        i = 0
        size = len(data)
        while i < size:
            j = data.find(_ZERO, i)
            stop = size if j < 0 else j
            k = stop - i
            if k and not self.skip:
                if n + k <= cap:
                    rx[n:n + k] = data[i:stop]
                    n += k
                else:
                    self.skip = True
                    self.oversize += 1
                    n = 0
            if j < 0:
                break
            if self.skip:
                self.skip = False
            elif n:
                self.n = 0
                self._frame(n)
            n = 0
            i = j + 1
        self.n = n

    def _frame(self, n):
        raw = self.raw
        m = cobs.decode_into(self.rx, n, raw)
        if m < 0:
            self.bad_cobs += 1
            return
        if m < MIN_RAW:
            self.short += 1
            return
        if m > self.max_raw:  # the document's limit, even where the buffers would hold it
            self.oversize += 1
            return
        end = m - TRAILER
        c = self._crc
        crc_into(raw, end, c, 0)
        if c[0] != raw[end] or c[1] != raw[end + 1] or c[2] != raw[end + 2] or c[3] != raw[end + 3]:
            self.bad_crc += 1
            return
        if raw[0] != VERSION:
            self.bad_version += 1
            if OLD_VERSION <= raw[0] < VERSION and raw[1] == REQ \
                    and self.on_old is not None:
                self._old(raw, end)
            return
        mtype = raw[1]
        if mtype > 30 or not (self.accept >> mtype) & 1:
            self.bad_type += 1
            return
        try:
            body = mpack.unpack(raw, HEADER, end)
        except Exception:
            self.bad_body += 1
            return
        self.crc = c[0] | (c[1] << 8) | (c[2] << 16) | ((c[3] & 0x3F) << 24)
        self.ok += 1
        try:
            self.on_frame(mtype, raw[2] | (raw[3] << 8), body)
        except Exception:
            self.internal += 1

    def _old(self, raw, end):
        try:
            self.on_old(raw[0], raw[2] | (raw[3] << 8), mpack.unpack(raw, HEADER, end))
        except Exception:
            self.internal += 1
