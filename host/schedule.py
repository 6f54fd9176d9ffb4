"""Training schedules: what lambda, learning rate and nudge the board uses when, how the
edges start and when the session stops. The schedule runs on the host; between chunks of
board steps the session asks :class:`ScheduleRunner` for the next parameters.

A schedule file (TOML)::

    version = 2                 # alpha = learning rate, eta = nudge (needed to set either)
    init = "uniform"            # "low" (the paper's good initial condition), "uniform", "random";
                                # absent: the board's (its profile's [learning] init)
    chunk = 50                  # board steps between host decisions (parameter updates)
    null_offset_every = 10      # the board measures the rule's update at zero nudge every
                                # 10 steps and subtracts it from the steps' (0: off;
                                # absent: the board's, its profile's [learning] null_offset_every)

    [stop]
    steps = 2000                # total steps (also: the phases' steps summed)
    time = 600                  # seconds of wall time
    settled = true              # stop once the tolerance is reached and the power settled
    settle_window = 300         # steps over which the power must change ...
    settle_rel = 0.02           # ... by less than this fraction

    [[phase]]
    kind = "constant"           # lambda held
    lam = 0.0
    steps = 500
    alpha = 1.0                 # learning rate; alpha_to = ramps it
    eta = 0.5                   # nudge amplitude in (0, 1]; eta_to = ramps it

    [[phase]]
    kind = "ramp"               # lambda linear from lam to lam_to over the phase
    lam = 0.0
    lam_to = 0.01
    steps = 500

    [[phase]]
    kind = "tolerance"          # lambda set by a controller to keep C/C0 under tau
    tau = 0.05                  # a relative error in (0, 1), or "task"
    controller = "adaptive"     # the boards' (default): lambda 0 until C/C0 < target * tau,
    target = 0.8                # then from start (default: from the board) x / up per check
                                # (every: steps / 50), the factor shrinking on reversals
    # controller = "paper"      # the paper's: start 1e-9, every 100, x up (1.05) while
                                # C/C0 < tau, else x down (0.5)

Parameter names and meanings are the paper's, as in ``learnboard sim``, board files and
the board protocol: ``alpha`` is the learning rate, ``eta`` the nudge amplitude, ``lam``
the power weight in [0, 1]. learnboard 0.1.0 had alpha and eta the other way round, so a
file that sets alpha or eta must say ``version = 2``; one without is refused (never read
in a guessed meaning). A file that sets neither needs no version. A phase without
``steps`` runs until the stop condition. ``tau = "task"`` takes the task's tolerance.
A tolerance phase without ``controller`` uses the adaptive one; run folders written before
it existed recorded the paper's (:meth:`TrainConfig.from_dict` reads them so).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from learnboard.engine.controller import (
    CEILING,
    START_FRACTION,
    TARGET,
    UP,
    AdaptiveController,
    ToleranceController,
    adaptive_every,
    balance_lambda,
)
from learnboard.errors import InputError

from .schemas import INITS, ScheduleFile, convert

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

VERSION = 2  # schedule format: alpha = learning rate, eta = nudge
CONTROLLERS = ("adaptive", "paper")
PAPER = {"start": 1e-9, "every": 100, "up": 1.05, "down": 0.5}  # the paper's constants
START_UNMEASURED = 1e-3  # the adaptive controller's first lambda when no session measured one
_RATE_KEYS = ("alpha", "alpha_to", "eta", "eta_to")  # their meaning changed in version 2


@dataclass
class Phase:
    """One stretch of the schedule."""

    kind: str = "constant"
    steps: int | None = None  # None: until the stop condition
    lam: float = 0.0
    lam_to: float | None = None
    tau: float | str | None = None  # tolerance phases: a float or "task"
    controller: str = "adaptive"  # tolerance phases: "adaptive" or "paper"
    target: float | None = None  # adaptive: aim at target * tau (default TARGET)
    start: float | None = None  # None: the controller's default (adaptive: from the board)
    every: int | None = None
    up: float | None = None
    down: float | None = None  # paper only
    alpha: float | None = None  # learning rate; None: the board's current value
    alpha_to: float | None = None
    eta: float | None = None  # nudge amplitude; None: the board's current value
    eta_to: float | None = None


@dataclass
class Stop:
    """When a session ends (the first condition met)."""

    steps: int | None = None
    time: float | None = None
    settled: bool = False
    settle_window: int = 300
    settle_rel: float = 0.02


@dataclass
class Schedule:
    phases: list[Phase] = field(default_factory=lambda: [Phase()])
    init: str | None = None  # None: the board's ([learning] init; :func:`with_board_defaults`)
    chunk: int = 50
    stop: Stop = field(default_factory=Stop)
    seed: int = 0
    # steps between the board's null-offset measurements; 0: off; None: the board's
    null_offset_every: int | None = None
    source: str = "<flags>"

    @property
    def total_steps(self) -> int | None:
        """Steps until the stop: the stop's steps, else the phases' sum (None: unbounded)."""
        if self.stop.steps is not None:
            return self.stop.steps
        if all(p.steps is not None for p in self.phases):
            return sum(p.steps for p in self.phases)
        return None

    @property
    def tolerance_phase(self) -> Phase | None:
        return next((p for p in self.phases if p.kind == "tolerance"), None)

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        return d


def with_board_defaults(sched: Schedule, board: Any) -> Schedule:
    """``sched`` with what neither its file nor the flags set taken from ``board``'s
    profile (``[learning] init`` and ``null_offset_every``); changed in place, returned."""
    if sched.init is None:
        sched.init = board.learning.init
    if sched.null_offset_every is None:
        sched.null_offset_every = board.learning.null_offset_every
    return sched


# -- parsing ------------------------------------------------------------------------------


def _fail(source: str, fld: str, msg: str) -> InputError:
    return InputError(msg, source=source, field=fld)


def _num(v: Any, source: str, fld: str, *, lo: float | None = None, hi: float | None = None,
         positive: bool = False, integer: bool = False) -> float | int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
        raise _fail(source, fld, f"{v!r} is not {'an integer' if integer else 'a number'}")
    if not math.isfinite(v):
        raise _fail(source, fld, f"{v!r} must be finite")
    if positive and not v > 0:
        raise _fail(source, fld, f"{v!r} must be > 0")
    if lo is not None and v < lo:
        raise _fail(source, fld, f"{v!r} must be >= {lo}")
    if hi is not None and v > hi:
        raise _fail(source, fld, f"{v!r} must be <= {hi}")
    return v


def _check_version(data: dict, source: str) -> None:
    """A schedule that sets alpha or eta says which meaning it was written in: refuse
    one without ``version`` rather than guess (learnboard 0.1.0 swapped the two)."""
    if "version" in data:
        v = data["version"]
        if isinstance(v, bool) or v != VERSION:
            raise _fail(source, "version", f"{v!r} is not a schedule version this learnboard "
                        f"reads; write version = {VERSION} (alpha = learning rate, eta = nudge)")
        return
    phases = data.get("phase")
    for i, ph in enumerate(phases if isinstance(phases, list) else []):
        for key in _RATE_KEYS:
            if isinstance(ph, dict) and key in ph:
                raise _fail(source, f"phase[{i}].{key}",
                            f"this schedule sets {key} but has no version, and learnboard 0.1.0 "
                            "read alpha as the nudge and eta as the learning rate. Add "
                            f"`version = {VERSION}` at the top of the file and check that alpha "
                            "is the learning rate and eta the nudge amplitude (swap their "
                            "values if the file was written for 0.1.0)")


def parse_schedule(data: dict, source: str = "<schedule>") -> Schedule:
    """A :class:`Schedule` from the TOML document's dict (checked by
    :class:`~.schemas.ScheduleFile`); errors name the field."""
    if isinstance(data, dict):
        _check_version(data, source)
    sf = convert(data, ScheduleFile, source)
    phases = []
    for pf in sf.phase:
        given = {k: v for k, v in msgspec.structs.asdict(pf).items() if v is not None}
        if pf.kind == "tolerance":
            given.setdefault("tau", "task")
        phases.append(Phase(**given))
    return Schedule(phases=phases, init=sf.init, chunk=sf.chunk, seed=sf.seed, source=source,
                    null_offset_every=sf.null_offset_every, stop=Stop(**msgspec.structs.asdict(sf.stop)))


def load_schedule(path_or_dict: str | Path | dict) -> Schedule:
    """A schedule from a TOML file or an already parsed dict."""
    if isinstance(path_or_dict, dict):
        return parse_schedule(path_or_dict)
    path = Path(path_or_dict)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("schedule file not found", source=str(path)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text (UTF-8) file: byte {exc.start} is {exc.object[exc.start]:#04x}",
                         source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=str(path)) from None
    return parse_schedule(data, str(path))


def check_tolerance(tau: Any, source: str, fld: str) -> float:
    """``tau`` as a tolerance: a relative error C/C0 strictly between 0 and 1."""
    v = _num(tau, source, fld)
    if not 0 < v < 1:
        raise _fail(source, fld, f"{v!r} is not a tolerance: a tolerance is a relative error C/C0 (the "
                    "error after training over the error before), so it lies between 0 and 1 "
                    "(e.g. 0.05); or give \"task\" for the task's own")
    return float(v)


_CONTROLLER_FLAGS = (("start", "--lambda-start"), ("every", "--check-every"), ("up", "--lambda-up"),
                     ("controller", "--controller"))


def schedule_from_flags(*, steps: int | None = None, lam: float | None = None,
                        tolerance: float | str | None = None, init: str | None = None,
                        base: Schedule | None = None, every: int | None = None,
                        start: float | None = None, up: float | None = None,
                        controller: str | None = None,
                        null_offset_every: int | None = None) -> Schedule:
    """The schedule of ``learnboard train`` flags, on top of a schedule file if given.

    ``--lambda`` makes a single constant phase, ``--tolerance`` a single tolerance phase
    (a float, or ``task``) with ``--controller`` (adaptive, the default, or paper) and its
    constants ``--lambda-start``, ``--check-every``, ``--lambda-up``, which need
    ``--tolerance``; ``--steps`` sets the stop; ``--init`` the initial state;
    ``--null-offset-every`` the board's null-offset period (0: off)."""
    sched = base or Schedule(stop=Stop(steps=1000))
    if lam is not None and tolerance is not None:
        raise InputError("give either --lambda or --tolerance, not both", field="--lambda")
    if tolerance is None:
        given = {"start": start, "every": every, "up": up, "controller": controller}
        for key, flag in _CONTROLLER_FLAGS:
            if given[key] is not None:
                raise InputError("this option sets the tolerance controller, which runs only with "
                                 "--tolerance: add --tolerance task (or a relative error such as "
                                 f"0.05), or drop {flag}" + (
                                     "; a schedule file's tolerance phase sets it as "
                                     f"`{key} = ...`" if base is not None else ""), field=flag)
    if lam is not None:
        _num(lam, "--lambda", "", lo=0.0, hi=1.0)
        sched.phases = [Phase(kind="constant", lam=float(lam))]
    if tolerance is not None:
        if tolerance != "task":
            tolerance = check_tolerance(tolerance, "--tolerance", "")
        ph = Phase(kind="tolerance", tau=tolerance)
        if controller is not None:
            if controller not in CONTROLLERS:
                raise InputError(f"{controller!r} is not a controller; use {' or '.join(CONTROLLERS)}",
                                 field="--controller")
            ph.controller = controller
        if every is not None:
            ph.every = int(_num(every, "--check-every", "", lo=1, integer=True))
        if start is not None:
            ph.start = float(_num(start, "--lambda-start", "", positive=True, hi=1.0))
        if up is not None:
            ph.up = float(_num(up, "--lambda-up", "", positive=True))
            if ph.up <= 1:
                raise InputError(f"{up!r} must be above 1 (lambda grows by this factor while "
                                 "the error is under the tolerance)", field="--lambda-up")
        sched.phases = [ph]
    if steps is not None:
        if steps < 1:
            raise InputError("must be at least 1", field="--steps")
        sched.stop.steps = steps
    if null_offset_every is not None:
        if isinstance(null_offset_every, bool) or not isinstance(null_offset_every, int) \
                or null_offset_every < 0:
            raise InputError(f"{null_offset_every!r} is not a step count: give an integer >= 0 "
                             "(steps between the board's null-offset measurements; 0 = off)",
                             field="--null-offset-every")
        sched.null_offset_every = null_offset_every
    if init is not None:
        if init not in INITS:
            raise InputError(f"{init!r} is not an init mode; use {', '.join(INITS)}", field="--init")
        sched.init = init
    if sched.total_steps is None and sched.stop.time is None and not sched.stop.settled:
        sched.stop.steps = 1000
    return sched


# -- running ------------------------------------------------------------------------------


def _lerp(a: float, b: float | None, frac: float) -> float:
    return a if b is None else a + (b - a) * frac


class ScheduleRunner:
    """Walks a schedule: which phase a step is in, the parameters for the next chunk, the
    chunk length, and the stop decision. Its state (:meth:`state`) goes into checkpoints.

    Args:
        schedule: the schedule.
        task_tolerance: what ``tau = "task"`` means (relative error).
    """

    def __init__(self, schedule: Schedule, task_tolerance: float | None = None):
        self.schedule = schedule
        self.task_tolerance = task_tolerance
        self.bounds: list[tuple[int, int | None]] = []
        at = 0
        for p in schedule.phases:
            end = None if p.steps is None else at + p.steps
            self.bounds.append((at, end))
            at = end if end is not None else at
        self.controllers: dict[int, ToleranceController | AdaptiveController] = {}
        for i, p in enumerate(schedule.phases):
            if p.kind != "tolerance":
                continue
            if p.controller == "paper":
                self.controllers[i] = ToleranceController(tau=self.tau(p), **{
                    k: PAPER[k] if getattr(p, k) is None else getattr(p, k) for k in PAPER})
            else:
                self.controllers[i] = AdaptiveController(
                    tau=self.tau(p), start=START_UNMEASURED if p.start is None else p.start,
                    every=adaptive_every(self._phase_steps(i)) if p.every is None else p.every,
                    up=UP if p.up is None else p.up, target=TARGET if p.target is None else p.target,
                    hold_from=self._hold_from(i))
        self.reached_at: int | None = None  # first step with C/C0 < tolerance

    def _phase_steps(self, i: int) -> int | None:
        """Steps phase ``i`` runs for (None: unbounded)."""
        a, b = self.bounds[i]
        total = self.schedule.total_steps
        if b is None or (total is not None and total < b):
            b = total
        return None if b is None else max(1, b - a)

    def _hold_from(self, i: int) -> int | None:
        """The step from which phase ``i``'s controller no longer raises lambda: the last
        tenth of the session, when the phase runs to the end (None: never)."""
        total = self.schedule.total_steps
        end = self.bounds[i][1]
        if total is None or (end is not None and end < total):
            return None
        return total - total // 10

    @property
    def scales_to_board(self) -> bool:
        """True when an adaptive controller waits for :meth:`set_board_scale`."""
        return any(isinstance(c, AdaptiveController) and c.s0 is None for c in self.controllers.values())

    def set_board_scale(self, *, eta: float, c0: float, input_rms: float) -> None:
        """Scale the adaptive controllers to the board's balance lambda
        (:func:`~learnboard.engine.controller.balance_lambda`) from the nudge ``eta``, the
        error before training ``c0`` and the inputs' rms (volts): lambda stays under
        ``CEILING`` times it, and starts at ``START_FRACTION`` of it unless given."""
        for i, c in self.controllers.items():
            if not isinstance(c, AdaptiveController) or c.s0 is not None:
                continue  # a controller under way keeps the scale it started with
            try:
                bal = balance_lambda(eta, c0, input_rms, c.tau, c.target)
            except ValueError:  # e.g. a task the board already solves (C0 = 0)
                continue
            c.lam_max = min(1.0, CEILING * bal)
            if self.schedule.phases[i].start is None:
                c.start = START_FRACTION * bal
            c.start = min(c.start, c.lam_max)

    def tau(self, phase: Phase) -> float:
        if phase.tau == "task" or phase.tau is None:
            if self.task_tolerance is None:
                raise InputError("tau = \"task\" needs a task with a tolerance; give a number",
                                 field="phase.tau")
            return check_tolerance(float(self.task_tolerance), "the task's tolerance", "tau")
        return float(phase.tau)

    @property
    def tolerance(self) -> float | None:
        """The tolerance the stop rule and summary judge by (the tolerance phase's, or the task's)."""
        ph = self.schedule.tolerance_phase
        return self.tau(ph) if ph is not None else self.task_tolerance

    def phase_index(self, step: int) -> int:
        for i, (_a, b) in enumerate(self.bounds):
            if b is None or step < b:
                return i
        return len(self.bounds) - 1

    def chunk(self, step: int) -> int:
        """Steps to run from ``step`` before the host decides again."""
        i = self.phase_index(step)
        p = self.schedule.phases[i]
        n = self.schedule.chunk
        if p.kind == "tolerance":
            c = self.controllers[i]
            n = c.every
            if c.s0 is not None:  # keep the checks at s0 + k * every exactly
                n = c.every - (step - c.s0) % c.every
        end = self.bounds[i][1]
        if end is not None:
            n = min(n, end - step)
        total = self.schedule.total_steps
        if total is not None:
            n = min(n, total - step)
        return max(1, n)

    def params(self, step: int, relative_error: float | None,
               chunk_error: float | None = None) -> dict[str, float]:
        """Board parameters for the chunk starting at ``step``, given C/C0 measured at
        the end of the previous chunk (None before the first) and its mean over that
        chunk (``chunk_error``: what the adaptive controller judges by)."""
        i = self.phase_index(step)
        p = self.schedule.phases[i]
        a, b = self.bounds[i]
        frac = 0.0 if b is None else (step - a) / max(1, b - a)
        out: dict[str, float] = {}
        if p.kind == "constant":
            out["lam"] = p.lam
        elif p.kind == "ramp":
            out["lam"] = _lerp(p.lam, p.lam_to, frac)
        else:
            c = self.controllers[i]
            rel = math.inf if relative_error is None else relative_error
            if isinstance(c, AdaptiveController) and chunk_error is not None:
                rel = chunk_error
            out["lam"] = min(1.0, c.lam_for(step, rel))
            c.lam = min(c.lam, 1.0)
        if p.alpha is not None:
            out["alpha"] = _lerp(p.alpha, p.alpha_to, frac)
        if p.eta is not None:
            out["eta"] = _lerp(p.eta, p.eta_to, frac)
        if relative_error is not None and self.reached_at is None:
            tol = self.tolerance
            if tol is not None and relative_error < tol:
                self.reached_at = step
        return out

    def stop_reason(self, step: int, elapsed_s: float, relative_error: float | None,
                    power_history: list[tuple[int, float]]) -> str | None:
        """Why the session stops now, or None to go on."""
        st = self.schedule.stop
        total = self.schedule.total_steps
        if total is not None and step >= total:
            return "steps"
        if st.time is not None and elapsed_s >= st.time:
            return "time"
        if st.settled and self.reached_at is not None and relative_error is not None:
            tol = self.tolerance
            if tol is not None and relative_error < tol and power_settled(
                    power_history, step, st.settle_window, st.settle_rel):
                return "settled"
        return None

    def state(self) -> dict:
        """What a checkpoint stores to resume the schedule exactly."""
        return {"controllers": {str(i): c.state() for i, c in self.controllers.items()},
                "reached_at": self.reached_at}

    def load_state(self, state: dict) -> None:
        for key, cs in (state.get("controllers") or {}).items():
            c = self.controllers.get(int(key))
            if c is not None:
                c.load_state(cs)
        self.reached_at = state.get("reached_at")


def power_settled(history: list[tuple[int, float]], step: int, window: int, rel: float) -> bool:
    """True when the power changed by less than ``rel`` (relative) over the last
    ``window`` steps: mean of the newer half of the window against the older half."""
    pts = [(s, p) for s, p in history if s > step - window]
    if not pts or pts[0][0] > step - window + window // 4 or len(pts) < 4:
        return False
    half = len(pts) // 2
    old = sum(p for _, p in pts[:half]) / half
    new = sum(p for _, p in pts[half:]) / (len(pts) - half)
    return old > 0 and abs(new - old) / old < rel
