"""The lab campaign: the accidents of a lab's first week, run against the real command line,
and what each one cost in records and in mixed runs.

Cases (``python benchmarks/reliability.py lab``):

- ``a`` two programs on a port: while ``learnboard train --port P`` runs, a second ``train``,
  ``info``, ``calibrate``, ``flash``, ``repl`` and ``mpremote`` try the same port; each must be
  refused in one line (``ports``' probe must skip it as busy), and the first session goes on
  and ends with its summary and figures.
- ``b`` resume without ``--port``: a run recorded on an emulated board on a pty (``learnboard
  emulate``), its host killed (SIGKILL) after a checkpoint, resumed with ``--resume RUN`` alone:
  it must continue on that board; resumed again once finished it must change nothing; with
  ``--lambda`` or ``--seed`` it must refuse; and once that board is gone, an unfinished copy
  must be refused (without ``--port``, and with the built-in board ``--port emu:NAME``),
  never continued on the built-in emulated board; with another emulated board (its own
  unique id) on a port it must be refused too, and ``--other-board`` must continue it there
  with the log's ``resume`` event saying so.
- ``c`` mid-file corruption: :mod:`.records`' campaign (one byte changed at seeded offsets,
  ``export``, ``train --resume``, ``repair``).
- ``d`` disk full: the disk fills at a seeded random write of a session and stays full
  (:class:`.storage.DiskFault`, sticky); space comes back and the run is resumed.
- ``e`` emulator killed mid-flash: ``learnboard emulate`` gets SIGKILL while ``learnboard flash
  --port P`` writes (after a seeded number of files landed in its flash folder); the emulator
  is started again on the same folder, must be reported as needing ``learnboard flash``,
  flashing again must work and a training session then complete.
- ``f`` the emergency stop: ``learnboard stop`` without ``--port`` must be an error that leaves
  the running session alone; ``stop --port P`` ends it ("stopped by `learnboard stop`"), and
  the run resumes to the end.

Accounting, per run folder:

- **records lost**: what the session's host had logged — the log's records read strictly
  (every checksum checked; :func:`snapshot`) at the moment of the fault — compared with what
  a reader (:func:`~learnboard.host.runlog.read_log`) returns at the end: every logged record
  must come back unchanged under its index, the indices must run 0..n-1 without a gap, and
  every checkpoint the log names must be readable with a matching checksum
  (:func:`records_lost`).
- **runs mixed**: a log whose ``start`` / ``resume`` events name two boards (board,
  description hash, unique id) without a ``resume`` event that ``--other-board`` marked
  (:func:`mixed`).

``LB_LAB_TRACE=1`` prints every command the campaign runs, with its time and exit status.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from learnboard.host.records import json_crc_ok, scan_bytes
from learnboard.host.runlog import read_log

BOARD = "gen2-clln"
CASES = ("a", "b", "c", "d", "e", "f")
TITLES = {
    "a": "two programs on a port",
    "b": "resume without --port",
    "c": "mid-file corruption",
    "d": "disk full",
    "e": "emulator killed mid-flash",
    "f": "stop without / with --port",
}
WAIT_S = 180.0  # a bound on a hung command or board, never a measurement


# -- accounting -----------------------------------------------------------------------------


def snapshot(run_dir: str | Path) -> list[dict]:
    """What the host has logged in ``run_dir`` so far: every record the log's bytes hold,
    each with its checksum checked (damage inside the log is not expected here: a record
    that does not check is left out, and then counts as lost)."""
    log = Path(run_dir) / "telemetry.msgpack"
    try:
        data = log.read_bytes()
    except FileNotFoundError:
        return []
    return scan_bytes(data).records


def records_lost(run_dir: str | Path, logged: list[dict] | None = None) -> tuple[int, list[str]]:
    """Records of ``logged`` (default: none beyond the log's own) that a reader of
    ``run_dir``'s log no longer returns unchanged under their index, plus indices missing
    between 0 and the last one read, plus checkpoints the log names that do not read back
    with a matching checksum. Returns ``(lost, notes)``; notes say what and where."""
    run_dir = Path(run_dir)
    read = read_log(run_dir / "telemetry.msgpack", warn=False)
    by_i: dict[int, dict] = {}
    notes: list[str] = []
    for r in read:
        if r["i"] in by_i:
            notes.append(f"index {r['i']} read twice")
        by_i.setdefault(r["i"], r)
    logged = logged or []
    changed = [r["i"] for r in logged if by_i.get(r["i"]) != r]
    if changed:
        notes.append(f"{len(changed)} logged record(s) not read back as written: i={changed[:5]}")
    top = max([*by_i, *(r["i"] for r in logged)], default=-1)
    accounted = set(by_i) | {r["i"] for r in logged}
    missing = sorted(set(range(top + 1)) - accounted)
    if missing:
        notes.append(f"{len(missing)} index(es) missing: {missing[:5]}")
    bad_ck = []
    for r in read:
        if r.get("kind") == "checkpoint":
            path = run_dir / "checkpoints" / str(r.get("file"))
            try:
                ok = json_crc_ok(json.loads(path.read_bytes())) is not False
            except (OSError, ValueError):
                ok = False
            if not ok:
                bad_ck.append(path.name)
    if bad_ck:
        notes.append(f"checkpoint(s) named by the log unreadable: {bad_ck[:3]}")
    return len(changed) + len(missing) + len(bad_ck), notes


def _identity(rec: dict) -> tuple | None:
    if rec.get("kind") != "event":
        return None
    if rec.get("name") == "start":
        hello = rec.get("hello") or {}
        return (hello.get("board"), hello.get("desc_hash"), hello.get("uid"))
    if rec.get("name") == "resume":
        return (rec.get("board"), rec.get("desc_hash"), rec.get("uid"))
    return None


def mixed(records: list[dict]) -> bool:
    """The log shows two boards' data without an explicit ``--other-board`` resume: its
    ``start`` and ``resume`` events name different boards and the ``resume`` event where
    the board changed carries no ``other_board``."""
    current = None
    for rec in records:
        ident = _identity(rec)
        if ident is None:
            continue
        if current is not None and ident != current and not rec.get("other_board"):
            return True
        current = ident
    return False


@dataclass
class Account:
    """One run folder's accounting."""

    run: str
    records: int  # records checked: the reader's (indices, checksums), the logged ones compared
    lost: int
    mixed: bool
    notes: list[str] = field(default_factory=list)


def account(run_dir: str | Path, logged: list[dict] | None = None) -> Account:
    """:func:`records_lost` and :func:`mixed` of one run folder."""
    lost, notes = records_lost(run_dir, logged)
    read = read_log(Path(run_dir) / "telemetry.msgpack", warn=False)
    return Account(str(run_dir), max(len(read), len(logged or [])), lost, mixed(read), notes)


@dataclass
class CaseResult:
    """One case of one seed: the runs it checked, what they lost, and what happened."""

    case: str
    seed: int
    accounts: list[Account] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)  # the behaviour a user relies on
    facts: list[str] = field(default_factory=list)  # what happened (for the table)
    problems: list[str] = field(default_factory=list)  # failed checks, with the command's output
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return sum(a.lost for a in self.accounts)

    @property
    def mixed(self) -> int:
        return sum(a.mixed for a in self.accounts)

    @property
    def records(self) -> int:
        return sum(a.records for a in self.accounts)

    @property
    def ok(self) -> bool:
        return all(self.checks.values()) and self.lost == 0 and self.mixed == 0

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks[name] = bool(ok)
        if not ok:
            self.problems.append(f"{name}: {detail}".rstrip(": "))
        return bool(ok)

    def add(self, acc: Account) -> None:
        self.accounts.append(acc)
        if acc.lost or acc.mixed:
            self.problems.append(f"{acc.run}: lost {acc.lost}, mixed {acc.mixed}: {'; '.join(acc.notes)}")


# -- the command line, as a user runs it --------------------------------------------------


@contextmanager
def private_env(work: Path) -> Iterator[dict[str, str]]:
    """A private run-time folder (port registry, locks) and data folder (calibrations,
    flash folders) for the campaign's commands, in this process too (its readers of the
    registry); the environment is restored afterwards."""
    rt, data = work / "runtime", work / "data"
    rt.mkdir(mode=0o700, parents=True, exist_ok=True)
    data.mkdir(parents=True, exist_ok=True)
    new = {"XDG_RUNTIME_DIR": str(rt), "LEARNBOARD_DATA": str(data)}
    old = {k: os.environ.get(k) for k in new}
    os.environ.update(new)
    try:
        yield {**os.environ}
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def cli(env: dict[str, str], *args: str, timeout: float = WAIT_S) -> subprocess.CompletedProcess:
    """``learnboard ARGS`` in a subprocess."""
    t0 = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "learnboard", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if os.environ.get("LB_LAB_TRACE"):
        print(f"    [{time.monotonic() - t0:.1f} s] learnboard {' '.join(args)} -> {done.returncode}", flush=True)
    return done


def one_line(stderr: str) -> bool:
    """A one-line error (or warning), no traceback."""
    return len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


def _show(done: subprocess.CompletedProcess | tuple) -> str:
    if isinstance(done, tuple):
        code, err = done
    else:
        code, err = done.returncode, done.stderr
    err = err.strip().replace("\n", " | ")
    return f"exit {code}: {err[-400:]}"


def _files(run_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}


def _wait(what: str, cond, proc: subprocess.Popen | None = None, timeout: float = WAIT_S):
    """Poll ``cond()`` until it returns something true; fail naming ``what`` when ``proc``
    ends first or the bound passes."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise RuntimeError(f"{what}: the process ended first ({_show((proc.returncode, err))})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


class PtyBoard:
    """``learnboard emulate`` (the firmware in the MicroPython VM on a pty) on ``flash``."""

    def __init__(self, flash: Path, seed: int, env: dict[str, str], out: Path, vm: str | None = None):
        self.flash, self.seed, self.env, self.out, self.vm = flash, seed, env, out, vm
        self.proc: subprocess.Popen | None = None
        self.port = ""

    def start(self, *, booted: bool = True) -> str:
        """Start it and return its port; ``booted``: once the firmware answers hello.

        A pty number is reused as soon as it is free, and a process elsewhere on the machine
        that follows its own (gone) board by path may have opened the new pty already; such
        a port is passed over: another emulator is started while this one still holds it."""
        passed: list[PtyBoard] = []
        try:
            for attempt in range(5):
                port = self._start(booted=booted)
                if _free(port, watch_s=2.0):
                    return port
                passed.append(PtyBoard(self.flash, self.seed, self.env, self.out, self.vm))
                passed[-1].proc, passed[-1].port = self.proc, port
                self.out = self.out.with_name(f"{self.out.stem}-{attempt + 1}{self.out.suffix}")
            raise RuntimeError(f"every pty emulate opened was held by another program: {[b.port for b in passed]}")
        finally:
            for b in passed:
                b.stop()

    def _start(self, *, booted: bool) -> str:
        args = [sys.executable, "-m", "learnboard", "emulate", "--board", BOARD, "--flash", str(self.flash),
                "--seed", str(self.seed)]
        if self.vm:
            args += ["--micropython", self.vm]
        with open(self.out, "wb") as out, open(self.out.with_suffix(".err"), "wb") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, env=self.env, start_new_session=True)
        line = _wait("learnboard emulate printing its port",
                     lambda: self.out.read_bytes().split(b"\n")[0] if b"\n" in self.out.read_bytes() else b"",
                     self.proc, timeout=60)
        self.port = line.decode().strip()
        if booted:
            from learnboard.host import flashing as F

            from learnboard.boards import compile_board, load_board

            F.verify(self.port, desc_hash=compile_board(load_board(BOARD)).sha256, timeout=60)
        return self.port

    def kill(self) -> None:
        """SIGKILL ``learnboard emulate`` itself (its VM child then loses its parent)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        """End it and everything it started (its own process group)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the VM, when emulate was killed
        except (ProcessLookupError, PermissionError):
            pass


def _free(port: str, watch_s: float = 0.0) -> bool:
    """No other program holds ``port`` for itself (as pyserial's ``exclusive`` asks), at
    every look over ``watch_s`` seconds (a program retrying its own port's path comes back
    within that)."""
    import serial

    deadline = time.monotonic() + watch_s
    while True:
        try:
            with serial.Serial(port, exclusive=True, timeout=0):
                pass
        except (serial.SerialException, OSError):
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.25)


def start_training(env: dict[str, str], port: str, runs: Path, name: str, *extra: str,
                   steps: int = 100_000) -> tuple[subprocess.Popen, Path]:
    """``learnboard train --port P`` in the background, returned once it holds the port and
    its first telemetry is in its log."""
    from learnboard.host.follow import LogFollower, run_holding

    train = subprocess.Popen([sys.executable, "-m", "learnboard", "train", "--port", port, "--steps", str(steps),
                              "--every", "10", "--checkpoint-every", "100", "--runs", str(runs), "--name", name,
                              "--quiet", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    run_dir = _wait(f"train on {port} holding its port", lambda: run_holding(port), train)
    follower = LogFollower(run_dir / "telemetry.msgpack")
    _wait("the session's first telemetry", lambda: any(r.get("kind") == "tlm" for r in follower.poll()), train)
    return train, run_dir


def _last_step(run_dir: Path) -> int:
    return max((r["step"] for r in snapshot(run_dir) if r.get("kind") == "tlm"), default=-1)


def _goes_on(run_dir: Path, train: subprocess.Popen) -> bool:
    """The session logs telemetry beyond the step it had reached (it was not disturbed)."""
    before = _last_step(run_dir)
    try:
        _wait("new telemetry", lambda: _last_step(run_dir) > before, train, timeout=60)
        return True
    except RuntimeError:
        return False


# -- the cases ------------------------------------------------------------------------------


def case_two_programs(env: dict[str, str], port: str, work: Path, seed: int) -> CaseResult:
    """(a) a second train / info / calibrate / flash / mpremote on a port a session holds."""
    res = CaseResult("a", seed)
    runs = work / "runs-a"
    train, run_dir = start_training(env, port, runs, "first")
    try:
        refused = 0
        for cmd in (["train", "--steps", "50", "--runs", str(runs), "--name", "second"], ["info"],
                    ["calibrate", "--configs", "4"], ["flash"]):
            done = cli(env, *cmd, "--port", port)
            ok = (done.returncode == 2 and one_line(done.stderr) and f"is in use by `learnboard train` (pid "
                  f"{train.pid}, run {run_dir})" in done.stderr and f"learnboard monitor --port {port}" in done.stderr)
            refused += res.check(f"second {cmd[0]} refused in one line", ok, _show(done))
        done = subprocess.run([sys.executable, "-m", "learnboard", "repl", "--port", port], capture_output=True,
                              text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
        refused += res.check("repl refused in one line", done.returncode == 2 and one_line(done.stderr)
                             and "is in use by `learnboard train`" in done.stderr, _show(done))
        done = cli(env, "ports", "--port", port, "--json")
        probe = {p.get("device"): p.get("probe") for p in json.loads(done.stdout or "[]")}.get(port, "")
        refused += res.check("ports' probe skips the busy port", done.returncode == 0
                             and str(probe).startswith(f"busy: learnboard train (pid {train.pid}"), _show(done))
        mp = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "exec", "print(1)"],
                            capture_output=True, text=True, timeout=60, env=env)
        refused += res.check("mpremote refused", mp.returncode != 0 and "1\n" not in mp.stdout
                             and "Traceback" not in mp.stderr, _show(mp))
        res.check("no second run folder", len([p for p in runs.iterdir() if p.is_dir()]) == 1)
        res.check("first session undisturbed", _goes_on(run_dir, train))
        logged = snapshot(run_dir)
    finally:
        train.send_signal(signal.SIGINT)  # Ctrl-C: ends after the chunk with summary and figures
        out, err = train.communicate(timeout=WAIT_S)
    figures = list((run_dir / "figures").glob("*.png")) if (run_dir / "figures").is_dir() else []
    res.check("first session completed with summary and figures",
              train.returncode == 0 and "Traceback" not in err and (run_dir / "summary.json").is_file()
              and len(figures) > 0, _show((train.returncode, err)))
    res.add(account(run_dir, logged))
    res.facts.append(f"{refused}/7 refused in one line (train, info, calibrate, flash, repl, mpremote) or "
                     f"skipped (ports' probe); first session: exit {train.returncode}, "
                     f"summary, {len(figures)} figures")
    return res


def record_and_kill(env: dict[str, str], port: str, runs: Path, rng: random.Random,
                    steps: int = 400) -> tuple[Path, list[dict]]:
    """A run recorded on ``port`` whose host is killed (SIGKILL) a seeded moment after its
    first checkpoint: the run folder and what its host had logged."""
    from learnboard.host.follow import LogFollower

    train, run_dir = start_training(env, port, runs, "rec", "--no-plot", steps=steps)
    follower = LogFollower(run_dir / "telemetry.msgpack")
    _wait("the first checkpoint", lambda: any(r.get("kind") == "checkpoint" for r in follower.poll()), train)
    time.sleep(rng.uniform(0.0, 1.5))  # the kill's moment (a fault's timing, not a synchronisation)
    train.kill()
    train.communicate()
    return run_dir, snapshot(run_dir)


def case_resume(env: dict[str, str], port: str, work: Path, seed: int,
                rng: random.Random) -> tuple[CaseResult, Path]:
    """(b), on the board: resume without --port, of a finished run, with options that cannot
    apply. Returns the result and an unfinished copy for :func:`case_resume_board_gone`."""
    res = CaseResult("b", seed)
    run_dir, logged = record_and_kill(env, port, work / "runs-b", rng)
    unfinished = work / "unfinished-b" / run_dir.name
    shutil.copytree(run_dir, unfinished)
    done = cli(env, "train", "--resume", str(run_dir), "--quiet", "--no-plot", "--json", timeout=600)
    summary = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 and done.stdout.strip() else {}
    res.check("resumed without --port, to the end", done.returncode == 0 and summary.get("steps") == 400,
              _show(done))
    records = read_log(run_dir / "telemetry.msgpack", warn=False)
    (start,) = [r for r in records if r.get("name") == "start"]
    resumes = [r for r in records if r.get("name") == "resume"]
    res.check("continued on the recorded board", bool(resumes) and all(
        (r.get("port"), r.get("uid")) == (port, start["hello"].get("uid")) for r in resumes),
        f"start {start.get('port')} {start['hello'].get('uid')}, resumes "
        f"{[(r.get('port'), r.get('uid')) for r in resumes]}")
    before = _files(run_dir)
    done = cli(env, "train", "--resume", str(run_dir), "--quiet", "--no-plot")
    res.check("resume of a finished run is a no-op", done.returncode == 0 and "finished" in done.stdout
              and _files(run_dir) == before, _show(done))
    refused = 0
    for flag in (["--lambda", "0.01"], ["--seed", "4"]):
        done = cli(env, "train", "--resume", str(run_dir), *flag)
        refused += res.check(f"resume {flag[0]} refused", done.returncode == 2 and one_line(done.stderr)
                             and flag[0] in done.stderr and _files(run_dir) == before, _show(done))
    res.add(account(run_dir, logged))
    res.facts.append(f"resumed on {port} (uid {start['hello'].get('uid')}) to step {summary.get('steps')}; "
                     f"finished run unchanged; {refused}/2 inapplicable options refused")
    return res, unfinished


def case_resume_board_gone(env: dict[str, str], unfinished: Path, res: CaseResult) -> None:
    """(b), the recorded board gone: an unfinished run is refused without --port and on the
    built-in emulated board, never continued there; the run folder is unchanged."""
    before = _files(unfinished)
    refused = 0
    for extra in ([], ["--port", f"emu:{BOARD}"]):
        done = cli(env, "train", "--resume", str(unfinished), "--quiet", "--no-plot", *extra)
        refused += res.check(f"resume {' '.join(extra) or 'without --port'} refused (board gone)",
                             done.returncode == 2 and one_line(done.stderr) and _files(unfinished) == before,
                             _show(done))
    res.facts.append(f"recorded board gone: {refused}/2 resumes refused, run unchanged")


def case_resume_other_board(env: dict[str, str], unfinished: Path, other: PtyBoard, res: CaseResult) -> None:
    """(b), another board (another emulated board, its own unique id) now on a port: the
    unfinished run is refused without --port and with that port; with --other-board it
    continues there and its log says so (not a mixed run)."""
    before = _files(unfinished)
    logged = snapshot(unfinished)
    refused = 0
    for extra in ([], ["--port", other.port]):
        done = cli(env, "train", "--resume", str(unfinished), "--quiet", "--no-plot", *extra)
        refused += res.check(f"resume {' '.join(extra) or 'without --port'} refused (another board)",
                             done.returncode == 2 and one_line(done.stderr) and _files(unfinished) == before,
                             _show(done))
    done = cli(env, "train", "--resume", str(unfinished), "--port", other.port, "--other-board", "--quiet",
               "--no-plot", "--json", timeout=600)
    marked = [r for r in read_log(unfinished / "telemetry.msgpack", warn=False)
              if r.get("name") == "resume" and r.get("other_board")]
    res.check("--other-board continues, the log marks it", done.returncode == 0 and len(marked) == 1, _show(done))
    res.add(account(unfinished, logged))
    res.facts.append(f"another board on {other.port}: {refused}/2 resumes refused; --other-board continued "
                     f"with {len(marked)} marked resume event")


def case_corruption(work: Path, seed: int, offsets: int, run: Path | None) -> tuple[CaseResult, Path]:
    """(c) :func:`.records.run_corruption` on a crashed run (made once, passed on)."""
    from .records import crashed_run, run_corruption

    res = CaseResult("c", seed)
    if run is None:
        run = crashed_run(work / "runs-c")
    shots = work / f"c-{seed}"
    shots.mkdir()
    rep = run_corruption(run, shots, offsets=offsets, seed=seed)
    tails = sum(s.tail for s in rep.shots)
    exported = sum(s.export_ok for s in rep.shots)
    refused = sum(s.resume_refused for s in rep.shots)
    repaired = sum(s.repaired for s in rep.shots)
    inner = len(rep.shots) - tails
    res.check("export keeps every other row and warns", exported == len(rep.shots), f"{exported}/{len(rep.shots)}")
    res.check("resume refuses, log unchanged", refused == inner, f"{refused}/{inner}")
    res.check("repair keeps every good record", repaired == len(rep.shots), f"{repaired}/{len(rep.shots)}")
    # the repaired copies: the good records of the original, each under its index
    clean = snapshot(run)
    for k in range(len(rep.shots)):
        copy = shots / f"{k:02d}-repaired"
        if copy.is_dir():
            # every record but the damaged one, compared byte for byte by run_corruption
            res.add(Account(str(copy), len(clean) - 1, rep.shots[k].lost,
                            mixed(read_log(copy / "telemetry.msgpack", warn=False))))
    res.facts.append(f"{len(rep.shots)} offsets ({tails} in the tail): export {exported}, resume refused "
                     f"{refused}/{inner}, repaired {repaired}")
    return res, run


DISK_STEPS = 200
"""Steps of each disk-full session (checkpoints every quarter of them)."""


def disk_train(steps: int = DISK_STEPS) -> list[str]:
    """The command line of a disk-full session of ``steps`` steps."""
    return ["train", "--port", "emu:gen1-digipot", "--steps", str(steps), "--checkpoint-every",
            str(max(1, steps // 4)), "--every", "5", "--quiet", "--no-plot", "--json"]


def _disk_calls(work: Path, steps: int = DISK_STEPS) -> int:
    """Write calls under the runs folder in a clean session (the fault points)."""
    from .records import _main
    from .storage import DiskFault, disk_fault

    runs = work / "d-clean"
    with disk_fault(DiskFault(runs, op=None)) as fault:
        code, _, err = _main([*disk_train(steps), "--runs", str(runs)])
    if code != 0:
        raise RuntimeError(f"the clean session failed: {err}")
    return len(fault.seen)


def case_disk_full(work: Path, seed: int, faults: int, calls: int, steps: int = DISK_STEPS) -> CaseResult:
    """(d) the disk fills at a seeded random write and stays full; then space comes back
    and the run is resumed (or, with no checkpoint yet, started again)."""
    from .records import _main
    from .storage import DiskFault, disk_fault

    res = CaseResult("d", seed)
    rng = random.Random(1000 + seed)
    where: list[str] = []
    resumed = restarted = 0
    for k in range(faults):
        runs = work / f"d-{seed}-{k}"
        nth = rng.randint(1, calls)
        with disk_fault(DiskFault(runs, "any", "", nth, errno.ENOSPC, sticky=True)) as fault:
            code, _, err = _main([*disk_train(steps), "--runs", str(runs)])
        where.append(fault.fired.split(" ")[0] + " " + Path(fault.fired.split(" ", 1)[1]).name
                     if fault.fired else "not reached")
        if not fault.fired:  # the session wrote less this time (the timed flush)
            res.check(f"fault {k}: session completed", code == 0, _show((code, err)))
            continue
        res.check(f"fault {k} ({fault.fired}): one-line error", code == 2 and one_line(err), _show((code, err)))
        dirs = sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
        run = dirs[0] if dirs else None
        logged = snapshot(run) if run is not None else []
        if run is not None and "--resume" in err:
            code, out, err2 = _main(["train", "--resume", str(run), "--quiet", "--no-plot", "--json"])
            ok = code == 0 and json.loads(out.strip().splitlines()[-1]).get("steps") == steps
            resumed += res.check(f"fault {k}: resumed to the end", ok, _show((code, err2)))
            res.add(account(run, logged))
        else:
            res.check(f"fault {k}: says to start again or where to", "start the session again" in err
                      or "--runs" in err, _show((code, err)))
            if run is not None:
                res.add(account(run, logged))
            code, _, err2 = _main([*disk_train(steps), "--runs", str(runs), "--name", "again"])
            restarted += res.check(f"fault {k}: started again", code == 0, _show((code, err2)))
    res.facts.append(f"{faults} disks filled at write " + ", ".join(where) + f"; {resumed} resumed, "
                     f"{restarted} started again (no checkpoint yet)")
    return res


def _flash_files(flash: Path) -> int:
    return sum(1 for p in flash.rglob("*") if p.is_file())


def case_flash_killed(env: dict[str, str], work: Path, seed: int, rng: random.Random,
                      vm: str | None) -> CaseResult:
    """(e) SIGKILL of ``learnboard emulate`` while ``learnboard flash --port P`` writes."""
    res = CaseResult("e", seed)
    flash = work / f"flash-e{seed}"
    flash.mkdir()  # a board with MicroPython alone, as a new RP2040 comes
    board = PtyBoard(flash, seed + 3, env, work / f"emulate-e{seed}.out", vm)
    port = board.start(booted=False)
    files = rng.randint(1, 20)  # of the 23 the flash writes
    fl = subprocess.Popen([sys.executable, "-m", "learnboard", "flash", "--port", port, "--board", BOARD],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        _wait(f"{files} files flashed", lambda: _flash_files(flash) >= files, fl, timeout=120)
        board.kill()
    except RuntimeError as exc:
        res.check("the emulator killed mid-flash", False, str(exc))
    finally:
        out, err = fl.communicate(timeout=WAIT_S)
        board.stop()
    res.check("interrupted flash: an error, no traceback", fl.returncode != 0 and "Traceback" not in err,
              _show((fl.returncode, err)))
    written = _flash_files(flash)
    said = ""
    board = PtyBoard(flash, seed + 3, env, work / f"emulate-e{seed}-again.out", vm)
    try:
        port = board.start(booted=False)
        info = cli(env, "info", "--port", port, timeout=120)
        said = info.stderr.strip().splitlines()[-1] if info.stderr.strip() else ""
        res.check("restarted board reported as needing `learnboard flash`",
                  info.returncode != 0 and "learnboard flash" in info.stderr and "Traceback" not in info.stderr,
                  _show(info))
        again = cli(env, "flash", "--port", port, "--board", BOARD, timeout=300)
        res.check("flashing again works", again.returncode == 0, _show(again))
        runs = work / f"runs-e{seed}"
        done = cli(env, "train", "--port", port, "--steps", "100", "--every", "10", "--checkpoint-every", "50",
                   "--runs", str(runs), "--name", "after", "--quiet", "--no-plot", "--json", timeout=600)
        res.check("a session then completes", done.returncode == 0, _show(done))
        for run in sorted(p for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []:
            res.add(account(run))
    finally:
        board.stop()
    res.facts.append(f"killed after {files} files landed ({written} on the flash once its VM had "
                     f"ended); flash exit {fl.returncode}: "
                     f"{err.strip().splitlines()[-1] if err.strip() else '-'}; restarted, info: {said}")
    return res


def case_stop(env: dict[str, str], port: str, work: Path, seed: int) -> CaseResult:
    """(f) ``learnboard stop`` without --port, then with it; the run resumed to the end."""
    res = CaseResult("f", seed)
    train, run_dir = start_training(env, port, work / "runs-f", "stopped", "--no-plot", steps=300)
    try:
        done = cli(env, "stop")
        res.check("stop without --port: an error", done.returncode == 2 and one_line(done.stderr)
                  and "--port" in done.stderr, _show(done))
        res.check("the session goes on", train.poll() is None and _goes_on(run_dir, train))
        logged = snapshot(run_dir)
        done = cli(env, "stop", "--port", port)
        res.check("stop --port parks the board", done.returncode == 0, _show(done))
    finally:
        if train.poll() is None and not res.checks.get("stop --port parks the board"):
            train.send_signal(signal.SIGINT)
        out, err = train.communicate(timeout=WAIT_S)
    last = err.strip().splitlines()[-1] if err.strip() else ""
    res.check("session ends: stopped by `learnboard stop`, with the resume command",
              train.returncode == 2 and "stopped by `learnboard stop`" in last and "--resume" in last
              and "Traceback" not in err, _show((train.returncode, err)))
    stopped_at = _last_step(run_dir)
    lost, notes = records_lost(run_dir, logged)
    res.check("records intact after the stop", lost == 0, "; ".join(notes))
    logged = snapshot(run_dir)
    done = cli(env, "train", "--resume", str(run_dir), "--quiet", "--no-plot", "--json", timeout=600)
    ok = done.returncode == 0 and json.loads(done.stdout.strip().splitlines()[-1]).get("steps") == 300
    res.check("resumed to the end", ok, _show(done))
    res.add(account(run_dir, logged))
    res.facts.append(f"stop without --port refused, session went on; stopped at step {stopped_at}, "
                     f"resumed to 300")
    return res


# -- the campaign ---------------------------------------------------------------------------


def run_lab(work: str | Path, *, seeds: int = 1, offsets: int = 20, faults: int = 5,
            cases: tuple[str, ...] = CASES, vm: str | None = None,
            on_result=None, disk_steps: int = DISK_STEPS) -> list[CaseResult]:
    """Every case in ``cases`` for seeds 0..seeds-1 in ``work`` (fresh private run-time and
    data folders); ``vm``: the MicroPython binary of ``learnboard emulate``; ``on_result``
    is called with each result as it comes; ``disk_steps``: the steps of each disk-full
    session (d). A case that raises is a failed result."""
    from learnboard.emulator.vm import micropython_executable
    from learnboard.host import flashing as F

    work = Path(work)
    results: list[CaseResult] = []

    def done(res: CaseResult, t0: float) -> None:
        res.seconds = time.monotonic() - t0
        results.append(res)
        if on_result is not None:
            on_result(res)

    def guarded(case: str, seed: int, fn, *args):
        t0 = time.monotonic()
        try:
            out = fn(*args)
        except Exception as exc:  # a case that breaks is reported, not the end of the campaign
            res = CaseResult(case, seed)
            res.check("ran", False, f"{type(exc).__name__}: {exc}")
            done(res, t0)
            return None
        res = out[0] if isinstance(out, tuple) else out
        done(res, t0)
        return out

    with private_env(work) as env:
        board_cases = [c for c in ("a", "b", "f") if c in cases]
        flash = None
        if board_cases or "e" in cases:
            flash = work / "flash"
            F.flash(None, BOARD, flash_dir=flash, mpy=True, vm=micropython_executable(vm))
        crashed = None
        calls = _disk_calls(work, disk_steps) if "d" in cases else 0
        for seed in range(seeds):
            rng = random.Random(seed)
            if board_cases:
                sflash = work / f"flash-{seed}"
                shutil.copytree(flash, sflash)
                board = PtyBoard(sflash, seed + 3, env, work / f"emulate-{seed}.out", vm)
                unfinished = None
                try:
                    board.start()
                    if "a" in cases:
                        guarded("a", seed, case_two_programs, env, board.port, work / f"s{seed}", seed)
                    if "f" in cases:
                        guarded("f", seed, case_stop, env, board.port, work / f"s{seed}", seed)
                    if "b" in cases:
                        t0 = time.monotonic()
                        try:
                            res_b, unfinished = case_resume(env, board.port, work / f"s{seed}", seed, rng)
                        except Exception as exc:
                            res_b = CaseResult("b", seed)
                            res_b.check("ran", False, f"{type(exc).__name__}: {exc}")
                finally:
                    board.stop()
                if "b" in cases:
                    if unfinished is not None:
                        other = PtyBoard(work / f"flash-{seed}", seed + 103, env, work / f"emulate-{seed}-other.out", vm)
                        try:
                            case_resume_board_gone(env, unfinished, res_b)
                            other.start()
                            case_resume_other_board(env, unfinished, other, res_b)
                        except Exception as exc:
                            res_b.check("ran (board gone, another board)", False, f"{type(exc).__name__}: {exc}")
                        finally:
                            other.stop()
                    done(res_b, t0)
            if "c" in cases:
                out = guarded("c", seed, case_corruption, work, seed, offsets, crashed)
                crashed = out[1] if out else crashed
            if "d" in cases:
                guarded("d", seed, case_disk_full, work, seed, faults, calls, disk_steps)
            if "e" in cases:
                guarded("e", seed, case_flash_killed, env, work, seed, rng, vm)
    return results


def table(results: list[CaseResult]) -> list[str]:
    """Markdown rows: one per case, summed over seeds, then the facts of each seed."""
    lines = ["| case | seeds | runs checked | records checked | records lost | runs mixed | checks passed | seconds |",
             "|---|---|---|---|---|---|---|---|"]
    for case in CASES:
        rows = [r for r in results if r.case == case]
        if not rows:
            continue
        checks = [ok for r in rows for ok in r.checks.values()]
        lines.append(f"| {case}: {TITLES[case]} | {len(rows)} | {sum(len(r.accounts) for r in rows)} "
                     f"| {sum(r.records for r in rows)} | {sum(r.lost for r in rows)} | {sum(r.mixed for r in rows)} "
                     f"| {sum(checks)}/{len(checks)} | {sum(r.seconds for r in rows):.0f} |")
    return lines
