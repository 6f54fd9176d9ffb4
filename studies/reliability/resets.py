"""Board-reset campaign: brown-outs and reset-button presses during training sessions.

A session (:func:`learnboard.host.session.run_session`) trains the in-process emulated
board while an injector thread resets the board (``"power-on"``: a brown-out, the parts
power-cycle too; ``"hard"``: the reset button) once the session's telemetry has reached
each of a few seeded random steps. The reset lands wherever the session happens to be —
inside a chunk, between chunks, during a checkpoint's read-back — as a real one would.
What must hold:

- every reset is detected (the session's ``resets`` counter and one ``board_reset``
  event in the log per injected reset);
- each is followed by a ``restore`` record naming the last checkpoint at or before the
  reset, the steps redone after it are marked ``supersedes`` exactly where they repeat
  steps logged before, and record indices stay consecutive;
- the session completes its steps, and its final relative error C/C0 and true physical
  power lie within the run-to-run spread of uninterrupted sessions of the same
  configuration over several emulator seeds.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from learnboard.cli.connection import open_board
from learnboard.host.runfolder import RunFolder
from learnboard.host.runlog import read_log
from learnboard.host.schedule import schedule_from_flags
from learnboard.host.session import Summary, TrainConfig, run_session


@dataclass
class ResetShot:
    """One injected reset."""

    kind: str  # "power-on" or "hard"
    target: int  # the session step after which it was due
    at_step: int  # the newest telemetry step the host had logged when it fired
    boots_after: int  # the emulator's boot count after it


@dataclass
class BrownoutReport:
    seed: int
    steps: int
    shots: list[ResetShot] = field(default_factory=list)
    detected: int = 0  # the session's reset counter
    board_reset_events: int = 0
    restores: list[int] = field(default_factory=list)  # checkpoint step of each restore
    restores_ok: bool = False  # each restore went to the newest checkpoint <= the reset step
    supersedes_ok: bool = False  # redone steps marked exactly where they repeat logged ones
    indices_ok: bool = False  # record indices 0..n-1
    redone_steps: int = 0  # board steps trained again after restores
    completed: bool = False
    relative_error: float = math.nan
    true_power: float = math.nan
    power: float = math.nan
    cpu_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


class _Injector:
    """A session ``live`` hook that remembers the newest telemetry step, and a thread
    that resets the board when that step reaches each target."""

    def __init__(self, emu, targets: list[int], kinds: list[str]):
        self.emu, self.targets, self.kinds = emu, targets, kinds
        self.step = -1
        self.shots: list[ResetShot] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="brownout-injector")

    # live interface (called from the session thread)
    def start(self, session) -> None:
        self._thread.start()

    def update(self, session, rec: dict) -> None:
        self.step = int(rec["step"])

    def tick(self, session) -> None:
        pass

    def finish(self, session, summary) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(10)

    def _run(self) -> None:
        try:
            for target, kind in zip(self.targets, self.kinds, strict=True):
                while self.step < target:
                    if self._stop.wait(0.001):
                        return
                at = self.step
                self.emu.reset(kind)
                self.shots.append(ResetShot(kind, target, at, self.emu.boots))
        except BaseException as exc:  # reported by the campaign
            self.error = exc


def reset_plan(seed: int, steps: int, n_resets: int, checkpoint_every: int) -> tuple[list[int], list[str]]:
    """``n_resets`` seeded random reset steps in (checkpoint_every/2, steps - 10), at
    least 10 steps apart, and their kinds (power-on and hard alternating from a random
    first one)."""
    rng = np.random.default_rng([seed, 0xB0])
    lo, hi = max(1, checkpoint_every // 2), steps - 10
    while True:
        targets = sorted(int(v) for v in rng.integers(lo, hi, n_resets))
        if all(b - a >= 10 for a, b in zip(targets, targets[1:], strict=False)):
            break
    first = int(rng.integers(2))
    kinds = [("power-on", "hard")[(first + i) % 2] for i in range(n_resets)]
    return targets, kinds


def _config(steps: int, task: str, checkpoint_every: int, telemetry_every: int) -> TrainConfig:
    return TrainConfig(task=task, schedule=schedule_from_flags(steps=steps),
                       checkpoint_every=checkpoint_every, telemetry_every=telemetry_every)


def run_session_once(seed: int, folder: Path, *, steps: int, task: str = "regression",
                     checkpoint_every: int = 100, telemetry_every: int = 10,
                     targets: list[int] = (), kinds: list[str] = (),
                     board: str = "gen2-clln") -> tuple[Summary, RunFolder, _Injector | None]:
    """One session on a fresh emulated board of seed ``seed``; resets per ``targets``."""
    cfg = _config(steps, task, checkpoint_every, telemetry_every)
    with open_board(f"emu:{board}", seed=seed) as conn:
        rf = RunFolder.create(folder, f"s{seed}-{'reset' if targets else 'plain'}")
        inj = _Injector(conn.emulator, list(targets), list(kinds)) if targets else None
        try:
            summary = run_session(conn, cfg, rf, live=inj)
        finally:
            if inj is not None:
                inj.stop()
    return summary, rf, inj


def check_log(rf: RunFolder, shots: list[ResetShot], checkpoint_every: int) -> dict:
    """What the log says about the resets (see :class:`BrownoutReport`)."""
    recs = read_log(rf.log_path)
    out: dict = {"indices_ok": [r["i"] for r in recs] == list(range(len(recs)))}
    out["board_reset_events"] = sum(1 for r in recs if r["kind"] == "event" and r.get("name") == "board_reset")
    restores = [r for r in recs if r["kind"] == "restore"]
    out["restores"] = [int(r["step"]) for r in restores]
    # each restore goes to the newest checkpoint written before it
    ok = True
    for rs in restores:
        cks = [int(r["step"]) for r in recs[: rs["i"]] if r["kind"] == "checkpoint"]
        ok &= bool(cks) and int(rs["step"]) == cks[-1] and rs["step"] % checkpoint_every == 0
    ok &= len(restores) == len(shots) and all(
        rs <= sh.at_step for rs, sh in zip(out["restores"], shots, strict=False))
    out["restores_ok"] = bool(ok)
    # supersedes: set exactly on telemetry repeating a step logged before
    best = 0
    sup_ok, redone = True, 0
    for r in recs:
        if r["kind"] != "tlm":
            continue
        repeat = r["step"] <= best
        sup_ok &= bool(r.get("supersedes")) == repeat
        redone += repeat
        best = max(best, r["step"])
    out["supersedes_ok"] = bool(sup_ok)
    out["redone_tlm"] = redone
    return out


def run_brownout(seed: int, folder: Path, *, steps: int = 600, n_resets: int = 3,
                 task: str = "regression", checkpoint_every: int = 100,
                 telemetry_every: int = 10) -> BrownoutReport:
    """One session with ``n_resets`` resets at seeded random steps; what survived."""
    targets, kinds = reset_plan(seed, steps, n_resets, checkpoint_every)
    t0 = time.process_time()
    summary, rf, inj = run_session_once(seed, folder, steps=steps, task=task,
                                        checkpoint_every=checkpoint_every,
                                        telemetry_every=telemetry_every, targets=targets, kinds=kinds)
    if inj.error is not None:
        raise inj.error
    rep = BrownoutReport(seed=seed, steps=steps, shots=inj.shots, detected=summary.resets,
                         completed=summary.steps == steps, relative_error=summary.relative_error,
                         true_power=summary.true_power if summary.true_power is not None else math.nan,
                         power=summary.power, cpu_s=time.process_time() - t0)
    log = check_log(rf, inj.shots, checkpoint_every)
    rep.board_reset_events, rep.restores = log["board_reset_events"], log["restores"]
    rep.restores_ok, rep.supersedes_ok, rep.indices_ok = log["restores_ok"], log["supersedes_ok"], log["indices_ok"]
    rep.redone_steps = sum(sh.at_step - ck for sh, ck in zip(inj.shots, rep.restores, strict=False))
    return rep


@dataclass
class Spread:
    values: list[float]

    @property
    def lo(self) -> float:
        return float(min(self.values))

    @property
    def hi(self) -> float:
        return float(max(self.values))

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else 0.0

    def within(self, v: float) -> bool:
        """Inside min..max or mean +- 2 sd."""
        return self.lo <= v <= self.hi or abs(v - self.mean) <= 2 * self.sd


def baseline(seeds: list[int], folder: Path, *, steps: int = 600, task: str = "regression",
             checkpoint_every: int = 100, telemetry_every: int = 10) -> tuple[Spread, Spread]:
    """Final C/C0 and true power of uninterrupted sessions, one per seed."""
    errs, pows = [], []
    for s in seeds:
        summary, _, _ = run_session_once(s, folder, steps=steps, task=task,
                                         checkpoint_every=checkpoint_every, telemetry_every=telemetry_every)
        errs.append(summary.relative_error)
        pows.append(summary.true_power)
    return Spread(errs), Spread(pows)


def campaign(seeds: int = 5, steps: int = 600, n_resets: int = 3, *, folder: Path | None = None,
             checkpoint_every: int = 100) -> tuple[list[BrownoutReport], Spread, Spread]:
    """The long version: ``seeds`` uninterrupted sessions for the spread, then the same
    seeds with ``n_resets`` resets each."""
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(folder or tmp)
        err, pw = baseline(list(range(seeds)), where, steps=steps, checkpoint_every=checkpoint_every)
        reps = [run_brownout(s, where, steps=steps, n_resets=n_resets, checkpoint_every=checkpoint_every)
                for s in range(seeds)]
    return reps, err, pw
