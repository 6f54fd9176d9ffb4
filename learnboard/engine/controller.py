"""The closed-loop tolerance controller, reusable by the engine and host sessions.

lambda = 0 until C/C0 < tau at some step s0; then lambda = ``start`` (1e-9), and at every
step s > s0 with (s - s0) % ``every`` == 0 (100), lambda is multiplied by ``up`` (1.05)
if C/C0 < tau, else by ``down`` (0.5). It oscillates by design: judge it by the means
over the last 10 % of steps (:func:`tail_means`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnboard.errors import InputError


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
        if not self.tau > 0:
            raise InputError(f"the tolerance must be positive, got {self.tau}", field="--tolerance")
        if self.every < 1:
            raise InputError("the check interval must be at least one step", field="every")

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
