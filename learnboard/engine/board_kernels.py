"""Compiled batch driver of the DC solver's Newton for :class:`~learnboard.engine.board_engine.BoardEngine`.

A board's learning step solves every example's free state and then every example's
clamped state: tens of small DC solves of one network that differ only in the driven
volts and the warm start. :func:`newton_batch` runs them in one compiled call of the
solver's own kernel (:func:`learnboard.physics.dc_newton.newton`, the model, steps and
convergence test of :func:`learnboard.physics.solve`), so the Python cost of a call is
paid once per batch rather than once per solve. It is a loop, not a second solver.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from learnboard.physics.dc_newton import newton


@njit(cache=True)
def newton_batch(a, b, kind, gvt, dev, col, nvar, volts, vscale, tol, max_iter, max_step,
                 currents, iterations, status, last):
    """:func:`~learnboard.physics.dc_newton.newton` on every row of ``volts`` (B, N), in
    place: row ``k`` starts satisfying the constraints, with the voltage scale
    ``vscale[k]``. Fills ``currents`` (B, E), ``iterations`` and ``status`` (B,)."""
    for k in range(volts.shape[0]):
        st, it, i = newton(a, b, kind, gvt, dev, col, nvar, volts[k], vscale[k], 0.0, tol,
                           max_iter, max_step, last)
        status[k] = st
        iterations[k] = it
        currents[k, :] = i


def warm_up() -> None:
    """Compile (or load from numba's cache) :func:`newton_batch` for the solver's types."""
    dev = np.array([[0.0, 0.0], [1e-3, 1e-3], [0.08, 0.08], [1e-14, 1e-14], [0.025, 0.025]])
    newton_batch(np.array([0, 1], dtype=np.int64), np.array([1, 2], dtype=np.int64),
                 np.ones(2, dtype=np.int8), np.ones(2), dev, np.array([-1, 0, -1], dtype=np.int64),
                 1, np.array([[1.0, 0.5, 0.0]]), np.ones(1), 1e-10, 30, 0.5, np.zeros((1, 2)),
                 np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(3))
