"""The protocol's limits as docs/protocol.md writes them, enforced by the firmware in the
real MicroPython VM (both VMs): a body of at most 1,008 bytes (1,016 raw), request ids
1 ... 2^30 - 1, a 0x00 before every frame, and every reply before the events its
command causes (``park``) — the last on the emulated board."""

from __future__ import annotations

import contextlib
import os
import threading

import msgpack
import pytest
from learnboard.host import codec
from learnboard.host.codec import MessageType
from learnboard.host.link import Link
from learnboard.host.messages import ErrorCode
from learnboard.host.transport import FdTransport

from ._protocol_vm import SERVER_MAIN, spawn_vm

pytestmark = pytest.mark.vm


class Recorder:
    """A transport that also keeps every board frame, in arrival order."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.frames: list[codec.Frame] = []
        self.raw = bytearray()
        self._dec = codec.FrameDecoder()
        self._cond = threading.Condition()

    def read(self, size: int = 4096) -> bytes:
        data = self.inner.read(size)
        if data:
            with self._cond:
                self.raw += data
                self.frames += self._dec.feed(data)
                self._cond.notify_all()
        return data

    def write(self, data: bytes) -> None:
        self.inner.write(data)

    def close(self) -> None:
        self.inner.close()

    def wait_for(self, pred, timeout: float = 10.0) -> codec.Frame:
        """The first recorded frame ``pred`` accepts (waits for it to arrive)."""
        with self._cond:
            hit = self._cond.wait_for(lambda: next((f for f in self.frames if pred(f)), None), timeout)
        assert hit is not None, f"no such frame; got {self.frames}"
        return hit


@contextlib.contextmanager
def server_in_vm():
    to_vm_r, to_vm_w = os.pipe()
    from_vm_r, from_vm_w = os.pipe()
    proc = spawn_vm(SERVER_MAIN, stdin=to_vm_r, stdout=from_vm_w)
    os.close(to_vm_r)
    os.close(from_vm_w)
    rec = Recorder(FdTransport(from_vm_r, to_vm_w))
    link = Link(rec, timeout=2.0, retries=2)
    try:
        link.hello()
        yield link, rec
        link.request("quit", retries=0)
        proc.wait(timeout=10)
    finally:
        link.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def raw_request(body_bytes: bytes, seq: int = 7) -> bytes:
    """A REQ frame around an already-packed body, past the host's own size check."""
    raw = bytes([codec.VERSION, MessageType.REQ, seq, 0]) + body_bytes
    import zlib

    raw += zlib.crc32(raw).to_bytes(4, "little")
    return codec.wire(codec.cobs_encode(raw) + b"\x00")


def padded(rid: int, size: int) -> bytes:
    """``[rid, "count", {"pad": b"..."}]`` packed to exactly ``size`` bytes."""
    for n in range(size, 0, -1):
        body = msgpack.packb([rid, "count", {"pad": b"x" * n}], use_bin_type=True)
        if len(body) == size:
            return body
    raise AssertionError(f"no padding gives {size} bytes")


def test_body_of_1008_bytes_is_served_and_1009_dropped_as_oversize():
    with server_in_vm() as (link, rec):
        rec.inner.write(raw_request(padded(1001, codec.MAX_BODY)))
        ok = rec.wait_for(lambda f: f.mtype == MessageType.OK and f.body[0] == 1001)
        assert ok.body == [1001, 0]
        body = padded(1002, codec.MAX_BODY + 1)
        assert len(codec.cobs_encode(body + bytes(8))) <= codec.MAX_ENCODED  # fits the buffer
        rec.inner.write(raw_request(body))
        stats = link.call("stats")  # answered after the big frame was dropped
        assert stats["oversize"] == 1 and stats["bad"] == 1
        assert not [f for f in rec.frames if f.mtype in (MessageType.OK, MessageType.ERR)
                    and f.body[0] == 1002]


@pytest.mark.parametrize("rid", [0, -1, 2**30, 2**40, "7", 1.0, None])
def test_request_ids_outside_the_range_are_refused_with_a_nil_id(rid):
    with server_in_vm() as (link, rec):
        rec.inner.write(raw_request(msgpack.packb([rid, "bump", {}], use_bin_type=True)))
        err = rec.wait_for(lambda f: f.mtype == MessageType.ERR)
        assert err.body[0] is None and err.body[1] == ErrorCode.BAD_REQUEST
        assert link.call("count") == 0  # not executed


@pytest.mark.parametrize("rid", [1, 2**30 - 1])
def test_request_ids_at_the_range_ends_are_served(rid):
    with server_in_vm() as (link, rec):
        rec.inner.write(raw_request(msgpack.packb([rid, "bump", {}], use_bin_type=True)))
        ok = rec.wait_for(lambda f: f.mtype == MessageType.OK and f.body[0] == rid)
        assert ok.body == [rid, 1]


def test_every_frame_has_a_delimiter_before_it():
    with server_in_vm() as (link, rec):
        link.call("tlm", n=3)
        link.call("stats")
        rec.wait_for(lambda f: f.mtype == MessageType.TLM and f.body["step"] == 2)
        # each frame is 0x00 COBS 0x00: empty frames between every two frames
        pieces = bytes(rec.raw).split(b"\x00")
        assert pieces[0] == b"" and pieces[-1] == b""
        frames = pieces[1:-1]
        assert all(frames[i] == b"" for i in range(1, len(frames), 2))
        assert all(frames[i] for i in range(0, len(frames), 2))


def test_garbage_before_a_request_costs_no_request():
    """Bytes inserted since the last frame end at the request's leading 0x00."""
    with server_in_vm() as (link, rec):
        for junk in (b"\x05\x11\x22", b"\xff" * 40, b"\x03\x04\r\n>>> "):
            rec.inner.write(junk)
            assert link.request("add", {"a": 1, "b": 2}, retries=0) == 3
        stats = link.call("stats")
        assert stats["bad"] == 3 and stats["retries"] == 0


def test_park_replies_before_its_parked_event(tmp_path):
    """On the emulated board (the firmware in the VM behind its pty): the OK to ``park``
    arrives before the ``parked`` event it causes."""
    from learnboard.host.transport import SerialTransport

    from .test_emulate_with_mpremote_and_pyserial import flashed_board, hello_when_up

    with flashed_board(tmp_path, "gen2-clln") as vb:
        hello_when_up(vb.port)
        rec = Recorder(SerialTransport(vb.port))
        with Link(rec, timeout=2.0, retries=2) as link:
            assert link.call("park") == {"parked": True}
            ev = rec.wait_for(lambda f: f.mtype == MessageType.EVT and f.body[0] == "parked")
            ok = next(f for f in rec.frames if f.mtype == MessageType.OK and f.body[1] == {"parked": True})
            assert rec.frames.index(ok) < rec.frames.index(ev)
            assert link.call("status")["state"] == "parked"


def test_host_decoder_enforces_the_raw_limit_and_link_ids_stay_in_range():
    import zlib

    def board_frame(body: bytes) -> bytes:
        raw = bytes([codec.VERSION, MessageType.OK, 1, 0]) + body
        return codec.cobs_encode(raw + zlib.crc32(raw).to_bytes(4, "little")) + b"\x00"

    ok = msgpack.packb([5, b"x" * (codec.MAX_BODY - 5)], use_bin_type=True)  # 5: headers
    assert len(ok) == codec.MAX_BODY
    too_big = msgpack.packb([5, b"x" * (codec.MAX_BODY - 4)], use_bin_type=True)
    assert len(too_big) == codec.MAX_BODY + 1
    dec = codec.FrameDecoder()
    frames = dec.feed(b"\x00" + board_frame(ok) + b"\x00" + board_frame(too_big))
    assert len(frames) == 1 and dec.stats.oversize == 1
    from learnboard.host.transport import memory_pair

    for bad in (0, 2**30, -3):
        with pytest.raises(ValueError, match="request ids"):
            Link(memory_pair()[0], first_id=bad)
