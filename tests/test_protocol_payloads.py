"""Both ends against the protocol's definition (host/protocol.toml), payload by payload:
the unchanged firmware in the real MicroPython VM (VMBoard, its analog world
attached) answers every command, refuses requests of each error class it can be driven
to, trains, parks and reboots, while every frame both ways is recorded off the line and
checked against the definition: field names, types, ranges and enums, nothing
undocumented, nothing documented missing. Units are checked where they can be: the
host's telemetry in volts agrees with the board's own volt readings.

Two boards: gen2-clln (pulse gates: gate codes in telemetry) and spi-parts (SPI digipots:
taps; a current monitor: ``pwr_m``). The ERR detail checks follow the shared v2 shape
``[id, code, message, detail]``."""

from __future__ import annotations

from pathlib import Path

import pytest
from learnboard.emulator.vm_board import VMBoard
from learnboard.host import codec, messages
from learnboard.host.codec import MessageType
from learnboard.host.link import BoardError, Link
from learnboard.host.transport import SerialTransport

from learnboard.board_id import emulated_uid, is_emulated
from learnboard.boards import compile_board, load_board
from tests import _protocol_check as check
from tests.mpvm import require_vm
from tests.test_emulate_with_mpremote_and_pyserial import flashed_board

pytestmark = pytest.mark.vm

BOARDS = {"gen2-clln": "gen2-clln",
          "spi-parts": str(Path(__file__).parent / "boards" / "spi-parts.toml")}
BOOT_S = 120.0  # a generous bound for the VM's boot; waits end on the event
EXPECTED_ERRORS = {"BAD_REQUEST", "UNKNOWN_COMMAND", "BAD_ARGS", "OUT_OF_RANGE", "LIMIT", "BUSY",
                   "NOT_READY"}


class Tap:
    """A serial transport that also decodes every frame it carries, both ways."""

    def __init__(self, url: str):
        self.t = SerialTransport(url)
        accept_all = frozenset(int(t) for t in MessageType)
        self.rx_dec = codec.FrameDecoder(accept=accept_all)
        self.tx_dec = codec.FrameDecoder(accept=accept_all)
        self.rx: list[codec.Frame] = []
        self.tx: list[codec.Frame] = []

    def read(self, size: int = 4096) -> bytes:
        data = self.t.read(size)
        if data:
            self.rx += self.rx_dec.feed(data)
        return data

    def write(self, data: bytes) -> None:
        self.tx += self.tx_dec.feed(data)
        self.t.write(data)

    def close(self) -> None:
        self.t.close()


def _wait_event(link: Link, name: str, timeout: float = BOOT_S) -> dict:
    while (ev := link.next_event(timeout=timeout)) is not None:
        if ev[0] == name:
            return ev[1]
    raise AssertionError(f"no {name!r} event within {timeout:g} s")


def _refused(link: Link, command: str, args) -> int:
    with pytest.raises(BoardError) as info:
        link.request(command, args)
    return info.value.code


def _session(link: Link, body: dict) -> dict:
    """Drive the board through every command; returns what the checks need."""
    out: dict = {"refused": {}}
    vn = body["lim"]["vn"]
    n_in = sum(1 for p in body["ins"] if p["fx"] is None)
    n_out = len(body["outs"])
    out["hello"] = link.hello()
    link.call("stats")
    link.call("status")
    link.call("get_params")
    link.call("get_params", names=["lam", "tlm_every"])
    link.call("set_params", lam=0.25, tlm_every=5, tlm_nodes=1, tlm_edges=2, host_timeout_ms=0)
    refused = out["refused"]
    refused["fly"] = _refused(link, "fly", {})
    refused["args not a map"] = _refused(link, "status", [1])
    refused["oversample str"] = _refused(link, "set_params", {"oversample": "x"})
    refused["lam 2"] = _refused(link, "set_params", {"lam": 2.0})
    refused["train no examples"] = _refused(link, "train", {"steps": 5})
    refused["infer above vn"] = _refused(link, "infer", {"x": [2.0 * vn] * n_in})
    xs = [[0.2 * vn + 0.1 * vn * (i % 2)] * n_in for i in range(4)]
    ys = [[0.1 * vn + 0.05 * vn * (i % 2)] * n_out for i in range(4)]
    link.call("upload_examples", x=xs, y=ys, clear=True)
    link.call("upload_examples", start=4, x=xs[:1], y=ys[:1])
    link.call("train", steps=20, every=5)
    refused["upload while training"] = _refused(link, "upload_examples", {"x": xs, "y": ys})
    _wait_event(link, "done")
    out["tlm"] = []
    while (t := link.next_telemetry(timeout=0)) is not None:
        out["tlm"].append(t)
    out["edges"] = link.call("read_edges")["k"]
    link.call("read_edges", start=0, count=1)
    link.call("write_edges", start=0, k=out["edges"][:1])
    link.call("write_edges", k=out["edges"], clamp=True)
    link.call("train", steps=0)
    link.call("stop")
    link.call("infer", x=xs[0])
    out["infer_y"] = link.call("infer", x=xs[0], y=ys[0])
    n_e = len(body["edges"])
    fets = any(e["k"] == "t" for e in body["edges"])
    model = {"vt": [0.6] * n_e, "beta": [8e-4] * n_e} if fets else \
        {"r_scale": [1.05] * n_e, "r_wiper": [45.0] * n_e}
    out["set_model"] = link.call("set_model", net=0, start=0, **model)
    out["infer_cal"] = link.call("infer", x=xs[0], y=ys[0])
    link.call("set_model", net=body["nets"] - 1, nominal=True)
    link.call("set_model", net=0, nominal=True)
    out["measure"] = link.call("measure")
    link.call("measure", nodes=[0, 1])
    link.call("self_test")
    link.call("set_params", host_timeout_ms=300)  # then silence: the board parks itself
    out["parked"] = [_wait_event(link, "parked")]
    link.call("set_params", host_timeout_ms=0)
    link.call("park")
    out["parked"].append(_wait_event(link, "parked"))
    link.call("reset")
    out["boot"] = _wait_event(link, "boot")
    link.hello()
    link.call("repl")
    return out


@pytest.fixture(scope="module", params=sorted(BOARDS))
def traffic(request, tmp_path_factory, micropython):
    require_vm()
    name = request.param
    body = compile_board(load_board(BOARDS[name])).body
    tmp = tmp_path_factory.mktemp(f"payloads-{name}")
    flash = flashed_board(tmp, BOARDS[name]).flash_dir
    # a reset keeps the pty: the boot event comes over the same link
    vb = VMBoard(flash, board=BOARDS[name], seed=1, replug=False)  # the board's heap, as this VM needs it
    with vb:
        tap = Tap(vb.port)
        link = Link(tap, timeout=5.0, retries=3)
        try:
            first_boot = _wait_event(link, "boot")
            seen = _session(link, body)
        finally:
            link.close()
    return {"name": name, "body": body, "tap": tap, "first_boot": first_boot, **seen}


def _exchanges(tap: Tap):
    """(command, args, reply frame) per request, matched by id (retries collapse)."""
    sent = {}
    for f in tap.tx:
        if f.mtype == MessageType.REQ and isinstance(f.body, list) and len(f.body) == 3:
            sent[f.body[0]] = (f.body[1], f.body[2])
    for f in tap.rx:
        if f.mtype in (MessageType.OK, MessageType.ERR) and isinstance(f.body, list) and \
                f.body and f.body[0] in sent:
            yield (*sent[f.body[0]], f)


def test_every_reply_is_as_defined(traffic):
    problems, ok_commands = [], set()
    for command, args, reply in _exchanges(traffic["tap"]):
        if reply.mtype == MessageType.OK:
            ok_commands.add(command)
            problems += check.args_problems(command, args)
            problems += check.result_problems(command, reply.body[1], args)
        else:
            problems += check.error_problems(reply.body)
    assert problems == []
    assert ok_commands == set(messages.COMMANDS), "every command answered at least once"


def test_every_error_reply_is_as_defined(traffic):
    """One request per error class the board can be driven to; the ERR bodies carry the
    v2 detail map (its ``field`` where an argument is at fault)."""
    names = {k: messages.ErrorCode(v).name for k, v in traffic["refused"].items()}
    assert names == {
        "fly": "UNKNOWN_COMMAND", "args not a map": "BAD_REQUEST", "oversample str": "BAD_ARGS",
        "lam 2": "OUT_OF_RANGE", "train no examples": "NOT_READY", "infer above vn": "LIMIT",
        "upload while training": "BUSY"}
    assert set(names.values()) == EXPECTED_ERRORS
    errs = [f.body for f in traffic["tap"].rx if f.mtype == MessageType.ERR]
    assert len(errs) >= len(names)
    assert [p for b in errs for p in check.error_problems(b)] == []
    fields = {b[1]: b[3].get("field") for b in errs if isinstance(b, list) and len(b) == 4}
    assert fields.get(int(messages.ErrorCode.BAD_ARGS)) == "oversample"
    assert fields.get(int(messages.ErrorCode.OUT_OF_RANGE)) == "lam"


def test_infer_reports_the_power_of_each_network_and_the_model_it_used(traffic):
    """pwr is the free plus the clamped network; set_model's parameters are what the
    next infer's estimate uses (its model says so), and they change the estimate."""
    body = traffic["body"]
    n_e = len(body["edges"])
    for r in (traffic["infer_y"], traffic["infer_cal"]):
        assert r["pwr_f"] > 0
        if body["nets"] > 1:
            assert r["pwr_c"] > 0 and r["pwr"] == pytest.approx(r["pwr_f"] + r["pwr_c"], rel=1e-5)
        else:
            assert r["pwr_c"] is None and r["pwr"] == pytest.approx(r["pwr_f"], rel=1e-5)
    assert traffic["infer_y"]["model"] == "nominal" and traffic["infer_cal"]["model"] == "calibrated"
    assert traffic["set_model"] == {"net": 0, "count": n_e, "model": "calibrated"}
    assert traffic["infer_cal"]["pwr_f"] != pytest.approx(traffic["infer_y"]["pwr_f"], rel=1e-3)


def test_hello_names_the_emulated_mcu_by_its_board_and_seed(traffic):
    """The firmware sends machine.unique_id() as hex; the VM's is the emulated board's
    id for its board and seed (seed 1 here), marked as emulated."""
    uid = traffic["hello"]["uid"]
    assert uid == emulated_uid(traffic["body"]["name"], 1).hex() and is_emulated(uid)


def test_every_event_is_as_defined(traffic):
    events = [f.body for f in traffic["tap"].rx if f.mtype == MessageType.EVT]
    assert [p for b in events for p in check.event_problems(b)] == []
    assert {b[0] for b in events} >= {"boot", "done", "parked"}
    for boot in (traffic["first_boot"], traffic["boot"]):
        assert boot["proto"] == messages.VERSION and boot["board"] == traffic["body"]["name"]
    assert [p["reason"] for p in traffic["parked"]] == ["host_silent", "request"]
    assert all(p["flt"] & int(messages.Fault.PARKED) for p in traffic["parked"])


def test_every_telemetry_field_is_as_defined(traffic):
    frames = [f.body for f in traffic["tap"].rx if f.mtype == MessageType.TLM]
    assert frames, "training sent telemetry"
    assert [p for b in frames for p in check.telemetry_problems(b)] == []
    body = traffic["body"]
    assert any("v" in f for f in frames) and any("k" in f for f in frames)
    assert all(len(f["v"]) == len(body["nodes"]) for f in frames if "v" in f)
    assert all(len(f["k"]) == len(body["edges"]) for f in frames if "k" in f)
    sensed = "power_sense" in traffic["hello"]["caps"]
    assert sensed == ("current_sense" in body or body.get("cs") is not None or sensed)
    assert all(("pwr_m" in f) == sensed for f in frames)
    assert all(("pwr_c" in f) == (body["nets"] > 1) for f in frames)
    if traffic["name"] == "spi-parts":
        assert sensed, "spi-parts has a current monitor: pwr_m in every frame"


def test_telemetry_reaches_the_host_in_volts(traffic):
    """Codes on the wire, volts at the host: hello's scale turns the last frame's edge
    codes into what read_edges says right after (taps stay taps, gates in volts), and
    node codes into volts within the ADC's range."""
    hello, body = traffic["hello"], traffic["body"]
    scale = hello["scale"]
    assert scale["v"] > 0 and len(scale["k"]) == len(body["edges"])
    full_scale = body["adc"]["vref"]
    with_v = [t for t in traffic["tlm"] if "v" in t]
    assert with_v and all(0.0 <= x <= full_scale * 1.01 for t in with_v for x in t["v"])
    last_k = [t for t in traffic["tlm"] if "k" in t][-1]["k"]
    edges = traffic["edges"]
    for e, (tk, rk) in enumerate(zip(last_k, edges, strict=True)):
        if scale["k"][e] == 0:
            assert isinstance(tk, int) and tk == rk, (e, tk, rk)
        else:  # a pulse gate is read back again: a few codes of noise and leakage
            assert isinstance(tk, float) and abs(tk - rk) <= 8 * scale["k"][e], (e, tk, rk)
    assert any(s > 0 for s in scale["k"]) == (traffic["name"] == "gen2-clln")
