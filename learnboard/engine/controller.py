"""The closed-loop tolerance controllers, reusable by the engine and host sessions.

:class:`ToleranceController` is the paper's, for the engine and the paper's reproduction:
lambda = 0 until C/C0 < tau at some step s0; then lambda = ``start`` (1e-9), and at every
step s > s0 with (s - s0) % ``every`` == 0 (100), lambda is multiplied by ``up`` (1.05)
if C/C0 < tau, else by ``down`` (0.5). It oscillates by design: judge it by the means
over the last 10 % of steps (:func:`tail_means`).

:class:`AdaptiveController` is the boards' (``learnboard train --tolerance``): its first
lambda comes from the board's rule (:func:`balance_lambda`), its check interval from the
session's steps (:func:`adaptive_every`), and it searches lambda in factors that shrink on
every reversal, aiming the error at a fraction of tau. docs/training.md has the rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from learnboard.errors import InputError


def _check_tau_every(tau: float, every: int) -> None:
    """Both controllers' constants: a tolerance is a relative error in (0, 1)."""
    if not 0 < tau < 1:
        raise InputError(f"the tolerance must lie between 0 and 1 (a relative error C/C0), "
                         f"got {tau}", field="--tolerance")
    if every < 1:
        raise InputError("the check interval must be at least one step", field="every")


@dataclass
class ToleranceController:
    """Sets lambda from the relative error, step by step.

    Call :meth:`lam_for` once per step with that step's C/C0 (error of the current
    conductances relative to before training); use the returned lambda for the update
    made at that step.
    """

    tau: float
    start: float = 1e-9
    every: int = 100
    up: float = 1.05
    down: float = 0.5
    lam: float = 0.0
    s0: int | None = None

    def __post_init__(self) -> None:
        _check_tau_every(self.tau, self.every)

    def lam_for(self, step: int, relative_error: float) -> float:
        """Lambda for the update at ``step`` given C/C0 measured at that step."""
        if self.s0 is None:
            if relative_error < self.tau:
                self.s0 = step
                self.lam = self.start
        elif (step - self.s0) % self.every == 0:
            self.lam = self.lam * self.up if relative_error < self.tau else self.lam * self.down
        return self.lam

    def reset(self) -> None:
        self.lam, self.s0 = 0.0, None

    def state(self) -> dict:
        """What a checkpoint stores to continue exactly."""
        return {"lam": self.lam, "s0": self.s0}

    def load_state(self, state: dict) -> None:
        self.lam, self.s0 = float(state["lam"]), state["s0"]



# -- the adaptive controller (boards) --------------------------------------------------------

TARGET = 0.8  # aim the error at most at this fraction of tau ...
TARGET_LOW = 0.5  # ... and at least at this one,
SPREAD_Z = 3.0  # between them at tau minus this many standard deviations of the error
SPREAD_CHECKS = 5  # over the last checks
CHECKS = 50  # checks in a session: every = steps / CHECKS, within [EVERY_MIN, EVERY_MAX]
EVERY_MIN, EVERY_MAX = 10, 100
UP = 1.25  # the first factor per check (the largest): the error answers some checks late
UP_MIN = 1.05  # the smallest: the controller keeps tracking a drifting error
START_FRACTION = 0.25  # the first lambda, as a fraction of the balance lambda
CEILING = 4.0  # lambda never exceeds this multiple of the balance lambda
FLOOR = 1 / 16  # lambda never falls below this fraction of the first lambda


def adaptive_every(total_steps: int | None) -> int:
    """Steps between checks for a session of ``total_steps`` (None: unbounded):
    ``CHECKS`` checks, at least ``EVERY_MIN`` steps apart (the error needs steps to
    answer a change of lambda) and at most ``EVERY_MAX``."""
    if not total_steps:
        return 2 * EVERY_MIN
    return int(min(EVERY_MAX, max(EVERY_MIN, total_steps // CHECKS)))


def balance_lambda(eta: float, c0: float, input_rms: float, tau: float,
                   target: float = TARGET) -> float:
    """The lambda at which the rule's power term balances its error term at the target error.

    Per edge the rule's error term is ``dV_C**2 - dV_F**2 ~ 2 eta dV dy`` (the nudge moves a
    drop ``dV`` by ``eta`` times the output error ``dy``) and its power term ``lambda dV**2``.
    They balance at ``lambda = 2 eta dy / dV``; with the output error at the target,
    ``dy = sqrt(target tau C0)`` (C0 = the error before training), and the drops of the
    order of the inputs, ``dV ~ input_rms``. Clipped to the board's range (0, 1].
    """
    if not (eta > 0 and c0 > 0 and input_rms > 0 and tau > 0):
        raise ValueError(f"balance_lambda needs positive eta, C0, input rms and tau, got "
                         f"{eta}, {c0}, {input_rms}, {tau}")
    return float(min(1.0, 2.0 * eta * math.sqrt(target * tau * c0) / input_rms))


@dataclass
class AdaptiveController:
    """Finds the largest lambda whose error stays under tau, on any board.

    Every ``every`` steps (a check) the controller compares the mean error since the last
    check with its aim: tau less ``SPREAD_Z`` standard deviations of the last
    ``SPREAD_CHECKS`` checks' errors, within [``TARGET_LOW``, ``target``] * tau (the low
    end until two checks are in). A board whose error swings gets a wide margin, one whose
    error holds still is brought close to tau. lambda = 0 until the error is under the
    aim (at step s0); then lambda = ``start``, and at every check lambda is multiplied by
    the current factor if the error is under the aim, else divided by it. The
    factor starts at ``up``; every reversal (up after down, or down after up) takes its
    square root (halves the step in log lambda), down to ``UP_MIN``: a search that closes
    in on the balance, and then follows a slow drift of it by ``UP_MIN`` per check. The
    factor never grows back: the error answers a change of lambda only some checks
    later, and a factor that grew on moves the same way would swing lambda in a limit
    cycle around the balance. lambda stays within [``start`` * ``FLOOR``, ``lam_max``]:
    an error that rises for reasons of its own (early learning overshoots) must not drive
    lambda to where it no longer matters, and a lambda far above the balance drives the
    edges to where they learn back only slowly (the session sets ``lam_max`` to
    ``CEILING`` times the balance). From step ``hold_from`` on (the session's last tenth,
    which its summary judges) lambda no longer rises.
    Give it the mean error since the last check (:meth:`lam_for`), not one reading.
    """

    tau: float
    start: float
    every: int
    up: float = UP
    target: float = TARGET
    lam_max: float = 1.0
    hold_from: int | None = None
    lam: float = 0.0
    s0: int | None = None
    factor: float = 0.0  # the current factor (0: not started)
    last: int = 0  # the last move: +1 up, -1 down, 0 none yet
    recent: list[float] = field(default_factory=list)  # the last checks' errors

    def __post_init__(self) -> None:
        _check_tau_every(self.tau, self.every)
        if not 0 < self.start <= self.lam_max:
            raise InputError(f"the first lambda must lie in (0, {self.lam_max}], got {self.start}",
                             field="start")
        if not self.up > 1:
            raise InputError(f"the factor must be above 1, got {self.up}", field="up")
        if not 0 < self.target <= 1:
            raise InputError(f"the target must lie in (0, 1] (a fraction of tau), got {self.target}",
                             field="target")

    @property
    def aim(self) -> float:
        """The error the controller aims at now (relative, C/C0)."""
        lo, hi = TARGET_LOW * self.tau, max(TARGET_LOW, self.target) * self.tau
        if len(self.recent) < 2:
            return lo
        return float(min(hi, max(lo, self.tau - SPREAD_Z * float(np.std(self.recent)))))

    def lam_for(self, step: int, relative_error: float) -> float:
        """Lambda for the steps from ``step`` on, given the mean C/C0 since the last check."""
        if self.s0 is not None and (step - self.s0) % self.every:
            return self.lam
        under = relative_error < self.aim
        if math.isfinite(relative_error):
            self.recent = [*self.recent, float(relative_error)][-SPREAD_CHECKS:]
        if self.s0 is None:
            if under:
                self.s0, self.lam, self.factor = step, self.start, self.up
            return self.lam
        move = 1 if under else -1
        if self.last and move != self.last:
            self.factor = max(UP_MIN, math.sqrt(self.factor))
        self.last = move
        if under and self.hold_from is not None and step >= self.hold_from:
            return self.lam
        self.lam = min(self.lam_max, max(self.start * FLOOR, self.lam * self.factor if under
                                         else self.lam / self.factor))
        return self.lam

    def reset(self) -> None:
        self.lam, self.s0, self.factor, self.last, self.recent = 0.0, None, 0.0, 0, []

    def state(self) -> dict:
        """What a checkpoint stores to continue exactly."""
        return {"lam": self.lam, "s0": self.s0, "factor": self.factor, "last": self.last,
                "start": self.start, "every": self.every, "lam_max": self.lam_max,
                "recent": list(self.recent)}

    def load_state(self, state: dict) -> None:
        self.lam, self.s0 = float(state["lam"]), state["s0"]
        self.factor, self.last = float(state.get("factor", self.up)), int(state.get("last", 0))
        self.start = float(state.get("start", self.start))
        self.every = int(state.get("every", self.every))
        self.lam_max = float(state.get("lam_max", self.lam_max))
        self.recent = [float(e) for e in state.get("recent") or []]


def tail_means(history: dict[str, np.ndarray], fraction: float = 0.1,
               columns: tuple[str, ...] = ("relative_error", "power", "power_watts", "lam"),
               ) -> dict[str, float]:
    """Means of history columns over the last ``fraction`` of steps (by step number)."""
    steps = np.asarray(history["step"])
    if steps.size == 0:
        return {c: float("nan") for c in columns}
    cut = steps[-1] - fraction * steps[-1]
    sel = steps > cut
    return {c: float(np.mean(np.asarray(history[c])[sel])) for c in columns if c in history}
