"""Did a run reach a steady state? One documented verdict for every history.

The criterion (docs/engine.md, "Steady state"): the last ``TAIL`` (half) of the recorded
history is cut into ``WINDOWS`` (4) successive windows of equal length. For the relative
error and the power,

- ``drift`` = |mean of the last window − mean of the first| / level, where level is the
  mean over the tail: how far the quantity still moves over the last half of the run;
- ``fluctuation`` = the median over the windows of the standard deviation inside a window
  / level: how much it swings around while it sits (a limit cycle, bursts, a controller's
  oscillation).

The run is steady when both are at most ``DRIFT_TOL`` and ``FLUCTUATION_TOL`` (5 %) for
both quantities. A converged exponential decay passes (its tail is flat), a run still
decaying or creeping upwards fails on drift, a limit cycle fails on fluctuation.

Bursts are counted on the relative error separately: a burst is an upward crossing of
``BURST_FACTOR`` (10) × the running minimum of the history so far; ``rise`` is the final
value over the history's minimum. A run may be steady and still have had bursts (it
settled above its best).

Values below the floating-point floor are rounding noise (the engine's error is a
quadratic form whose rounding is a few 1e-16 of C0, so a C/C0 of −8.6e-17 can occur):
|C/C0| < ``FLOOR`` is kept as the number computed and marked ``below_floor``; the verdict
treats such values as the floor itself, and a relative error whose last window lies
entirely below the floor has converged (to zero, as far as doubles can tell): its drift and
fluctuation are still reported but do not fail the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

FLOOR = 1e-15
"""|C/C0| below this is rounding noise: a few times the double-precision epsilon, where the
history's C/C0 of a converged lambda-0 run on r1 wanders (9e-18 to 4.5e-16)."""
TAIL = 0.5
"""Fraction of the recorded history (its last part) that the verdict judges."""
WINDOWS = 4
"""Successive windows the tail is cut into."""
DRIFT_TOL = 0.05
"""Largest relative change between the first and last window means of a steady run."""
FLUCTUATION_TOL = 0.05
"""Largest relative standard deviation inside a window of a steady run."""
BURST_FACTOR = 10.0
"""A burst: the relative error rises above this factor times its running minimum."""
MIN_POINTS = 2 * WINDOWS
"""Fewer tail points than this: too short to judge (verdict false)."""

POWER_COLUMNS = ("power", "power_watts")


def below_floor(value: float | None) -> bool:
    """True when a relative error ``value`` is below the floating-point floor."""
    return value is not None and math.isfinite(value) and abs(value) < FLOOR


def floor_flags(relative_error: Sequence[float] | np.ndarray) -> np.ndarray:
    """Per history row: is C/C0 below the floating-point floor? (a history column)."""
    v = np.asarray(relative_error, dtype=float)
    return np.isfinite(v) & (np.abs(v) < FLOOR)


def _power_column(history: Mapping[str, Sequence[float]]) -> str | None:
    for name in POWER_COLUMNS:
        col = history.get(name)
        if col is not None and len(col) and np.all(np.isfinite(np.asarray(col, dtype=float))):
            return name
    return None


def _windows(values: np.ndarray, floor: float) -> tuple[float, float]:
    """(drift, fluctuation) of the tail of ``values`` (clipped below at ``floor``)."""
    n = values.size
    tail = np.maximum(values[n - max(int(round(n * TAIL)), 1):], floor)
    parts = np.array_split(tail, WINDOWS)
    level = max(float(np.mean(np.abs(tail))), floor)
    drift = abs(float(np.mean(parts[-1])) - float(np.mean(parts[0]))) / level
    fluctuation = float(np.median([np.std(p) for p in parts])) / level
    return drift, fluctuation


def bursts(relative_error: Sequence[float] | np.ndarray, factor: float = BURST_FACTOR
           ) -> tuple[int, float]:
    """(number of bursts, final / minimum) of a relative-error history."""
    v = np.maximum(np.asarray(relative_error, dtype=float), FLOOR)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0, math.nan
    above = v > factor * np.minimum.accumulate(v)
    count = int(np.sum(above[1:] & ~above[:-1]) + above[0])
    return count, float(v[-1] / v.min())


def verdict(history: Mapping[str, Sequence[float]]) -> dict:
    """The steady-state verdict of a history (columns ``relative_error`` and a power).

    Returns a flat dict: ``steady_state`` (bool), ``drift_relative_error``,
    ``drift_power``, ``fluctuation_relative_error``, ``fluctuation_power``, ``bursts``
    (count), ``rise`` (final / minimum C/C0) and ``judged_points`` (tail length).
    """
    rel = np.asarray(history.get("relative_error", ()), dtype=float)
    out: dict = {"steady_state": False, "drift_relative_error": None, "drift_power": None,
                 "fluctuation_relative_error": None, "fluctuation_power": None,
                 "bursts": 0, "rise": None, "judged_points": 0}
    finite = rel[np.isfinite(rel)]
    if finite.size == 0:
        return out
    out["bursts"], out["rise"] = bursts(finite)
    n_tail = max(int(round(finite.size * TAIL)), 1)
    out["judged_points"] = n_tail
    if n_tail < MIN_POINTS:
        return out
    ok = True
    d, f = _windows(finite, FLOOR)
    out["drift_relative_error"], out["fluctuation_relative_error"] = d, f
    last = np.array_split(finite[finite.size - n_tail:], WINDOWS)[-1]
    at_floor = bool(np.all(np.abs(last) < FLOOR))  # converged to the floor: nothing left to move
    ok &= at_floor or (d <= DRIFT_TOL and f <= FLUCTUATION_TOL)
    col = _power_column(history)
    if col is not None:
        p = np.asarray(history[col], dtype=float)
        scale = float(np.max(np.abs(p))) if p.size else 0.0
        d, f = _windows(p, max(scale * FLOOR, np.finfo(float).tiny))
        out["drift_power"], out["fluctuation_power"] = d, f
        ok &= d <= DRIFT_TOL and f <= FLUCTUATION_TOL
    out["steady_state"] = bool(ok)
    return out


def run_verdict(history: Mapping[str, Sequence[float]], final_relative_error: float | None
                ) -> dict:
    """:func:`verdict` plus ``below_floor`` for the final C/C0 (the summary keys)."""
    return {**verdict(history), "below_floor": below_floor(final_relative_error)}
