"""The byte-exact test vectors of docs/protocol.md, on both ends; the document is what
the generator writes from host/protocol.toml; the firmware's numbers are the definition's.
Payloads are checked against the definition in tests/test_protocol_payloads.py."""

from __future__ import annotations

import json
from pathlib import Path

import msgpack
import pytest
from learnboard.firmware.lbfw import consts as fw_consts
from learnboard.firmware.lbfw import frame as fw_frame
from learnboard.firmware.lbfw import msgs as fw_msgs
from learnboard.host import codec, messages, protocol_doc

from ._protocol_vm import doc_vectors
from .mpvm import run_vm

DOC = Path(__file__).resolve().parents[1] / "docs" / "protocol.md"
VECTORS = doc_vectors(DOC)


def test_document_has_vectors_of_every_type():
    assert {v["type"] for v in VECTORS} == {int(t) for t in codec.MessageType}
    assert any(len(v["frame"]) > 256 for v in VECTORS), "a vector must span a full COBS block"


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_host_codec_matches_vector(vec):
    assert codec.encode_frame(vec["type"], vec["seq"], vec["body"]) == vec["frame"]
    decoded = codec.FrameDecoder(accept=None).feed(vec["frame"])
    assert decoded == [codec.Frame(vec["type"], vec["seq"], vec["body"])]


@pytest.mark.parametrize("vec", VECTORS, ids=[v["name"] for v in VECTORS])
def test_firmware_under_cpython_matches_vector(vec):
    out = fw_frame.Encoder().encode(vec["type"], vec["seq"], vec["body"])
    assert bytes(out) == vec["frame"]
    got = []
    parser = fw_frame.Parser(lambda *f: got.append(f), accept=range(1, 6))
    parser.feed(vec["frame"])
    assert got == [(vec["type"], vec["seq"], vec["body"])]


@pytest.mark.vm
def test_firmware_in_vm_matches_vectors():
    """The VM encodes every vector's body to the documented bytes and decodes them back;
    the host checks the decoded bodies with the standard msgpack library."""
    cases = [(v["type"], v["seq"], _tag_maps(v["body"])) for v in VECTORS]
    frames = [v["frame"].hex() for v in VECTORS]
    source = f"""
import json, binascii
from collections import OrderedDict
from lbfw import frame, mpack


def untag(x):
    # MicroPython dicts are unordered: rebuild maps as OrderedDict in document order.
    if type(x) is list:
        if len(x) == 2 and x[0] == "__map__":
            return OrderedDict([(k, untag(v)) for k, v in x[1]])
        return [untag(v) for v in x]
    return x


cases = [untag(c) for c in json.loads({json.dumps(json.dumps(cases))})]
frames = {frames!r}
enc = frame.Encoder()
got = []
p = frame.Parser(lambda t, s, b: got.append((t, s, b)), (1, 2, 3, 4, 5))
for (t, s, body), hx in zip(cases, frames):
    print("enc", binascii.hexlify(bytes(enc.encode(t, s, body))).decode())
    p.feed(binascii.unhexlify(hx))
for t, s, b in got:
    print("dec", t, s, binascii.hexlify(mpack.packb(b, 2048)).decode())
"""
    lines = run_vm(source).stdout.decode().split()
    encoded = [bytes.fromhex(lines[i + 1]) for i, w in enumerate(lines) if w == "enc"]
    assert encoded == [v["frame"] for v in VECTORS]
    decoded = [lines[i + 1 : i + 4] for i, w in enumerate(lines) if w == "dec"]
    assert len(decoded) == len(VECTORS)
    for (t, s, hx), vec in zip(decoded, VECTORS, strict=True):
        assert (int(t), int(s)) == (vec["type"], vec["seq"])
        assert msgpack.unpackb(bytes.fromhex(hx), raw=False, strict_map_key=False) == vec["body"]


def _tag_maps(x):
    if isinstance(x, dict):
        return ["__map__", [[k, _tag_maps(v)] for k, v in x.items()]]
    if isinstance(x, list):
        return [_tag_maps(v) for v in x]
    return x


@pytest.mark.vm
def test_server_telemetry_in_vm_matches_vector():
    vec = next(v for v in VECTORS if v["name"] == "telemetry")
    b = vec["body"]
    source = f"""
import binascii
from lbfw import server


class Port:
    def read(self):
        return None

    def write(self, data):
        print(binascii.hexlify(bytes(data)).decode())


srv = server.Server(Port(), {{}}, ticks_ms=lambda: {b["t"]})
srv.seq = {vec["seq"]}
srv.telemetry({b["step"]}, {b["err"]}, {b["pwr"]}, {b["lam"]}, {b["n"]}, {b["dt"]},
              {b["dtmax"]}, {b["flt"]}, v={b["v"]})
"""
    # on the line: the leading delimiter, then the vector (frame and its trailing 0x00)
    assert bytes.fromhex(run_vm(source).stdout.decode().strip()) == b"\x00" + vec["frame"]


def test_document_is_what_the_generator_writes():
    """docs/protocol.md's tables and vector frames are generated from host/protocol.toml;
    a hand edit or a changed definition without regenerating fails here."""
    text = DOC.read_text(encoding="utf-8")
    assert protocol_doc.render(text) == text, (
        "docs/protocol.md is stale: run `python -m learnboard.host.protocol_doc`")
    assert protocol_doc.main([str(DOC), "--check"]) == 0


def test_generator_reports_a_stale_or_unmarked_document(tmp_path, capsys):
    doc = tmp_path / "protocol.md"
    doc.write_text(DOC.read_text(encoding="utf-8").replace("| 5 | LIMIT |", "| 5 | LIMITS |"))
    assert protocol_doc.main([str(doc), "--check"]) == 1
    assert "run `python -m learnboard.host.protocol_doc`" in capsys.readouterr().err
    assert protocol_doc.main([str(doc)]) == 0
    assert doc.read_text(encoding="utf-8") == DOC.read_text(encoding="utf-8")
    doc.write_text("# no markers\n")
    assert protocol_doc.main([str(doc), "--check"]) == 2
    assert "no generated block for" in capsys.readouterr().err


def test_vectors_are_the_definitions():
    assert [(v["name"], v["type"], v["seq"], v["body"]) for v in VECTORS] == [
        tuple(v) for v in messages.VECTORS]


def _fw_constants(prefix: str) -> dict:
    return {k[len(prefix):]: getattr(fw_consts, k) for k in dir(fw_consts) if k.startswith(prefix)}


def test_firmware_numbers_are_the_definitions():
    """Values, not only names: every error code, fault bit, the version and the limits."""
    assert _fw_constants("E_") == {e.name: e.value for e in messages.ErrorCode}
    assert _fw_constants("F_") == {f.name: f.value for f in messages.Fault}
    assert fw_msgs.PROTOCOL == fw_frame.VERSION == codec.VERSION == messages.VERSION == 5
    lim = messages.LIMITS
    assert (fw_frame.MAX_ENCODED, fw_frame.MAX_RAW, fw_frame.MAX_BODY) == (
        lim["max_encoded"], lim["max_raw"], lim["max_body"])
    assert (codec.MAX_ENCODED, codec.MAX_RAW, codec.MAX_BODY) == (
        lim["max_encoded"], lim["max_raw"], lim["max_body"])
    assert fw_msgs.TELEMETRY_KEYS + fw_msgs.TELEMETRY_OPTIONAL == tuple(
        f.name for f in messages.TELEMETRY)
