"""Protocol 1 and 2 told apart, both ways.

New host, old firmware: a board flashed with the protocol-1 firmware (taken from this
repository's history at test time) drops protocol-2 frames unanswered; ``Link.hello``,
``learnboard info`` and ``learnboard flash`` recognise it by one protocol-1 hello, say
"the board runs protocol-1 firmware; run `learnboard flash` to update it", and flashing
brings it to protocol 2. Old host, new firmware: a protocol-1 request gets a protocol-1
ERR saying the board speaks protocol 2 (what a protocol-1 host decodes and reports)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from learnboard.emulator.vm_board import VMBoard
from learnboard.firmware.lbfw import consts, server
from learnboard.host import codec
from learnboard.host.codec import MessageType
from learnboard.host.link import OLD_FIRMWARE, Link, LinkTimeout, OldFirmware
from learnboard.host.transport import memory_pair

from learnboard.boards import compile_board, load_board
from tests.mpvm import require_vm
from tests.test_emulator_port import wait_for

ROOT = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout


def protocol1_firmware(dest: Path) -> Path:
    """The last protocol-1 firmware of this repository's history, as a flash folder."""
    try:
        bump = _git("log", "-1", "--format=%H", "-S", "PROTOCOL = 1", "--",
                    "firmware/lbfw/msgs.py").strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("needs the git history of the repository (the protocol-1 firmware)")
    old = f"{bump}^"
    assert "PROTOCOL = 1" in _git("show", f"{old}:firmware/lbfw/msgs.py")
    for path in _git("ls-tree", "-r", "--name-only", old, "firmware/").split():
        rel = Path(path).relative_to("firmware")
        if rel.suffix != ".py" or rel.name in ("__init__.py", "manifest.py") and rel.parent == Path("."):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(_git("show", f"{old}:{path}"))
    (dest / "board.json").write_bytes(compile_board(load_board("gen2-clln")).to_bytes())
    return dest


# -- old host, new firmware (CPython, the firmware's server in a thread) -------------------


def test_a_protocol_1_request_gets_a_protocol_1_error_naming_the_version():
    host_end, board_end = memory_pair()
    srv = server.Server(board_end, {}, info={"fw": "x", "board": "b"})
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            if not srv.poll():
                time.sleep(0.0005)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        host_end.write(codec.encode_frame(MessageType.REQ, 7, [42, "hello", {}], version=1))
        dec = codec.FrameDecoder(old_versions=frozenset({1}))
        frames = wait_for(lambda: dec.feed(host_end.read(4096)), 5, "the protocol-1 reply")
    finally:
        stop.set()
        thread.join(2)
    (frame,) = frames
    # exactly what a protocol-1 host decodes as an ERR: [id, code, message]
    assert (frame.version, frame.mtype) == (1, MessageType.ERR)
    assert frame.body == [42, consts.E_UNSUPPORTED,
                          "board speaks protocol 2; update learnboard on the host"]
    assert srv.counters()["bad_version"] == 1 and srv.counters()["requests"] == 0


# -- new host, old firmware (the real VM) --------------------------------------------------


@pytest.mark.vm
def test_protocol_1_firmware_is_recognised_and_flashing_updates_it(tmp_path):
    require_vm()
    flash = protocol1_firmware(tmp_path / "flash")
    with VMBoard(flash, board="gen2-clln", seed=1, replug=False) as vb:
        link = Link.open(vb.port, timeout=1.0, retries=0)
        try:
            # the old firmware is up when its protocol-1 boot event arrived
            wait_for(lambda: any(f.mtype == MessageType.EVT for f in list(link._old)), 60,
                     "the protocol-1 boot event")
            with pytest.raises(OldFirmware, match="protocol-1 firmware; run `learnboard flash`"):
                link.hello(probe_old=True)
            assert str(OldFirmware()) == OLD_FIRMWARE
        finally:
            link.close()
        said = (f"the board runs protocol-1 firmware; run `learnboard flash --port {vb.port}` "
                "to update it")
        for cmd in (["info"], ["train", "--steps", "10"]):
            run = subprocess.run([sys.executable, "-m", "learnboard", *cmd, "--port", vb.port],
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode != 0 and said in run.stderr + run.stdout, (cmd, run.stderr)
        flashed = subprocess.run([sys.executable, "-m", "learnboard", "flash", "--port", vb.port,
                                  "--board", "gen2-clln"], capture_output=True, text=True,
                                 timeout=300)
        assert flashed.returncode == 0, flashed.stderr + flashed.stdout
        assert "stopped protocol-1 firmware" in flashed.stdout + flashed.stderr
        with Link.open(vb.port, timeout=2.0, retries=3) as link:
            try:
                hello = link.hello()
            except LinkTimeout:  # still booting: its boot event, then hello
                while (ev := link.next_event(timeout=60)) is not None and ev[0] != "boot":
                    pass
                hello = link.hello()
        assert hello["proto"] == 2


def test_a_board_that_answers_only_the_protocol_1_probe_with_an_error_is_asked_again():
    """A protocol-2 board still booting misses hello, then answers the protocol-1 probe
    (with its protocol-1 ERR): that is no protocol-1 firmware, and hello is asked again."""
    host_end, board_end = memory_pair()
    srv = server.Server(board_end, {}, info={"fw": "x", "board": "b"})
    booted = threading.Event()
    stop = threading.Event()

    def loop():
        while not stop.is_set():
            if booted.is_set():
                srv.poll()
            elif b"\x01\x01" in (data := board_end.read() or b""):  # the protocol-1 probe
                srv.parser.feed(data)
                booted.set()
            time.sleep(0.0005)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    link = Link(host_end, timeout=0.3, retries=0)
    try:
        assert link.hello(probe_old=True)["proto"] == 2
    finally:
        link.close()
        stop.set()
        thread.join(2)
