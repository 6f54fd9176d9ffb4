"""The power a session reports: what the board says it draws, and (emulated boards) the truth.

One meaning per name, in W, means over the training examples at one evaluation:

* ``power`` — the total the board reports: its current monitor's reading when it has one
  (``power_source`` "measured"), else its device-model estimate from its own node
  readings (``power_source`` "estimate"); ``power_free`` / ``power_clamped`` the board's
  estimate for the free network and for the clamped twin network (null on a
  single-network board).
* ``true_power``, ``true_power_free``, ``true_power_clamped`` — the emulator's physics,
  the same split; null on hardware.

:class:`PowerMeans` collects them example by example (``infer`` replies and the truth
probe's states); :func:`power_line` is how the command line says them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

POWER_KEYS = ("power", "power_source", "power_free", "power_clamped",
              "true_power", "true_power_free", "true_power_clamped")
"""The summary's power keys (each also with ``initial_`` before it: at step 0)."""

NOT_ON_HARDWARE = "true power: not available on hardware"


def _mean(xs: list) -> float | None:
    return float(np.mean(xs)) if xs else None


class PowerMeans:
    """Power of a board over the examples of one evaluation (see the module docstring).

    ``sensed_total``: the board's current monitors (their sum, ``pwr_m``) measure what its
    networks draw in total — a monitor in every driver's output (``Board.power_measured``);
    only then is it the reported ``power``. Otherwise ``pwr_m`` is a part and the
    estimate is reported."""

    def __init__(self, twin: bool, sensed_total: bool = False) -> None:
        self.twin = twin
        self.sensed_total = sensed_total
        self.est: list[float] = []
        self.free: list[float] = []
        self.clamped: list[float] = []
        self.measured: list[float] = []
        self.true_free: list[float] = []
        self.true_clamped: list[float] = []

    def add(self, reply: Mapping[str, Any], truth: Any = None) -> None:
        """One ``infer`` reply; ``truth`` the connection (its ``true_state(net)``) read
        right after it, or None."""
        self.est.append(float(reply["pwr"]))
        self.free.append(float(reply.get("pwr_f", reply["pwr"])))
        if reply.get("pwr_c") is not None:
            self.clamped.append(float(reply["pwr_c"]))
        if reply.get("pwr_m") is not None:
            self.measured.append(float(reply["pwr_m"]))
        if truth is not None:
            ts = truth.true_state(0)
            if ts is not None:
                self.true_free.append(float(ts.power))
                if self.twin:
                    self.true_clamped.append(float(truth.true_state(1).power))

    def result(self) -> dict[str, Any]:
        """The :data:`POWER_KEYS` of these examples."""
        n = len(self.est)
        measured = self.sensed_total and n > 0 and len(self.measured) == n
        free, clamped = _mean(self.free), _mean(self.clamped) if self.twin else None
        tf = _mean(self.true_free)
        tc = _mean(self.true_clamped) if self.twin and tf is not None else None
        return {"power": _mean(self.measured) if measured else _mean(self.est),
                "power_source": "measured" if measured else "estimate",
                "power_free": free, "power_clamped": clamped,
                "true_power": None if tf is None else tf + (tc or 0.0),
                "true_power_free": tf, "true_power_clamped": tc}


def _uw(x: float | None) -> str:
    return "—" if x is None else f"{x * 1e6:.4g} µW"


def power_line(d: Mapping[str, Any]) -> str:
    """``power 123 µW (estimate: free 60 µW + clamped 63 µW), true 118 µW (free …)``
    (measured: ``power 121 µW (measured; estimate: free … + clamped …)``), or with the
    hardware's note instead of the true power."""
    src = d.get("power_source") or "estimate"
    parts = ""
    if d.get("power_clamped") is not None:
        parts = f"free {_uw(d.get('power_free'))} + clamped {_uw(d['power_clamped'])}"
    if src == "measured" and parts:  # the monitors measure the total; the split is the model's
        out = f"power {_uw(d.get('power'))} (measured; estimate: {parts})"
    else:
        out = f"power {_uw(d.get('power'))} ({src}{': ' + parts if parts else ''})"
    if d.get("true_power") is None:
        return f"{out}; {NOT_ON_HARDWARE}"
    tparts = ""
    if d.get("true_power_clamped") is not None:
        tparts = (f" (free {_uw(d.get('true_power_free'))} + clamped "
                  f"{_uw(d['true_power_clamped'])})")
    return f"{out}, true {_uw(d['true_power'])}{tparts}"
