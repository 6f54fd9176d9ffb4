"""Learning parameters and initial conductances, as in the authors' published code
(Stern et al., APL Machine Learning 2, 016114 (2024))."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from learnboard.errors import InputError

INITS = ("uniform", "random", "low")
BATCHES = ("full", "online")
ORDERS = ("cycle", "shuffle")


@dataclass(frozen=True)
class LearningConfig:
    """Coupled learning with a power term: ``dk = -(alpha/eta) <(dV^C)^2 - (1-lam)(dV^F)^2>``.

    Args:
        alpha: learning rate.
        eta: nudge, ``V_O^C = V_O^F + eta (L - V_O^F)``, 0 < eta <= 1.
        lam: weight of the power term (0 = plain coupled learning).
        k_min, k_max: conductances are clipped to this range after every step.
        batch: ``"full"`` (mean over all examples per step) or ``"online"`` (one per step).
        order: online example order, ``"cycle"`` or ``"shuffle"`` (reshuffled per epoch).
        update_prob: desynchronous learning: each edge updates with this probability per step.
        seed: seeds shuffling and desynchronous updates.
    """

    alpha: float = 0.5
    eta: float = 1e-3
    lam: float = 0.0
    k_min: float = 1e-4
    k_max: float = 1e6
    batch: str = "full"
    order: str = "cycle"
    update_prob: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.alpha > 0:
            raise InputError(f"alpha must be positive, got {self.alpha}", field="--alpha")
        if not 0 < self.eta <= 1:
            raise InputError(f"eta must be in (0, 1], got {self.eta}", field="--eta")
        if not self.lam >= 0:
            raise InputError(f"lambda must be >= 0, got {self.lam}", field="--lam")
        if not 0 < self.k_min < self.k_max:
            raise InputError(f"need 0 < k_min < k_max, got {self.k_min} and {self.k_max}",
                             field="--k-min")
        if self.batch not in BATCHES:
            raise InputError(f"batch must be one of {', '.join(BATCHES)}", field="--batch")
        if self.order not in ORDERS:
            raise InputError(f"order must be one of {', '.join(ORDERS)}", field="--order")
        if not 0 < self.update_prob <= 1:
            raise InputError(f"update probability must be in (0, 1], got {self.update_prob}",
                             field="--update-prob")


def initial_conductances(n_edges: int, init: str = "uniform", k0: float = 1.0, *,
                         k_range: tuple[float, float] | None = None, k_min: float = 1e-4,
                         k_max: float = 1e6, low_factor: float = 10.0,
                         seed: int = 0) -> np.ndarray:
    """Starting conductances.

    ``uniform``: every edge at ``k0``. ``random``: uniform in ``k_range`` (default
    ``k0/2 .. 3 k0/2``), seeded. ``low``: every edge at ``low_factor * k_min`` — the
    paper's good initial condition (by scale symmetry it costs no error, only power).
    """
    if init not in INITS:
        raise InputError(f"unknown init {init!r}; use one of {', '.join(INITS)}", field="--init")
    if init == "uniform":
        if not k_min <= k0 <= k_max:
            raise InputError(f"k0 {k0} is outside [k_min, k_max] = [{k_min}, {k_max}]", field="--k0")
        return np.full(n_edges, float(k0))
    if init == "low":
        return np.full(n_edges, min(k_max, low_factor * k_min))
    lo, hi = k_range if k_range is not None else (0.5 * k0, 1.5 * k0)
    if not k_min <= lo <= hi <= k_max:
        raise InputError(f"random range [{lo}, {hi}] must lie inside [{k_min}, {k_max}]", field="--k0")
    return np.random.default_rng(seed).uniform(lo, hi, n_edges)


# The learning rate `learnboard train` gives a transistor board when none is set: annealed
# from 1.0 to 0.2 V/V^2 over the session, changed at the start of each chunk of steps
# (a board's rate of the lab's 0.0023 needs ~1e5 steps; a constant 1.0 learns in a few
# hundred but then wanders at C/C0 ~ 0.01-0.1, the anneal settles it).
GATE_ALPHA_ANNEAL = (1.0, 0.2)
ANNEAL_CHUNK = 50  # steps between the host's parameter updates (a schedule's default chunk)


def annealed_alpha(step: int, total: int, start: float = GATE_ALPHA_ANNEAL[0],
                   end: float = GATE_ALPHA_ANNEAL[1]) -> float:
    """The annealed learning rate at ``step`` of a ``total``-step session (4 decimals, as
    sent to the board)."""
    return round(start + (end - start) * min(1.0, step / total), 4)
