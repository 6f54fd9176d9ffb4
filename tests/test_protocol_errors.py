"""Structured errors: the firmware's ERR replies, in the real MicroPython VM (each VM in
turn), carry ``[id, code, message, detail]`` with the argument (``field``) and the edge
at fault in ``detail``, and the host's ``BoardError`` hands them on; the host also reads
the three-element ERR of protocol-1 firmware."""

from __future__ import annotations

import os
import select
from contextlib import contextmanager

import pytest
from learnboard.host import codec
from learnboard.host.codec import MessageType
from learnboard.host.link import BoardError, Link
from learnboard.host.messages import ErrorCode

from learnboard.boards import compile_board, load_board

from ._fake_machine import pipe_link, start_firmware
from .mpvm import require_vm

BOARD = load_board("gen2-clln")


@contextmanager
def _firmware(tmp_path):
    """The board's firmware (main.main, fake machine, 192 KB heap) on a pipe."""
    proc = start_firmware(tmp_path, compile_board(BOARD), require_vm())
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _raw_reply(proc, rid: int, command, args) -> codec.Frame:
    """Send one request frame and return the board's reply frame as it came (events skipped)."""
    proc.stdin.write(codec.encode_frame(MessageType.REQ, rid, [rid, command, args]))
    proc.stdin.flush()
    dec = codec.FrameDecoder()
    fd = proc.stdout.fileno()
    while True:
        ready, _, _ = select.select([fd], [], [], 30.0)
        assert ready, f"no reply to {command!r} within 30 s: {proc.stderr.read1().decode()}"
        data = os.read(fd, 4096)
        assert data, f"the firmware exited: {proc.stderr.read().decode()}"
        for frame in dec.feed(data):
            if frame.mtype in (MessageType.OK, MessageType.ERR):
                return frame


def _refusal(link: Link, command: str, args: dict) -> BoardError:
    with pytest.raises(BoardError) as info:
        link.request(command, args)
    return info.value


@pytest.mark.vm
def test_each_error_class_carries_its_code_and_the_field_or_edge_at_fault(tmp_path):
    gate = BOARD.limits.gate_range[1] + 0.5  # above every gate's safe range
    with _firmware(tmp_path) as proc:
        # on the wire: a detail map in every ERR body, empty when nothing is at fault
        nope = _raw_reply(proc, 1, "nope", {})
        assert nope.mtype == MessageType.ERR and len(nope.body) == 4
        assert nope.body[:2] == [1, ErrorCode.UNKNOWN_COMMAND] and nope.body[3] == {}
        states = [2.0] * BOARD.n_edges
        states[2] = gate
        limit = _raw_reply(proc, 2, "write_edges", {"start": 0, "k": states})
        assert limit.body[:2] == [2, ErrorCode.LIMIT]
        assert limit.body[3] == {"field": "k", "edge": 2}
        bad = _raw_reply(proc, 3, 7, {})
        assert bad.body[:2] == [3, ErrorCode.BAD_REQUEST] and bad.body[3] == {"field": "command"}

        link = pipe_link(proc, timeout=10.0, retries=0)
        try:
            # (request, args, code, field, edge)
            cases = [
                ("nope", {}, ErrorCode.UNKNOWN_COMMAND, None, None),
                ("infer", {}, ErrorCode.BAD_ARGS, "x", None),  # a missing argument
                ("set_params", {"lam": 2.0}, ErrorCode.OUT_OF_RANGE, "lam", None),
                ("set_params", {"oversample": "8"}, ErrorCode.BAD_ARGS, "oversample", None),
                ("set_params", {"bogus": 1}, ErrorCode.BAD_ARGS, "bogus", None),
                ("train", {"steps": 5}, ErrorCode.NOT_READY, None, None),  # no examples yet
                ("write_edges", {"start": 0, "k": states}, ErrorCode.LIMIT, "k", 2),
                ("write_edges", {"start": BOARD.n_edges, "k": [2.0]}, ErrorCode.OUT_OF_RANGE,
                 "start", None),
                ("read_edges", {"count": BOARD.n_edges + 1}, ErrorCode.OUT_OF_RANGE, "count", None),
                ("infer", {"x": [9.0, 0.1]}, ErrorCode.LIMIT, "x", None),
                ("measure", {"nodes": [99]}, ErrorCode.OUT_OF_RANGE, "nodes", None),
            ]
            for command, args, code, field, edge in cases:
                err = _refusal(link, command, args)
                got = (err.code, err.field, err.edge)
                assert got == (code, field, edge), f"{command} {args}: {err}"
                assert err.message and err.message in str(err)  # the board's text, for people
            link.call("upload_examples", x=[[0.1, 0.2]] * 2, y=[[0.1]] * 2, clear=True)
            err = _refusal(link, "train", {"steps": 5, "every": -1})
            assert (err.code, err.field, err.edge) == (ErrorCode.BAD_ARGS, "every", None)
            link.call("train", steps=0)  # until stopped
            err = _refusal(link, "upload_examples", {"x": [[0.1, 0.2]], "y": [[0.1]]})
            assert (err.code, err.field, err.edge) == (ErrorCode.BUSY, None, None)
            link.call("stop")
            assert link.call("stats")["internal"] == 0
            assert link.call("repl") == {}
        finally:
            link.close()
        assert proc.wait(20) == 0, proc.stderr.read().decode()


def test_the_host_reads_protocol_1_and_protocol_2_error_bodies():
    old = codec.decode_error([5, ErrorCode.LIMIT, "edge 3: 9 outside the safe range"])
    assert (old.rid, old.code, old.field, old.edge) == (5, ErrorCode.LIMIT, None, None)
    new = codec.decode_error([5, ErrorCode.LIMIT, "edge 3: 9 ...", {"field": "k", "edge": 3}])
    assert (new.code, new.field, new.edge, new.message) == (ErrorCode.LIMIT, "k", 3, "edge 3: 9 ...")
    assert codec.decode_error([None, ErrorCode.BAD_REQUEST, "", {}]).field is None
    for body in ([1, 2], [1, "5", "m", {}], [1, 5, "m", []], [1, 5, "m", {"edge": "3"}],
                 [1, 5, "m", {"field": 3}], [1, 5, "m", {}, 9], {"code": 5}):
        with pytest.raises(ValueError):
            codec.decode_error(body)
