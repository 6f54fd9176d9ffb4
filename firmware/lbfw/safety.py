"""On-board safety limits, from the board description's ``lim`` table.

The board cannot measure edge currents, so every actuation is checked first against a
worst-case bound computed from the description: the largest node voltage ``vn`` over
the smallest possible edge resistance must stay below ``ie``. For digipots that gives
the lowest allowed tap (``r(t) * (1 - tolerance) + r_wiper >= vn / ie``, and the
description's own ``taps`` range); for gates the highest allowed gate voltage (the
description's ``g`` range, and ``vt + ie / (beta (1 + 3 spread) vn)`` from the triode
bound ``I <= beta (Vg - Vt) Vds``). Pulses are bounded with ``1 - exp(-x) <= x``: a
charge pulse of ``t`` us ends at most ``g + (G - g) t / RC``. After an actuation the
measured node codes are checked against ``vn`` too.

``lo``/``hi`` are where the firmware plans: the description's own bounds (gate range,
tap range, current bound) for taps and DAC gates, which land exactly where asked; for
pulse gates ``gates.PulseGates`` moves them inwards at boot by what a planned pulse
cannot see (the time a pulse conducts beyond the time asked, a gate capacitor
``RC_TOL`` faster than nominal, the read-back's ``NOISE``, the idle leakage between two
looks) and keeps the description's as hard bounds that every pulse outside the learning
step is checked against with the exact charging law.

The step's checks run on integers (codes, taps, us); nothing allocates.
"""

import math

from . import consts
from .consts import const  # micropython.const (a plain function under CPython)

# consts.K_FIXED / K_PULSE as literals: the step checks every edge's kind (an imported
# name would cost a global lookup per edge)
_FIXED = const(0)
_PULSE = const(2)
if (_FIXED, _PULSE) != (consts.K_FIXED, consts.K_PULSE):
    raise ImportError("lbfw.safety: edge kinds differ from lbfw.consts")

# Relative tolerance of a gate's RC time constant the firmware plans for (capacitor and
# resistor together): a capacitor 5 % below nominal charges 5 % faster than planned.
RC_TOL = 0.05
# Gate read-back codes a decision may be off by (16x oversampled, 1 LSB noise, and the
# internal ADC's differential non-linearity near its E11 codes).
NOISE = 2


class Limits:
    """Per-edge bounds ``lo``/``hi`` in actuator units and the node-code bound ``vmax``."""

    def __init__(self, n_edges, vn_code):
        from array import array
        self.lo = array("i", bytes(4 * n_edges))
        self.hi = array("i", bytes(4 * n_edges))
        self.kind = bytearray(n_edges)  # consts.K_*: K_FIXED until wired
        self.vn_code = vn_code
        self.g_charge = 0
        self.rc_us = 2200

    def pot_bounds(self, e, part, lim, taps_range):
        """Lowest and highest safe tap of digipot edge ``e``."""
        nt = part["nt"]
        r_need = lim["vn"] / lim["ie"]
        lo = nt - 1
        for t in range(nt):
            if part["tp"] == "log":
                r = part["rmin"] * (part["rmax"] / part["rmin"]) ** (t / (nt - 1))
            else:
                r = part["rmin"] + (part["rmax"] - part["rmin"]) * t / (nt - 1)
            if r * (1.0 - part["tol"]) + part["rw"] >= r_need:
                lo = t
                break
        hi = nt - 1
        if taps_range is not None:
            lo = max(lo, taps_range[0])
            hi = min(hi, taps_range[1])
        self.kind[e] = consts.K_POT
        self.lo[e] = lo
        self.hi[e] = hi

    def gate_bounds(self, e, part, lim, gate_vpc, kind):
        """Gate range of transistor edge ``e`` (``kind`` K_PULSE or K_DAC) in gate codes
        (``gate_vpc`` V per code)."""
        g_hi = part["vgmax"]
        beta = part["beta"] * (1.0 + 3.0 * part["bs"])
        vt = part["vt"] - 3.0 * part["vts"]
        g_hi = min(g_hi, vt + lim["ie"] / (beta * lim["vn"]))
        g_lo = 0.0
        if lim["g"] is not None:
            g_lo = max(g_lo, lim["g"][0])
            g_hi = min(g_hi, lim["g"][1])
        self.kind[e] = kind
        self.lo[e] = int(math.ceil(g_lo / gate_vpc))
        self.hi[e] = int(g_hi / gate_vpc)

    def clamp(self, e, value):
        """``value`` moved to the nearest value edge ``e`` may be set to."""
        if value < self.lo[e]:
            return self.lo[e]
        if value > self.hi[e]:
            return self.hi[e]
        return value

    def allowed(self, e, value):
        """True when edge ``e`` may be set to ``value`` (tap or gate code)."""
        return self.kind[e] != consts.K_FIXED and self.lo[e] <= value <= self.hi[e]

    def check(self, out, pos):
        """True when every actuation in ``out`` keeps its edge within bounds."""
        for e in range(len(out)):
            if not self._edge_ok(out, pos, e):
                return False
        return True

    def _edge_ok(self, out, pos, e):
        return not out[e] or self._ok(e, out[e], pos[e])

    def _ok(self, e, q, p):
        k = self.kind[e]
        if k == _PULSE:
            return self.pulse_ok(e, q, p)
        return k != _FIXED and self.lo[e] <= p + q <= self.hi[e]

    def pulse_ok(self, e, q, g):
        """True when a pulse of ``q`` us (> 0 charge) from gate code ``g`` stays within the
        planning bounds by the rule's own linear model (the same integer rate, so a pulse
        the rule cut to the room left passes, and one that is 1 us longer does not)."""
        if q > 0:
            span = self.g_charge - g
            room = self.hi[e] - g
        else:
            span = g
            room = g - self.lo[e]
            q = -q
        if room < 0 or span <= 0:
            return q == 0
        rate = (span << 16) // self.rc_us
        return rate <= 0 or q <= (room << 16) // rate

    def nodes_ok(self, codes):
        """True when every measured node code lies within the node-voltage limit."""
        vmax = self.vn_code
        for k in range(len(codes)):
            if codes[k] > vmax:
                return False
        return True
