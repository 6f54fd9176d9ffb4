"""Every command the README and the docs show runs as written, from a fresh checkout.

Which commands: fenced code blocks marked ```sh (every line is a command; a line ending
in ``\\`` continues on the next; ``# ...`` after two spaces is a comment) and ```console
(lines starting with ``$ `` are commands, the rest is their output) in ``README.md`` and
``docs/**/*.md``. Blocks without one of these two marks (usage lines, output, TOML,
Python) are not run. Each block runs in a fresh folder, its commands in order, through
bash with ``learnboard`` being ``python -m learnboard`` of this checkout.

What is substituted (the commands stay as written otherwise):

- ``/dev/pts/5`` and ``/dev/ttyACM0`` (the port of a board): an emulated gen2-clln board
  from ``learnboard emulate`` on a pseudo-terminal, flashed and calibrated once;
- ``runs/<date>-regression`` and ``runs/20261128-171502-regression`` (a run folder): the
  newest ``runs/*-regression`` folder the block's commands wrote;
- ``--steps N``: at most :data:`STEPS` steps; a ``learnboard train`` without ``--steps``,
  ``--schedule`` or ``--resume`` gets ``--steps`` :data:`STEPS` (its default is 1000);
- ``.venv/bin/learnboard``: ``learnboard`` (the install step before it is skipped, below);
- ``~`` and ``$XDG_DATA_HOME``: a home folder of this test (calibrations, flash folders);
- the files a command names as the user's own (``my-board.toml``, ``my.toml``,
  ``main.py``): written into the folder first, see :func:`_placeholders`;
- ``$LEARNBOARD_REFERENCE`` and ``$LEARNBOARD_MICROPYTHON32`` are the environment's: a
  command that needs one is skipped when it is unset or names nothing (with the hint how
  to get it), a failure when ``CI`` is set.

A command ending in ``&`` or one of ``learnboard emulate`` runs until stopped: it must
print its port on the first line and exit 0 on SIGTERM. A command commented ``another
terminal`` follows a session: it runs while a ``learnboard train`` holds the same port,
which is then stopped with Ctrl-C (SIGINT); both must exit 0.

Commands that are not run are listed in :data:`NOT_RUN`, each with the reason.
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
STEPS = 40
"""Steps of every training command: long enough for a checkpoint, a tolerance check
(``--check-every 20``) and the figures, short enough for the suite."""

PORTS = ("/dev/pts/5", "/dev/ttyACM0")
RUN_DIRS = ("runs/<date>-regression", "runs/20261128-171502-regression")

NOT_RUN: dict[str, str] = {
    r"^python3 -m venv |pip install ": "the install itself: .ci/run does it on a fresh machine before the suite",
    r"(^|/)(python -m )?pytest\b": "the test suite itself (this test is part of it)",
    r"^learnboard paper\b": "hundreds of trainings (budgets on 2 idle cores: --quick 3 minutes, the "
                            "full report 20; docs/paper.md); tests/test_paper.py builds a report "
                            "through the same code",
    r"^git clone ": "downloads from GitHub; the test takes the networks from $LEARNBOARD_REFERENCE",
    r"^export LEARNBOARD_REFERENCE=": "names the folder of that clone; the test uses the environment's",
    r"^export LEARNBOARD_MICROPYTHON(_SRC|32)=": "builds MicroPython from source (minutes); .ci/run does it "
                                                 "and sets $LEARNBOARD_MICROPYTHON32",
}
"""Command (regular expression, matched after substitution) -> why it is not run here."""

ENV_NEEDED = {
    "LEARNBOARD_REFERENCE": "the authors' reference networks: set LEARNBOARD_REFERENCE to their folder "
                            "(the NetworkStates/ folder of https://github.com/NachiStern/Power-efficient-learning)",
    "LEARNBOARD_MICROPYTHON32": "a 32-bit MicroPython VM: "
                                "export LEARNBOARD_MICROPYTHON32=\"$(scripts/build-micropython32 SRC)\"",
}

SCHEDULE = """\
version = 2
init = "uniform"
chunk = 10

[stop]
steps = {steps}

[[phase]]
kind = "constant"
lam = 0.0
"""


@dataclass
class Command:
    text: str
    comment: str
    where: str


@dataclass
class Block:
    where: str
    commands: list[Command] = field(default_factory=list)


def _strip_comment(line: str) -> tuple[str, str]:
    match = re.search(r"(^|\s{2,})#\s?(.*)$", line)
    if match:
        return line[: match.start()].rstrip(), match.group(2)
    return line.rstrip(), ""


def extract(path: Path) -> list[Block]:
    """The runnable blocks of one markdown file (see the module docstring)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    rel = path.relative_to(ROOT)
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        kind, start = fence.group(1), i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1
        if kind not in ("sh", "console"):
            continue
        block = Block(f"{rel}:{start}")
        pending, first = "", 0
        for lineno, raw in body:
            if kind == "console" and not pending:
                if not raw.startswith("$ "):
                    continue
                raw = raw[2:]
            text, comment = _strip_comment(raw)
            if not text and not pending:
                continue
            if text.endswith("\\"):
                pending += text[:-1].rstrip() + " "
                first = first or lineno
                continue
            block.commands.append(Command(pending + text, comment, f"{rel}:{first or lineno}"))
            pending, first = "", 0
        if block.commands:
            blocks.append(block)
    return blocks


def all_blocks() -> list[Block]:
    return [b for path in DOCS for b in extract(path)]


def _not_run(text: str) -> str | None:
    return next((why for pattern, why in NOT_RUN.items() if re.search(pattern, text)), None)


def _with_steps(text: str) -> str:
    text = re.sub(r"--steps\s+(\d+)", lambda m: f"--steps {min(int(m.group(1)), STEPS)}", text)
    if (re.match(r"^learnboard train\b", text) and "--steps" not in text
            and "--schedule" not in text and "--resume" not in text):
        text += f" --steps {STEPS}"
    return text


def _skip_or_fail(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


# -- the emulated board -------------------------------------------------------------------

class EmulatedBoard:
    """``learnboard emulate --board gen2-clln &`` of the README; follows its port (a reset
    may bring it back under a new path, printed on its own line)."""

    def __init__(self, env: dict, cwd: Path, args: list[str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "learnboard", "emulate", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd, env=env,
                                     start_new_session=True)
        self._buf = b""
        self.port = self._line(60)
        assert self.port.startswith("/dev/"), f"learnboard emulate printed {self.port!r}, not a port"
        self._wait_for_prompt(60)

    def _wait_for_prompt(self, timeout: float) -> None:
        """Until the fresh board's REPL shows its prompt. The port is printed as soon as
        it exists; on a loaded machine the VM may still be booting then, and a `learnboard
        flash` at that very moment fails to enter the raw REPL. A reader types the next
        command seconds later; the test waits for the board's prompt instead."""
        import serial

        deadline = time.monotonic() + timeout
        with serial.Serial(self.port, 115200, timeout=0.5) as ser:
            seen = b""
            while not seen.endswith(b">>> "):
                assert time.monotonic() < deadline, f"no REPL prompt on {self.port}: {seen[-200:]!r}"
                if not seen or not ser.in_waiting:
                    ser.write(b"\r")
                seen += ser.read(ser.in_waiting or 1)

    def _line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf and time.monotonic() < deadline and self.proc.poll() is None:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.decode(errors="replace").strip()

    def current(self) -> str:
        """The port now: the newest path the emulator printed."""
        while select.select([self.proc.stdout], [], [], 0)[0] or b"\n" in self._buf:
            line = self._line(1)
            if not line:
                break
            if line.startswith("/dev/"):
                self.port = line
        return self.port

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory, home) -> dict:
    """The environment of the commands: ``learnboard`` is this checkout's CLI."""
    bindir = tmp_path_factory.mktemp("bin")
    shim = bindir / "learnboard"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m learnboard "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    # a private registry of emulated ports: boards of other programs on this machine whose
    # pty numbers this board reuses cannot be taken for it after a reset
    runtime = tmp_path_factory.mktemp("runtime")
    env.update(HOME=str(home), XDG_RUNTIME_DIR=str(runtime), MPLBACKEND="Agg",
               PATH=os.pathsep.join([str(bindir), str(Path(sys.executable).parent), env.get("PATH", "")]))
    return env


@pytest.fixture(scope="module")
def board(cli_env, home):
    """The emulated board on a pty, flashed and calibrated once (as the README's session
    does) so that every block can use it alone."""
    b = EmulatedBoard(cli_env, home, ["--board", "gen2-clln", "--flash", str(home / "flash")])
    try:
        for args in (["flash", "--port", b.port, "--board", "gen2-clln"], ["calibrate", "--port", b.port]):
            done = subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True,
                                  text=True, env=cli_env, timeout=180)
            assert done.returncode == 0, f"learnboard {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        yield b
    finally:
        b.stop()


# -- running one command --------------------------------------------------------------------

def _placeholders(cwd: Path) -> None:
    """The user's own files a command names: a board description, a schedule, a program."""
    shutil.copy(ROOT / "learnboard" / "boards" / "profiles" / "gen2-clln.toml", cwd / "my-board.toml")
    (cwd / "my.toml").write_text(SCHEDULE.format(steps=STEPS))
    shutil.copy(ROOT / "firmware" / "main.py", cwd / "main.py")


def _run_dirs(cwd: Path) -> list[Path]:
    runs = cwd / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []


def _bash(text: str, cwd: Path, env: dict, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", text], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, **kw)


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    deadline, buf = time.monotonic() + timeout, b""
    while b"\n" not in buf and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            chunk = os.read(proc.stdout.fileno(), 1)
            if not chunk:
                break
            buf += chunk
    return buf.decode(errors="replace").strip()


def _until_stopped(cmd: Command, text: str, cwd: Path, env: dict) -> None:
    """A board that runs until stopped: its first line is its port; SIGTERM ends it, exit 0."""
    proc = subprocess.Popen(["bash", "-c", "exec " + text], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        port = _read_line(proc, 60)
        assert port.startswith("/dev/") and os.path.exists(port), \
            f"{cmd.where}: `{text}` printed {port!r} as its first line, not a port"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"{cmd.where}: `{text}` exited {proc.returncode} on SIGTERM:\n" \
                                 + proc.stderr.read().decode(errors="replace")[-2000:]


def _beside_a_session(cmd: Command, text: str, port: str, cwd: Path, env: dict) -> None:
    """`learnboard monitor --port P` in another terminal while `learnboard train` holds P."""
    train = subprocess.Popen(["bash", "-c", f"exec learnboard train --port {port} --steps 100000 --quiet "
                              "--no-plot --name monitored"], cwd=cwd, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    monitor = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and train.poll() is None:  # the session logs: it holds the port
            logs = list((cwd / "runs").glob("*-monitored/telemetry.msgpack"))
            if logs and logs[0].stat().st_size > 0:
                break
            time.sleep(0.1)
        assert train.poll() is None, f"the session beside {cmd.where} ended:\n{train.stderr.read().decode()}"
        monitor = subprocess.Popen(["bash", "-c", "exec " + text], cwd=cwd, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = _read_line(monitor, 60)
        assert first, f"{cmd.where}: `{text}` showed nothing"
        train.send_signal(signal.SIGINT)  # Ctrl-C: the session stops cleanly, writes its summary
        assert train.wait(120) == 0, train.stderr.read().decode()
        assert monitor.wait(60) == 0, f"{cmd.where}: `{text}`:\n{monitor.stderr.read().decode()}"
    finally:
        for proc in (train, monitor):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _check_promise(cmd: Command, text: str, out: str, cwd: Path, before: list[Path], home: Path) -> None:
    """What the command promises beyond exit 0."""
    words = shlex.split(text)
    after = _run_dirs(cwd)
    if words[:2] == ["learnboard", "train"]:
        if "--resume" in words:
            new = [Path(words[words.index("--resume") + 1])]
            new = [p if p.is_absolute() else cwd / p for p in new]
        else:
            new = [p for p in after if p not in before]
            assert len(new) == max(1, words.count("--port")), f"{cmd.where}: `{text}` made {new}"
        for run in new:
            assert (run / "summary.json").is_file(), f"{cmd.where}: no summary.json in {run}"
            if "--no-plot" not in words:
                assert list((run / "figures").glob("*.png")), f"{cmd.where}: no figures in {run}"
    if words[:2] == ["learnboard", "plot"]:
        assert list((cwd / words[2] / "figures").glob("*.png")), f"{cmd.where}: no figures"
    if words[:2] == ["learnboard", "export"] and "--csv" in words:
        assert list((cwd / words[2]).rglob("*.csv")), f"{cmd.where}: no CSV tables"
    if words[:2] == ["learnboard", "calibrate"] and "--pull" not in words and "--out" not in words:
        assert list((home / ".local/share/learnboard/calibrations").glob("*.json")), cmd.where
    for flag in ("--plot", "-o", "--out"):
        if flag in words:
            made = cwd / words[words.index(flag) + 1]
            assert made.exists(), f"{cmd.where}: `{text}` did not write {made}"
    if "--json" in words:
        last = out.strip().splitlines()[-1]
        assert isinstance(json.loads(last), (dict, list)), f"{cmd.where}: `{text}` printed {last!r}"


def _uses_port(cmd: Command) -> bool:
    return any(p in cmd.text for p in PORTS)


def run_block(block: Block, cwd: Path, env: dict, home: Path, port) -> list[str]:
    """Run one block's commands in order; returns the reasons of commands not run.

    ``port()``: the shared emulated board. A ``learnboard emulate`` followed by commands
    naming a port is the block's own board instead, fresh (empty flash folder), as a
    reader starting from that block gets; it runs until the block ends."""
    _placeholders(cwd)
    skipped: list[str] = []
    own: EmulatedBoard | None = None
    try:
        for n, cmd in enumerate(block.commands):
            for part in cmd.text.split(" && "):
                text = part.strip().replace(".venv/bin/learnboard", "learnboard")
                why = _not_run(text)
                if why:
                    skipped.append(f"{cmd.where}: `{text}` not run: {why}")
                    continue
                missing = [v for v in ENV_NEEDED if f"${v}" in text or f"${{{v}}}" in text
                           if not os.path.exists(os.environ.get(v) or "/nonexistent")]
                if missing:
                    skipped.append(f"{cmd.where}: `{text}` needs {ENV_NEEDED[missing[0]]}")
                    continue
                background = text.endswith("&")
                text = _with_steps(text.rstrip("&").strip())
                emulate = re.match(r"^learnboard emulate\b", text) is not None
                if emulate and own is None and any(_uses_port(c) for c in block.commands[n + 1:]):
                    own = EmulatedBoard(env, cwd, shlex.split(text)[2:])
                    continue
                if _uses_port(cmd):
                    current = (own or port()).current()
                    for p in PORTS:
                        text = text.replace(p, current)
                for placeholder in RUN_DIRS:
                    if placeholder in text:  # the newest run folder of that name
                        dirs = [d for d in _run_dirs(cwd) if d.name.endswith(placeholder.rsplit("-", 1)[1])]
                        assert dirs, f"{cmd.where}: `{text}` needs a run folder and no command before made one"
                        text = text.replace(placeholder, str(dirs[-1].relative_to(cwd)))
                if background or emulate:
                    _until_stopped(cmd, text, cwd, env)
                elif "another terminal" in cmd.comment:
                    _beside_a_session(cmd, text, (own or port()).current(), cwd, env)
                else:
                    before = _run_dirs(cwd)
                    done = _bash(text, cwd, env)
                    assert done.returncode == 0, (f"{cmd.where}: `{text}` exited {done.returncode}:\n"
                                                  f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
                    _check_promise(cmd, text, done.stdout, cwd, before, home)
    finally:
        if own is not None:
            own.stop()
    if own is not None:
        assert own.proc.returncode == 0, f"{block.where}: learnboard emulate exited {own.proc.returncode} on SIGTERM"
    return skipped


BLOCKS = all_blocks()


def test_a_command_that_fails_is_reported_with_its_place(tmp_path, cli_env):
    block = Block("x.md:1", [Command("learnboard board check missing.toml", "", "x.md:2"),
                             Command("git clone https://example.invalid/x", "", "x.md:3")])
    with pytest.raises(AssertionError, match=r"x\.md:2: `learnboard board check missing\.toml` exited 2"):
        run_block(block, tmp_path, cli_env, tmp_path, None)
    block.commands.reverse()  # a command that is not run says why, and nothing runs it
    with pytest.raises(AssertionError):
        run_block(block, tmp_path, cli_env, tmp_path, None)
    assert run_block(Block("x.md:1", block.commands[:1]), tmp_path, cli_env, tmp_path, None) == [
        "x.md:3: `git clone https://example.invalid/x` not run: " + NOT_RUN[r"^git clone "]]


def test_the_docs_have_runnable_blocks():
    where = {b.where.split(":")[0] for b in BLOCKS}
    assert "README.md" in where and len(BLOCKS) >= 8, where
    # every block the rule does not run is plain text: no ```bash or ```shell to miss
    for path in DOCS:
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            assert not re.match(r"^```(bash|shell|zsh)\b", line), \
                f"{path.relative_to(ROOT)}:{lineno}: mark shell commands ```sh (or ```console with $ )"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_the_commands_run_as_written(block, tmp_path, cli_env, home, request):
    # each block on a PC of its own that has calibrated the shared board once (the README's
    # session does that first): a fresh home folder holding that calibration
    block_home, cwd = tmp_path / "home", tmp_path / "work"
    cwd.mkdir()
    board = None
    if any(_uses_port(c) or "/calibrations/" in c.text for c in block.commands):
        board = request.getfixturevalue("board")
        shutil.copytree(home / ".local", block_home / ".local")
    block_home.mkdir(exist_ok=True)
    env = {**cli_env, "HOME": str(block_home)}
    skipped = run_block(block, cwd, env, block_home, lambda: board)
    needing = [s for s in skipped if " needs " in s]
    if needing:
        _skip_or_fail("; ".join(needing))
