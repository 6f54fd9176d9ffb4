"""A client written from docs/protocol.md alone: pyserial, the ``cobs`` package, zlib and
msgpack — nothing imported from learnboard. It frames, sends and decodes as the document
says, and checks what the board sends against the document's tables: hello, a request of
each error class it can drive the board to, a training burst's telemetry, and the
``parked``, ``done`` and ``boot`` events (``fault`` needs a firmware or driver bug and
the shipped firmware sends no ``log`` events; their shapes are checked by the payload
tests when the firmware is made to send them).

Runs against the suite's board (``--port``, or the emulated board; see conftest.py)."""

from __future__ import annotations

import random
import re
import struct
import time
import zlib
from pathlib import Path

import msgpack
import pytest
import serial
from cobs import cobs

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
VERSION = 5
REQ, OK, ERR, TLM, EVT = 1, 2, 3, 4, 5
WAIT_S = 60.0  # an upper bound for anything the board does here; waits end on frames


# -- the document's tables ---------------------------------------------------------------


def _block(text: str, name: str) -> str:
    m = re.search(rf"<!-- BEGIN GENERATED {re.escape(name)} -->\n(.*?)<!-- END GENERATED", text, re.S)
    assert m, f"docs/protocol.md has no {name} table"
    return m.group(1)


def _fields(table: str) -> dict[str, bool]:
    """field name -> optional, from a field table."""
    out = {}
    for m in re.finditer(r"^\| `([^`]+)`( \(optional\))? \|", table, re.M):
        out[m.group(1)] = bool(m.group(2))
    return out


class Doc:
    def __init__(self, text: str):
        self.text = text
        self.hello = _fields(_block(text, "command:hello").split("Result:")[1])
        self.telemetry = _fields(_block(text, "telemetry"))
        self.detail = _fields(_block(text, "error-detail"))
        self.errors = {int(c): n for c, n in re.findall(r"^\| (\d+) \| ([A-Z_]+) \|",
                                                        _block(text, "errors"), re.M)}
        events = _block(text, "events")
        self.events = {name: _fields(part) for name, part in
                       re.findall(r"### event `(\w+)`\n(.*?)(?=### event|\Z)", events, re.S)}
        self.enums = {name: re.findall(r'"(\w+)"', row) for name, row in re.findall(
            r"^\| `(\w+)` \| str \| — \| (\"[^|]*) \|", events, re.M)}

    def keys_ok(self, what: str, fields: dict[str, bool], data: dict) -> None:
        assert isinstance(data, dict), f"{what}: {data!r} is not a map"
        extra = set(data) - set(fields)
        missing = {k for k, opt in fields.items() if not opt} - set(data)
        assert not extra, f"{what}: fields the document does not list: {extra}"
        assert not missing, f"{what}: documented fields missing: {missing}"


# -- framing as the document says ------------------------------------------------------


class Client:
    def __init__(self, port: str):
        self.port = port
        self.ser = serial.Serial(port, 115200, timeout=0.05)
        self.buf = bytearray()
        self.seq = 0
        self.next_id = random.randrange(1, 2**29)
        self.frames: list[tuple[int, object]] = []  # everything unsolicited, in order
        self.ser.write(b"\x00")

    def close(self) -> None:
        self.ser.close()

    def send(self, mtype: int, body) -> None:
        raw = struct.pack("<BBH", VERSION, mtype, self.seq & 0xFFFF)
        raw += msgpack.packb(body, use_bin_type=True, use_single_float=True)
        raw += struct.pack("<I", zlib.crc32(raw))
        assert len(raw) <= 1016
        self.ser.write(b"\x00" + cobs.encode(raw) + b"\x00")
        self.seq += 1

    def _frames(self):
        data = self.ser.read(4096)
        self.buf += data
        while b"\x00" in self.buf:
            piece, _, rest = bytes(self.buf).partition(b"\x00")
            self.buf = bytearray(rest)
            if not piece:
                continue
            raw = cobs.decode(piece)
            body, crc = raw[4:-4], struct.unpack("<I", raw[-4:])[0]
            assert zlib.crc32(raw[:-4]) == crc, "CRC mismatch on a clean line"
            version, mtype, _seq = struct.unpack("<BBH", raw[:4])
            assert version == VERSION, f"frame of protocol {version}"
            yield mtype, msgpack.unpackb(body, raw=False, strict_map_key=False)

    def wait(self, pred, what: str, timeout: float = WAIT_S):
        """The first frame (type, body) ``pred`` accepts; others are kept in ``frames``."""
        for i, f in enumerate(self.frames):
            if pred(*f):
                return self.frames.pop(i)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for f in self._frames():
                if pred(*f):
                    return f
                self.frames.append(f)
        raise AssertionError(f"no {what} within {timeout:g} s")

    def request(self, command: str, args=None):
        """(type, body) of the reply: OK [id, result] or ERR [id, code, message, detail]."""
        rid = self.next_id
        self.next_id += 1
        self.send(REQ, [rid, command, {} if args is None else args])
        return self.wait(lambda t, b: t in (OK, ERR) and isinstance(b, list) and b[0] == rid,
                         f"reply to {command}", 10.0)

    def ok(self, command: str, **args):
        t, b = self.request(command, args)
        assert t == OK, f"{command} refused: {b}"
        return b[1]

    def event(self, name: str, timeout: float = WAIT_S) -> dict:
        return self.wait(lambda t, b: t == EVT and b[0] == name, f"{name} event", timeout)[1][1]

    def telemetry(self) -> list[dict]:
        out = [b for t, b in self.frames if t == TLM]
        self.frames = [f for f in self.frames if f[0] != TLM]
        return out


@pytest.fixture
def doc() -> Doc:
    return Doc(DOC.read_text(encoding="utf-8"))


@pytest.fixture
def client(port):
    c = Client(port)
    yield c
    c.close()


def test_hello_is_as_documented(client, doc):
    hello = client.ok("hello")
    doc.keys_ok("hello", doc.hello, hello)
    assert hello["proto"] == VERSION
    assert hello["max_frame"] == 1024 and hello["max_body"] == 1008
    scale = hello["scale"]
    assert scale["v"] > 0 and len(scale["k"]) == hello["limits"]["n_edges"]


def _error(client, doc, command, args) -> tuple[str, dict]:
    t, body = client.request(command, args)
    assert t == ERR, f"{command} {args} was not refused: {body}"
    assert len(body) == 4, f"ERR body {body} is not [id, code, message, detail]"
    _, code, message, detail = body
    assert isinstance(message, str) and len(message) <= 120
    doc.keys_ok("ERR detail", {k: True for k in doc.detail}, detail)
    return doc.errors[code], detail


def _inputs(client) -> int:
    """How many inputs the board has: the count infer accepts (a wrong one is BAD_ARGS)."""
    for n in range(1, 17):
        t, body = client.request("infer", {"x": [0.0] * n})
        if t == OK:
            return n
    raise AssertionError("infer accepted no input count up to 16")


def test_each_error_class_training_telemetry_and_events(client, doc):
    hello = client.ok("hello")
    if client.ok("status")["state"] == "training":
        client.ok("stop")
    lim = hello["limits"]
    vn = lim["vn"]
    assert _error(client, doc, "fly", {})[0] == "UNKNOWN_COMMAND"
    assert _error(client, doc, "status", [1])[0] == "BAD_REQUEST"
    assert _error(client, doc, "set_params", {"oversample": "x"}) == ("BAD_ARGS", {"field": "oversample"})
    assert _error(client, doc, "set_params", {"lam": 2.0}) == ("OUT_OF_RANGE", {"field": "lam"})
    name, detail = _error(client, doc, "write_edges", {"start": 0, "k": [1000000]})
    assert (name, detail.get("edge")) == ("LIMIT", 0)
    n_in = _inputs(client)
    n_out = len(client.ok("infer", x=[0.0] * n_in)["y"])
    xs = [[0.2 * vn + 0.1 * vn * (i % 2)] * n_in for i in range(4)]
    ys = [[0.1 * vn + 0.05 * vn * (i % 2)] * n_out for i in range(4)]
    assert client.ok("upload_examples", x=xs, y=ys, clear=True) == {"count": 4}
    # learning rate 0: a frame's `k` is read at its step's measurement, before that step's
    # update, so only edges that stay put can be compared with read_edges after the burst
    client.ok("set_params", tlm_every=5, tlm_nodes=1, tlm_edges=1, host_timeout_ms=0, alpha=0.0)
    # a run far longer than the host's next request takes, however busy the host: the
    # board is still training when upload_examples arrives (20 steps can be over by then)
    client.ok("train", steps=1000000)
    assert _error(client, doc, "upload_examples", {"x": xs, "y": ys})[0] == "BUSY"
    client.ok("stop")
    client.telemetry()  # the stopped run's frames: the burst below is judged on its own
    client.ok("train", steps=20)
    done = client.event("done")
    doc.keys_ok("event done", doc.events["done"], done)
    assert done["step"] == 20
    frames = client.telemetry()
    assert frames and frames[-1]["step"] == 20
    for t in frames:
        doc.keys_ok("telemetry", doc.telemetry, t)
    assert any("pwr_m" in t for t in frames) == ("power_sense" in hello["caps"])
    # codes on the wire, volts with hello's scale (the document's telemetry section)
    scale = hello["scale"]
    last = frames[-1]
    assert len(last["v"]) == lim["n_nodes"] and all(isinstance(c, int) for c in last["v"])
    assert all(0.0 <= c * scale["v"] <= 1.5 * vn for c in last["v"])
    edges = client.ok("read_edges")["k"]
    for e, (code, now) in enumerate(zip(last["k"], edges, strict=True)):
        assert isinstance(code, int)
        if scale["k"][e] == 0:
            assert now == code, f"edge {e}: tap {code} in telemetry, {now} read"
        else:
            assert abs(code * scale["k"][e] - now) <= 8 * scale["k"][e], (e, code, now)
    # parked: by host silence, then by request (the reply comes before the event)
    client.ok("set_params", host_timeout_ms=300)
    parked = client.event("parked")
    doc.keys_ok("event parked", doc.events["parked"], parked)
    assert parked["reason"] == "host_silent" and parked["reason"] in doc.enums["reason"]
    client.ok("set_params", host_timeout_ms=10000)
    assert client.ok("park") == {"parked": True}
    parked = client.event("parked")
    assert parked["reason"] == "request" and parked["flt"] & 2


def test_boot_event_after_a_reset(client, doc, hil_target):
    """The board's first frame after a reset is its boot event. A USB port drops while the
    chip resets: the client opens where the board came back (the suite's target says
    where; on a real board, the same device path) and reads the boot event there.

    A port opened after the board has already sent its boot event misses it (pyserial
    discards what the OS buffered before the port was opened), so the client lets go of
    the port as soon as the reset is acknowledged, opens the new one as soon as it
    exists, and resets again (a few times at most) when it was still too late."""
    hello = client.ok("hello")
    boot = None
    for _ in range(4):
        try:
            assert client.ok("reset") == {}
        except (serial.SerialException, OSError):
            pass  # the reply went out, but the port dropped before it was read
        client.close()
        end = time.monotonic() + WAIT_S
        while True:
            assert time.monotonic() < end, f"{hil_target.port} did not come back"
            try:
                client.ser = serial.Serial(hil_target.port, 115200, timeout=0.05)
                break
            except serial.SerialException:
                time.sleep(0.01)  # a device path reappearing: nothing to wait on but time
        client.buf.clear()
        client.frames.clear()
        try:
            boot = client.event("boot", 10.0)
            break
        except AssertionError:  # opened after the boot event went out: reset again
            continue
        except (serial.SerialException, OSError):  # opened the old port as it dropped
            continue
    assert boot is not None, "no boot event after 4 resets"
    doc.keys_ok("event boot", doc.events["boot"], boot)
    assert (boot["fw"], boot["board"], boot["proto"]) == (hello["fw"], hello["board"], VERSION)
