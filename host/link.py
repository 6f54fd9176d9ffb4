"""Request/reply and telemetry over a byte transport (see docs/protocol.md).

``Link`` runs a reader thread that decodes frames from the transport: replies wake
the waiting ``request``, telemetry and events go to bounded queues. Every frame is
written with a 0x00 before it (:func:`codec.wire`): bytes inserted on the line since the
previous frame then form a bad frame of their own instead of spoiling this one. A request that
gets no reply in ``timeout`` seconds is sent again, byte for byte (same id, same
sequence number), up to ``retries`` times; the board answers a repeat from its reply
cache without running the command twice.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from learnboard.errors import LinkError

from . import codec
from .codec import MessageType
from .messages import ErrorCode
from .transport import FollowingSerialTransport, SerialTransport, Transport

ID_LIMIT = 1 << 30
"""Request ids stay below 2**30: small ints on 32-bit boards."""
RX_TAIL = 512
"""Bytes of raw input kept for :meth:`Link.repl_prompt`."""
REPL_STOP = b"\x03\x01"
"""Ctrl-C (interrupts a program, ends paste mode, clears a line) then Ctrl-A: MicroPython's
REPL in any mode is then at its raw REPL, where a probe's frames only fill a line that is
never run (:func:`repl_inert`). Written before the first frame of a link opened with
``stop_repl`` (flash, repl: commands that stop the firmware anyway); a learnboard firmware
takes the two bytes as noise before the frame's delimiter, a booting one is stopped."""
REPL_ACTIVE = b"\x02\x03\x04"
"""Ctrl-B (raw REPL -> friendly), Ctrl-C (clears the line) and Ctrl-D (runs the line; on an
empty friendly line a soft reset that starts main.py): kept out of probe frames."""
SEQ_SEARCH = 4096
REPL_POKE = b"\x03\x02"
"""Ctrl-C (clears a half-typed line, ends paste mode) then Ctrl-B (leaves the raw REPL; the
friendly REPL prints its banner): MicroPython's REPL answers ``>>> `` in every mode."""


def repl_inert(frame: bytes) -> bool:
    """Whether the encoded ``frame`` (delimiter included, no lead) does nothing at a
    MicroPython raw REPL but reset its line: no byte of :data:`REPL_ACTIVE` outside the
    version byte (older protocols' 2 and 4 are each followed by the type byte 1, Ctrl-A,
    which enters the raw REPL again), and no raw-paste request."""
    return _no_repl_keys(frame[:1] + frame[2:]) and b"\x05A\x01" not in frame


def _no_repl_keys(data: bytes) -> bool:
    return not any(b in data for b in REPL_ACTIVE)


def _inert_id(rid: int) -> int:
    """``rid`` if its msgpack bytes hold no 0x00 (COBS turns it into a code byte that may
    be 2-4) and no byte of :data:`REPL_ACTIVE`, else a random id that does not: random,
    as a link's first id, so that it cannot meet a reply the board cached for another
    link's request."""
    def inert(packed: bytes) -> bool:
        return 0 not in packed and _no_repl_keys(packed)

    while not inert(codec.pack_body(rid)):
        rid = random.randrange(1, ID_LIMIT // 2)
    return rid


def _no_reply(command: str, tries: int, timeout: float) -> str:
    return (f"no reply to {command!r} after {tries} tries of {timeout:g} s; "
            "is the board running the learnboard firmware on this port?")


class BoardError(LinkError):
    """The board answered a request with an error: ``code`` (an ``ErrorCode`` value),
    ``field`` (the argument or parameter at fault) and ``edge`` (the edge at fault), None
    when the board named none. Decide on these; ``message`` is the board's own text,
    for people."""

    def __init__(self, command: str, code: int, message: str, field: str | None = None,
                 edge: int | None = None):
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = f"code {code}"
        super().__init__(f"board refused {command!r}: {name}: {message}")
        self.command = command
        self.code = code
        self.message = message
        self.field = field
        self.edge = edge


class LinkTimeout(LinkError):
    """No reply after all retries."""


OLD_FIRMWARE = "the board runs protocol-1 firmware; run `learnboard flash` to update it"


def old_firmware_message(protocol: int) -> str:
    """What to tell about a board whose firmware speaks an older ``protocol``."""
    return f"the board runs protocol-{protocol} firmware; run `learnboard flash` to update it"


class OldFirmware(LinkError):
    """The board answered only in an older protocol (firmware older than this host)."""

    def __init__(self, message: str | None = None, protocol: int = codec.OLD_VERSION):
        super().__init__(old_firmware_message(protocol) if message is None else message)
        self.protocol = protocol


class TelemetryScale:
    """Turns telemetry's codes into volts with hello's ``scale`` (see protocol.toml):
    node codes ``v`` times ``scale["v"]``; edge codes ``k`` times ``scale["k"][e]``,
    except where that is 0 (a digipot's tap count, kept as int)."""

    def __init__(self, scale: Any):
        scale = scale if isinstance(scale, dict) else {}
        v = scale.get("v")
        k = scale.get("k")
        self.v = float(v) if isinstance(v, (int, float)) else None
        self.k = [float(x) for x in k] if isinstance(k, list) else None

    def apply(self, t: dict) -> dict:
        """``t`` with ``v`` and ``k`` in volts (taps stay taps); other keys unchanged."""
        v = t.get("v")
        if self.v is not None and isinstance(v, list):
            t["v"] = [c * self.v for c in v]
        k = t.get("k")
        if self.k is not None and isinstance(k, list) and len(k) == len(self.k):
            t["k"] = [c * s if s else c for c, s in zip(k, self.k, strict=True)]
        return t


@dataclass
class LinkStats:
    """Link-health counters of the host end."""

    tx_frames: int = 0
    rx_frames: int = 0
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    error_replies: int = 0
    late_replies: int = 0  # replies to no pending request (after a timeout, or duplicates)
    seq_gaps: int = 0  # board frames missing by sequence number
    telemetry_dropped: int = 0  # telemetry frames discarded because the queue was full
    rx_telemetry: int = 0  # telemetry frames decoded (queued or dropped)
    bad_crc: int = 0
    bad_cobs: int = 0
    short: int = 0
    oversize: int = 0
    bad_version: int = 0
    bad_type: int = 0
    bad_body: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _Pending:
    __slots__ = ("event", "frame")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.frame: codec.Frame | None = None


class Link:
    """The host end of a board link; use as a context manager or call ``close()``."""

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = 1.0,
        retries: int = 2,
        queue_size: int = 4096,
        first_id: int | None = None,
        stop_repl: bool = False,
    ):
        self.transport = transport
        self.timeout = timeout
        self.retries = retries
        # protocol-1 frames are decoded too: hello tells such a board apart (OldFirmware)
        self._decoder = codec.FrameDecoder(old_versions=codec.OLD_VERSIONS)
        self._old: collections.deque[codec.Frame] = collections.deque(maxlen=8)
        self._old_frames = 0  # older frames received in all: hello's probe counts them as silence
        self.scale: TelemetryScale | None = None
        self._rx_bytes = 0  # bytes received: hello's protocol-1 probe needs a silent line
        self._rx_tail = bytearray()  # the last bytes received, frames or not (repl_prompt)
        self._stats = LinkStats()
        self._lock = threading.Lock()
        self._tx_lock = threading.Lock()
        # A random first id keeps a new session from hitting replies cached by the last one.
        if first_id is not None and not (isinstance(first_id, int) and 0 < first_id < ID_LIMIT):
            raise ValueError(f"first_id {first_id!r}: request ids are ints in 1..{ID_LIMIT - 1}")
        self._next_id = first_id if first_id is not None else random.randrange(1, ID_LIMIT // 2)
        self._seq = 0
        self._last_rx_seq: int | None = None
        self._pending: dict[int, _Pending] = {}
        self._telemetry: collections.deque[dict] = collections.deque(maxlen=queue_size)
        self._events: collections.deque[tuple[str, Any]] = collections.deque(maxlen=queue_size)
        self._arrived = threading.Condition(self._lock)
        self._closed = False
        self._boot_told = False
        self._failure: BaseException | None = None
        # flush whatever partial frame the board's parser holds: a delimiter before the
        # first frame, in the same write (a board then sees one arrival, not two)
        self._lead = (REPL_STOP if stop_repl else b"") + b"\x00"
        self._board_spoke = getattr(transport, "board_spoke", None)
        if hasattr(transport, "on_replug"):
            transport.on_replug = self._replugged
        self._reader = threading.Thread(target=self._read_loop, name="learnboard-link", daemon=True)
        self._reader.start()

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, follow=None, **kwargs: Any) -> Link:
        """A link over a pyserial URL (a device path, ``socket://``, ``loop://``, ...).

        ``follow``: a function ``(old_url) -> new_url`` that finds the board again when its
        port drops (a reset, as USB does); the link then reopens it and queues a ``boot``
        event (:class:`~.transport.FollowingSerialTransport`)."""
        link_kwargs = {k: kwargs.pop(k) for k in ("timeout", "retries", "queue_size", "first_id", "stop_repl")
                       if k in kwargs}
        try:
            transport = (SerialTransport(url, baudrate=baudrate, **kwargs) if follow is None else
                         FollowingSerialTransport(url, follow, baudrate=baudrate, **kwargs))
        except Exception as exc:  # pyserial raises SerialException/ValueError/OSError
            if "exclusively lock" in str(exc):  # pyserial's `exclusive`: another program has the device
                raise LinkError(f"cannot open {url}: another program has it open for itself (mpremote, a "
                                "serial terminal, another learnboard); close that program and try again") from exc
            if "://" not in url and not os.path.exists(url):  # pyserial says it twice, with errno
                raise LinkError(f"cannot open {url}: no such port (the board is unplugged, or its emulator "
                                "stopped); check the port name (`learnboard ports` lists the boards "
                                "present)") from exc
            raise LinkError(f"cannot open {url}: {exc}. Check the port name "
                            "(`learnboard ports` lists them).") from exc
        return cls(transport, **link_kwargs)

    # -- requests ------------------------------------------------------------------

    def request(
        self,
        command: str,
        args: dict | None = None,
        *,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> Any:
        """Send ``command`` with ``args``; return the board's result.

        Raises BoardError when the board answers with an error, LinkTimeout when no
        reply came after the retries, LinkError when the link is down.
        """
        timeout = self.timeout if timeout is None else timeout
        retries = self.retries if retries is None else retries
        pending = _Pending()
        with self._lock:
            self._check_open()
            self._stats.requests += 1
            try:
                rid, frame = self._take_ids(command, args, codec.VERSION)
            except ValueError as exc:  # FrameTooLarge or an unencodable argument
                error: ValueError | None = exc
            else:
                error = None
                data = codec.wire(frame)
                self._pending[rid] = pending
        if error is not None:
            hint = "; send it in chunks" if isinstance(error, codec.FrameTooLarge) else ""
            raise LinkError(f"cannot send {command!r}: {error}{hint}") from error
        try:
            for attempt in range(retries + 1):
                if attempt:
                    with self._lock:
                        self._stats.retries += 1
                self._write(data)
                if pending.event.wait(timeout):
                    break
                if self._failure is not None:
                    raise LinkError(f"link failed: {self._failure}")
            else:
                with self._lock:
                    self._stats.timeouts += 1
                raise LinkTimeout(_no_reply(command, retries + 1, timeout))
        finally:
            with self._lock:
                self._pending.pop(rid, None)
        frame = pending.frame
        if frame is None:  # woken by the reader: the port went away (a reset, unplugged)
            raise LinkError(f"link failed: {self._failure}")
        if frame.mtype == MessageType.ERR:
            err = codec.decode_error(frame.body)  # checked by the reader already
            raise BoardError(command, err.code, err.message, err.field, err.edge)
        return frame.body[1]

    def call(self, command: str, **args: Any) -> Any:
        """``request(command, args)`` with the arguments as keywords."""
        return self.request(command, args)

    def hello(self, *, timeout: float | None = None, retries: int | None = None,
              probe_old: bool = False) -> dict:
        """The board's hello reply; keeps its ``scale`` so telemetry comes in volts.

        With ``probe_old``, when the first hello goes unanswered on a silent line (as older
        firmware keeps it; never into a REPL that echoes), one hello of each older protocol
        is sent, newest first, and OldFirmware is raised when one is answered with OK
        (firmware older than this host drops frames of this protocol). Unanswered, hello is
        asked its remaining ``retries`` times, then the older ones once more."""
        retries = self.retries if retries is None else retries
        info = (self._hello_or_old(timeout, retries) if probe_old else
                self.request("hello", timeout=timeout, retries=retries))
        if not isinstance(info, dict) or info.get("proto") != codec.VERSION:
            proto = info.get("proto") if isinstance(info, dict) else None
            raise LinkError(f"the board answers protocol {proto!r}, this host speaks "
                            f"{codec.VERSION}; run `learnboard flash` to update the firmware")
        self.scale = TelemetryScale(info.get("scale"))
        return info

    def _hello_or_old(self, timeout: float | None, retries: int) -> Any:
        # The older hellos go out right after the FIRST unanswered try, not after all of
        # them: an older firmware is up and silent, and its user hears "flash it" one
        # timeout later instead of retries + 2 timeouts. They go out once more after the
        # last try, for an older firmware that was still booting at the first probe (a slow
        # USB enumeration, a board busy booting), so a board of any protocol gets at least
        # the patience it had before. A board of this protocol answers an older hello with
        # an ERR in that framing: up by now, it is asked hello again.
        rx0, old0 = self._rx_bytes, self._old_frames
        rounds = (0, retries - 1) if retries > 0 else (0,)
        made = 0
        for n, tries in enumerate(rounds):
            try:
                return self.request("hello", timeout=timeout, retries=tries)
            except LinkTimeout:
                made += tries + 1
            # no older hello into a line that carried bytes but no frames (a REPL echoing)
            silent = self._rx_bytes == rx0 or bool(self._old) or self._old_frames != old0
            old = self._probe_old(timeout) if silent else None
            if old is not None:
                break
            if n == len(rounds) - 1:
                raise LinkTimeout(_no_reply("hello", made, self.timeout if timeout is None else timeout))
        if old.mtype == MessageType.OK:  # older firmware answers hello with OK
            raise OldFirmware(protocol=old.version)
        return self.request("hello", timeout=timeout, retries=retries)

    def _probe_old(self, timeout: float | None) -> codec.Frame | None:
        """One hello in each older protocol, sent together; the first OK reply, else an ERR
        reply (a board of this protocol), else None when none came within ``timeout`` s."""
        timeout = self.timeout if timeout is None else timeout
        versions = sorted(codec.OLD_VERSIONS, reverse=True)
        with self._lock:
            self._old.clear()
        rids = {self._send_old("hello", None, v): v for v in versions}
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                replies = [f for f in self._old if self._is_reply(f, rids)]
                ok = [f for f in replies if f.mtype == MessageType.OK]
                if ok:
                    return ok[0]
                remaining = deadline - time.monotonic()
                if len(replies) == len(rids) or remaining <= 0 or self._closed:
                    return replies[0] if replies else None
                self._arrived.wait(remaining)

    @staticmethod
    def _is_reply(frame: codec.Frame, rids: dict[int, int]) -> bool:
        body = frame.body
        return (frame.mtype in (MessageType.OK, MessageType.ERR) and isinstance(body, list)
                and bool(body) and rids.get(body[0]) == frame.version)

    def _send_old(self, command: str, args: dict | None, version: int) -> int:
        """Write one request in an older protocol ``version``; its request id."""
        with self._lock:
            self._check_open()
            rid, data = self._take_ids(command, args, version)
        self._write(data)
        return rid

    def _take_ids(self, command: str, args: dict | None, version: int) -> tuple[int, bytes]:
        """The next request id and sequence number, and the request's frame. For hello
        (the probe, sent before the link knows what is on the port) the next ones whose
        frame is :func:`repl_inert`, so a board sitting at its REPL is never soft-reset
        into main.py by it. Call with ``_lock`` held."""

        def encode(rid: int, seq: int) -> bytes:
            return codec.encode_frame(MessageType.REQ, seq, [rid, command, args or {}], version=version)

        def after(rid: int) -> int:
            return rid + 1 if rid + 1 < ID_LIMIT else 1

        rid, seq = self._next_id, self._seq
        if command == "hello":
            rid = _inert_id(rid)  # no sequence number can mend the id's own bytes
            seqs = ((self._seq + n) & 0xFFFF for n in range(SEQ_SEARCH))
            seq = next((s for s in seqs if repl_inert(encode(rid, s))), seq)
        self._next_id = after(rid)
        self._seq = (seq + 1) & 0xFFFF
        return rid, encode(rid, seq)

    def request_old(self, command: str, args: dict | None = None, *,
                    timeout: float | None = None,
                    version: int = codec.OLD_VERSION) -> codec.Frame | None:
        """Send one request in an older protocol ``version`` (a board with older firmware
        understands only these: to recognise it, or to make it leave binary mode for
        flashing); its reply frame in that version, or None when none came within
        ``timeout`` s."""
        timeout = self.timeout if timeout is None else timeout
        with self._lock:
            self._old.clear()
        rids = {self._send_old(command, args, version): version}
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                for frame in self._old:
                    if self._is_reply(frame, rids):
                        return frame
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return None
                self._arrived.wait(remaining)

    def repl_prompt(self, wait: float = 1.0) -> bool:
        """Whether MicroPython's REPL, not a firmware, answers on the line: sends
        :data:`REPL_POKE` and waits up to ``wait`` s for its ``>>>`` prompt. Call it only
        after hello went unanswered: a learnboard firmware takes the two bytes as noise
        between frames, but a program that keeps Ctrl-C on is interrupted, as by mpremote."""
        self._rx_tail = bytearray()
        try:
            with self._tx_lock:
                self.transport.write(REPL_POKE)
        except OSError:
            return False
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if b">>> " in self._rx_tail:
                return True
            if self._failure is not None:
                return False
            time.sleep(0.02)
        return b">>> " in self._rx_tail

    # -- unsolicited frames ------------------------------------------------------------

    def next_telemetry(self, timeout: float | None = None) -> dict | None:
        """The oldest queued telemetry frame, waiting up to ``timeout`` s (None: forever)."""
        return self._pop(self._telemetry, timeout)

    def telemetry(self, timeout: float | None = None) -> Iterator[dict]:
        """Telemetry frames as they arrive; stops after ``timeout`` s without one."""
        while True:
            item = self.next_telemetry(timeout)
            if item is None:
                return
            yield item

    def next_event(self, timeout: float | None = None) -> tuple[str, Any] | None:
        """The oldest queued event ``(name, data)``, waiting up to ``timeout`` s."""
        return self._pop(self._events, timeout)

    @property
    def stats(self) -> LinkStats:
        """A snapshot of the host-side counters."""
        with self._lock:
            snapshot = LinkStats(**asdict(self._stats))
        for name, value in asdict(self._decoder.stats).items():
            if name != "ok":
                setattr(snapshot, name, value)
        return snapshot

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Stop the reader and close the transport."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._arrived.notify_all()
        self._reader.join(timeout=2)
        self.transport.close()

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise LinkError("link is closed")
        if self._failure is not None:
            raise LinkError(f"link failed: {self._failure}")

    def _write(self, data: bytes) -> None:
        try:
            with self._tx_lock:
                lead, self._lead = self._lead, b""
                self.transport.write(lead + data)
        except OSError as exc:
            raise LinkError(f"cannot write to the board: {exc}") from exc
        with self._lock:
            self._stats.tx_frames += 1

    def _pop(self, queue: collections.deque, timeout: float | None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._arrived:
            while not queue:
                if self._closed:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._arrived.wait(remaining)
            return queue.popleft()

    def _replugged(self, url: str) -> None:
        """The transport found the board again on ``url`` after its port dropped: the
        board reset, and its own ``boot`` event went out while nobody listened."""
        with self._lock:
            self._last_rx_seq = None
            self._events.append(("boot", {"replug": url}))
            self._boot_told = True  # the board's own boot event, if heard, is the same reset
            self._arrived.notify_all()

    def _read_loop(self) -> None:
        while not self._closed:
            try:
                data = self.transport.read(4096)
            except Exception as exc:  # the port vanished (unplugged board, closed pipe)
                if not self._closed:
                    self._failure = exc
                    for pending in list(self._pending.values()):
                        pending.event.set()
                return
            if data:
                self._rx_bytes += len(data)
                tail = self._rx_tail
                tail += data
                del tail[:-RX_TAIL]
                for frame in self._decoder.feed(data):
                    self._dispatch(frame)

    def _dispatch(self, frame: codec.Frame) -> None:
        with self._lock:
            if frame.version != codec.VERSION:  # older firmware (see request_old)
                self._old.append(frame)
                self._old_frames += 1
                self._arrived.notify_all()
                return
            stats = self._stats
            stats.rx_frames += 1
            last = self._last_rx_seq
            if last is not None and frame.seq != 0:
                stats.seq_gaps += (frame.seq - last - 1) & 0xFFFF
            self._last_rx_seq = frame.seq
            body = frame.body
            if self._board_spoke is not None:  # a following transport holds writes until then
                self._board_spoke()
            # after a replug the board's first frame may be the boot event already told
            told, self._boot_told = self._boot_told, False
            if frame.mtype in (MessageType.OK, MessageType.ERR):
                if frame.mtype == MessageType.OK:
                    good = isinstance(body, list) and len(body) == 2
                else:
                    try:
                        codec.decode_error(body)
                        good = True
                    except ValueError:
                        good = False
                if not good:
                    self._decoder.stats.bad_body += 1
                    return
                if frame.mtype == MessageType.ERR:
                    stats.error_replies += 1
                rid = body[0]
                pending = self._pending.get(rid) if isinstance(rid, int) else None
                if pending is None or pending.frame is not None:
                    stats.late_replies += 1
                    return
                pending.frame = frame
                pending.event.set()
            elif frame.mtype == MessageType.TLM:
                if not isinstance(body, dict):  # a reader does t.get(...): only maps pass
                    self._decoder.stats.bad_body += 1
                    return
                stats.rx_telemetry += 1
                if len(self._telemetry) == self._telemetry.maxlen:
                    stats.telemetry_dropped += 1
                if self.scale is not None:  # codes to volts at the boundary
                    body = self.scale.apply(body)
                self._telemetry.append(body)
                self._arrived.notify_all()
            elif frame.mtype == MessageType.EVT:
                if isinstance(body, list) and len(body) == 2 and isinstance(body[0], str):
                    if body[0] == "boot" and told:
                        return
                    self._events.append((body[0], body[1]))
                    self._arrived.notify_all()
                else:
                    self._decoder.stats.bad_body += 1
