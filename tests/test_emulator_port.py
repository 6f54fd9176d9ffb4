"""The virtual board on a serial port: real VM, real mpremote CLI, real pyserial.

Every test runs the installed ``mpremote`` as a subprocess (or pyserial) against a pty
served by :class:`learnboard.emulator.vm_board.VMBoard` or ``learnboard emulate``.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import serial
from learnboard.emulator.vm import board_heap, micropython_executable
from learnboard.emulator.vm_board import VMBoard

from tests.mpvm import require_vm

pytestmark = pytest.mark.vm

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        message = f"{name} not installed next to {sys.executable}: pip install -e '.[test]'"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(exe)


def mpremote(port: str, *args: str, timeout: float = 30) -> str:
    """Run ``mpremote connect PORT ARGS...``; return its stdout (fail with its stderr)."""
    proc = subprocess.run(
        [_tool("mpremote"), "connect", port, *args], capture_output=True, timeout=timeout
    )
    assert proc.returncode == 0, f"mpremote {args} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout.decode(errors="replace")


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def process_gone(pid: int) -> bool:
    """True once ``pid`` no longer exists (a zombie counts as still there)."""
    return not Path(f"/proc/{pid}").exists()


def read_until(ser: serial.Serial, ending: bytes, timeout: float = 10.0) -> bytes:
    data = b""
    end = time.monotonic() + timeout
    while not data.endswith(ending):
        if time.monotonic() > end:
            raise AssertionError(f"no {ending!r} from the board; got {data[-200:]!r}")
        data += ser.read(1)
    return data


def friendly_prompt(ser: serial.Serial) -> None:
    """Bring the board to an empty friendly-REPL prompt, with nothing left to read."""
    ser.write(b"\x02")  # Ctrl-B: friendly REPL (prints its banner)
    read_until(ser, b'for more information.\r\n>>> ')  # the prompt ends what Ctrl-B prints
    ser.reset_input_buffer()


def read_exact(ser: serial.Serial, n: int, timeout: float = 10.0) -> bytes:
    data = bytearray()
    end = time.monotonic() + timeout
    while len(data) < n and time.monotonic() < end:
        data += ser.read(n - len(data))
    return bytes(data)


@pytest.fixture
def board(tmp_path):
    require_vm()
    b = VMBoard(tmp_path / "flash")
    b.start()
    pids = []
    yield b, pids
    pids.append(b.vm_pid)
    b.stop()
    for pid in pids:
        assert wait_for(lambda pid=pid: process_gone(pid), 5, f"VM {pid} to end"), pid


def test_mpremote_exec_runs_micropython_with_a_board_sized_heap(board):
    b, _ = board
    out = mpremote(
        b.port,
        "exec",
        "import sys, gc; print(sys.implementation.name, sys.implementation._mpy, gc.mem_free()+gc.mem_alloc())",
    )
    name, mpy, heap = out.split()
    assert name == "micropython"
    assert int(mpy) & 0xFF == 6  # .mpy format version 6
    board_kb = int(board_heap(micropython_executable())[:-1])  # 192 on a 32-bit VM, 232 on a 64-bit one
    assert 0.95 * board_kb * 1024 <= int(heap) <= board_kb * 1024


def test_module_compiled_by_mpy_cross_imports_on_the_board(board, tmp_path):
    b, _ = board
    src = tmp_path / "lbx.py"
    src.write_text("def triangle(n):\n    return n * (n + 1) // 2\n")
    subprocess.run([_tool("mpy-cross"), str(src)], check=True, timeout=30)
    mpy = tmp_path / "lbx.mpy"
    assert mpy.read_bytes()[:2] == b"M\x06"
    out = mpremote(
        b.port, "fs", "cp", str(mpy), ":lbx.mpy", "+",
        "exec", "import lbx; print(lbx.triangle(20), lbx.__file__)",
    )
    assert out.splitlines()[-1].split() == ["210", "lbx.mpy"]
    assert (b.flash_dir / "lbx.mpy").read_bytes() == mpy.read_bytes()


def test_the_flash_folder_is_the_board_root_filesystem(board, tmp_path):
    b, _ = board
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hi\x00there")
    (b.flash_dir / "lib").mkdir()
    (b.flash_dir / "lib" / "lbhelper.py").write_text("VALUE = 17\n")
    out = mpremote(
        b.port, "fs", "cp", str(src), ":/hello.txt", "+",
        "exec", "import os, sys, lbhelper; print(os.getcwd(), sorted(os.listdir('/')), lbhelper.VALUE, sys.path[-1])",
    )
    assert (b.flash_dir / "hello.txt").read_bytes() == b"hi\x00there"
    cwd, *rest = out.splitlines()[-1].split(" ", 1)
    assert cwd == "/"
    assert "'hello.txt', 'lib'" in rest[0] and rest[0].endswith(" 17 /lib")
    # The emulator's own modules are mounted read-only: a board program cannot damage them.
    out = mpremote(b.port, "exec", "try:\n open('/.emu0/machine.py', 'w')\nexcept OSError as e:\n print('refused', e.errno)")
    assert out.strip() == "refused 30"


def test_resets_run_boot_and_main_like_a_real_board(board, tmp_path):
    b, pids = board
    boot = tmp_path / "boot.py"
    boot.write_text("open('bootlog', 'a').write('b')\n")
    main = tmp_path / "main.py"
    main.write_text("open('bootlog', 'a').write('m')\nprint('main.py ran')\n")
    log = b.flash_dir / "bootlog"

    listing = mpremote(b.port, "fs", "cp", str(boot), ":boot.py", "+", "fs", "cp", str(main), ":main.py", "+", "fs", "ls")
    sizes = {line.split()[1]: int(line.split()[0]) for line in listing.splitlines() if line.startswith(" ")}
    assert sizes == {"boot.py": len(boot.read_bytes()), "main.py": len(main.read_bytes())}
    assert not log.exists()  # mpremote's soft reset came before boot.py was there

    # Soft reset from the raw REPL: boot.py only.
    mpremote(b.port, "soft-reset")
    assert log.read_text() == "b"

    # Hard reset (machine.reset() in the VM): boot.py then main.py, in a new VM;
    # mpremote soft-resets first, as on any connection ("b").
    pids.append(b.vm_pid)
    mpremote(b.port, "reset")
    wait_for(lambda: log.read_text() == "bbbm", what="boot.py and main.py after a hard reset")
    assert b.counters().hard_resets == 1
    assert b.vm_pid != pids[-1]

    # Soft reset from the friendly REPL (mpremote left it there): boot.py then main.py.
    with serial.Serial(b.port, 115200, timeout=0.1) as ser:
        friendly_prompt(ser)
        ser.write(b"\x04")
        out = read_until(ser, b">>> ")
    assert b"MPY: soft reboot\r\n" in out and b"main.py ran" in out
    assert log.read_text() == "bbbmbm"

    # Chained commands keep working across soft resets (each one: boot.py only).
    out = mpremote(b.port, "exec", "print('one')", "+", "soft-reset", "+", "exec", "print(open('bootlog').read())")
    assert out.split() == ["one", "bbbmbmbb"]

    # The API's hard reset does the same as the button.
    pids.append(b.vm_pid)
    b.hard_reset()
    wait_for(lambda: log.read_text() == "bbbmbmbbbm", what="main.py after hard_reset()")
    assert process_gone(pids[-1])


ECHO_MAIN = """\
import micropython, sys
micropython.kbd_intr(-1)
open('echo-ready', 'w').close()
read, write = sys.stdin.buffer.read, sys.stdout.buffer.write
while True:
    write(read(1))
"""


def test_binary_bytes_cross_the_port_unchanged(board):
    b, _ = board
    (b.flash_dir / "main.py").write_text(ECHO_MAIN)
    b.hard_reset()
    wait_for(lambda: (b.flash_dir / "echo-ready").exists(), what="the echo program")
    payload = bytes(range(256)) + b"\x00\x03\r\n\r\x03\x03\x04\x01\x02" * 8
    pid = b.vm_pid
    with serial.Serial(b.port, 115200, timeout=0.2) as ser:
        ser.reset_input_buffer()
        for i in range(0, len(payload), 64):  # below the tty's line buffer, like USB packets
            ser.write(payload[i : i + 64])
        echoed = read_exact(ser, len(payload))
    assert echoed == payload
    c = b.counters()
    assert c.interrupts == 0 and c.crashes == 0 and b.vm_pid == pid  # 0x03 was data


def test_ctrl_c_interrupts_a_running_main_py(board):
    b, _ = board
    (b.flash_dir / "main.py").write_text("import time\nopen('spin', 'w').close()\nwhile True:\n    time.sleep_ms(5)\n")
    b.hard_reset()
    wait_for(lambda: (b.flash_dir / "spin").exists(), what="main.py to start")
    out = mpremote(b.port, "exec", "print('after', 6 * 7)")
    assert out.split() == ["after", "42"]
    assert b.counters().interrupts >= 1


def test_a_ctrl_c_that_reaches_the_prompt_late_does_not_reset_the_board(board, monkeypatch):
    # The relay checks that the VM has a SIGINT handler, then signals it; code that ends in
    # between leaves the VM at its prompt, where SIGINT's default action ends it. A board
    # only prints a fresh prompt then: no crash, no reset, the port stays.
    b, pids = board
    pids.append(b.vm_pid)
    with serial.Serial(b.port, 115200, timeout=0.1) as ser:
        friendly_prompt(ser)
        ser.write(b"x = 41\r")
        read_until(ser, b">>> ")
        monkeypatch.setattr(b._port.vm, "sigint_enabled", lambda: True)  # the stale check
        ser.write(b"\x03")
        # the stale check must still answer when the relay thread takes the byte: wait for
        # the interrupt itself, not for a prompt (a loaded machine may print one first)
        wait_for(lambda: b.counters().interrupts == 1, what="the Ctrl-C to reach the board")
        assert read_until(ser, b"\r\n>>> ").endswith(b"\r\n>>> ")
        monkeypatch.undo()
        ser.write(b"print('alive', 6 * 7)\r")
        assert b"alive 42" in read_until(ser, b"alive 42")
    c = b.counters()
    assert (c.crashes, c.replugs, c.soft_resets, c.hard_resets) == (0, 0, 0, 0)
    assert c.interrupts == 1 and b.vm_pid != pids[-1]


def test_a_crashed_vm_is_restarted(board):
    b, pids = board
    pids.append(b.vm_pid)
    os.kill(pids[-1], signal.SIGKILL)
    wait_for(lambda: b.counters().crashes == 1 and b.vm_pid != pids[-1], what="the VM restart")
    assert mpremote(b.port, "exec", "print(1 + 1)").strip() == "2"
    # sys.exit() ends the VM process too; on a board that is a soft reset.
    with serial.Serial(b.port, 115200, timeout=0.1) as ser:
        friendly_prompt(ser)
        ser.write(b"import sys; sys.exit()\r")
        out = read_until(ser, b">>> ")
    assert b"MPY: soft reboot\r\n" in out
    assert b.counters().soft_resets >= 1 and b.counters().crashes == 1


FAULT_MAIN = """\
import sys
open('fault-ready', 'w').close()
while True:
    sys.stdin.buffer.read(1)
    sys.stdout.buffer.write(b'\\x55' * {n})
"""


def test_serial_corruption_changes_about_the_given_fraction_and_counts_it(tmp_path):
    require_vm()
    n, rate = 20000, 0.05
    b = VMBoard(tmp_path / "flash", corrupt_rate=rate, seed=7, fault_directions=("to_host",))
    (b.flash_dir).mkdir(parents=True)
    (b.flash_dir / "main.py").write_text(FAULT_MAIN.format(n=n))
    with b:
        wait_for(lambda: (b.flash_dir / "fault-ready").exists(), what="main.py")
        with serial.Serial(b.port, 115200, timeout=0.2) as ser:
            ser.reset_input_buffer()  # main.py prints nothing until it reads a byte
            before = b.counters().to_host
            ser.write(b"g")
            got = read_exact(ser, n)
        after = b.counters().to_host
    assert len(got) == n
    changed = sum(1 for byte in got if byte != 0x55)
    assert changed == after.corrupted - before.corrupted
    sigma = (n * rate * (1 - rate)) ** 0.5
    assert abs(changed - n * rate) < 5 * sigma
    assert after.dropped == after.duplicated == 0


CLI_RUNNER = """\
import importlib.util, sys
from learnboard import cli
if not all(importlib.util.find_spec("learnboard.cli." + m) for m, _ in cli.COMMANDS.values()):
    # Other commands are not written yet: dispatch through the same table, this one only.
    cli.COMMANDS = {"emulate": cli.COMMANDS["emulate"]}
sys.exit(cli.main(sys.argv[1:]))
"""


def learnboard_cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI_RUNNER, *args]


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def test_learnboard_emulate_cli_serves_mpremote_and_stops_cleanly(tmp_path):
    require_vm()
    flash = tmp_path / "flash"
    proc = subprocess.Popen(
        learnboard_cmd("emulate", "--board", "gen2-clln", "--flash", str(flash), "--seed", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "learnboard emulate printed no port"
        port = proc.stdout.readline().decode().strip()
        assert re.fullmatch(r"/dev/pts/\d+", port), port
        assert mpremote(port, "exec", "import os; print(os.getcwd())").strip() == "/"
        vms = children_of(proc.pid)
        assert vms, "no VM process under learnboard emulate"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "stopped" in proc.stderr.read().decode()
        for pid in vms:
            assert wait_for(lambda pid=pid: process_gone(pid), 5, f"VM {pid} to end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_learnboard_emulate_cpython_vm_has_no_flash_folder(tmp_path):
    proc = subprocess.run(
        learnboard_cmd("emulate", "--vm", "cpython", "--flash", str(tmp_path)), capture_output=True, timeout=30
    )
    assert proc.returncode == 2
    assert "--flash" in proc.stderr.decode() and "no flash folder" in proc.stderr.decode()
    help_text = subprocess.run(learnboard_cmd("emulate", "--help"), capture_output=True, timeout=30).stdout.decode()
    assert "mpremote connect" in help_text and "--drop-rate" in help_text
