"""Protocols 1 to 5 told apart, both ways.

New host, old firmware: a board flashed with the protocol-1, 2, 3 or 4 firmware (taken from
this repository's history at test time) drops protocol-5 frames unanswered;
``Link.hello``, ``learnboard info`` and ``learnboard flash`` recognise it by one older
hello, say "the board runs protocol-N firmware; run `learnboard flash` to update it", and
flashing brings it to protocol 5. Old host, new firmware: a protocol-1 to 4 request
gets an ERR in its own framing saying the board speaks protocol 5 (what such a host
decodes and reports)."""

from __future__ import annotations

import contextlib
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


def protocol1_firmware(dest: Path, version: int = 1) -> Path:
    """The last protocol-``version`` firmware of this repository's history, as a flash folder."""
    try:
        bump = _git("log", "-1", "--format=%H", "-S", f"PROTOCOL = {version}", "--",
                    "firmware/lbfw/msgs.py").strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip(f"needs the git history of the repository (the protocol-{version} firmware)")
    old = f"{bump}^"
    assert f"PROTOCOL = {version}" in _git("show", f"{old}:firmware/lbfw/msgs.py")
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
                          "board speaks protocol 5; update learnboard on the host"]
    assert srv.counters()["bad_version"] == 1 and srv.counters()["requests"] == 0


@pytest.mark.parametrize("version", [2, 3])
def test_a_protocol_2_or_3_request_gets_an_error_in_its_own_framing(version):
    host_end, board_end = memory_pair()
    srv = server.Server(board_end, {}, info={"fw": "x", "board": "b"})
    host_end.write(codec.encode_frame(MessageType.REQ, 7, [42, "hello", {}], version=version))
    dec = codec.FrameDecoder(old_versions=frozenset({version}))
    srv.poll()
    (frame,) = dec.feed(host_end.read(4096))
    # what a protocol-2 or protocol-3 host decodes as an ERR: [id, code, message, detail]
    assert (frame.version, frame.mtype) == (version, MessageType.ERR)
    assert frame.body == [42, consts.E_UNSUPPORTED,
                          "board speaks protocol 5; update learnboard on the host", {}]
    assert srv.counters()["requests"] == 0


# -- new host, old firmware (the real VM) --------------------------------------------------
# On the 64-bit VM only: what is tested is the host (recognition, the message, flash's way
# out); the old firmware from the history only answers. The new firmware flashed and
# booting on both VMs is tested in test_flashing.py and test_emulate_with_mpremote_and_pyserial.py.


@pytest.mark.vm("vm64")
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
        assert hello["proto"] == 5


def test_a_board_that_answers_only_the_protocol_1_probe_with_an_error_is_asked_again():
    """A protocol-5 board still booting misses hello, then answers the protocol-1 probe
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
        assert link.hello(probe_old=True)["proto"] == 5
    finally:
        link.close()
        stop.set()
        thread.join(2)


@contextlib.contextmanager
def _older_firmware_is_named(tmp_path, version: int):
    """Boot protocol-``version`` firmware on a VM board: the host's probe after the dropped
    protocol-5 hello names it and says to flash. Yields the board, still running."""
    flash = protocol1_firmware(tmp_path / "flash", version=version)
    with VMBoard(flash, board="gen2-clln", seed=1, replug=False) as vb:
        link = Link.open(vb.port, timeout=1.0, retries=0)
        try:
            wait_for(lambda: any(f.mtype == MessageType.EVT for f in list(link._old)), 60,
                     f"the protocol-{version} boot event")
            with pytest.raises(OldFirmware,
                               match=f"protocol-{version} firmware; run `learnboard flash`"):
                link.hello(probe_old=True)
        finally:
            link.close()
        yield vb


@pytest.mark.vm("vm64")
def test_protocol_2_firmware_is_recognised(tmp_path):
    """A board still running protocol-2 firmware (no board identity in its hello) drops the
    protocol-5 hello; the host's protocol-2 probe names it, and `learnboard info` says to flash."""
    require_vm()
    with _older_firmware_is_named(tmp_path, 2) as vb:
        run = subprocess.run([sys.executable, "-m", "learnboard", "info", "--port", vb.port],
                             capture_output=True, text=True, timeout=120)
        said = (f"the board runs protocol-2 firmware; run `learnboard flash --port {vb.port}` "
                "to update it")
        assert run.returncode != 0 and said in run.stderr + run.stdout, run.stderr


def test_protocol_3_firmware_is_recognised(tmp_path):
    """A board still running protocol-3 firmware (the free network's power only) drops
    the protocol-5 hello and answers the protocol-3 probe. One VM:
    what is tested is the host's probe."""
    require_vm()
    with _older_firmware_is_named(tmp_path, 3):
        pass


def test_protocol_4_firmware_is_recognised(tmp_path):
    """A board still running protocol-4 firmware (no null offset) drops the protocol-5
    hello and answers the protocol-4 probe, the first one sent."""
    require_vm()
    with _older_firmware_is_named(tmp_path, 4):
        pass


def _fake_board(reply):
    """A line on a memory pair that answers each frame it receives with
    ``reply(frame, frames_seen)`` (bytes, or None for silence). Returns the host end, the
    versions of the frames it received in order, and a stop function."""
    host_end, board_end = memory_pair(timeout_b=0.05)
    seen: list[int] = []
    stop = threading.Event()

    def loop():
        dec = codec.FrameDecoder(accept=None, old_versions=codec.OLD_VERSIONS)
        while not stop.is_set():
            for frame in dec.feed(board_end.read(4096)):
                seen.append(frame.version)
                out = reply(frame, len(seen))
                if out:
                    board_end.write(out)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()

    def close():
        stop.set()
        thread.join(2)

    return host_end, seen, close


def _older_board(answer_after: int):
    """A board of older firmware (protocol 1): it drops frames of other protocols, and
    answers a protocol-1 hello with OK once it has seen ``answer_after`` frames (still
    booting before)."""
    def reply(frame, n):
        if frame.version == 1 and n > answer_after:
            return codec.encode_frame(MessageType.OK, 0, [frame.body[0], {"proto": 1}], version=1)
        return None
    return _fake_board(reply)


NEW, OLDS = codec.VERSION, sorted(codec.OLD_VERSIONS, reverse=True)


def _hello_against(line, expected: type[Exception], match: str | None = None,
                   timeout: float = 0.2) -> tuple[list[int], Exception]:
    """A hello with older-firmware probing (three tries) on ``line`` (a fake board), which
    must end in ``expected``: the versions the line received, and the exception."""
    host_end, seen, close = line
    link = Link(host_end, timeout=timeout, retries=2)
    try:
        with pytest.raises(expected, match=match) as info:
            link.hello(probe_old=True)
    finally:
        link.close()
        close()
    return seen, info.value


def test_older_firmware_is_probed_after_the_first_unanswered_hello_not_after_all_retries():
    """A user waits one hello timeout to hear "flash it", not every retry of hello: the
    older hellos (every older protocol, newest first, sent together) follow the first
    unanswered one."""
    seen, exc = _hello_against(_older_board(answer_after=0), OldFirmware)
    assert exc.protocol == 1
    assert seen == [NEW, *OLDS]  # one hello of this protocol, then the older ones


def test_older_firmware_still_booting_at_the_first_probe_is_probed_again_after_the_last_hello():
    """The patience for a slow board stays: all of hello's tries, then the older hellos
    once more, which the board (up by now) answers."""
    seen, _ = _hello_against(_older_board(answer_after=1 + len(OLDS)),  # silent in round one
                             OldFirmware, "protocol-1 firmware")
    assert seen == [NEW, *OLDS, NEW, NEW, *OLDS]


def test_a_silent_board_gets_every_hello_try_and_both_probes_before_the_timeout():
    seen, _ = _hello_against(_older_board(answer_after=10**6),  # never answers
                             LinkTimeout, "after 3 tries", timeout=0.1)
    assert seen == [NEW, *OLDS, NEW, NEW, *OLDS]


def test_a_line_with_other_bytes_gets_every_hello_try_and_no_older_hello():
    line = _fake_board(lambda frame, n: b"booting...\r\n")  # answers every frame, never a frame
    seen, _ = _hello_against(line, LinkTimeout, "after 3 tries", timeout=0.1)
    assert seen == [NEW, NEW, NEW]
