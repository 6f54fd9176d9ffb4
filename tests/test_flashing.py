"""Flashing (host/flashing.py), port listing (host/serial_ports.py) and their commands.

The full flash of a running board (repl interrupt, reset, hello verify) runs in the
board suite (``hil_tests``) against ``learnboard emulate``; here the parts are checked
one by one against a flash folder, the real VM and mpremote on a virtual port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from learnboard.emulator.vm import micropython_executable
from learnboard.firmware.lbfw.desc import load_description
from learnboard.host import flashing as F
from learnboard.host.serial_ports import list_ports

from learnboard.boards import compile_board, load_board
from tests.mpvm import require_vm, run_vm


def _flash_folder(tmp_path, **kw):
    if kw.get("mpy"):  # the VM `learnboard emulate` boots the folder with
        kw.setdefault("vm", micropython_executable())
    return F.flash(None, kw.pop("board", "gen2-clln"), flash_dir=tmp_path, **kw)


def test_folder_flash_writes_firmware_and_description_then_skips_unchanged(tmp_path):
    first = _flash_folder(tmp_path)
    names = {f.path for f in F.firmware_sources()} | {"board.json"}
    assert set(first.written) == names and not first.skipped
    body, digest = load_description(str(tmp_path / "board.json"))  # the firmware's own reader
    assert digest == compile_board(load_board("gen2-clln")).sha256 == first.desc_hash
    assert len(body["edges"]) == load_board("gen2-clln").n_edges
    again = _flash_folder(tmp_path)
    assert again.written == [] and set(again.skipped) == names and again.bytes_written == 0
    # one changed file: only it is written (tmp + rename: the board has the old or the new one)
    (tmp_path / "lbfw" / "crc.py").write_text("# edited on the board\n")
    assert _flash_folder(tmp_path).written == ["lbfw/crc.py"]
    # a changed file and a stale module: the change is written and the stale one goes, with
    # main.py taken out first and written last (a copy cut short leaves no main.py)
    (tmp_path / "lbfw" / "crc.py").write_text("# edited on the board\n")
    (tmp_path / "lbfw" / "old_module.py").write_text("x = 1\n")
    third = _flash_folder(tmp_path)
    assert third.written == ["lbfw/crc.py", "main.py"] and third.removed == ["lbfw/old_module.py"]
    assert (tmp_path / "lbfw" / "crc.py").read_bytes() == (F.firmware_dir() / "lbfw" / "crc.py").read_bytes()


def test_a_flash_of_several_files_takes_main_py_out_first_and_writes_it_last(tmp_path):
    _flash_folder(tmp_path)
    steps: list[tuple[str, str]] = []

    class Logged(F.FolderFiles):
        def write(self, path, data, progress=None):
            steps.append(("write", path))
            super().write(path, data, progress)

        def remove(self, path):
            steps.append(("remove", path))
            super().remove(path)

    dest = Logged(tmp_path)
    for module in ("crc.py", "frame.py"):
        (tmp_path / "lbfw" / module).write_text("# old\n")
    F.sync(F.firmware_sources(), dest)
    # until the copy is complete the board has no main.py: cut short, it boots to its REPL
    assert steps == [("remove", "main.py"), ("write", "lbfw/crc.py"), ("write", "lbfw/frame.py"),
                     ("write", "main.py")]


def test_other_board_rewrites_only_board_json(tmp_path):
    _flash_folder(tmp_path)
    other = _flash_folder(tmp_path, board="gen1-digipot")
    assert other.written == ["board.json"]
    assert other.desc_hash == compile_board(load_board("gen1-digipot")).sha256


@pytest.mark.vm
def test_mpy_flash_matches_the_vm_abi_and_imports(tmp_path):
    require_vm()
    report = _flash_folder(tmp_path, mpy=True)
    version, sub, arch = F.parse_mpy_abi(report.mpy)
    mpys = sorted((tmp_path / "lbfw").glob("*.mpy"))
    assert mpys and not list((tmp_path / "lbfw").glob("*.py"))
    for path in mpys:
        head = path.read_bytes()[:4]
        assert head[0] == ord("M") and head[1] == version
    proc = run_vm("import sys\nsys.path.insert(0, '" + str(tmp_path) + "')\n"
                  "from lbfw import app, rule_viper\nprint(app.__file__, app.VERSION)", path=[])
    out = proc.stdout.decode()
    assert "app.mpy" in out and F.firmware_version() in out
    # back to source: the .mpy twins are removed (MicroPython would import .py first anyway)
    back = _flash_folder(tmp_path)
    assert sorted(back.removed) == sorted(f"lbfw/{p.name}" for p in mpys)


def test_mpy_abi_mismatch_is_refused_with_both_versions():
    with pytest.raises(F.FlashError, match=r"v6.*v5|v5.*v6"):
        F.compile_mpy(F.firmware_sources(), 5 | (2 << 10))  # a .mpy v5 board (MicroPython 1.12-1.18)


def test_parse_mpy_abi_of_known_boards():
    assert F.parse_mpy_abi(2822) == (6, 3, "x64")  # this VM
    assert F.parse_mpy_abi(6 | (3 << 8) | (4 << 10)) == (6, 3, "armv6m")  # an RP2040


def test_version_or_description_mismatch_says_to_flash():
    good = {"proto": 5, "fw": F.firmware_version(), "desc_hash": "ab" * 32}
    F.check_hello(good, "/dev/ttyX", desc_hash="ab" * 32)
    with pytest.raises(F.FirmwareMismatch, match=r"firmware 0\.0\.1.*learnboard flash --port /dev/ttyX"):
        F.check_hello({**good, "fw": "0.0.1"}, "/dev/ttyX", port="/dev/ttyX")
    with pytest.raises(F.FirmwareMismatch, match="protocol 2"):
        F.check_hello({**good, "proto": 2}, "/dev/ttyX")
    with pytest.raises(F.FirmwareMismatch, match="board description abababab"):
        F.check_hello(good, "/dev/ttyX", desc_hash="cd" * 32)


@pytest.mark.vm
def test_sync_over_mpremote_to_a_virtual_board(tmp_path):
    require_vm()
    from learnboard.emulator.vm_board import VMBoard

    files, desc = F.plan("gen1-digipot")
    with VMBoard(tmp_path / "flash") as vb:
        assert F.interrupt_firmware(vb.port, timeout=0.2) is None  # a plain REPL: nobody answers
        dest = F.SerialFiles(vb.port).open()
        try:
            assert F.parse_mpy_abi(dest.mpy_abi())[0] == 6
            first = F.sync(files, dest)
            assert len(first.written) == len(files)
            again = F.sync(files, dest)
            assert again.written == [] and len(again.skipped) == len(files)
        finally:
            dest.close()
    assert (tmp_path / "flash" / "board.json").read_bytes() == files[-1].data
    assert not list((tmp_path / "flash").rglob("*.tmp"))


def _probe_bytes(probes: int) -> list[bytes]:
    """What ``flash``'s firmware probe writes to a port that never answers (hello, its
    retry and the older protocols' hellos, twice), once per probe."""
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    os.set_blocking(master, False)
    out = []
    try:
        for _ in range(probes):
            assert F.interrupt_firmware(os.ttyname(slave), timeout=0.01) is None
            data = b""
            while chunk := _read_some(master):
                data += chunk
            out.append(data)
    finally:
        os.close(master)
        os.close(slave)
    return out


def _read_some(fd: int) -> bytes:
    try:
        return os.read(fd, 4096)
    except BlockingIOError:
        return b""


@pytest.mark.vm
def test_flash_probe_into_a_board_at_its_repl_never_soft_resets_it_into_main_py(tmp_path):
    """flash first asks a running firmware to stop, with frames; a board sitting at its REPL
    gets those bytes too. None may be a Ctrl-D on an empty friendly line: that soft reset
    starts main.py, whose firmware then ignores the Ctrl-C flash sends next. The probes are
    replayed byte for byte, as they go out on a line that stays silent (a slow board)."""
    require_vm()
    from learnboard.emulator.vm_board import VMBoard
    from learnboard.host.maintenance import at_prompt

    probes = _probe_bytes(12)  # each with a new random request id, so other CRC bytes
    assert all(p.count(b"\x00") >= 10 for p in probes)  # the older protocols' hellos went out too
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("f = open('runs', 'a'); f.write('x'); f.close()\n")
    with VMBoard(flash) as vb:
        for data in probes:
            assert at_prompt(vb.port)  # at the friendly prompt, as after `learnboard repl`
            _write(vb.port, data)
            dest = F.SerialFiles(vb.port).open()  # the raw REPL, as flash enters it next
            try:
                assert dest.hashes(["runs"])["runs"] is not None
            finally:
                dest.close()
    assert (flash / "runs").read_text() == "x"  # main.py ran at power-on only


def _write(port: str, data: bytes) -> None:
    import serial

    with serial.Serial(port, 115200) as s:
        s.write(data)
        s.flush()


def test_ports_probe_does_not_hang_on_a_silent_port():
    master, slave = os.openpty()
    name = os.ttyname(slave)
    found = []
    try:
        # the probe returns on its own (a hang would keep the thread alive past the
        # generous bound) and says nobody answered
        probe = threading.Thread(target=lambda: found.extend(list_ports(extra=[name], timeout=0.3)),
                                 daemon=True)
        probe.start()
        probe.join(60)
        assert not probe.is_alive(), "the ports probe hangs on a port that never answers"
    finally:
        os.close(master)
        os.close(slave)
    mine = [p for p in found if p.device == name]
    assert mine and mine[0].hello is None and mine[0].probe.startswith(("no answer", "busy"))


def test_flash_command_json_and_help(tmp_path):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "learnboard", "flash", "--board", "gen1-digipot",
                          "--flash-dir", str(tmp_path), "--json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert "board.json" in report["written"] and report["desc_hash"] == compile_board(load_board("gen1-digipot")).sha256
    for cmd in ("flash", "info", "stop", "ports"):
        text = subprocess.run([sys.executable, "-m", "learnboard", cmd, "--help"], capture_output=True, text=True).stdout
        assert "example" in text and f"learnboard {cmd}" in text


def test_bad_board_fails_before_touching_the_port(tmp_path):
    from learnboard.errors import LearnboardError

    with pytest.raises(LearnboardError, match="no-such-board"):
        F.flash("/dev/does-not-exist", "no-such-board")


@pytest.mark.vm
def test_boot_output_shows_why_a_firmware_does_not_answer(tmp_path):
    require_vm()
    from learnboard.emulator.vm_board import VMBoard

    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "main.py").write_text("raise ValueError('broken firmware')\n")
    with VMBoard(flash) as vb:
        text = F.boot_output(vb.port, seconds=5)
    assert "ValueError: broken firmware" in text


def test_a_board_followed_after_its_reset_is_not_confused_with_an_older_emulator(tmp_path, monkeypatch):
    """Two emulators on one machine reuse pty numbers: one that left ``a`` for ``b``
    a while ago is not where the board now on ``a`` went after its own reset."""
    from learnboard.host import serial_ports as P

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    a, b, c = (tmp_path / n for n in "abc")
    for p in (a, b, c):
        p.touch()
    older = P.announce_emulated(str(b), "gen1-digipot", previous=[str(a)], key="older")
    entry = json.loads(older.read_text())
    entry["moved_at"] = entry["at"] = time.time() - 10  # left a ten seconds ago
    older.write_text(json.dumps(entry))
    P.announce_emulated(str(a), "gen2-clln", key="mine")  # then took a
    assert P.current_port(str(a)) == str(a)
    assert P._successor(str(a)) is None
    lost = time.time()
    # mine resets: a drops, the board comes back on c
    P.announce_emulated(str(c), "gen2-clln", previous=[str(a)], key="mine")
    assert P.find_again(str(a), since=lost - 0.5, timeout=2) == str(c)
    assert P.current_port(str(a)) == str(c)
