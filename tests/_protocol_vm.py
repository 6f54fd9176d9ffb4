"""Helpers for the protocol tests: MicroPython programs run in the real VM and a small
driver for a long-running parser "oracle" process."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

from learnboard.firmware import FIRMWARE_DIR

from .mpvm import require_vm

# A firmware server on the console with a dummy handler table. ``drop_next`` makes the
# port swallow the next n frames sent after its own reply (a lost reply on the wire).
SERVER_MAIN = r"""
import sys
from lbfw import consts, server, stdio, msgs

port = stdio.StdioPort()


class Lossy:
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


lossy = Lossy(port)
state = {"count": 0}


def bump(args):
    state["count"] += 1
    return state["count"]


def drop_next(args):
    n = args.get("n", 1)

    def arm():
        lossy.drop = n

    srv.defer(arm)
    return n


def tlm(args):
    for i in range(args.get("n", 1)):
        srv.telemetry(i, 0.25, 0.001, 0.5, 4, 1500, 2000, 0, v=[0.5, 1.5], k=[3, 4])
    return args.get("n", 1)


def fail(args):
    raise server.Fail(consts.E_LIMIT, "limit test", "k", 3)


def big(args):
    return list(range(args.get("n", 2000)))


handlers = {
    "echo": lambda args: args,
    "add": lambda args: args["a"] + args["b"],
    "bump": bump,
    "count": lambda args: state["count"],
    "drop_next": drop_next,
    "tlm": tlm,
    "fail": fail,
    "big": big,
    "quit": lambda args: srv.defer(lambda: sys.exit(0)),
}
srv = server.Server(lossy, handlers, info={"fw": "test", "board": "vm"})
srv.event(msgs.EV_BOOT, {"fw": "test"})
while not port.eof:
    if not srv.poll():
        port.wait(20)
"""

# Parser oracle: reads ops from stdin (1 byte op, u32 LE length, payload) and answers
# on stdout. F: feed bytes; V: feed as memoryview (byte-by-byte path); R: report the
# decoded frames (type, seq, re-packed body hex) and counters; M: gc.collect, mem_alloc.
PARSER_ORACLE = r"""
import sys, gc, binascii
from lbfw import frame, mpack

inp = sys.stdin.buffer
out = sys.stdout
got = []


def on_frame(t, s, b):
    got.append((t, s, mpack.packb(b, 2048)))


p = frame.Parser(on_frame, (1, 2, 3, 4, 5))
while True:
    h = inp.read(5)
    if not h or len(h) < 5:
        break
    op = h[0]
    n = h[1] | (h[2] << 8) | (h[3] << 16) | (h[4] << 24)
    data = inp.read(n) if n else b""
    if op == 70:
        p.feed(data)
    elif op == 86:
        p.feed(memoryview(data))
    elif op == 82:
        for t, s, b in got:
            out.write("%d %d %s\n" % (t, s, binascii.hexlify(b).decode()))
        got = []
        out.write("counters %d %d %d %d %d %d %d %d %d\n" % (
            p.ok, p.bad_crc, p.bad_cobs, p.short, p.oversize, p.bad_version, p.bad_type,
            p.bad_body, p.internal))
    elif op == 77:
        data = None
        gc.collect()
        gc.collect()
        out.write("%d\n" % gc.mem_alloc())
    out.flush() if hasattr(out, "flush") else None
"""

COUNTER_NAMES = ("ok", "bad_crc", "bad_cobs", "short", "oversize", "bad_version",
                 "bad_type", "bad_body", "internal")


def spawn_vm(source: str, *, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
             heap: str = "192K", pass_fds: tuple[int, ...] = ()) -> subprocess.Popen:
    """Start ``source`` in the VM (firmware importable) and return the process."""
    exe = require_vm()
    env = dict(os.environ, MICROPYPATH=str(FIRMWARE_DIR))
    return subprocess.Popen([exe, "-X", f"heapsize={heap}", "-c", source], stdin=stdin,
                            stdout=stdout, stderr=subprocess.PIPE, env=env, pass_fds=pass_fds)


class ParserOracle:
    """The firmware frame parser running in the VM, driven op by op."""

    def __init__(self) -> None:
        self.proc = spawn_vm(PARSER_ORACLE)

    def _op(self, op: bytes, data: bytes = b"") -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(op + struct.pack("<I", len(data)) + data)
        self.proc.stdin.flush()

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line:
            raise AssertionError("parser oracle died: " + self.proc.stderr.read().decode())
        return line.strip()

    def feed(self, data: bytes, *, bytewise: bool = False) -> None:
        self._op(b"V" if bytewise else b"F", data)

    def report(self) -> tuple[list[tuple[int, int, bytes]], dict[str, int]]:
        """Frames decoded since the last report and the cumulative counters."""
        self._op(b"R")
        frames = []
        while True:
            line = self._line()
            if line.startswith("counters"):
                values = [int(v) for v in line.split()[1:]]
                return frames, dict(zip(COUNTER_NAMES, values, strict=True))
            t, s, h = line.split()
            frames.append((int(t), int(s), bytes.fromhex(h)))

    def mem_alloc(self) -> int:
        self._op(b"M")
        return int(self._line())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def doc_vectors(path: Path) -> list[dict]:
    """The test vectors of docs/protocol.md: name, type, seq, body (JSON), frame bytes."""
    import json

    vectors = []
    text = path.read_text()
    for block in text.split("```vector\n")[1:]:
        block = block.split("```", 1)[0]
        vec: dict = {}
        lines = block.splitlines()
        for i, line in enumerate(lines):
            key, _, value = line.partition(":")
            if key == "frame":
                vec["frame"] = bytes.fromhex("".join(x.strip() for x in lines[i + 1 :]))
                break
            vec[key] = json.loads(value) if key == "body" else value.strip()
        vec["type"] = int(vec["type"])
        vec["seq"] = int(vec["seq"])
        vectors.append(vec)
    return vectors
