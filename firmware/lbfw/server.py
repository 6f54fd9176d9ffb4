"""The board's request/reply layer over any byte port.

The application owns the main loop and calls ``poll()`` often; the server reads what
the port has, parses frames, runs the handler for each request, and replies exactly
once per request id (1 ... ID_MAX; any other id is refused with BAD_REQUEST and a nil
id, as it cannot be echoed safely). A retried request (same id and same bytes) is
answered from a small cache of recent replies and not executed again. ``telemetry()``
and ``event()`` send unsolicited frames; an event raised while a handler runs is held
until that request's reply has gone out, so a reply always precedes its after-effects.
Every frame goes out with a 0x00 before it (see ``frame``).

A port is any object with a non-blocking ``read()`` returning a bytes-like object or
None, and ``write(data)``. A handler is ``fn(args: dict) -> result`` (any msgpack
value); it raises ``Fail(code, message, field, edge)`` to answer with an error: the
reply ``[id, code, message, detail]`` carries in ``detail`` the argument (``field``) and
the edge (``edge``) at fault when the handler names them.
"""

import sys

from . import consts, frame, mpack, msgs

try:
    from time import ticks_diff, ticks_ms
except ImportError:  # CPython: a Server made without the App's clock (protocol tests)
    from time import monotonic as _mono

    def ticks_ms():
        return int(_mono() * 1000) & 0x3FFFFFFF

    def ticks_diff(a, b):
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000

_MAX_MESSAGE = 120
_OLD_HOST = "board speaks protocol 5; update learnboard on the host"
ID_MAX = 0x3FFFFFFF  # request ids are 1 ... 2**30 - 1: small ints on a 32-bit board
_MAX_FIELD = 32  # an argument name echoed back (an unknown one may be long)

# Telemetry keys, packed once so a telemetry frame packs no strings.
_TKEYS = tuple(mpack.packb(k) for k in msgs.TELEMETRY_KEYS)
_TK_V = mpack.packb("v")
_TK_K = mpack.packb("k")
_TK_PM = mpack.packb(msgs.TELEMETRY_OPTIONAL[2])
_TK_PC = mpack.packb(msgs.TELEMETRY_OPTIONAL[3])


class Fail(Exception):
    """Raise from a handler to reply with an error ``code`` (``consts.E_*``) and a
    message; ``field`` names the request argument or parameter at fault, ``edge`` the
    edge (the host decides on these, never on the message)."""

    def __init__(self, code, message="", field=None, edge=None):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.field = field
        self.edge = edge


class Telemetry:
    """The fields of one telemetry frame (units in docs/protocol.md)."""

    def __init__(self):
        self.step = 0
        self.err = 0.0
        self.pwr = 0.0
        self.lam = 0.0
        self.n = 0
        self.dt = 0
        self.dtmax = 0
        self.flt = 0
        self.v = None
        self.k = None
        self.pm = None  # measured power (W) from a current monitor, None without one
        self.pc = None  # the clamped network's part of pwr (W); None on single-network boards


class Server:
    """Request/reply and telemetry over ``port``; see the module docstring."""

    def __init__(self, port, handlers, info=None, cache_size=4, ticks_ms=ticks_ms):
        self.port = port
        # the App's clock (the board's time module, or the emulator's virtual clock)
        self.ticks_ms = ticks_ms
        self.handlers = handlers
        self.info = info or {}
        self.enc = frame.Encoder()
        self.parser = frame.Parser(self._on_frame, (frame.REQ,))
        self.parser.on_old = self._on_old
        self.seq = 0
        self.requests = 0  # requests executed
        self.retries = 0  # retried requests answered from the cache
        self.errors = 0  # ERR replies sent
        self.tx_frames = 0
        self.tx_dropped = 0  # frames not sent: too big or the port failed
        self.bad_seen = 0  # parser.bad() at the previous telemetry frame
        self.last_rx = self.ticks_ms()
        self.tlm = Telemetry()
        self._pos = 0
        self._deferred = []
        self._holding = False  # a handler runs: its events wait for its reply
        self._held = []
        self._c_id = [None] * cache_size
        self._c_crc = [0] * cache_size
        self._c_type = bytearray(cache_size)
        self._c_body = [None] * cache_size
        self._c_next = 0

    # -- application API -------------------------------------------------------------

    def poll(self):
        """Read and handle whatever the port has; return the number of requests answered.

        Actions registered with ``defer`` run here, after their reply went out.
        """
        before = self.requests + self.retries + self.errors
        try:
            data = self.port.read()
        except OSError:
            data = None
        if data:
            self.parser.feed(data)
        if self._deferred:
            fns = self._deferred
            self._deferred = []
            for fn in fns:
                fn()
        return self.requests + self.retries + self.errors - before

    def defer(self, fn):
        """Run ``fn()`` once the current reply is sent (reboot, reset, leave binary mode);
        several requests in one read may each defer one."""
        self._deferred.append(fn)

    def silent_ms(self):
        """Milliseconds since the last good frame from the host."""
        return ticks_diff(self.ticks_ms(), self.last_rx)

    def telemetry(self, step, err, pwr, lam, n=0, dt=0, dtmax=0, flt=0, v=None, k=None):
        """Fill ``self.tlm`` and send it (units in docs/protocol.md); False if dropped.

        Convenient but this call's own frame is heap-allocated (11 arguments); a hot
        loop sets the fields of ``self.tlm`` and calls ``send_telemetry()`` instead.
        """
        t = self.tlm
        t.step = step
        t.err = err
        t.pwr = pwr
        t.lam = lam
        t.n = n
        t.dt = dt
        t.dtmax = dtmax
        t.flt = flt
        t.v = v
        t.k = k
        return self.send_telemetry()

    def send_telemetry(self):
        """Send the current ``self.tlm`` record as a telemetry frame; False if dropped.

        ``tlm.v`` (node voltages) and ``tlm.k`` (edge states) are optional flat
        sequences (list, tuple or array), None to leave them out; pass decimated ones
        so the frame stays small. The server adds ``t`` and ``bad`` and sets F_RX_BAD
        in ``flt`` when bad frames arrived since the previous frame. Numbers and flat
        sequences are packed without allocating; the CRC and COBS buffers are reused.
        """
        try:
            self._pack_tlm(self._flags())
        except ValueError:
            self.tx_dropped += 1
            return False
        return self._send(self.enc.finish(self._pos, True))

    def _flags(self):
        flt = self.tlm.flt
        bad = self.parser.bad()
        if bad != self.bad_seen:
            flt |= consts.F_RX_BAD
            self.bad_seen = bad
        return flt

    def _pack_tlm(self, flt):
        t = self.tlm
        self._pos = self.enc.begin(frame.TLM, self.seq)
        self._head(10 + (t.v is not None) + (t.k is not None) + (t.pm is not None)
                   + (t.pc is not None))
        self._kv(0, self.ticks_ms())
        self._kv(1, t.step)
        self._kv(2, t.err)
        self._kv(3, t.pwr)
        self._kv(4, t.lam)
        self._kv(5, t.n)
        self._kv(6, t.dt)
        self._kv(7, t.dtmax)
        self._kv(8, flt)
        self._kv(9, self.bad_seen)
        if t.v is not None:
            self._kseq(_TK_V, t.v)
        if t.k is not None:
            self._kseq(_TK_K, t.k)
        if t.pm is not None:
            raw = self.enc.raw
            pos = mpack.pack_raw(raw, self._pos, _TK_PM, self.enc.body_end)
            self._pos = mpack.pack_value(raw, pos, t.pm, self.enc.body_end)
        if t.pc is not None:
            raw = self.enc.raw
            pos = mpack.pack_raw(raw, self._pos, _TK_PC, self.enc.body_end)
            self._pos = mpack.pack_value(raw, pos, t.pc, self.enc.body_end)

    # Small helpers keep each call frame within MicroPython's on-stack limit.
    def _head(self, n):
        self._pos = mpack.map_header(self.enc.raw, self._pos, n, self.enc.body_end)

    def _kv(self, i, value):
        raw = self.enc.raw
        pos = mpack.pack_raw(raw, self._pos, _TKEYS[i], self.enc.body_end)
        self._pos = mpack.pack_value(raw, pos, value, self.enc.body_end)

    def _kseq(self, key, seq):
        raw = self.enc.raw
        pos = mpack.pack_raw(raw, self._pos, key, self.enc.body_end)
        self._pos = mpack.pack_numbers(raw, pos, seq, self.enc.body_end)

    def event(self, name, data=None):
        """Send an unsolicited event ``[name, data]`` (msgs.EV_*); False if dropped.

        Raised by a request's handler, it is sent after that request's reply."""
        if self._holding:
            self._held.append((name, data))
            return True
        try:
            out = self.enc.encode(frame.EVT, self.seq, (name, data), True)
        except ValueError:
            self.tx_dropped += 1
            return False
        return self._send(out)

    def counters(self):
        """Link-health counters (the ``stats`` reply)."""
        p = self.parser
        return {
            "rx_ok": p.ok, "bad_crc": p.bad_crc, "bad_cobs": p.bad_cobs, "short": p.short,
            "oversize": p.oversize, "bad_version": p.bad_version, "bad_type": p.bad_type,
            "bad_body": p.bad_body, "internal": p.internal, "bad": p.bad(),
            "requests": self.requests, "retries": self.retries, "errors": self.errors,
            "tx_frames": self.tx_frames, "tx_dropped": self.tx_dropped,
        }

    def hello(self, args=None):
        """The ``hello`` reply: protocol facts, then ``info``, then the app's hello handler."""
        impl = sys.implementation
        out = {
            "proto": frame.VERSION,
            "impl": impl.name,
            "mpy": getattr(impl, "_mpy", None),
            "max_frame": frame.MAX_ENCODED,
            "max_body": frame.MAX_BODY,
        }
        for key in self.info:
            out[key] = self.info[key]
        fn = self.handlers.get(msgs.HELLO)
        if fn is not None:
            extra = fn(args or {})
            for key in extra:
                out[key] = extra[key]
        return out

    # -- internals -------------------------------------------------------------------

    def _send(self, data):
        try:
            self.port.write(data)
        except OSError:
            self.tx_dropped += 1
            return False
        self.seq = (self.seq + 1) & 0xFFFF
        self.tx_frames += 1
        return True

    def _on_frame(self, mtype, seq, body):
        self.last_rx = self.ticks_ms()
        self._holding = True
        try:
            self._request(body)
        finally:
            self._holding = False
            held = self._held
            while held:
                ev = held.pop(0)
                self.event(ev[0], ev[1])

    def _request(self, body):
        if type(body) is not list or len(body) != 3:
            rid = None
            if type(body) is list and len(body) > 0 and _valid_id(body[0]):
                rid = body[0]
            self._reply_error(rid, consts.E_BAD_REQUEST, "request must be [id, command, args]")
            return
        rid = body[0]
        if not _valid_id(rid):
            self._reply_error(None, consts.E_BAD_REQUEST, "request id %s: must be an int in 1..%d"
                              % (repr(rid)[:24], ID_MAX), field="id")
            return
        key = self.parser.crc
        cache = self._c_id
        for i in range(len(cache)):
            if cache[i] == rid and self._c_crc[i] == key:
                self.retries += 1
                self._send(self.enc.encode_packed(self._c_type[i], self.seq, self._c_body[i], True))
                return
        cmd = body[1]
        args = body[2]
        if args is None:
            args = {}
        if type(cmd) is not str or type(args) is not dict:
            self._reply_error(rid, consts.E_BAD_REQUEST, "command must be a str, args a map",
                             field="command" if type(cmd) is not str else "args")
            return
        if cmd == msgs.HELLO:
            fn = self.hello
        elif cmd == msgs.STATS:
            fn = self._stats
        else:
            fn = self.handlers.get(cmd)
        if fn is None:
            self._reply_error(rid, consts.E_UNKNOWN_COMMAND, "unknown command: " + cmd, key)
            return
        self.requests += 1
        try:
            result = fn(args)
        except Fail as e:
            self._reply_error(rid, e.code, e.message, key, e.field, e.edge)
            return
        except Exception as e:
            self._reply_error(rid, consts.E_INTERNAL, type(e).__name__ + ": " + str(e), key)
            return
        enc = self.enc
        raw = enc.raw
        end = enc.body_end
        try:
            pos = enc.begin(frame.OK, self.seq)
            pos = mpack.array_header(raw, pos, 2, end)
            pos = mpack.pack_int(raw, pos, rid, end)
            pos = mpack.pack_into(raw, pos, result, end)
        except ValueError:
            self._reply_error(rid, consts.E_TOO_BIG, "reply does not fit a frame", key)
            return
        self._remember(rid, key, frame.OK, raw, pos)
        self._send(enc.finish(pos, True))

    def _stats(self, args):
        return self.counters()

    def _on_old(self, version, seq, body):
        # An older host (protocol 1, 2 or 3): answer in its framing and its ERR shape
        # (protocol 1: [id, code, message]; 2 and 3: [id, code, message, detail]), so
        # it reports this instead of a silent timeout. Nothing is executed.
        if type(body) is not list or len(body) != 3 or type(body[0]) is not int:
            return
        enc = self.enc
        if version == frame.OLD_VERSION:
            reply = (body[0], consts.E_UNSUPPORTED, _OLD_HOST)
        else:
            reply = (body[0], consts.E_UNSUPPORTED, _OLD_HOST, {})
        try:
            pos = enc.begin(frame.ERR, self.seq, version)
            pos = mpack.pack_into(enc.raw, pos, reply, enc.body_end)
        except ValueError:
            return
        self._send(enc.finish(pos, True))

    def _reply_error(self, rid, code, message, key=None, field=None, edge=None):
        self.errors += 1
        if len(message) > _MAX_MESSAGE:
            message = message[:_MAX_MESSAGE]
        detail = {}
        if type(field) is str:
            detail["field"] = field[:_MAX_FIELD]
        if type(edge) is int:
            detail["edge"] = edge
        enc = self.enc
        raw = enc.raw
        try:
            pos = enc.begin(frame.ERR, self.seq)
            pos = mpack.pack_into(raw, pos, (rid, code, message, detail), enc.body_end)
        except ValueError:
            pos = enc.begin(frame.ERR, self.seq)
            pos = mpack.pack_into(raw, pos, (None, code, "", {}), enc.body_end)
        if key is not None and rid is not None:
            self._remember(rid, key, frame.ERR, raw, pos)
        self._send(enc.finish(pos, True))

    def _remember(self, rid, key, mtype, raw, end):
        i = self._c_next
        self._c_id[i] = rid
        self._c_crc[i] = key
        self._c_type[i] = mtype
        self._c_body[i] = bytes(raw[frame.HEADER:end])
        self._c_next = (i + 1) % len(self._c_id)


def _valid_id(x):
    return type(x) is int and 0 < x <= ID_MAX
