"""Distributions over replica runs: median, interquartile range and modes.

Where a run's outcome depends on the last bit of its start (strong lambda: many edges at
k_min, a rounding difference grows into a different run), one number is not a result.
:func:`perturbed` makes the replicas' starting conductances; :func:`distribution`
summarises their per-run summaries (the same keys as a single run).

Modes (docs/engine.md, "Replicas"): the positive values of a key are sorted on a log10
scale and split wherever the gap between neighbours exceeds
``max(MODE_GAP_FACTOR × the median gap, MODE_MIN_GAP)``; each group is a mode, reported
with its centre (10 ** the median log value), count, min and max. Values below the
floating-point floor (or not positive) are placed at the floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from learnboard.engine.steady import FLOOR

MODE_KEYS = ("relative_error", "error", "power", "power_watts")
"""Keys whose modes are reported."""
MODE_GAP_FACTOR = 8.0
"""A gap splits modes when it is this many times the median gap between neighbours ..."""
MODE_MIN_GAP = 0.01
"""... and at least this many decades (2.3 %): identical runs are one mode."""


def perturbed(k0: np.ndarray, eps: float, seed: int, replica: int) -> np.ndarray:
    """``k0 * (1 + eps * u)``, u uniform in [-1, 1) per edge, drawn from (seed, replica)."""
    if eps == 0:
        return np.array(k0, dtype=float)
    rng = np.random.default_rng([int(seed), int(replica), 2718])
    return np.asarray(k0, dtype=float) * (1.0 + eps * rng.uniform(-1.0, 1.0, len(k0)))


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def numeric_keys(runs: Sequence[dict]) -> list[str]:
    """Keys that hold a finite number (not a flag) in every run, in the first run's order."""
    if not runs:
        return []
    return [k for k, v in runs[0].items() if all(_numeric(r.get(k)) for r in runs)]


def modes(values: Sequence[float]) -> list[dict]:
    """Modes of positive values by gaps on a log scale (see the module docstring)."""
    v = np.array([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if v.size == 0:
        return []
    logs = np.sort(np.log10(np.maximum(v, FLOOR)))
    gaps = np.diff(logs)
    limit = max(MODE_GAP_FACTOR * float(np.median(gaps)), MODE_MIN_GAP) if gaps.size else 0.0
    cuts = np.flatnonzero(gaps > limit) + 1
    out = []
    for group in np.split(logs, cuts):
        out.append({"centre": float(10 ** np.median(group)), "count": int(group.size),
                    "min": float(10 ** group[0]), "max": float(10 ** group[-1])})
    return out


def distribution(runs: Sequence[dict]) -> dict:
    """``runs`` (how many), ``median``, ``iqr`` ([25 %, 75 %] quantiles), ``range`` ([min, max]) per numeric key,
    ``modes`` per :data:`MODE_KEYS` key and ``steady_runs`` (how many were steady)."""
    keys = numeric_keys(runs)
    med, iqr, rng = {}, {}, {}
    for k in keys:
        v = np.array([r[k] for r in runs], dtype=float)
        med[k] = float(np.median(v))
        iqr[k] = [float(np.quantile(v, 0.25)), float(np.quantile(v, 0.75))]
        rng[k] = [float(v.min()), float(v.max())]
    found = {k: modes([r[k] for r in runs]) for k in MODE_KEYS if k in keys}
    return {"runs": len(runs), "median": med, "iqr": iqr, "range": rng, "modes": found,
            "steady_runs": sum(1 for r in runs if r.get("steady_state") is True),
            "below_floor_runs": sum(1 for r in runs if r.get("below_floor") is True)}
