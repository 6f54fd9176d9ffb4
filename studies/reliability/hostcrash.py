"""Host-crash campaign: ``learnboard train`` killed with SIGKILL, then ``--resume``.

The host runs as a subprocess (``python -m learnboard train``, the emulated board in its
process). It is killed with SIGKILL at seeded random moments — several times per run, the
first a random delay after the run folder has its first checkpoint, the later ones a
random delay after each ``--resume`` started (some land in the start-up, before the
resumed session logged anything); the k-th kill comes earlier if this life's telemetry
reaches step (k+1)/(kills+1) of the run, so that every kill hits a live run — and it is
resumed each time; a last ``--resume`` runs to the end. What must hold:

- the telemetry log reads after every kill, its record indices are 0..n-1, and what was
  on disk at a kill is unchanged in the final log (a record cut by the kill aside);
- no record is duplicated: between two ``restore`` records the telemetry steps strictly
  increase, and a step logged again after a restore carries ``supersedes``;
- per kill, at most the last second of telemetry was lost: the newest record on disk
  is at most ~1 s older than the kill (measured for kills that hit a running session);
- the final history has telemetry for every step the session should report (lost steps
  are redone from the checkpoint) and the session finishes with its summary.

The emulated board lives in the host process, so each kill also takes the board down and
each resume starts a fresh one (on hardware the board keeps running and parks itself).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log, scan_log

from learnboard.errors import InputError


@dataclass
class Kill:
    life: int  # 0: the first process, then one per --resume
    delay: float  # s after this process started (the first: after its first checkpoint);
    # drawn, but the kill comes earlier once the log shows step (life+1)/(kills+1) of the run
    kill_time: float  # host unix time just before SIGKILL
    records_on_disk: int
    cut_bytes: int  # bytes of a record cut by the kill at the end of the file
    logged_this_life: bool  # the killed process had appended to the log
    lost_window: float | None  # kill_time - time of the newest record on disk
    last_step_on_disk: int
    checkpoint_step: int | None


@dataclass
class HostCrashReport:
    seed: int
    steps: int
    kills: list[Kill] = field(default_factory=list)
    completed: bool = False
    summary_steps: int | None = None
    relative_error: float | None = None
    indices_ok: bool = False
    prefix_ok: bool = False  # every pre-kill snapshot is a prefix of the final log
    duplicates: int = 0  # telemetry records repeating a step without supersedes
    restores: int = 0
    missing_steps: list[int] = field(default_factory=list)  # telemetry steps never logged
    records: int = 0
    seconds: float = 0.0

    @property
    def max_lost_window(self) -> float | None:
        w = [k.lost_window for k in self.kills if k.lost_window is not None]
        return max(w) if w else None

    def as_dict(self) -> dict:
        return {**asdict(self), "max_lost_window": self.max_lost_window}


def _train_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "learnboard", "train", *args]


def _wait_for(pred, proc: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


def _tlm_steps(log: Path) -> list[int]:
    return [int(r["step"]) for r in read_log(log) if r.get("kind") == "tlm"]


def _kill(proc: subprocess.Popen) -> float:
    t = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    return t


def check_history(recs: list[dict], steps: int, every: int) -> dict:
    """Indices, duplicates and coverage of a final log (see the module docstring)."""
    out = {"indices_ok": [r.get("i") for r in recs] == list(range(len(recs)))}
    dup = 0
    seen_segment: set[int] = set()
    best = 0
    logged: set[int] = set()
    restores = 0
    for r in recs:
        if r.get("kind") == "restore":
            restores += 1
            seen_segment = set()
            continue
        if r.get("kind") != "tlm":
            continue
        s = int(r["step"])
        if s in seen_segment or (s <= best and not r.get("supersedes")):
            dup += 1
        seen_segment.add(s)
        best = max(best, s)
        logged.add(s)
    out["duplicates"] = dup
    out["restores"] = restores
    out["missing_steps"] = sorted(set(range(every, steps + 1, every)) - logged)
    return out


def run_hostcrash(folder: Path, *, seed: int = 0, steps: int = 600, kills: int = 5,
                  task: str | None = None, checkpoint_every: int = 100, every: int = 10,
                  delay: tuple[float, float] = (0.5, 6.0), timeout: float = 600.0) -> HostCrashReport:
    """One run killed ``kills`` times at seeded random moments and resumed each time."""
    t0 = time.perf_counter()
    rng = np.random.default_rng([seed, 0xC4])
    runs = Path(folder) / f"crash-{seed}"
    rep = HostCrashReport(seed=seed, steps=steps)
    args = ["--steps", str(steps), "--runs", str(runs), "--name", "crash", "--seed", str(seed),
            "--checkpoint-every", str(checkpoint_every), "--every", str(every), "--quiet", "--no-plot"]
    if task:
        args += ["--task", task]
    snapshots: list[list[dict]] = []
    run_dir: Path | None = None
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    for life in range(kills + 1):
        cmd = _train_cmd(*args) if run_dir is None else _train_cmd("--resume", str(run_dir), "--quiet",
                                                                   "--no-plot", "--json")
        if life == kills:  # the last life runs to the end
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
            if out.returncode == 0:
                rep.completed = True
                summary = json.loads(out.stdout.strip().splitlines()[-1])
                rep.summary_steps, rep.relative_error = summary["steps"], summary["relative_error"]
            else:
                raise RuntimeError(f"the last --resume failed ({out.returncode}): {out.stderr[-2000:]}")
            break
        before = len(read_log(run_dir / "telemetry.msgpack")) if run_dir else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            started = time.monotonic()
            if run_dir is None:  # the first kill once a checkpoint exists to resume from

                def has_checkpoint() -> bool:
                    dirs = list(runs.glob("*-crash")) if runs.exists() else []
                    try:
                        return bool(dirs) and RunFolder.open(dirs[0]).latest_checkpoint() is not None
                    except InputError:  # being created: config.json not there yet
                        return False

                if not _wait_for(has_checkpoint, proc, timeout):
                    raise RuntimeError(f"no checkpoint appeared: {proc.stderr.read().decode()[-2000:]}")
                run_dir = next(runs.glob("*-crash"))
                started = time.monotonic()
            d = float(rng.uniform(*delay))
            cap = steps * (life + 1) // (kills + 1)  # kill by then at the latest: the run goes on

            log = run_dir / "telemetry.msgpack"
            skip = _tlm_steps(log).__len__() if life else 0  # telemetry of earlier lives
            while time.monotonic() - started < d and proc.poll() is None and max(_tlm_steps(log)[skip:], default=0) < cap:
                time.sleep(0.05)
            if proc.poll() is not None:
                raise RuntimeError(f"train ended before the kill ({proc.returncode}): "
                                   f"{proc.stderr.read().decode()[-2000:]}")
            kill_time = _kill(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
            if proc.stderr is not None:
                proc.stderr.close()
        log = run_dir / "telemetry.msgpack"
        recs, end = scan_log(log)
        size = log.stat().st_size if log.exists() else 0
        ck = RunFolder.open(run_dir).latest_checkpoint()
        tl = [r for r in recs if r.get("kind") == "tlm"]
        logged = len(recs) > before
        rep.kills.append(Kill(
            life=life, delay=d, kill_time=kill_time, records_on_disk=len(recs), cut_bytes=size - end,
            logged_this_life=logged, lost_window=(kill_time - recs[-1]["t"]) if logged else None,
            last_step_on_disk=int(tl[-1]["step"]) if tl else 0,
            checkpoint_step=None if ck is None else int(ck["step"])))
        snapshots.append(recs)
    final = read_log(run_dir / "telemetry.msgpack")
    rep.records = len(final)
    rep.prefix_ok = all(final[: len(s)] == s for s in snapshots)
    h = check_history(final, steps, every)
    rep.indices_ok, rep.duplicates = h["indices_ok"], h["duplicates"]
    rep.restores, rep.missing_steps = h["restores"], h["missing_steps"]
    rep.seconds = time.perf_counter() - t0
    return rep
