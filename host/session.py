"""A training session: the host runs the schedule, the board runs the steps.

``run_session(conn, config, run_folder)`` uploads the task's training examples, sets the
initial edge states, and then trains in chunks: ``train`` N steps with telemetry every M,
log every telemetry frame and event, and between chunks ask the schedule for the next
lambda / learning rate ``alpha`` / nudge ``eta``. Every ``checkpoint_every`` steps the edge states are read
back and stored with the schedule's state, and the log is fsync-ed. A board that resets
(a ``boot`` event, or its step counter going back) gets its examples, parameters and the
last checkpoint's edges back; steps redone after that are logged as superseding the lost
ones. ``resume=True`` continues a stopped or crashed session from its run folder.

At the end the host measures, with ``infer`` on each example, the training error and the
held-out test error (and accuracy for classification), the power the board reports —
measured by its current monitor, or its device-model estimate; free, clamped and total,
:mod:`.power` — and, on an emulated board, the true physical power from the emulator's
world. The board's calibration, when the host has one, is sent first (``set_model``) so
that the estimate uses the measured device parameters.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from learnboard.engine.board_model import anneals
from learnboard.engine.config import GATE_ALPHA_ANNEAL, annealed_alpha
from learnboard.engine.steady import below_floor
from learnboard.errors import InputError, LearnboardError

from .link import BoardError
from .messages import ErrorCode, Fault
from .power import POWER_KEYS, PowerMeans
from .runfolder import RunFolder, file_version
from .runlog import RunLog, check_resumable, read_log
from .schedule import VERSION as SCHEDULE_VERSION
from .schedule import Schedule, ScheduleRunner, parse_schedule, with_board_defaults
from .schemas import TOLERANCE_KEYS, Checkpoint, RunConfig, ScheduleRecord, convert

PING_S = 2.0  # host silence parks the board after 10 s: say something well before
CHUNK_TIMEOUT_S = 120.0  # no telemetry, event or reply progress for this long: give up
RESTORE_ATTEMPTS = 5  # a board that resets this often while being restored has a power fault
UPLOAD_CHUNK = 16
DAMAGED = "the run folder is damaged"
STALE_CHECKPOINT = "delete this checkpoint to resume from the one before"


@dataclass
class TrainConfig:
    """What a session does; stored resolved in the run folder's config.json."""

    task: str = "regression"
    schedule: Schedule = field(default_factory=Schedule)
    alpha: float | None = None  # learning rate; None: 1.0 -> 0.2 annealed on transistor boards
    # (unless the profile's [learning] anneal = false: its alpha)
    eta: float | None = None  # nudge amplitude; None: the board's
    telemetry_every: int = 10
    checkpoint_every: int = 200
    seed: int = 0
    name: str = "run"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["schedule"] = self.schedule.as_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict, source: str = "config.json") -> TrainConfig:
        """The configuration config.json stores (checked by :class:`~.schemas.RunConfig`;
        its schedule as a schedule file's)."""
        rc = convert(d, RunConfig, source, DAMAGED)
        sched = rc.schedule or ScheduleRecord()
        # config.json is in the current meanings (RunFolder.read_config converts old ones);
        # a phase stores every field: pass on those its kind takes, as a schedule file would.
        # A tolerance phase recorded before the adaptive controller ran the paper's.
        raw = {"version": SCHEDULE_VERSION, "init": sched.init, "chunk": sched.chunk,
               "seed": sched.seed, "null_offset_every": sched.null_offset_every, "stop": {k: v for k, v in (sched.stop or {}).items() if v is not None},
               "phase": [{**({"controller": "paper"} if p.get("kind") == "tolerance" else {}),
                          **{k: v for k, v in p.items() if v is not None and not (
                              p.get("kind") != "tolerance" and k in TOLERANCE_KEYS) and not (
                              p.get("kind") == "tolerance" and k == "lam") and not (
                              p.get("kind") != "ramp" and k == "lam_to")}} for p in sched.phases]}
        fields = {k: getattr(rc, k) for k in rc.__struct_fields__ if k != "schedule"}
        return cls(schedule=parse_schedule(raw, source), **fields)


def resume_config(rf: RunFolder) -> TrainConfig:
    """The configuration of the run folder ``rf`` (its config.json), checked for --resume;
    a folder written before ``alpha`` became the learning rate is read in its own meaning
    (:meth:`RunFolder.read_config`)."""
    raw = rf.read_config()
    source = str(rf.config_path)
    if not isinstance(raw, dict):
        raise InputError("the configuration must be a JSON object; the run folder is damaged",
                         source=source)
    known = set(TrainConfig.__dataclass_fields__)
    return TrainConfig.from_dict({k: v for k, v in raw.items() if k in known}, source)


def check_checkpoint(ck: dict, source: str, n_edges: int | None = None) -> dict:
    """``ck`` (a checkpoint file's contents) if a session can resume from it (see
    :class:`~.schemas.Checkpoint`); else an InputError naming the file and field."""
    file_version(ck, source)
    convert(ck, Checkpoint, source, STALE_CHECKPOINT)
    if n_edges is not None and len(ck["k"]) != n_edges:
        # the board is wrong, not the checkpoint: never advise deleting a good one
        raise InputError(f"has {len(ck['k'])} edge states but the board has {n_edges} edges: "
                         "another board than the run's; resume on the board the run was "
                         "recorded on", source=source, field="k")
    return ck


def resume_checkpoint(rf: RunFolder, board: Any = None) -> dict:
    """The newest readable checkpoint of ``rf``, checked (see :func:`check_checkpoint`)."""
    ck = rf.latest_checkpoint()
    if ck is None:
        raise InputError("the run folder has no checkpoint to resume from", source=str(rf.path))
    n = getattr(board, "n_edges", None)
    return check_checkpoint(ck, str(rf.checkpoints_dir / ck["file"]), n)


@dataclass
class Summary:
    """The outcome of a session (``as_dict()`` is what ``train --json`` prints)."""

    run_dir: str
    relative_error: float  # training error after / before training (infer on each example)
    test_error: float | None  # held-out error after / before training
    accuracy: float | None  # classification tasks
    power: float  # W the board reports, total, mean over the training examples (host/power.py)
    true_power: float | None  # emulator's physical W, total (None on hardware)
    steps: int
    lam: float
    tolerance: float | None = None
    reached: bool | None = None  # the tail mean of the training error under the tolerance
    stop_reason: str = ""
    tail_relative_error: float | None = None  # telemetry means over the last 10 % of steps
    tail_power: float | None = None
    initial_power: float | None = None
    initial_true_power: float | None = None
    power_source: str = "estimate"  # "measured" (current monitor) | "estimate" (device model)
    power_free: float | None = None  # the board's figures for the free network ...
    power_clamped: float | None = None  # ... and the clamped one (None: single network)
    true_power_free: float | None = None
    true_power_clamped: float | None = None
    initial_power_source: str = "estimate"
    initial_power_free: float | None = None
    initial_power_clamped: float | None = None
    initial_true_power_free: float | None = None
    initial_true_power_clamped: float | None = None
    board: str = ""
    port: str = ""
    resets: int = 0
    watchdog_resets: int = 0  # of the resets, those the board's watchdog made (F_WATCHDOG)
    telemetry_lost: int = 0  # telemetry records the board sent that never arrived (gaps)
    # the steady-state verdict on the telemetry history (learnboard.engine.steady); None in
    # summaries written before it existed
    steady_state: bool | None = None
    below_floor: bool | None = None  # final C/C0 below the floating-point floor
    bursts: int | None = None
    rise: float | None = None
    drift_relative_error: float | None = None
    drift_power: float | None = None
    fluctuation_relative_error: float | None = None
    fluctuation_power: float | None = None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["lambda"] = d.pop("lam")
        return d


# -- tasks ----------------------------------------------------------------------------------


@dataclass
class _Task:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str
    tol: float | None
    accuracy: Callable | None = None


def load_session_task(name: str, board: Any, seed: int = 0) -> _Task:
    """The task (a built-in name or a CSV file, ``learnboard.tasks.load_task``) on ``board``."""
    from learnboard.tasks import load_task

    t = load_task(name, board=board, seed=seed)
    return _Task(np.asarray(t.x_train, float), np.asarray(t.y_train, float),
                 np.asarray(t.x_test, float), np.asarray(t.y_test, float), t.kind,
                 t.tolerance(board), t.accuracy)


# -- the session ----------------------------------------------------------------------------


class _BoardReset(Exception):
    """The board rebooted (or its step counter went back) during a chunk."""


def _get(data: Any, key: str, default: Any) -> Any:
    return data.get(key, default) if isinstance(data, dict) else default


def _parked_message(label: str, data: Any) -> str:
    """What a ``parked`` event during training means (its ``reason``, see protocol.toml)."""
    reason = _get(data, "reason", "?")
    why = {"host_silent": "the host was silent past host_timeout_ms (a stalled or slow host, "
                          "or a cable that drops out)",
           "limit": "a safety limit was reached",
           "request": "a park was requested (another program on the port?)"}.get(
        reason, f"reason {reason!r}")
    return (f"{label}: the board parked itself: {why} (fault flags {_get(data, 'flt', '?')}); "
            "see the log")


def _call(link, command: str, **args: Any) -> Any:
    return link.request(command, args)


def _gate_bounds(board) -> tuple[float, float]:
    lo, hi = board.limits.gate_range or (0.75, 5.2)
    return float(lo), float(hi)


def initial_edges(board, init: str, current: list, seed: int = 0) -> list:
    """Edge states for ``init``: ``uniform`` mid-range, ``low`` the lowest-conductance
    end (the paper's good initial condition), ``random`` uniform inside the range."""
    rng = np.random.default_rng(seed)
    out = list(current)
    glo, ghi = _gate_bounds(board)
    margin = 0.05 * (ghi - glo)
    for i, e in enumerate(board.edges):
        if e.kind == "transistor":
            lo, hi = glo + margin, ghi - margin
            out[i] = {"uniform": (glo + ghi) / 2, "low": lo, "random": float(rng.uniform(lo, hi))}[init]
        elif e.kind == "digipot":
            part = board.parts.get(e.part)
            tlo, thi = board.limits.tap_range or (0, part.n_taps - 1)
            # high taps = high resistance (low conductance)
            out[i] = {"uniform": (tlo + thi) // 2, "low": thi, "random": int(rng.integers(tlo, thi + 1))}[init]
    return out


class Session:
    """One session on one board; :func:`run_session` is the usual entry."""

    def __init__(self, conn, config: TrainConfig, rf: RunFolder, *, live=None,
                 resume: bool = False, stop_event: threading.Event | None = None,
                 park_event: threading.Event | None = None, other_board: str | None = None):
        self.other_board = other_board
        self.conn, self.link, self.config, self.rf, self.live = conn, conn.link, config, rf, live
        self.park_event = park_event or threading.Event()
        self.board = conn.board
        if self.board is None:
            raise LearnboardError(f"{conn.label}: the host has no description of board "
                                  f"{conn.hello.get('board')!r}; pass --board FILE")
        self.resume = resume
        self.stop_event = stop_event or threading.Event()
        self.task = load_session_task(config.task, self.board, config.seed)
        # what the flags and the schedule file left open, from the board's profile
        with_board_defaults(config.schedule, self.board)
        self.runner = ScheduleRunner(config.schedule, self.task.tol)
        self.step = 0
        self.c0 = math.nan
        self.rel: float | None = None
        self.lam = 0.0
        self.resets = 0
        self.watchdog_resets = 0
        self.max_step_logged = 0
        self.power_hist: list[tuple[int, float]] = []
        self.err_hist: list[tuple[int, float]] = []
        self.last_flt = 0
        self.t_start = time.monotonic()
        self.elapsed0 = 0.0
        self.params: dict[str, Any] = {}
        self.log: RunLog | None = None
        self.p0: float | None = None  # power before training: board-reported, emulator's true
        self.tp0: float | None = None
        self.pw0: dict[str, Any] = {}  # all of the power before training (POWER_KEYS)
        self.calibration: dict | None = None  # what the power estimate uses (set_model)
        self.last_ck: dict | None = None  # the checkpoint a reset restores
        self.chunk_from = 0  # the step the current chunk started at
        # Transistor boards without a given learning rate (alpha): anneal it over the
        # session (learnboard.engine.config.annealed_alpha; `learnboard sim --board` does
        # the same). The lab's 0.0023 needs ~1e5 steps; a constant 1.0 learns in a few
        # hundred but then wanders at C/C0 ~ 0.01-0.1, the anneal settles it (~0.01).
        # A profile with `anneal = false` keeps its own constant alpha (the firmware's).
        total = config.schedule.total_steps
        sets_alpha = any(p.alpha is not None for p in config.schedule.phases)
        self.alpha_anneal = ((*GATE_ALPHA_ANNEAL, total) if config.alpha is None and not sets_alpha and total
                             and anneals(self.board) else None)

    # -- board set-up --------------------------------------------------------------------

    def _learn_params(self) -> dict:
        p: dict[str, Any] = {"tlm_every": int(self.config.telemetry_every),
                             "null_every": int(self.config.schedule.null_offset_every)}
        alpha = self.config.alpha
        if alpha is None and self.alpha_anneal is not None:
            alpha = self._annealed_alpha()
        if alpha is None and not self.board.learning.anneal:
            alpha = self.board.learning.alpha  # the profile's constant rate, whatever the board held
        if alpha is not None:
            p["alpha"] = float(alpha)
        if self.config.eta is not None:
            p["eta"] = float(self.config.eta)
        return p

    def _annealed_alpha(self) -> float:
        a, b, total = self.alpha_anneal
        return annealed_alpha(self.step, total, a, b)

    def _prepare_board(self) -> None:
        """Stop anything running, upload the examples, set the learning parameters (all
        again if the board resets meanwhile)."""
        link = self.link
        self._drain_events(new=False)  # from before: the boot that started it, a reset in hand
        for _ in range(RESTORE_ATTEMPTS):
            try:
                _call(link, "stop")
            except BoardError:
                pass
            try:
                x, y = self.task.x_train, self.task.y_train
                for s in range(0, len(x), UPLOAD_CHUNK):
                    _call(link, "upload_examples", start=s, x=x[s:s + UPLOAD_CHUNK].tolist(),
                          y=y[s:s + UPLOAD_CHUNK].tolist(), clear=(s == 0))
                self.params = _call(link, "set_params", **self._learn_params(), **(
                    {"lam": self.lam} if self.lam else {}))
                self._send_model()
            except BoardError:
                if not self._take_boot():  # e.g. the examples' first chunk lost to a reset
                    raise
            else:
                self._drain_events()  # stale events of a stopped run
                if not self._take_boot():
                    return
            self._note_reset("the board rebooted while being prepared", self.step)
        raise LearnboardError(f"{self.conn.label}: the board reset {RESTORE_ATTEMPTS} times "
                              "while being prepared; check its power supply")

    def _drain_events(self, new: bool = True) -> None:
        """Drop pending events; with ``new``, a boot among them marks a reset not yet
        handled (see :meth:`_take_boot`)."""
        while (ev := self.link.next_event(timeout=0)) is not None:
            if new and ev[0] == "boot":
                self._boot_pending = True

    def _take_boot(self) -> bool:
        """True if the board booted since the last look: a reset between chunks (during a
        checkpoint's read-back, a restore, the final evaluation) that no chunk saw."""
        self._drain_events()
        booted, self._boot_pending = self._boot_pending, False
        return booted

    def _write_edges(self, k: list, step: int | None = None, source: str | None = None) -> None:
        """Write edge states (from the checkpoint file ``source``, if any). A value the
        board would refuse (a checkpointed gate that leaked out of its writable range
        since, or the firmware's pulse margins leave just outside it) is set to the
        nearest safe value by the board (``clamp``): the run goes on, and a warning and an
        ``edges_clamped`` log event say which edges moved where. A state the board cannot
        take at all (a fractional digipot tap) is an error naming the edge the board
        named and, for a checkpoint, the file and its ``k[e]``."""
        k = list(k)
        step = self.step if step is None else step
        try:
            r = _call(self.link, "write_edges", start=0, k=k, clamp=True)
        except BoardError as exc:
            e = exc.edge
            if e is None or not 0 <= e < len(k) or exc.code not in (ErrorCode.BAD_ARGS,
                                                                    ErrorCode.LIMIT):
                raise
            what = (f"edge {e} ({self.board.edges[e].name}) = {k[e]!r} was refused by the board "
                    f"({ErrorCode(exc.code).name}: {exc.message})")
            if source:
                raise InputError(f"{what}; delete this checkpoint to resume from the one before",
                                 source=source, field=f"k[{e}]") from None
            raise LearnboardError(f"{self.conn.label}: step {step}: {what}") from None
        clamped = [int(e) for e in r.get("clamped") or []]
        if not clamped:
            return
        now = _call(self.link, "read_edges")["k"]
        moved = ", ".join(f"{self.board.edges[e].name} {k[e]:.4g} -> {now[e]:.4g}" for e in clamped[:6])
        more = f" and {len(clamped) - 6} more" if len(clamped) > 6 else ""
        print(f"warning: {self.conn.label}: step {step}: {len(clamped)} edge state(s) outside "
              f"the board's safe range were set to the nearest safe value: {moved}{more}",
              file=sys.stderr, flush=True)
        self._log({"kind": "event", "name": "edges_clamped", "step": step, "edges": clamped,
                   "asked": [k[e] for e in clamped], "set": [now[e] for e in clamped]})

    def _find_calibration(self) -> dict | str | None:
        """The board's calibration for a new session (the connection's, else the host's
        copy of a serial board's), kept for the power estimate; what the run folder stores."""
        cal = getattr(self.conn, "calibration", None)  # dict or file, when the board has one
        if not cal and not getattr(self.conn, "emulated", False):
            from .calibration import find_calibration

            cal = find_calibration(str(self.conn.hello.get("board", "")),
                                   str(self.conn.hello.get("desc_hash", "")),
                                   self.conn.hello.get("uid"),
                                   log=lambda m: print(m, file=sys.stderr, flush=True))
        self.calibration = self._usable(cal)
        return cal

    def _usable(self, cal: dict | str | None) -> dict | None:
        """``cal`` (a dict or a file) if it is a valid calibration of this very description,
        else None with a warning: the estimate then uses the nominal parts."""
        if not cal:
            return None
        from .calibration import load_calibration, validate_calibration

        try:
            c = validate_calibration(cal, self.board) if isinstance(cal, dict) else \
                load_calibration(cal, self.board)
        except LearnboardError as exc:
            print(f"warning: {self.conn.label}: calibration not used for the power estimate: {exc}",
                  file=sys.stderr, flush=True)
            return None
        if c.get("desc_hash") != self.conn.hello.get("desc_hash"):
            print(f"warning: {self.conn.label}: calibration not used for the power estimate: it "
                  "was measured with another board description; run `learnboard calibrate`",
                  file=sys.stderr, flush=True)
            return None
        return c

    def _send_model(self) -> None:
        """The calibrated device parameters of the board's calibration (when the session
        has one) for the board's power estimate; nominal ones otherwise."""
        from .calibration import model_args

        for args in model_args(self.calibration, self.board):
            _call(self.link, "set_model", **args)

    def _evaluate(self, xs: np.ndarray, ys: np.ndarray,
                  power: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
        """(outputs, power figures :data:`POWER_KEYS`) over examples by infer; with
        ``power``, each infer drives the clamped network toward its target (``y``) as a
        learning step does, so a twin board's clamped network counts as it draws."""
        preds = []
        means = PowerMeans(self.board.n_nets > 1, sensed_total=self.board.power_measured)
        for xi, yi in zip(xs, ys, strict=True):
            self._check_stopped(self.step)  # an infer drives the inputs: none after a stop's park
            args: dict[str, Any] = {"x": [float(v) for v in xi]}
            if power:
                args["y"] = [float(v) for v in yi]
            r = _call(self.link, "infer", **args)
            preds.append(r["y"])
            means.add(r, self.conn if power else None)
        self._check_stopped(self.step)  # (parks again: the last infer may have crossed the stop's park)
        return np.asarray(preds, float), means.result()

    @staticmethod
    def _mse(pred: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.sum((pred - y) ** 2, axis=1)))

    # -- logging ---------------------------------------------------------------------------

    def _log(self, rec: dict) -> int:
        return self.log.append(rec)

    def _checkpoint(self) -> None:
        k = _call(self.link, "read_edges")["k"]
        if self._take_boot():  # these are a freshly booted board's edges: not a checkpoint
            raise _BoardReset("the board rebooted before a checkpoint")
        state = {"k": k, "schedule": self.runner.state(), "c0": self.c0, "lam": self.lam,
                 "elapsed": self.elapsed0 + time.monotonic() - self.t_start,
                 "c0_test": self.c0_test, "p0": self.p0, "tp0": self.tp0, "pw0": self.pw0}
        path = self.rf.write_checkpoint(self.step, state)
        self._log({"kind": "checkpoint", "step": self.step, "file": path.name})
        self.log.sync()
        self.last_ck = {"step": self.step, **state}

    def _restore(self, ck: dict, why: str) -> None:
        """Put the board back to checkpoint ``ck`` (after a reset or on resume); again if
        the board resets while being restored."""
        for _ in range(RESTORE_ATTEMPTS):
            self._prepare_board()
            source = str(self.rf.checkpoints_dir / ck["file"]) if ck.get("file") else None
            self._write_edges(ck["k"], int(ck["step"]), source)
            if not self._take_boot():
                break
            self._note_reset("the board rebooted during a restore", int(ck["step"]))
        else:
            raise LearnboardError(f"{self.conn.label}: the board reset {RESTORE_ATTEMPTS} times "
                                  "while being restored; check its power supply")
        self.step = int(ck["step"])
        self.runner.load_state(ck.get("schedule") or {})
        self.lam = float(ck.get("lam", 0.0))
        self.power_hist = [(s, p) for s, p in self.power_hist if s <= self.step]
        self.err_hist = [(s, e) for s, e in self.err_hist if s <= self.step]
        self._log({"kind": "restore", "step": self.step, "supersedes_from": self.step,
                   "reason": why, "file": ck.get("file")})

    # -- the loop --------------------------------------------------------------------------

    def _gap(self, base: int, last: int, step: int, every: int, end: bool = False) -> None:
        """Telemetry the board sent between steps ``last`` and ``step`` of a chunk (at every
        ``every``-th step, and at its last step when ``end``) that did not arrive: logged
        as a ``telemetry_gap`` event and counted in the summary."""
        if every <= 0 or step <= last:
            return
        upto = step if end else step - 1
        lost = upto // every - last // every + (1 if end and step % every else 0)
        if lost > 0:
            self.tlm_lost += lost
            self._log({"kind": "event", "name": "telemetry_gap", "step": base + step,
                       "data": {"after": base + last, "before": base + step + (1 if end else 0),
                                "lost": lost}})

    def _wait_chunk(self, base: int, n: int, every: int = 0) -> None:
        """Log telemetry and events until the board says the chunk of ``n`` steps is done
        (telemetry every ``every`` steps and at the last: missing records are gaps)."""
        link = self.link
        last_step = 0
        last_ping = time.monotonic()
        last_progress = time.monotonic()
        while True:
            self._check_stopped(base + last_step)
            t = link.next_telemetry(timeout=0.05)
            while t is not None:
                last_progress = time.monotonic()
                s = int(t.get("step", 0))
                if s < last_step:
                    raise _BoardReset("the board's step counter went back")
                if s > last_step:
                    self._gap(base, last_step, s, every)
                last_step = s
                self._on_telemetry(base, t)
                t = link.next_telemetry(timeout=0)
            ev = link.next_event(timeout=0)
            while ev is not None:
                last_progress = time.monotonic()
                name, data = ev
                self._log({"kind": "event", "name": name, "step": base + last_step,
                           "data": data if isinstance(data, dict) else {"value": data}})
                if name == "boot":
                    raise _BoardReset("the board rebooted")
                if name == "done":
                    # telemetry of the last step is sent before the done event
                    self._drain_chunk(base, n, every, last_step)
                    return
                if name == "parked":
                    self._check_stopped(base + last_step)
                    raise LearnboardError(_parked_message(self.conn.label, data))
                if name == "fault":
                    raise LearnboardError(
                        f"{self.conn.label}: training stopped on a firmware fault: "
                        f"{_get(data, 'msg', '?')} (fault flags {_get(data, 'flt', '?')}); "
                        "see the log, and report it with the run folder")
                ev = link.next_event(timeout=0)
            now = time.monotonic()
            if now - last_ping > PING_S:
                last_ping = now
                st = _call(link, "status")
                if st["state"] != "training" and st["step"] < last_step:
                    raise _BoardReset("the board's step counter went back")
                if st["state"] == "training" or st["step"] != last_step:
                    last_progress = now
                if st["state"] == "parked":
                    self._check_stopped(base + last_step)
                    raise LearnboardError(f"{self.conn.label}: the board is parked (fault flags "
                                          f"{st['flt']}); see the log")
                if st["state"] == "idle" and st["step"] >= n:
                    # the chunk is done but its done event was lost on the line; telemetry
                    # sent before it has arrived by now (frames keep their order) or is lost
                    self._drain_chunk(base, n, every, last_step)
                    return
            if now - last_progress > CHUNK_TIMEOUT_S:
                raise LearnboardError(f"{self.conn.label}: no progress from the board for "
                                      f"{CHUNK_TIMEOUT_S:.0f} s")
            if self.live is not None:
                self.live.tick(self)

    def _drain_chunk(self, base: int, n: int, every: int, last_step: int) -> None:
        """The chunk is done: log the telemetry still queued, then count what never came."""
        t = self.link.next_telemetry(timeout=0)
        while t is not None:
            s = int(t.get("step", 0))
            if s > last_step:
                self._gap(base, last_step, s, every)
                last_step = s
            self._on_telemetry(base, t)
            t = self.link.next_telemetry(timeout=0)
        self._gap(base, last_step, n, every, end=True)

    def _on_telemetry(self, base: int, t: dict) -> None:
        step = base + int(t.get("step", 0))
        rec = {"kind": "tlm", **{k: v for k, v in t.items() if k != "t"}, "board_t": t.get("t"),
               "step": step, "seq": self.tlm_seq}
        self.tlm_seq += 1
        err = float(t.get("err", math.nan))
        rec["rel_err"] = err / self.c0 if self.c0 > 0 else math.nan
        if below_floor(rec["rel_err"]):  # rounding noise, kept as computed and marked
            rec["below_floor"] = True
        if step <= self.max_step_logged:
            rec["supersedes"] = True
        self.max_step_logged = max(self.max_step_logged, step)
        self._log(rec)
        self.rel = rec["rel_err"]
        self.power_hist.append((step, float(t.get("pwr", math.nan))))
        self.err_hist.append((step, self.rel))
        self.last_flt = int(t.get("flt", 0))
        self.last_tlm = rec
        if self.live is not None:
            self.live.update(self, rec)

    def run(self) -> Summary:
        rf, cfg = self.rf, self.config
        self.tlm_seq = 0
        self.tlm_lost = 0
        self._boot_pending = False
        self.last_tlm: dict | None = None
        self.c0_test = math.nan
        if self.resume:
            check_resumable(rf.log_path)  # damage inside the log: refuse, never truncate
            ck = resume_checkpoint(rf, self.board)
            prev = [int(r["step"]) for r in read_log(rf.log_path) if r.get("kind") == "tlm"]
            self.max_step_logged = max(prev + [int(ck["step"])])
            self.log = RunLog(rf.log_path, resume=True)
            if rf.calibration_path.is_file():
                self.calibration = self._usable(rf.calibration_path)
            self.c0 = float(ck["c0"])
            self.c0_test = float(ck.get("c0_test", math.nan))
            self.elapsed0 = float(ck.get("elapsed", 0.0))
            self.p0, self.tp0 = ck.get("p0"), ck.get("tp0")
            self.pw0 = ck.get("pw0") or {"power": self.p0, "true_power": self.tp0}
            # the records check of the log (checksums) belongs here, before anything is
            # appended: a damaged record in the middle must stop the resume, not be cut off
            hello = self.conn.hello
            # which board continues the run: a reader sees a change of board here
            # (`learnboard train --resume --other-board`)
            event = {"kind": "event", "name": "resume", "step": int(ck["step"]),
                     "port": self.conn.label, "board": hello.get("board"),
                     "desc_hash": hello.get("desc_hash"), "uid": hello.get("uid")}
            if self.other_board:  # allowed by --other-board: the log says so, and why
                event["other_board"] = self.other_board
            self._log(event)
            self._restore(ck, "resume")
            self.last_ck = ck
        else:
            rf.write_config({**cfg.as_dict(), "board": self.board.name,
                             "desc_hash": self.conn.hello.get("desc_hash"), "port": self.conn.label,
                             "uid": self.conn.hello.get("uid"), "tolerance": self.runner.tolerance})
            rf.write_board(self.board)
            cal = self._find_calibration()
            if cal:
                rf.write_calibration(cal)
            self.log = RunLog(rf.log_path)
            # telemetry reaches the log in volts (the link applies hello's scale); a log
            # without tlm_units was written by a protocol-1 host and holds ADC/gate codes
            self._log({"kind": "event", "name": "start", "step": 0, "port": self.conn.label,
                       "tlm_units": {"v": "V", "k": "taps | V"},
                       "power_model": "calibrated" if self.calibration else "nominal",
                       "hello": self.conn.hello})
            for _ in range(RESTORE_ATTEMPTS):  # again if the board resets meanwhile
                self._prepare_board()
                k = _call(self.link, "read_edges")["k"]
                k = initial_edges(self.board, cfg.schedule.init, k, cfg.schedule.seed)
                self._write_edges(k)
                pred, self.pw0 = self._evaluate(self.task.x_train, self.task.y_train)
                self.p0, self.tp0 = self.pw0["power"], self.pw0["true_power"]
                self.c0 = self._mse(pred, self.task.y_train)
                if len(self.task.x_test):
                    self.c0_test = self._mse(self._evaluate(self.task.x_test, self.task.y_test,
                                                            power=False)[0], self.task.y_test)
                if self._take_boot():
                    self._note_reset("the board rebooted while the session started", 0)
                    continue
                self._log({"kind": "event", "name": "initial", "step": 0, "c0": self.c0,
                           "c0_test": self.c0_test, "pwr": self.p0, "true_pwr": self.tp0,
                           **{k: v for k, v in self.pw0.items() if k not in ("power", "true_power")}})
                try:
                    self._checkpoint()
                    break
                except _BoardReset as why:
                    self._note_reset(str(why), 0)
            else:
                raise LearnboardError(f"{self.conn.label}: the board reset {RESTORE_ATTEMPTS} times "
                                      "while the session started; check its power supply")
        self._scale_controller()
        if self.live is not None:
            self.live.start(self)
        while True:
            reason = self._loop()
            try:
                return self._finish(reason)
            except _BoardReset as why:  # during the final checkpoint or evaluation
                if reason == "interrupted":
                    self.stop_event.set()
                self._on_reset(why, self.step)

    def _scale_controller(self) -> None:
        """The adaptive controller's first lambda from this board and task: the nudge the
        board runs with, the error before training and the inputs' size. Only then is the
        board asked (a request costs board time, which a seeded run's record includes)."""
        if not self.runner.scales_to_board:
            return
        eta = float(_call(self.link, "get_params", names=["eta"]).get("eta") or 0.0)
        x = np.asarray(self.task.x_train, float)
        rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
        self.runner.set_board_scale(eta=eta, c0=self.c0, input_rms=rms)

    def _chunk_error(self) -> float | None:
        """Mean C/C0 of the telemetry of the last chunk (None before the first)."""
        if not self.err_hist:
            return None
        since = self.chunk_from
        errs = [e for s, e in self.err_hist if s > since and math.isfinite(e)]
        return float(np.mean(errs)) if errs else None

    def _loop(self) -> str:
        cfg = self.config
        while True:
            elapsed = self.elapsed0 + time.monotonic() - self.t_start
            reason = self.runner.stop_reason(self.step, elapsed, self.rel, self.power_hist)
            if reason is None and self.stop_event.is_set():
                reason = "interrupted"
            if reason is not None:
                return reason
            params = self.runner.params(self.step, self.rel, self._chunk_error())
            if self.alpha_anneal is not None:
                params["alpha"] = self._annealed_alpha()
            changed = {k: v for k, v in params.items() if self.params.get(k) != v}
            if changed:
                self.params.update(_call(self.link, "set_params", **changed))
            self.lam = float(self.params.get("lam", params.get("lam", 0.0)))
            n = self.runner.chunk(self.step)
            to_ck = cfg.checkpoint_every - self.step % cfg.checkpoint_every
            n = min(n, to_ck)
            base = self.step
            self.chunk_from = base
            try:
                if self._take_boot():
                    raise _BoardReset("the board rebooted between chunks")
                self._check_stopped(base)
                try:
                    _call(self.link, "train", steps=int(n), every=int(min(cfg.telemetry_every, n)))
                except BoardError:
                    if self._take_boot():  # e.g. NOT_READY: a fresh board has no examples
                        raise _BoardReset("the board rebooted between chunks") from None
                    raise
                self._wait_chunk(base, n, int(min(cfg.telemetry_every, n)))
                self.step = base + n
                if self.step % cfg.checkpoint_every == 0:
                    self._checkpoint()
            except _BoardReset as why:
                self._on_reset(why, self.step)
                continue
            except KeyboardInterrupt:
                self._safe_stop()
                return "interrupted"

    def _check_stopped(self, step: int) -> None:
        """End the session if ``learnboard stop`` parked the board (``park_event``)."""
        if not self.park_event.is_set():
            return
        try:  # again: a train request of this session may have crossed the stop's park
            _call(self.link, "park")
        except Exception:  # noqa: BLE001 - the stop parked it already; the message matters now
            pass
        if self.log is not None:
            self._log({"kind": "event", "name": "stopped", "step": step, "by": "learnboard stop"})
        raise LearnboardError(f"{self.conn.label}: stopped by `learnboard stop` at step {step}; the board "
                              f"is parked. Continue the run with: learnboard train --resume {self.rf.path} "
                              f"--port {self.conn.label}")

    def _note_reset(self, why: str, step: int) -> None:
        """Log a board reset; a watchdog reset (the fresh boot's ``F_WATCHDOG``) is named
        as one, on the log and on standard error, since it means a step starved the
        watchdog or the firmware hung."""
        self.resets += 1
        rec = {"kind": "event", "name": "board_reset", "step": step, "reason": why}
        try:
            flt = int(_call(self.link, "status").get("flt", 0))
        except Exception:  # noqa: BLE001 - the restore that follows reports a dead link
            flt = 0
        if flt & Fault.WATCHDOG:
            self.watchdog_resets += 1
            rec["watchdog"] = True
            rec["reason"] = f"{why} (watchdog reset)"
            ck = self.last_ck or {}
            print(f"learnboard: {self.conn.label}: watchdog reset at step {step}; resuming from the "
                  f"checkpoint at step {int(ck.get('step', 0))}", file=sys.stderr, flush=True)
        self._log(rec)

    def _on_reset(self, why: _BoardReset, step: int) -> None:
        self._note_reset(str(why), step)
        self._restore(self.last_ck, str(why))

    def _safe_stop(self) -> None:
        try:
            st = _call(self.link, "stop")
            # the board's steps of this chunk stand: keep the step count honest
            self.step += int(st.get("step", 0))
        except Exception:  # the link may be gone; the summary still gets written
            pass

    def _verdict(self, rel: float) -> dict:
        """The steady-state verdict of the telemetry (the last record of each step counts:
        records a resumed session re-sent supersede the earlier ones)."""
        from learnboard.engine.steady import run_verdict

        err = dict(self.err_hist)
        pwr = dict(self.power_hist)
        steps = sorted(err)
        v = run_verdict({"relative_error": [err[s] for s in steps],
                         "power": [pwr.get(s, math.nan) for s in steps]}, rel)
        return {k: v[k] for k in ("steady_state", "below_floor", "bursts", "rise",
                                  "drift_relative_error", "drift_power",
                                  "fluctuation_relative_error", "fluctuation_power")}

    def _finish(self, reason: str) -> Summary:
        if self.last_ck is None or self.last_ck.get("step") != self.step:
            self._checkpoint()
        pred, pw = self._evaluate(self.task.x_train, self.task.y_train)
        rel = self._mse(pred, self.task.y_train) / self.c0 if self.c0 > 0 else math.nan
        test_err = acc = None
        if len(self.task.x_test):
            tpred = self._evaluate(self.task.x_test, self.task.y_test, power=False)[0]
            mse = self._mse(tpred, self.task.y_test)
            test_err = mse / self.c0_test if self.c0_test > 0 else mse
            if self.task.kind == "classification" and self.task.accuracy is not None:
                acc = float(self.task.accuracy(tpred, self.task.y_test))
        if self._take_boot():  # these figures came (partly) from a freshly booted board
            raise _BoardReset("the board rebooted during the final evaluation")
        tail_e = tail_p = None
        if self.err_hist:
            cut = self.step - 0.1 * self.step
            e = [v for s, v in self.err_hist if s > cut]
            p = [v for s, v in self.power_hist if s > cut]
            tail_e, tail_p = float(np.mean(e)), float(np.mean(p))
        tol = self.runner.tolerance
        steady = self._verdict(rel)
        initial = {f"initial_{k}": self.pw0.get(k) for k in POWER_KEYS}
        initial["initial_power_source"] = self.pw0.get("power_source") or "estimate"
        s = Summary(run_dir=str(self.rf.path), relative_error=rel, test_error=test_err, accuracy=acc,
                    **pw, steps=self.step, lam=self.lam, tolerance=tol,
                    reached=None if tol is None else bool((rel if tail_e is None else tail_e) < tol),
                    stop_reason=reason,
                    tail_relative_error=tail_e, tail_power=tail_p, **initial,
                    board=self.board.name, port=self.conn.label, resets=self.resets,
                    watchdog_resets=self.watchdog_resets, telemetry_lost=self.tlm_lost,
                    **steady)
        self._log({"kind": "summary", **s.as_dict()})
        self.log.close()
        self.rf.write_summary(s.as_dict())
        if self.live is not None:
            self.live.finish(self, s)
        return s


def run_session(conn, config: TrainConfig, run_folder: RunFolder, *, live=None,
                resume: bool = False, stop_event: threading.Event | None = None,
                park_event: threading.Event | None = None, other_board: str | None = None) -> Summary:
    """Train on ``conn``'s board per ``config``, recording into ``run_folder``.

    Args:
        conn: a :class:`learnboard.host.connect.Connection`.
        config: task, schedule, learning rate, telemetry and checkpoint intervals.
        run_folder: where config, board, log, checkpoints and summary go.
        live: a dashboard with ``start/update/tick/finish`` (``learnboard.host.live.Live``).
        resume: continue from the run folder's last checkpoint.
        stop_event: set it (from another thread) to end the session after the current chunk.
        park_event: set by whoever parked the board for ``learnboard stop``: the session
            ends at once, saying so (not as a board that parked itself).
        other_board: on resume, why the board is not the one the run was recorded on
            (``--other-board`` allowed it); recorded in the log's ``resume`` event.
    """
    session = Session(conn, config, run_folder, live=live, resume=resume, stop_event=stop_event,
                      park_event=park_event, other_board=other_board)
    try:
        return session.run()
    except BaseException:
        try:  # leave the board idle, not training on unattended (a parked board stays parked)
            conn.link.request("stop", {}, timeout=1.0, retries=1)
        except Exception:
            pass
        raise
    finally:
        if session.log is not None:
            try:
                session.log.close()
            except LearnboardError:
                pass
