"""Gate memory capacitor of a transistor edge: charge through the gate resistor, leak, bias.

* While the charge switch is on, ``v`` relaxes toward the charge rail with
  ``tau = gate_r · gate_c`` (2.2 ms for 1 kΩ · 2.2 µF); while discharge is on, toward 0 V;
  both on is a shoot-through (counted; the gate goes to the divider mid-point).
* Idle, the gate leaks down at a fixed per-device rate (``leak`` V/s, e.g. 0.1–0.5 mV/s).
* A small deterministic per-edge bias: each switch's turn-off lags by ``skew_us`` (drawn
  once per device), so every pulse acts slightly longer or shorter than commanded — the
  per-edge learning bias behind the limit cycles the lab reported.
* A DAC gate driver sets :attr:`target`: the gate relaxes toward it through ``r``.
"""

from __future__ import annotations

import math

import numpy as np


class GateCap:
    # slots: the pulse and scan paths touch these attributes tens of times a step
    __slots__ = ("tau_us", "rail", "v", "leak", "leak_scale", "skew_us", "charge_on",
                 "discharge_on", "shoot_through", "pulses", "_t", "target")

    def __init__(self, c: float = 2.2e-6, r: float = 1000.0, rail: float = 8.0, v0: float = 0.0,
                 leak: float = 0.0, skew_us: float = 0.0):
        self.tau_us = float(r) * float(c) * 1e6
        self.rail = float(rail)
        self.v = float(v0)
        self.leak = float(leak)  # V/s, downward
        self.leak_scale = 1.0
        self.skew_us = float(skew_us)
        self.charge_on = False
        self.discharge_on = False
        self.shoot_through = 0
        self.pulses = 0
        self._t = 0
        self.target: float | None = None  # a DAC gate driver holds this through ``r``

    def _target(self) -> float | None:
        if self.charge_on and self.discharge_on:
            return self.rail / 2
        if self.charge_on:
            return self.rail
        if self.discharge_on:
            return 0.0
        return self.target

    def _relax(self, target: float, dt_us: float) -> None:
        self.v = target + (self.v - target) * math.exp(-dt_us / self.tau_us)

    def advance(self, now_us: int) -> float:
        """Bring the state to ``now_us`` and return the gate volts."""
        dt = now_us - self._t
        if dt > 0:
            target = self._target()
            if target is None:
                self.v = max(0.0, self.v - self.leak * self.leak_scale * dt * 1e-6)
            else:
                self._relax(target, dt)
            self._t = now_us
        return self.v

    def set_switches(self, charge: bool, discharge: bool, now_us: int) -> None:
        """New switch states at ``now_us``; a switch turning off acts ``skew_us`` longer."""
        self.advance(now_us)
        target = self._target()
        if target is not None and (charge, discharge) != (self.charge_on, self.discharge_on):
            self._relax(target, self.skew_us)  # negative skew backs the pulse out
            self.pulses += 1
        self.charge_on, self.discharge_on = bool(charge), bool(discharge)
        if charge and discharge:
            self.shoot_through += 1


def leak_idle(gates: list[GateCap], t_us: list[int], leak_scale: float) -> np.ndarray:
    """:meth:`GateCap.advance` of idle gates (no switch on, no DAC target), each to its
    own time ``t_us[i]``; returns their volts. A plain loop: for the tens of gates of a
    board it is three times faster than building arrays from the objects."""
    out = []
    for g, t in zip(gates, t_us, strict=True):
        g.leak_scale = leak_scale
        dt = t - g._t
        if dt > 0:
            v = g.v - g.leak * leak_scale * dt * 1e-6
            g.v = v if v > 0.0 else 0.0  # (advance's max(0.0, v))
            g._t = t
        out.append(g.v)
    return np.array(out)
