"""Host Link against the firmware's server: under CPython over an in-memory pair, and in
the real MicroPython VM over a pipe and over a pty (raw mode, pyserial on the path)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import tty

import pytest
from learnboard.firmware.lbfw import consts, msgs, server
from learnboard.host import codec
from learnboard.host.link import BoardError, Link, LinkTimeout
from learnboard.host.messages import ErrorCode, Fault
from learnboard.host.transport import FdTransport, memory_pair

from learnboard.errors import LinkError

from ._protocol_vm import SERVER_MAIN, spawn_vm
from .mpvm import run_vm

# -- CPython: the firmware server in a thread ------------------------------------------


class LossyPort:
    """Board-side port that can swallow the next n frames the board sends."""

    def __init__(self, port):
        self.port = port
        self.drop = 0

    def read(self):
        return self.port.read()

    def write(self, data):
        if self.drop:
            self.drop -= 1
            return
        self.port.write(data)


@pytest.fixture
def board():
    host_end, board_end = memory_pair()
    port = LossyPort(board_end)
    state = {"count": 0}

    def bump(args):
        state["count"] += 1
        return state["count"]

    def fail(args):
        raise server.Fail(consts.E_OUT_OF_RANGE, "lam must lie in [0, 1]", field="lam")

    handlers = {
        "add": lambda a: a["a"] + a["b"],
        "echo": lambda a: a,
        "bump": bump,
        "fail": fail,
        "bug": lambda a: a["missing"],
        "big": lambda a: list(range(2000)),
        "hello": lambda a: {"caps": ["train"]},
    }
    srv = server.Server(port, handlers, info={"fw": "0.1.0", "board": "test"})
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            if not srv.poll():
                time.sleep(0.0005)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    link = Link(host_end, timeout=0.2, retries=2)
    yield link, srv, port, state
    link.close()
    stop.set()
    thread.join(2)


def test_requests_and_replies(board):
    link, srv, _, _ = board
    hello = link.hello()
    assert hello["proto"] == 5 and hello["fw"] == "0.1.0" and hello["caps"] == ["train"]
    assert hello["max_frame"] == codec.MAX_ENCODED
    assert link.call("add", a=2, b=40) == 42
    payload = {"b": b"\x00\x03\x00", "f": [0.5, -1.25], "s": "ü"}
    assert link.request("echo", payload) == payload


@pytest.mark.parametrize(
    ("command", "code", "field"),
    [("fail", ErrorCode.OUT_OF_RANGE, "lam"), ("bug", ErrorCode.INTERNAL, None),
     ("nope", ErrorCode.UNKNOWN_COMMAND, None), ("big", ErrorCode.TOO_BIG, None)],
)
def test_errors_carry_codes(board, command, code, field):
    link = board[0]
    with pytest.raises(BoardError) as info:
        link.call(command)
    assert info.value.code == code
    assert (info.value.field, info.value.edge) == (field, None)
    assert command in str(info.value)
    assert link.call("add", a=1, b=1) == 2  # the link keeps working


def test_lost_reply_is_retried_and_not_executed_twice(board):
    link, srv, port, state = board
    port.drop = 1
    assert link.call("bump") == 1
    assert state["count"] == 1
    assert srv.retries == 1 and link.stats.retries == 1
    assert link.call("bump") == 2


def test_timeout_after_retries_executes_once(board):
    link, srv, port, state = board
    port.drop = 3
    with pytest.raises(LinkTimeout):
        link.call("bump")
    assert state["count"] == 1 and srv.retries == 2
    assert link.stats.timeouts == 1
    assert link.call("bump") == 2


def test_telemetry_and_events(board):
    link, srv, _, _ = board
    for step in range(5):
        assert srv.telemetry(step, 0.5, 0.002, 0.25, 8, 1200, 1500, consts.F_PARKED, k=[1, 2])
    srv.event(msgs.EV_DONE, {"step": 5})
    frames = list(link.telemetry(timeout=0.3))
    assert [f["step"] for f in frames] == list(range(5))
    assert frames[0]["flt"] == Fault.PARKED and frames[0]["k"] == [1, 2]
    assert frames[0]["pwr"] == pytest.approx(0.002, rel=1e-7)
    assert link.next_event(1) == ("done", {"step": 5})
    assert link.stats.seq_gaps == 0


def test_garbage_from_host_is_counted_and_harmless(board):
    link, srv, _, _ = board
    link.transport.write(b"\x05garbage\x00" + b"\x07" * 3000 + b"\x00")
    assert link.call("add", a=1, b=2) == 3
    stats = link.call("stats")
    assert stats["bad_cobs"] + stats["short"] + stats["bad_crc"] == 1
    assert stats["oversize"] == 1 and stats["bad"] == 2
    srv.telemetry(0, 0.0, 0.0, 0.0)
    assert link.next_telemetry(1)["flt"] & Fault.RX_BAD


def test_request_too_large_is_refused_on_the_host(board):
    with pytest.raises(LinkError, match="chunks"):
        board[0].call("echo", x=b"\x01" * 2000)


def test_silence_clock(board):
    link, srv, _, _ = board
    link.call("add", a=0, b=0)
    assert 0 <= srv.silent_ms() < 1000


# -- the real VM -----------------------------------------------------------------------


@contextlib.contextmanager
def vm_over_pipe():
    to_vm_r, to_vm_w = os.pipe()
    from_vm_r, from_vm_w = os.pipe()
    proc = spawn_vm(SERVER_MAIN, stdin=to_vm_r, stdout=from_vm_w)
    os.close(to_vm_r)
    os.close(from_vm_w)
    link = Link(FdTransport(from_vm_r, to_vm_w), timeout=2.0, retries=2)
    try:
        yield link, proc
    finally:
        _finish(link, proc)


@contextlib.contextmanager
def vm_over_pty(vm_on: str):
    master, slave = os.openpty()
    tty.setraw(slave)
    if vm_on == "slave":  # the VM sees a raw serial line, the host holds the master
        proc = spawn_vm(SERVER_MAIN, stdin=slave, stdout=slave)
        os.close(slave)
        link = Link(FdTransport(master, master), timeout=2.0, retries=2)
    else:  # pyserial opens the pty by its path
        proc = spawn_vm(SERVER_MAIN, stdin=master, stdout=master)
        os.close(master)
        link = Link.open(os.ttyname(slave), timeout=2.0, retries=2)
        os.close(slave)
    try:
        yield link, proc
    finally:
        _finish(link, proc)


def _finish(link: Link, proc) -> None:
    try:
        with contextlib.suppress(LinkError):
            link.call("quit")
        proc.wait(timeout=5)
    finally:
        link.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _exercise(link: Link, boot_event: bool = True) -> None:
    if boot_event:
        assert link.next_event(5) == ("boot", {"fw": "test"})
    hello = link.hello()
    expected_mpy = int(run_vm("import sys; print(sys.implementation._mpy)").stdout)
    assert hello["impl"] == "micropython" and hello["mpy"] == expected_mpy
    assert (hello["proto"], hello["board"]) == (5, "vm")
    assert link.call("add", a=2**40, b=-1) == 2**40 - 1
    payload = {"raw": bytes(range(256)), "ctrl": "\x03\x04\r\n", "v": [0.5, 1e-3]}
    got = link.request("echo", payload)
    assert got["raw"] == payload["raw"] and got["ctrl"] == payload["ctrl"]
    assert got["v"] == pytest.approx(payload["v"], rel=1e-7)
    with pytest.raises(BoardError) as info:
        link.call("fail")
    assert (info.value.code, info.value.field, info.value.edge) == (ErrorCode.LIMIT, "k", 3)
    assert info.value.message == "limit test"
    with pytest.raises(BoardError) as info:
        link.call("big")
    assert info.value.code == ErrorCode.TOO_BIG
    # A lost reply: the host retries with the same id and gets the cached reply.
    link.call("drop_next", n=1)
    assert link.request("bump", timeout=0.5) == 1
    assert link.call("count") == 1
    # All tries lost: a timeout, and still executed once.
    link.call("drop_next", n=3)
    with pytest.raises(LinkTimeout):
        link.request("bump", timeout=0.3)
    assert link.call("count") == 2
    assert link.call("tlm", n=20) == 20
    frames = list(link.telemetry(timeout=0.3))
    assert [f["step"] for f in frames] == list(range(20))
    assert frames[0]["v"] == [0.5, 1.5] and frames[0]["k"] == [3, 4]
    stats = link.call("stats")
    assert stats["retries"] == 3 and stats["bad"] == 0
    host = link.stats
    assert host.bad_crc == host.bad_cobs == 0
    assert host.seq_gaps == 4  # the four frames the board's port swallowed


@pytest.mark.vm
def test_link_to_vm_over_pipe():
    with vm_over_pipe() as (link, proc):
        _exercise(link)
    assert proc.returncode == 0, proc.stderr.read().decode()


@pytest.mark.vm
@pytest.mark.parametrize("vm_on", ["slave", "master"])
def test_link_to_vm_over_pty(vm_on):
    with vm_over_pty(vm_on) as (link, proc):
        # pyserial flushes input on open, which may swallow the boot event.
        _exercise(link, boot_event=vm_on == "slave")
        link.transport.write(b"\x03\x03\x04garbage\x00")  # Ctrl-C bytes must not stop it
        assert link.call("add", a=1, b=1) == 2
        assert link.call("stats")["bad"] == 1
    assert proc.returncode == 0, proc.stderr.read().decode()


def test_after_a_replug_requests_wait_for_a_frame_from_the_board_not_its_boot_output():
    """A board that is booting still takes 0x03 as Ctrl-C; its banner comes before the
    firmware turns that off, its boot event after: only a frame lets requests out."""
    from learnboard.host.transport import FollowingSerialTransport

    old_m, old_s = os.openpty()
    new_m, new_s = os.openpty()
    for fd in (old_s, new_s):
        tty.setraw(fd)
    new_port = os.ttyname(new_s)
    t = FollowingSerialTransport(os.ttyname(old_s), lambda old: new_port, wait_s=0.5)
    t.quiet_s = 60.0  # no silence long enough to let writes out in this test
    link = Link(t, timeout=1.0, retries=1)
    try:
        os.close(old_m)  # the board resets: its USB port drops
        os.close(old_s)
        assert link.next_event(timeout=10)[0] == "boot"  # the link noticed the replug
        os.write(new_m, b"MicroPython v1.28 on rp2\r\n")
        deadline = time.monotonic() + 10
        while link._rx_bytes == 0:  # wait until the link has read the banner
            assert time.monotonic() < deadline, "the link read nothing from the new port"
            time.sleep(0.01)
        with pytest.raises(OSError, match="did not come back"):
            t.write(b"\x00request")  # held for wait_s, then refused
        t.wait_s = 30.0
        # as the firmware sends it: a delimiter ends the boot output, then the frame
        os.write(new_m, b"\x00" + codec.encode_frame(codec.MessageType.EVT, 1, ["boot", {"fw": "x"}]))
        t.write(b"\x00request")  # released by the boot event's frame
        got = b""
        while b"request" not in got:
            assert time.monotonic() < deadline + 10, f"the request did not arrive ({got!r})"
            got += os.read(new_m, 64)
    finally:
        link.close()
        os.close(new_m)
        os.close(new_s)


def test_hello_probes_are_inert_at_a_repl_and_keep_their_ids_random():
    """hello goes to a port whose occupant is unknown, maybe a MicroPython REPL: its
    frame (and each older protocol's) holds no Ctrl-B/C/D. The ids chosen for that stay
    random: links that start on ids needing the change must not share one, or a board
    would answer one link's request from the reply it cached for another's."""
    import random

    from learnboard.host.link import ID_LIMIT, repl_inert

    rng = random.Random(5)
    firsts = [rng.randrange(1, ID_LIMIT // 2) for _ in range(100)]
    # ids whose bytes hold 0x00, 0x02, 0x03 or 0x04, which no sequence number can mend
    firsts += [1 << 24 | 0x020304, 0x00FFFFFF, 0x04040404, 0x10000000, 0x02000000]
    hello_ids = []
    for first in firsts:
        host_end, _board_end = memory_pair()
        link = Link(host_end, first_id=first)
        try:
            with link._lock:
                frames = [link._take_ids("hello", None, v) for v in (codec.VERSION, *sorted(codec.OLD_VERSIONS))]
        finally:
            link.close()
        assert all(repl_inert(frame) for _rid, frame in frames), first
        hello_ids.append(frames[0][0])
    assert len(set(hello_ids)) == len(hello_ids)
