"""The small-α check's convergence criterion, on synthetic distributions."""

from __future__ import annotations

import numpy as np
from learnboard.studies.paper.small_alpha import MIN_SHIFT, moved, tolerance, verdict


def _sample(median: float, spread_decades: float, n: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return median * 10 ** (spread_decades * rng.uniform(-1, 1, n))


def test_identical_replicas_move_only_beyond_ten_percent():
    a = np.full(8, 7.55e-6)
    assert tolerance(a, a) == MIN_SHIFT  # no spread: the 10 % floor
    assert moved(a, a * 1.05)["moved"] is False  # α 0.1 reproducing α 0.5 within 5 %
    assert moved(a, a * 1.5)["moved"] is True


def test_a_shift_within_a_wide_spread_is_not_a_move_but_beyond_it_is():
    wide = _sample(0.05, 1.0)  # the strong-λ spread: about a decade
    same = _sample(0.05, 1.0, seed=1)  # another draw of the same distribution
    assert moved(wide, same)["moved"] is False
    lower = _sample(0.05 / 30, 1.0, seed=1)  # the median 30x lower: beyond the pooled IQR
    r = moved(wide, lower)
    assert r["moved"] is True and r["shift"] > r["tolerance"]


def test_a_distribution_that_narrows_has_moved_even_at_the_same_median():
    wide = _sample(0.01, 1.0)
    narrow = np.full(10, float(np.median(wide)))
    r = moved(wide, narrow)
    assert r["shift"] < r["tolerance"] < r["widen"] and r["moved"] is True


def test_verdict_names_the_alpha_before_the_halving_that_moved_nothing():
    levels = [{"alpha": 0.5, "moved": None}, {"alpha": 0.25, "moved": True},
              {"alpha": 0.125, "moved": False}]
    assert verdict(levels) == ("converged", 0.25)
    assert verdict(levels[:2]) == ("moving", 0.25)
    assert verdict(levels[:1]) == ("unchecked", 0.5)  # no halving: no verdict
